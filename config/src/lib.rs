//! AEGIS cluster config: schema, defaults and the safety envelope.
//!
//! One YAML document with kebab-case keys and three groups, `raft`, `lease` and `kv`. The node
//! refuses to start on a config that fails here, the operator refuses to rotate it in and the
//! agent refuses to propose it; all three call the same code and see the same rule ids.
//!
//! Missing groups and fields take their defaults; an empty group (`raft:`) or an empty document
//! means defaults too. Every problem is reported in one pass: schema problems (bad YAML, unknown
//! keys, wrong types) and envelope rules on the fields that could be read, together.
//!
//! # Fields and absolute bounds
//!
//! Each field has a `bounds.<group>.<field>` rule for the inclusive range below.
//!
//! | Field | Default | Bounds | Meaning |
//! |---|---|---|---|
//! | `raft.heartbeat-interval-ms` | 50 | 10..=5000 | leader heartbeat period |
//! | `raft.election-timeout-min-ms` | 250 | 30..=60000 | lower end of the randomised election timeout |
//! | `raft.election-timeout-max-ms` | 500 | 30..=60000 | upper end of the randomised election timeout |
//! | `raft.rpc-timeout-ms` | 1000 | 1..=60000 | timeout of one replication RPC |
//! | `raft.snapshot-logs-since-last` | 100000 | 100..=10000000 | build a snapshot after this many applied entries, plus 0-20 % by node id |
//! | `raft.max-logs-kept-after-snapshot` | 1000 | 0..=10000000 | log entries kept after a snapshot for slow followers |
//! | `raft.max-payload-entries` | 256 | 1..=65536 | entries per AppendEntries request |
//! | `raft.max-batch-proposals` | 256 | 1..=65536 | client proposals batched into one log append |
//! | `raft.spare-batch-ms` | 10 | 0..=50 | least time between two appends to a follower outside the fastest quorum; up to 6× that when the leader is loaded (0: every write to every follower at once) |
//! | `lease.tick-interval-ms` | 500 | 10..=60000 | period of the lease expiry check |
//! | `lease.min-ttl-ms` | 3000 | 100..=86400000 | shortest lease TTL a client may request |
//! | `lease.skew-grace-ms` | 500 | 0..=60000 | grace before expiring a lease, covering clock-rate skew |
//! | `kv.max-versions` | 100 | 1..=100000 | versions of one key kept in history |
//! | `kv.max-value-bytes` | 1048576 | 1..=16777216 | largest value (16 MiB cap) |
//! | `kv.max-request-bytes` | 1572864 | 1..=33554432 | largest client request (32 MiB cap) |
//! | `kv.max-txn-ops` | 128 | 1..=10000 | operations in one transaction |
//!
//! # Rules
//!
//! | Rule id | Holds when |
//! |---|---|
//! | `schema.yaml` | the text is one valid YAML document whose top level is a mapping |
//! | `schema.unknown-key` | every key is a known group or field (one violation per unknown key) |
//! | `schema.type` | each group is a mapping and each field an integer (one violation per field) |
//! | `raft.election-min-ge-3x-heartbeat` | `election-timeout-min-ms >= 3 * heartbeat-interval-ms` |
//! | `raft.election-min-lt-max` | `0 < election-timeout-min-ms < election-timeout-max-ms` |
//! | `raft.rpc-timeout-positive` | `rpc-timeout-ms > 0` |
//! | `lease.tick-le-third-min-ttl` | `3 * tick-interval-ms <= min-ttl-ms` |
//! | `lease.skew-grace-nonneg` | `skew-grace-ms >= 0` |
//! | `kv.max-versions-ge-1` | `max-versions >= 1` |
//! | `kv.request-ge-value` | `max-request-bytes >= max-value-bytes` |
//! | `bounds.<group>.<field>` | the field is within its bounds above |
//!
//! A value can break both a specific rule and its field's bound (for example `rpc-timeout-ms:
//! 0` reports `raft.rpc-timeout-positive` and `bounds.raft.rpc-timeout-ms`); both are reported.
//! An integer above i64::MAX (up to u64::MAX) is reported under the field's bounds rule; a
//! float, string, bool, null, list or mapping where an integer belongs is `schema.type`. A rule
//! that depends on a field whose value could not be read is skipped, since its inputs are
//! unknown; rules on the other fields still run. [`RULES`] lists every id with its description.

mod canonical;
mod envelope;
mod error;
mod model;
mod rules;
mod schema;

use std::path::Path;

pub use error::{ConfigError, Violation};
pub use model::{ClusterConfig, KvConfig, LeaseConfig, RaftConfig};
pub use rules::{FieldSpec, RuleDoc, FIELDS, GROUPS, RULES};

/// Rule id constants, for callers that match on a specific rule.
pub mod rule_ids {
    pub use crate::rules::{
        KV_MAX_VERSIONS_GE_1, KV_REQUEST_GE_VALUE, LEASE_SKEW_GRACE_NONNEG,
        LEASE_TICK_LE_THIRD_MIN_TTL, RAFT_ELECTION_MIN_GE_3X_HEARTBEAT, RAFT_ELECTION_MIN_LT_MAX,
        RAFT_RPC_TIMEOUT_POSITIVE, SCHEMA_TYPE, SCHEMA_UNKNOWN_KEY, SCHEMA_YAML,
    };
}

impl ClusterConfig {
    /// Parses and checks in one pass, returning every violation (schema and envelope) at once.
    pub fn from_yaml(text: &str) -> Result<ClusterConfig, ConfigError> {
        match serde_norway::from_str::<serde_norway::Value>(text) {
            Ok(doc) => validate_value(&doc),
            Err(e) => Err(ConfigError::Rejected(vec![Violation::new(
                rules::SCHEMA_YAML,
                "<root>",
                format!("not a single valid YAML document: {e}"),
            )])),
        }
    }

    /// Reads `path` and behaves as [`ClusterConfig::from_yaml`].
    pub fn from_file(path: &Path) -> Result<ClusterConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ClusterConfig::from_yaml(&text)
    }

    /// Canonical YAML: every group and field, kebab-case, in the fixed order of [`FIELDS`].
    pub fn to_yaml(&self) -> String {
        canonical::to_yaml(self)
    }

    /// Hex SHA-256 of [`ClusterConfig::to_yaml`]: equal configs hash equal whatever their source
    /// text looked like.
    pub fn hash(&self) -> String {
        canonical::hash(self)
    }

    /// First 12 hex characters of [`ClusterConfig::hash`], for labels and log lines.
    pub fn short_hash(&self) -> String {
        let mut h = self.hash();
        h.truncate(12);
        h
    }

    /// The safety envelope only; empty means the config is safe to run.
    pub fn check(&self) -> Vec<Violation> {
        envelope::check(self, &[])
    }

    /// [`ClusterConfig::check`] as a `Result`, for callers holding a typed config.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let violations = self.check();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Rejected(violations))
        }
    }
}

/// Checks an already-parsed YAML value (for callers that deep-merged a patch into a base config)
/// exactly as [`ClusterConfig::from_yaml`] would check its text.
pub fn validate_value(v: &serde_norway::Value) -> Result<ClusterConfig, ConfigError> {
    let (cfg, violations) = schema::read(v);
    if violations.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError::Rejected(violations))
    }
}

/// The description of a rule id, if it is one this crate reports.
pub fn rule_doc(id: &str) -> Option<&'static RuleDoc> {
    RULES.iter().find(|r| r.id == id)
}
