//! The single table of fields, bounds and rule ids. Parsing, bounds checks, canonical output and
//! [`RULES`] are all driven from it, so a field cannot be added in one place and forgotten in another.

use crate::model::ClusterConfig;

/// Documentation for one rule id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDoc {
    pub id: &'static str,
    pub description: &'static str,
}

/// One numeric field: where it lives, its documented absolute bounds and its accessors.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Group key, e.g. `raft`.
    pub group: &'static str,
    /// Field key inside the group, e.g. `heartbeat-interval-ms`.
    pub key: &'static str,
    /// `group.key`, the path used in violations.
    pub path: &'static str,
    /// `bounds.group.key`.
    pub bounds_rule: &'static str,
    /// Inclusive lower bound.
    pub min: i64,
    /// Inclusive upper bound.
    pub max: i64,
    /// What the field controls.
    pub doc: &'static str,
    pub get: fn(&ClusterConfig) -> i64,
    pub set: fn(&mut ClusterConfig, i64),
}

impl FieldSpec {
    /// Looks a field up by its path (`group.key`).
    pub fn by_path(path: &str) -> Option<&'static FieldSpec> {
        FIELDS.iter().find(|f| f.path == path)
    }
}

/// Groups in canonical order.
pub const GROUPS: &[&str] = &["raft", "lease", "kv"];

pub const SCHEMA_YAML: &str = "schema.yaml";
pub const SCHEMA_UNKNOWN_KEY: &str = "schema.unknown-key";
pub const SCHEMA_TYPE: &str = "schema.type";
pub const RAFT_ELECTION_MIN_GE_3X_HEARTBEAT: &str = "raft.election-min-ge-3x-heartbeat";
pub const RAFT_ELECTION_MIN_LT_MAX: &str = "raft.election-min-lt-max";
pub const RAFT_RPC_TIMEOUT_POSITIVE: &str = "raft.rpc-timeout-positive";
pub const LEASE_TICK_LE_THIRD_MIN_TTL: &str = "lease.tick-le-third-min-ttl";
pub const LEASE_SKEW_GRACE_NONNEG: &str = "lease.skew-grace-nonneg";
pub const KV_MAX_VERSIONS_GE_1: &str = "kv.max-versions-ge-1";
pub const KV_REQUEST_GE_VALUE: &str = "kv.request-ge-value";

macro_rules! field_table {
    ($( $g:ident . $f:ident = $group:literal . $key:literal : $min:literal ..= $max:literal , $doc:literal ; )*) => {
        /// Every numeric field in canonical order (group order, then field order).
        pub const FIELDS: &[FieldSpec] = &[$(
            FieldSpec {
                group: $group,
                key: $key,
                path: concat!($group, ".", $key),
                bounds_rule: concat!("bounds.", $group, ".", $key),
                min: $min,
                max: $max,
                doc: $doc,
                get: |c| c.$g.$f,
                set: |c, v| c.$g.$f = v,
            },
        )*];

        /// Every rule id this crate can report, with what it means.
        pub const RULES: &[RuleDoc] = &[
            RuleDoc { id: SCHEMA_YAML, description: "the text must be one valid YAML document whose top level is a mapping of groups (an empty document means all defaults)" },
            RuleDoc { id: SCHEMA_UNKNOWN_KEY, description: "every key, at any level, must be a known group or field; one violation per unknown key" },
            RuleDoc { id: SCHEMA_TYPE, description: "a group must be a mapping and a field must be an integer (not a string, float, bool, null, list or mapping); one violation per field" },
            RuleDoc { id: RAFT_ELECTION_MIN_GE_3X_HEARTBEAT, description: "raft.election-timeout-min-ms >= 3 * raft.heartbeat-interval-ms, so a follower sees several heartbeats before it may start an election" },
            RuleDoc { id: RAFT_ELECTION_MIN_LT_MAX, description: "0 < raft.election-timeout-min-ms < raft.election-timeout-max-ms, so randomised election timeouts have a non-empty range" },
            RuleDoc { id: RAFT_RPC_TIMEOUT_POSITIVE, description: "raft.rpc-timeout-ms > 0" },
            RuleDoc { id: LEASE_TICK_LE_THIRD_MIN_TTL, description: "3 * lease.tick-interval-ms <= lease.min-ttl-ms, so the shortest lease is checked at least three times before it expires" },
            RuleDoc { id: LEASE_SKEW_GRACE_NONNEG, description: "lease.skew-grace-ms >= 0" },
            RuleDoc { id: KV_MAX_VERSIONS_GE_1, description: "kv.max-versions >= 1, so the current version of a key is always kept" },
            RuleDoc { id: KV_REQUEST_GE_VALUE, description: "kv.max-request-bytes >= kv.max-value-bytes, so a value of the maximum size fits in a request" },
            $(
                RuleDoc {
                    id: concat!("bounds.", $group, ".", $key),
                    description: concat!($group, ".", $key, " must be within ", $min, "..=", $max, " (", $doc, ")"),
                },
            )*
        ];
    };
}

// Bounds are deliberately wide: they reject values that are nonsense or dangerous for any
// deployment (zero-length timers, unbounded memory), not values that are merely unusual.
field_table! {
    raft.heartbeat_interval_ms = "raft"."heartbeat-interval-ms": 10..=5000, "leader heartbeat period in milliseconds";
    raft.election_timeout_min_ms = "raft"."election-timeout-min-ms": 30..=60000, "lower end of the randomised election timeout in milliseconds";
    raft.election_timeout_max_ms = "raft"."election-timeout-max-ms": 30..=60000, "upper end of the randomised election timeout in milliseconds";
    raft.rpc_timeout_ms = "raft"."rpc-timeout-ms": 1..=60000, "timeout of one replication RPC in milliseconds";
    raft.snapshot_logs_since_last = "raft"."snapshot-logs-since-last": 100..=10000000, "build a snapshot after this many applied entries, plus 0-20 % by node id";
    raft.max_logs_kept_after_snapshot = "raft"."max-logs-kept-after-snapshot": 0..=10000000, "log entries kept after a snapshot so slow followers can catch up without one";
    raft.max_payload_entries = "raft"."max-payload-entries": 1..=65536, "entries per AppendEntries request";
    raft.max_batch_proposals = "raft"."max-batch-proposals": 1..=65536, "client proposals batched into one log append";
    raft.spare_batch_ms = "raft"."spare-batch-ms": 0..=50, "least time between two appends to a follower outside the fastest quorum, in milliseconds; up to 6x that when the leader is loaded (0: every write at once)";
    lease.tick_interval_ms = "lease"."tick-interval-ms": 10..=60000, "period of the lease expiry check in milliseconds";
    lease.min_ttl_ms = "lease"."min-ttl-ms": 100..=86400000, "shortest lease TTL a client may request, in milliseconds";
    lease.skew_grace_ms = "lease"."skew-grace-ms": 0..=60000, "grace added before expiring a lease, covering clock-rate skew, in milliseconds";
    kv.max_versions = "kv"."max-versions": 1..=100000, "versions of one key kept in history";
    kv.max_value_bytes = "kv"."max-value-bytes": 1..=16777216, "largest value in bytes (16 MiB cap)";
    kv.max_request_bytes = "kv"."max-request-bytes": 1..=33554432, "largest client request in bytes (32 MiB cap)";
    kv.max_txn_ops = "kv"."max-txn-ops": 1..=10000, "operations in one transaction";
}
