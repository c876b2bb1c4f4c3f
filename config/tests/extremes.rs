// The agent's red-team feeds the extremes of i64 into every field: nothing may panic or overflow,
// and each out-of-range value must be blocked by its field's bounds rule.
mod common;

use aegis_config::{ClusterConfig, FIELDS};
use common::rejected_ids;

const EXTREMES: [i64; 7] = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];

#[test]
fn each_field_at_each_extreme_is_judged_without_panic() {
    for f in FIELDS {
        for v in EXTREMES {
            let mut cfg = ClusterConfig::default();
            (f.set)(&mut cfg, v);
            let ids: Vec<_> = cfg.check().iter().map(|x| x.rule).collect();
            let out_of_bounds = v < f.min || v > f.max;
            assert_eq!(
                ids.contains(&f.bounds_rule),
                out_of_bounds,
                "{} = {v}: {ids:?}",
                f.path
            );
            if out_of_bounds {
                assert!(cfg.validate().is_err());
            }

            let text = format!("{}:\n  {}: {v}\n", f.group, f.key);
            match ClusterConfig::from_yaml(&text) {
                Ok(parsed) => {
                    assert!(!out_of_bounds, "{text} accepted");
                    assert_eq!(parsed, cfg);
                }
                Err(e) => assert_eq!(
                    e.rule_ids().contains(&f.bounds_rule),
                    out_of_bounds,
                    "{text}: {e}"
                ),
            }
        }
    }
}

#[test]
fn all_fields_at_the_same_extreme_together() {
    for v in EXTREMES {
        let mut cfg = ClusterConfig::default();
        for f in FIELDS {
            (f.set)(&mut cfg, v);
        }
        let ids: Vec<_> = cfg.check().iter().map(|x| x.rule).collect();
        for f in FIELDS {
            assert_eq!(
                ids.contains(&f.bounds_rule),
                v < f.min || v > f.max,
                "{} = {v}",
                f.path
            );
        }
        // Equal min and max can never be a valid election range.
        assert!(ids.contains(&"raft.election-min-lt-max"), "{v}: {ids:?}");
    }
}

#[test]
fn relations_at_opposite_extremes_do_not_overflow() {
    let mut cfg = ClusterConfig::default();
    cfg.raft.heartbeat_interval_ms = i64::MAX;
    cfg.raft.election_timeout_min_ms = i64::MIN;
    cfg.raft.election_timeout_max_ms = i64::MAX;
    cfg.lease.tick_interval_ms = i64::MAX;
    cfg.lease.min_ttl_ms = i64::MIN;
    cfg.kv.max_value_bytes = i64::MAX;
    cfg.kv.max_request_bytes = i64::MIN;
    let ids: Vec<_> = cfg.check().iter().map(|x| x.rule).collect();
    for id in [
        "raft.election-min-ge-3x-heartbeat",
        "raft.election-min-lt-max",
        "lease.tick-le-third-min-ttl",
        "kv.request-ge-value",
    ] {
        assert!(ids.contains(&id), "{id}: {ids:?}");
    }

    // The other way round the relations hold even though every bound is broken.
    let mut cfg = ClusterConfig::default();
    cfg.raft.heartbeat_interval_ms = i64::MIN;
    cfg.raft.election_timeout_min_ms = i64::MAX - 1;
    cfg.raft.election_timeout_max_ms = i64::MAX;
    cfg.lease.tick_interval_ms = i64::MIN;
    cfg.lease.min_ttl_ms = i64::MAX;
    cfg.kv.max_value_bytes = i64::MIN;
    cfg.kv.max_request_bytes = i64::MAX;
    let ids: Vec<_> = cfg.check().iter().map(|x| x.rule).collect();
    for id in [
        "raft.election-min-ge-3x-heartbeat",
        "raft.election-min-lt-max",
        "lease.tick-le-third-min-ttl",
        "kv.request-ge-value",
    ] {
        assert!(!ids.contains(&id), "{id}: {ids:?}");
    }
}

#[test]
fn integers_beyond_i64_are_bounds_violations() {
    for f in FIELDS {
        let text = format!("{}: {{{}: {}}}", f.group, f.key, u64::MAX);
        assert_eq!(rejected_ids(&text), vec![f.bounds_rule], "{text}");
        let text = format!("{}: {{{}: {}}}", f.group, f.key, i64::MAX as u64 + 1);
        assert_eq!(rejected_ids(&text), vec![f.bounds_rule], "{text}");
    }
}

#[test]
fn one_past_i64_min_is_refused_not_wrapped() {
    let ids = rejected_ids("raft: {heartbeat-interval-ms: -9223372036854775809}");
    assert_eq!(ids.len(), 1);
    assert!(
        ids[0] == "schema.yaml" || ids[0] == "schema.type",
        "{ids:?}"
    );
}
