//! The typed config. Every numeric field is `i64` on purpose: a negative or zero value must
//! surface as an envelope violation with a rule id, not as an opaque parse error.

use serde::{Deserialize, Serialize};

/// The whole cluster config: one YAML document with the groups `raft`, `lease` and `kv`.
/// A missing group takes its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterConfig {
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub lease: LeaseConfig,
    #[serde(default)]
    pub kv: KvConfig,
}

/// Replication timing, snapshotting and batching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RaftConfig {
    pub heartbeat_interval_ms: i64,
    pub election_timeout_min_ms: i64,
    pub election_timeout_max_ms: i64,
    pub rpc_timeout_ms: i64,
    /// Build a snapshot after this many applied entries.
    pub snapshot_logs_since_last: i64,
    pub max_logs_kept_after_snapshot: i64,
    /// Entries per AppendEntries request.
    pub max_payload_entries: i64,
    /// Client proposals batched into one log append.
    pub max_batch_proposals: i64,
    /// Least time between two appends to a follower outside the fastest
    /// quorum; 0 replicates every write to every follower at once.
    pub spare_batch_ms: i64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 250,
            election_timeout_max_ms: 500,
            rpc_timeout_ms: 1000,
            snapshot_logs_since_last: 100_000,
            max_logs_kept_after_snapshot: 1000,
            max_payload_entries: 256,
            max_batch_proposals: 256,
            spare_batch_ms: 10,
        }
    }
}

/// Session (lease) expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LeaseConfig {
    pub tick_interval_ms: i64,
    pub min_ttl_ms: i64,
    pub skew_grace_ms: i64,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            tick_interval_ms: 500,
            min_ttl_ms: 3000,
            skew_grace_ms: 500,
        }
    }
}

/// Versioned KV store limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct KvConfig {
    pub max_versions: i64,
    pub max_value_bytes: i64,
    pub max_request_bytes: i64,
    pub max_txn_ops: i64,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            max_versions: 100,
            max_value_bytes: 1_048_576,
            max_request_bytes: 1_572_864,
            max_txn_ops: 128,
        }
    }
}
