//! Plain result types returned by the SDK, decoupled from the generated protobuf structs.

use aegis_proto::v1 as pb;
use serde::Serialize;

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    #[serde(serialize_with = "ser_bytes")]
    pub key: Vec<u8>,
    #[serde(serialize_with = "ser_bytes")]
    pub value: Vec<u8>,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    /// Session the key is bound to (0 = none).
    pub session_id: u64,
}

impl KeyValue {
    pub fn key_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.key)
    }
    pub fn value_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }
}

/// Keys and values are bytes; JSON output shows them as text when they are UTF-8.
fn ser_bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(v))
}

impl From<pb::KeyValue> for KeyValue {
    fn from(kv: pb::KeyValue) -> Self {
        Self {
            key: kv.key,
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            session_id: kv.session_id,
        }
    }
}

fn revision(h: &Option<pb::ResponseHeader>) -> u64 {
    h.as_ref().map(|h| h.revision).unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PutResult {
    pub revision: u64,
    pub prev_kv: Option<KeyValue>,
}

impl From<pb::PutResponse> for PutResult {
    fn from(r: pb::PutResponse) -> Self {
        Self {
            revision: revision(&r.header),
            prev_kv: r.prev_kv.map(Into::into),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetResult {
    /// Revision the read was served at.
    pub revision: u64,
    pub kv: Option<KeyValue>,
}

impl From<pb::GetResponse> for GetResult {
    fn from(r: pb::GetResponse) -> Self {
        Self {
            revision: revision(&r.header),
            kv: r.kv.map(Into::into),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RangeResult {
    pub revision: u64,
    pub kvs: Vec<KeyValue>,
    pub more: bool,
    pub count: u64,
}

impl From<pb::RangeResponse> for RangeResult {
    fn from(r: pb::RangeResponse) -> Self {
        Self {
            revision: revision(&r.header),
            kvs: r.kvs.into_iter().map(Into::into).collect(),
            more: r.more,
            count: r.count,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteResult {
    pub revision: u64,
    pub deleted: u64,
    pub prev_kvs: Vec<KeyValue>,
}

impl From<pb::DeleteResponse> for DeleteResult {
    fn from(r: pb::DeleteResponse) -> Self {
        Self {
            revision: revision(&r.header),
            deleted: r.deleted,
            prev_kvs: r.prev_kvs.into_iter().map(Into::into).collect(),
        }
    }
}

/// The outcome of one operation inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TxnOpResult {
    Put(PutResult),
    Delete(DeleteResult),
    Range(RangeResult),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxnResult {
    pub revision: u64,
    pub succeeded: bool,
    pub responses: Vec<TxnOpResult>,
}

impl From<pb::TxnResponse> for TxnResult {
    fn from(r: pb::TxnResponse) -> Self {
        use pb::txn_op_response::Op;
        Self {
            revision: revision(&r.header),
            succeeded: r.succeeded,
            responses: r
                .responses
                .into_iter()
                .filter_map(|o| o.op)
                .map(|op| match op {
                    Op::Put(p) => TxnOpResult::Put(p.into()),
                    Op::Delete(d) => TxnOpResult::Delete(d.into()),
                    Op::Range(g) => TxnOpResult::Range(g.into()),
                })
                .collect(),
        }
    }
}

/// A session as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub session_id: u64,
    pub ttl_ms: u64,
    /// Replicated time (ms) at which the session expires unless kept alive.
    pub deadline_ms: u64,
    pub locks: Vec<String>,
    #[serde(serialize_with = "ser_keys")]
    pub keys: Vec<Vec<u8>>,
}

fn ser_keys<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|k| String::from_utf8_lossy(k)))
}

impl From<pb::SessionInfo> for SessionInfo {
    fn from(s: pb::SessionInfo) -> Self {
        Self {
            session_id: s.session_id,
            ttl_ms: s.ttl_ms,
            deadline_ms: s.deadline_ms,
            locks: s.locks,
            keys: s.keys,
        }
    }
}

/// The answer to an acquire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AcquireResult {
    pub revision: u64,
    /// False only for a non-waiting acquire of a lock another session holds.
    pub acquired: bool,
    /// The fencing token: the log index of the command that granted the lock.
    pub token: u64,
    pub holder_session: u64,
}

impl From<pb::AcquireResponse> for AcquireResult {
    fn from(r: pb::AcquireResponse) -> Self {
        Self {
            revision: revision(&r.header),
            acquired: r.acquired,
            token: r.token,
            holder_session: r.holder_session,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReleaseResult {
    pub revision: u64,
    /// The waiter granted the lock by this release (0 = none).
    pub next_session: u64,
    pub next_token: u64,
}

impl From<pb::ReleaseResponse> for ReleaseResult {
    fn from(r: pb::ReleaseResponse) -> Self {
        Self {
            revision: revision(&r.header),
            next_session: r.next_session,
            next_token: r.next_token,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    pub name: String,
    /// 0 when free.
    pub holder_session: u64,
    /// Token of the holder; when free, the token of the last grant.
    pub token: u64,
    pub waiters: Vec<u64>,
}

impl From<pb::LockInfo> for LockInfo {
    fn from(l: pb::LockInfo) -> Self {
        Self {
            name: l.name,
            holder_session: l.holder_session,
            token: l.token,
            waiters: l.waiters,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: u64,
    pub peer_addr: String,
    pub client_addr: String,
    pub voter: bool,
    /// The incarnation of the member's data directory the group admitted; a
    /// node whose own `NodeStatus::incarnation` differs lost its data and
    /// must be removed and re-added.
    pub incarnation: u64,
}

impl From<pb::Member> for Member {
    fn from(m: pb::Member) -> Self {
        Self {
            id: m.id,
            peer_addr: m.peer_addr,
            client_addr: m.client_addr,
            voter: m.voter,
            incarnation: m.incarnation,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowerLag {
    pub follower_id: u64,
    pub lag: u64,
}

/// One node's view of the cluster (Admin.Status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub node_id: u64,
    pub term: u64,
    /// 0 when unknown.
    pub leader_id: u64,
    pub role: String,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub lags: Vec<FollowerLag>,
    pub members: Vec<Member>,
    pub config_hash: String,
    pub state_digest: String,
    pub digest_index: u64,
    pub snapshot_index: u64,
    pub version: String,
    /// This node's own incarnation (random, fixed for its data directory).
    pub incarnation: u64,
}

impl From<pb::StatusResponse> for NodeStatus {
    fn from(s: pb::StatusResponse) -> Self {
        Self {
            node_id: s.node_id,
            term: s.term,
            leader_id: s.leader_id,
            role: s.role,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            last_log_index: s.last_log_index,
            lags: s
                .lags
                .into_iter()
                .map(|l| FollowerLag {
                    follower_id: l.follower_id,
                    lag: l.lag,
                })
                .collect(),
            members: s.members.into_iter().map(Into::into).collect(),
            config_hash: s.config_hash,
            state_digest: s.state_digest,
            digest_index: s.digest_index,
            snapshot_index: s.snapshot_index,
            version: s.version,
            incarnation: s.incarnation,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipResult {
    pub revision: u64,
    pub members: Vec<Member>,
}

impl From<pb::MembershipResponse> for MembershipResult {
    fn from(r: pb::MembershipResponse) -> Self {
        Self {
            revision: revision(&r.header),
            members: r.members.into_iter().map(Into::into).collect(),
        }
    }
}
