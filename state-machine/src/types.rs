//! The replicated command and its results: the contract between the Raft
//! glue (which stamps, proposes and applies commands) and the deterministic
//! state machine (which only computes).
//!
//! Every map here is a `BTreeMap` and every value is plain data, so two
//! replicas that apply the same log serialize to the same bytes and report
//! the same digest.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One entry of the replicated log, as proposed by the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The leader's wall clock when it proposed this command. The only way
    /// time enters the state machine (ADR-001).
    pub leader_ts_ms: u64,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Proposed periodically by the leader so replicated time advances (and
    /// sessions expire) without client traffic.
    Tick,
    OpenSession {
        ttl_ms: u64,
    },
    KeepAlive {
        session_id: u64,
    },
    CloseSession {
        session_id: u64,
    },
    Acquire {
        name: String,
        session_id: u64,
        /// Queue FIFO behind the holder instead of failing.
        wait: bool,
    },
    Release {
        name: String,
        session_id: u64,
        token: u64,
    },
    /// A waiting acquire whose caller gave up leaves the queue.
    CancelWait {
        name: String,
        session_id: u64,
    },
    Put(PutOp),
    Delete(DeleteOp),
    Txn(TxnOp),
    /// Per-key version retention; replicated so every replica compacts at
    /// the same index even while a config rotation is half done.
    SetRetention {
        max_versions: u64,
    },
    // Variants are encoded by position: new ones go last.
    /// Many keep-alives in one entry, renewed in order. Proposed only once
    /// every member decodes it (the leader asks, see
    /// `node/src/raft/keep_alive_batch.rs`): a build without it cannot
    /// read an entry that holds it.
    KeepAlives {
        session_ids: Vec<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutOp {
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// 0 = not bound to a session.
    pub session_id: u64,
    pub prev_kv: bool,
    pub guard: Option<FencingGuard>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FencingGuard {
    pub lock: String,
    pub token: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOp {
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    pub prefix: bool,
    pub prev_kv: bool,
}

/// A read inside a transaction (evaluated at the txn's own revision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeOp {
    #[serde(with = "serde_bytes")]
    pub prefix: Vec<u8>,
    pub limit: u32,
    pub keys_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStep {
    Put(PutOp),
    Delete(DeleteOp),
    Range(RangeOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    Value,
    Version,
    ModRevision,
    CreateRevision,
    /// `key` is a lock name; compares the lock's current token.
    LockToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    Equal,
    NotEqual,
    Greater,
    Less,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    pub target: CompareTarget,
    pub result: CompareResult,
    /// Used when target is Value.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Used for the numeric targets.
    pub number: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnOp {
    pub compare: Vec<Compare>,
    pub success: Vec<TxnStep>,
    pub failure: Vec<TxnStep>,
}

/// A key's value at one revision, as seen by clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// Shared with the key's history and every event and reply that holds
    /// this version; encoded as a `Vec<u8>` is.
    #[serde(with = "crate::shared_bytes")]
    pub value: Arc<[u8]>,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    pub session_id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change to one key. For a delete, `kv.value` is empty, `kv.version` is
/// 0 and `kv.mod_revision` is the delete's revision.
///
/// The key-value is shared: one event is kept in the watch history and
/// handed to live watchers, and copying its value for each was most of what
/// recording it cost. (Encoded as the `KeyValue` itself.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub kv: Arc<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub session_id: u64,
    pub ttl_ms: u64,
    pub deadline_ms: u64,
    pub locks: Vec<String>,
    pub keys: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub name: String,
    /// 0 when free.
    pub holder_session: u64,
    /// The holder's token; when free, the token of the last grant (0 if
    /// never granted).
    pub token: u64,
    pub waiters: Vec<u64>,
}

/// A lock handed to a session by the entry at `token` (= that log index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockGrant {
    pub name: String,
    pub session_id: u64,
    pub token: u64,
}

/// The successful result of one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Ticked,
    SessionOpened {
        session_id: u64,
        ttl_ms: u64,
    },
    KeptAlive {
        session_id: u64,
        ttl_ms: u64,
    },
    SessionClosed,
    /// The lock is held by `session_id` with `token` (granted now, or
    /// already held by the same session: acquire is idempotent).
    Acquired {
        token: u64,
    },
    /// `wait` was true and the session is now queued (or already was).
    Queued {
        position: u64,
    },
    /// `wait` was false and someone else holds it.
    Busy {
        holder_session: u64,
    },
    Released {
        next: Option<LockGrant>,
    },
    WaitCancelled,
    Put {
        prev_kv: Option<KeyValue>,
    },
    Deleted {
        deleted: u64,
        prev_kvs: Vec<KeyValue>,
    },
    Txn {
        succeeded: bool,
        responses: Vec<TxnStepReply>,
    },
    RetentionSet,
    // Variants are encoded by position: new ones go last.
    /// One outcome per id of `Op::KeepAlives`, in order: what `KeepAlive`
    /// of that id alone would have returned.
    KeptAliveMany {
        renewed: Vec<Result<u64, SmError>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStepReply {
    Put {
        prev_kv: Option<KeyValue>,
    },
    Deleted {
        deleted: u64,
        prev_kvs: Vec<KeyValue>,
    },
    Range {
        kvs: Vec<KeyValue>,
        more: bool,
        count: u64,
    },
}

/// Deterministic refusals. Applying a refused command changes nothing but
/// replicated time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SmError {
    #[error("session not found")]
    SessionNotFound { session_id: u64 },
    #[error("session expired")]
    SessionExpired { session_id: u64 },
    #[error("stale fencing token")]
    StaleFencingToken {
        lock: String,
        token: u64,
        current: u64,
    },
    #[error("lock not held by this session")]
    NotLockHolder { lock: String, session_id: u64 },
    #[error("compacted revision")]
    Compacted {
        revision: u64,
        compact_revision: u64,
    },
    #[error("future revision")]
    FutureRevision { revision: u64, current: u64 },
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Everything one applied entry produced: the reply for the proposer, and
/// the side effects every replica publishes (watch events, lock grants to
/// waiters, expirations) — identical on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub index: u64,
    pub result: Result<Reply, SmError>,
    /// KV changes at this index, in order (all share `mod_revision = index`).
    pub events: Vec<Event>,
    /// Locks granted at this index, including to waiters.
    pub grants: Vec<LockGrant>,
    /// Sessions that expired when this entry advanced replicated time.
    pub expired_sessions: Vec<u64>,
}

impl Applied {
    /// The index and result alone: what the entry's proposer is answered with.
    /// Watchers and lock waiters learn the effects elsewhere (the node
    /// broadcasts every `Applied`), so the proposer's copy need not repeat them.
    pub fn without_effects(&self) -> Applied {
        Applied {
            index: self.index,
            result: self.result.clone(),
            events: Vec::new(),
            grants: Vec::new(),
            expired_sessions: Vec::new(),
        }
    }
}

/// The answer to a range read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResult {
    /// At most `limit` live keys (all when the limit is 0), in key order.
    pub kvs: Vec<KeyValue>,
    /// True when more live keys matched than were returned.
    pub more: bool,
    /// How many live keys matched in total.
    pub count: u64,
}

/// Gauges for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Live sessions.
    pub sessions: u64,
    /// Locks that currently have a holder.
    pub locks_held: u64,
    /// Sessions waiting in any lock queue.
    pub waiters: u64,
    /// Live (not deleted) keys.
    pub keys: u64,
}

/// Why a snapshot could not be produced or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is empty")]
    Empty,
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u8),
    #[error("snapshot encoding failed: {0}")]
    Encode(String),
    #[error("snapshot is corrupt or truncated: {0}")]
    Decode(String),
    #[error("snapshot has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

// openraft logs entries with Display; keep it short (no values).
impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match &self.op {
            Op::Tick => "tick",
            Op::OpenSession { .. } => "open-session",
            Op::KeepAlive { .. } => "keep-alive",
            Op::KeepAlives { .. } => "keep-alives",
            Op::CloseSession { .. } => "close-session",
            Op::Acquire { .. } => "acquire",
            Op::Release { .. } => "release",
            Op::CancelWait { .. } => "cancel-wait",
            Op::Put(_) => "put",
            Op::Delete(_) => "delete",
            Op::Txn(_) => "txn",
            Op::SetRetention { .. } => "set-retention",
        };
        write!(f, "{name}@{}", self.leader_ts_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte fields are encoded with `serde_bytes`; the bytes must be what
    /// the plain `Vec<u8>` encoding wrote before (logs, snapshots and peers
    /// of earlier builds), both ways. A postcard struct is its fields in
    /// order, so a tuple of plain fields is the old encoding.
    #[test]
    fn byte_fields_keep_the_plain_vec_encoding() {
        let put = PutOp {
            key: b"config/a".to_vec(),
            value: (0..=255).collect(),
            session_id: 300,
            prev_kv: true,
            guard: Some(FencingGuard {
                lock: "l".into(),
                token: 7,
            }),
        };
        let plain = (
            put.key.clone(),
            put.value.clone(),
            put.session_id,
            put.prev_kv,
            put.guard.clone(),
        );
        let old = postcard::to_stdvec(&plain).expect("encode plain");
        assert_eq!(postcard::to_stdvec(&put).expect("encode"), old);
        assert_eq!(postcard::from_bytes::<PutOp>(&old).expect("decode"), put);

        let cmp = Compare {
            key: vec![],
            target: CompareTarget::Value,
            result: CompareResult::Equal,
            value: vec![0; 200],
            number: 1,
        };
        let plain = (
            cmp.key.clone(),
            cmp.target,
            cmp.result,
            cmp.value.clone(),
            cmp.number,
        );
        let old = postcard::to_stdvec(&plain).expect("encode plain");
        assert_eq!(postcard::to_stdvec(&cmp).expect("encode"), old);
        assert_eq!(postcard::from_bytes::<Compare>(&old).expect("decode"), cmp);

        for value in [None, Some(vec![]), Some(vec![9; 300])] {
            let e = crate::kv::Entry {
                mod_revision: 5,
                create_revision: 4,
                version: 2,
                session_id: 0,
                value: value.as_deref().map(std::sync::Arc::from),
            };
            let old = postcard::to_stdvec(&(5u64, 4u64, 2u64, 0u64, value)).expect("encode plain");
            assert_eq!(postcard::to_stdvec(&e).expect("encode"), old);
            assert_eq!(
                postcard::from_bytes::<crate::kv::Entry>(&old).expect("decode"),
                e
            );
        }
    }

    /// Logs and peers of earlier builds hold these variants at these
    /// positions (postcard writes the position first); a new variant that
    /// moved them would make every stored entry decode as another command.
    #[test]
    fn command_and_reply_variants_keep_their_positions() {
        let tag = |op: Op| postcard::to_stdvec(&op).expect("encode")[0];
        assert_eq!(tag(Op::Tick), 0);
        assert_eq!(tag(Op::KeepAlive { session_id: 1 }), 2);
        assert_eq!(tag(Op::SetRetention { max_versions: 1 }), 10);
        assert_eq!(
            tag(Op::KeepAlives {
                session_ids: vec![]
            }),
            11
        );
        let tag = |r: Reply| postcard::to_stdvec(&r).expect("encode")[0];
        assert_eq!(tag(Reply::RetentionSet), 12);
        assert_eq!(tag(Reply::KeptAliveMany { renewed: vec![] }), 13);
    }
}
