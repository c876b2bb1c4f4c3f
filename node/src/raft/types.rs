//! openraft's type configuration for AEGIS. Only the `raft` module names
//! these types; the rest of the node talks to [`super::Consensus`].

use std::sync::Arc;

use aegis_state_machine::{Applied, Command};
use serde::{Deserialize, Serialize};

/// Where a member can be reached, and which incarnation of its data directory
/// the group admitted (docs/adr/0009-node-incarnation.md).
///
/// Encoded with postcard, which is not self-describing: adding `incarnation`
/// changed the encoding of membership log entries and snapshot metadata, and
/// data directories written before it cannot be read (nor are they accepted:
/// see `incarnation::load_or_create`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub peer_addr: String,
    pub client_addr: String,
    /// 0: not known (e.g. as given to `--members` or `add_learner`, before
    /// the identity exchange fills it in); peers do not check a 0.
    pub incarnation: u64,
}

/// A log entry's command, shared: the log store's entry cache, the followers' appends and the
/// state machine read the same one without copying it. Encoded exactly as a `Command`.
pub type SharedCommand = Arc<Command>;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = SharedCommand,
        // `None` for blank and membership entries.
        R = Option<Applied>,
        Node = Member,
);

pub type NodeId = u64;
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot's bytes: built once, then shared (kept as the current
/// snapshot, handed to openraft, sent to followers) without copying.
pub type SnapshotData = bytes::Bytes;
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;
pub type Raft = openraft::Raft<TypeConfig, super::state_machine::SmStore>;

/// Encoding of everything that crosses the wire or hits the disk.
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, std::io::Error> {
    postcard::to_stdvec(v).map_err(std::io::Error::other)
}

/// [`encode`], appended to `out` (which it returns).
pub fn encode_into<T: Serialize>(v: &T, out: Vec<u8>) -> Result<Vec<u8>, std::io::Error> {
    postcard::to_extend(v, out).map_err(std::io::Error::other)
}

pub fn decode<T: for<'a> Deserialize<'a>>(b: &[u8]) -> Result<T, std::io::Error> {
    postcard::from_bytes(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use aegis_state_machine::{Op, PutOp};

    use super::*;

    /// WAL segments and peers of earlier builds hold plain `Command` encodings.
    #[test]
    fn a_shared_command_encodes_as_the_command() {
        let cmd = Command {
            leader_ts_ms: 42,
            op: Op::Put(PutOp {
                key: b"k".to_vec(),
                value: vec![7; 300],
                session_id: 3,
                prev_kv: true,
                guard: None,
            }),
        };
        let plain = encode(&cmd).expect("encode");
        let shared: SharedCommand = Arc::new(cmd.clone());
        assert_eq!(encode(&shared).expect("encode"), plain);
        assert_eq!(*decode::<SharedCommand>(&plain).expect("decode"), cmd);
    }
}
