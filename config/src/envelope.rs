//! The safety envelope: absolute bounds on every field plus the relations between fields.
//! All arithmetic is done in i128 so that any pair of i64 inputs is safe.

use crate::error::Violation;
use crate::model::ClusterConfig;
use crate::rules::*;

/// Checks `cfg`, skipping every rule that depends on a path in `unreadable` (fields whose YAML
/// value had the wrong type and therefore hold a default that says nothing about the input).
pub(crate) fn check(cfg: &ClusterConfig, unreadable: &[&str]) -> Vec<Violation> {
    let ok = |path: &str| !unreadable.contains(&path);
    let mut out = Vec::new();

    for f in FIELDS {
        if !ok(f.path) {
            continue;
        }
        let v = (f.get)(cfg);
        if v < f.min || v > f.max {
            out.push(Violation::new(
                f.bounds_rule,
                f.path,
                format!("{v} is outside the documented bounds {}..={}", f.min, f.max),
            ));
        }
    }

    let r = &cfg.raft;
    const HB: &str = "raft.heartbeat-interval-ms";
    const EMIN: &str = "raft.election-timeout-min-ms";
    const EMAX: &str = "raft.election-timeout-max-ms";
    const RPC: &str = "raft.rpc-timeout-ms";

    if ok(HB) && ok(EMIN) {
        let needed = 3 * i128::from(r.heartbeat_interval_ms);
        if i128::from(r.election_timeout_min_ms) < needed {
            out.push(Violation::new(
                RAFT_ELECTION_MIN_GE_3X_HEARTBEAT,
                EMIN,
                format!(
                    "{} must be >= 3 * heartbeat-interval-ms ({}) = {needed}, or followers start elections between heartbeats",
                    r.election_timeout_min_ms, r.heartbeat_interval_ms
                ),
            ));
        }
    }

    if ok(EMIN) && r.election_timeout_min_ms <= 0 {
        out.push(Violation::new(
            RAFT_ELECTION_MIN_LT_MAX,
            EMIN,
            format!("{} must be > 0", r.election_timeout_min_ms),
        ));
    } else if ok(EMIN) && ok(EMAX) && r.election_timeout_min_ms >= r.election_timeout_max_ms {
        out.push(Violation::new(
            RAFT_ELECTION_MIN_LT_MAX,
            EMIN,
            format!(
                "{} must be < election-timeout-max-ms ({}), or election timeouts are not randomised",
                r.election_timeout_min_ms, r.election_timeout_max_ms
            ),
        ));
    }

    if ok(RPC) && r.rpc_timeout_ms <= 0 {
        out.push(Violation::new(
            RAFT_RPC_TIMEOUT_POSITIVE,
            RPC,
            format!("{} must be > 0", r.rpc_timeout_ms),
        ));
    }

    let l = &cfg.lease;
    const TICK: &str = "lease.tick-interval-ms";
    const TTL: &str = "lease.min-ttl-ms";
    const SKEW: &str = "lease.skew-grace-ms";

    if ok(TICK) && ok(TTL) && 3 * i128::from(l.tick_interval_ms) > i128::from(l.min_ttl_ms) {
        out.push(Violation::new(
            LEASE_TICK_LE_THIRD_MIN_TTL,
            TICK,
            format!(
                "{} must be <= min-ttl-ms / 3 ({} / 3), or the shortest lease is checked fewer than three times before it expires",
                l.tick_interval_ms, l.min_ttl_ms
            ),
        ));
    }

    if ok(SKEW) && l.skew_grace_ms < 0 {
        out.push(Violation::new(
            LEASE_SKEW_GRACE_NONNEG,
            SKEW,
            format!("{} must be >= 0, or leases expire early", l.skew_grace_ms),
        ));
    }

    let k = &cfg.kv;
    const VERSIONS: &str = "kv.max-versions";
    const VALUE: &str = "kv.max-value-bytes";
    const REQUEST: &str = "kv.max-request-bytes";

    if ok(VERSIONS) && k.max_versions < 1 {
        out.push(Violation::new(
            KV_MAX_VERSIONS_GE_1,
            VERSIONS,
            format!(
                "{} must be >= 1, or the current version is not kept",
                k.max_versions
            ),
        ));
    }

    if ok(VALUE) && ok(REQUEST) && k.max_request_bytes < k.max_value_bytes {
        out.push(Violation::new(
            KV_REQUEST_GE_VALUE,
            REQUEST,
            format!(
                "{} must be >= max-value-bytes ({}), or a value of the maximum size cannot be written",
                k.max_request_bytes, k.max_value_bytes
            ),
        ));
    }

    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_inputs_silence_exactly_the_rules_that_read_them() {
        let mut cfg = ClusterConfig::default();
        cfg.kv.max_request_bytes = 1;
        cfg.lease.skew_grace_ms = -1;
        let all: Vec<_> = check(&cfg, &[]).iter().map(|v| v.rule).collect();
        assert!(all.contains(&KV_REQUEST_GE_VALUE));
        let some: Vec<_> = check(&cfg, &["kv.max-value-bytes"])
            .iter()
            .map(|v| v.rule)
            .collect();
        assert!(!some.contains(&KV_REQUEST_GE_VALUE));
        assert!(some.contains(&LEASE_SKEW_GRACE_NONNEG));
        let none: Vec<_> = check(&cfg, &["lease.skew-grace-ms"])
            .iter()
            .map(|v| v.rule)
            .collect();
        assert!(!none.contains(&LEASE_SKEW_GRACE_NONNEG));
        assert!(!none.contains(&"bounds.lease.skew-grace-ms"));
    }
}
