mod common;

use aegis_config::{rule_ids::*, validate_value, ClusterConfig, ConfigError};
use common::{rejected, rejected_ids};

fn paths_of(err: &ConfigError, rule: &str) -> Vec<String> {
    let mut p: Vec<_> = err
        .violations()
        .iter()
        .filter(|v| v.rule == rule)
        .map(|v| v.path.clone())
        .collect();
    p.sort();
    p
}

#[test]
fn unknown_top_level_keys_each_reported_with_path() {
    let err = rejected("raft: {}\nraftt:\n  heartbeat-interval-ms: 50\nextra: 1\n");
    assert_eq!(err.rule_ids(), vec![SCHEMA_UNKNOWN_KEY, SCHEMA_UNKNOWN_KEY]);
    assert_eq!(paths_of(&err, SCHEMA_UNKNOWN_KEY), vec!["extra", "raftt"]);
}

#[test]
fn unknown_nested_keys_each_reported_with_path() {
    let err = rejected(
        "raft:\n  heartbeat-interval: 50\n  heartbeat-interval-ms: 60\nkv:\n  max_versions: 3\n  max-versions: 3\n",
    );
    assert_eq!(
        paths_of(&err, SCHEMA_UNKNOWN_KEY),
        vec!["kv.max_versions", "raft.heartbeat-interval"]
    );
    assert_eq!(err.rule_ids().len(), 2);
}

#[test]
fn non_string_keys_are_unknown_keys() {
    let err = rejected("1: 2\nraft: {true: 3}\n");
    assert_eq!(paths_of(&err, SCHEMA_UNKNOWN_KEY), vec!["1", "raft.true"]);
}

#[test]
fn wrong_types_are_reported_once_per_field() {
    let text = "\
raft:
  heartbeat-interval-ms: \"50\"
  election-timeout-min-ms: 250.5
  election-timeout-max-ms: true
  rpc-timeout-ms: ~
  max-payload-entries: [1, 2]
  max-batch-proposals: {a: 1}
lease:
  tick-interval-ms: !custom 5
";
    let err = rejected(text);
    assert!(err.rule_ids().iter().all(|id| *id == SCHEMA_TYPE), "{err}");
    assert_eq!(
        paths_of(&err, SCHEMA_TYPE),
        vec![
            "lease.tick-interval-ms",
            "raft.election-timeout-max-ms",
            "raft.election-timeout-min-ms",
            "raft.heartbeat-interval-ms",
            "raft.max-batch-proposals",
            "raft.max-payload-entries",
            "raft.rpc-timeout-ms",
        ]
    );
    let msg = err.to_string();
    assert!(msg.contains("got string \"50\""), "{msg}");
    assert!(msg.contains("got float 250.5"), "{msg}");
}

#[test]
fn group_that_is_not_a_mapping_is_a_type_error() {
    let err = rejected("raft: 5\nlease: [1]\n");
    assert_eq!(err.rule_ids(), vec![SCHEMA_TYPE, SCHEMA_TYPE]);
    assert_eq!(paths_of(&err, SCHEMA_TYPE), vec!["lease", "raft"]);
}

#[test]
fn schema_and_envelope_problems_are_reported_in_one_pass() {
    let text = "\
raft:
  heartbeat-interval-ms: fast
  rpc-timeout-ms: -3
  bogus: 1
lease:
  tick-interval-ms: 5000
kv:
  max-versions: 0
";
    let ids = rejected_ids(text);
    let mut expected = vec![
        SCHEMA_TYPE,
        SCHEMA_UNKNOWN_KEY,
        RAFT_RPC_TIMEOUT_POSITIVE,
        "bounds.raft.rpc-timeout-ms",
        LEASE_TICK_LE_THIRD_MIN_TTL,
        KV_MAX_VERSIONS_GE_1,
        "bounds.kv.max-versions",
    ];
    expected.sort();
    assert_eq!(ids, expected);
}

#[test]
fn rules_depending_on_an_unreadable_field_are_skipped_others_still_run() {
    // heartbeat has a type error: the 3x rule cannot be judged, but min < max still can.
    let err = rejected(
        "raft:\n  heartbeat-interval-ms: x\n  election-timeout-min-ms: 700\n  election-timeout-max-ms: 600\n",
    );
    let mut ids = err.rule_ids();
    ids.sort();
    assert_eq!(ids, vec![RAFT_ELECTION_MIN_LT_MAX, SCHEMA_TYPE]);

    // The same numbers with a readable heartbeat of 300 also break the 3x rule.
    let ids = rejected_ids(
        "raft:\n  heartbeat-interval-ms: 300\n  election-timeout-min-ms: 700\n  election-timeout-max-ms: 600\n",
    );
    assert_eq!(
        ids,
        vec![RAFT_ELECTION_MIN_GE_3X_HEARTBEAT, RAFT_ELECTION_MIN_LT_MAX]
    );

    // A non-positive min is judged even when max is unreadable.
    let ids = rejected_ids("raft: {election-timeout-min-ms: 0, election-timeout-max-ms: []}");
    assert!(ids.contains(&RAFT_ELECTION_MIN_LT_MAX), "{ids:?}");
    assert!(ids.contains(&SCHEMA_TYPE), "{ids:?}");
}

#[test]
fn invalid_yaml_multi_document_and_non_mapping_are_schema_yaml() {
    for text in [
        "raft: [unclosed",
        "raft:\n  a: 1\n    b: 2\n",
        "raft: {}\n---\nkv: {}\n",
        "- raft\n- kv\n",
        "just a string",
        "42",
        "raft: {heartbeat-interval-ms: 1, heartbeat-interval-ms: 2}",
        "raft: {heartbeat-interval-ms: 123456789012345678901234567890}",
    ] {
        let err = rejected(text);
        assert_eq!(err.rule_ids(), vec![SCHEMA_YAML], "{text:?}: {err}");
        assert_eq!(err.violations()[0].path, "<root>");
    }
}

#[test]
fn missing_groups_fields_and_empty_groups_take_defaults() {
    let cfg = ClusterConfig::from_yaml("# nothing but a comment\n").unwrap();
    assert_eq!(cfg, ClusterConfig::default());
    let cfg = ClusterConfig::from_yaml("raft:\nlease:\n").unwrap();
    assert_eq!(cfg, ClusterConfig::default());
    let cfg = ClusterConfig::from_yaml("kv:\n  max-txn-ops: 7\n").unwrap();
    let mut expected = ClusterConfig::default();
    expected.kv.max_txn_ops = 7;
    assert_eq!(cfg, expected);
}

#[test]
fn validate_value_checks_a_merged_value_like_text() {
    let mut base: serde_norway::Value =
        serde_norway::from_str(&ClusterConfig::default().to_yaml()).unwrap();
    let patch: serde_norway::Value =
        serde_norway::from_str("lease: {skew-grace-ms: -1, typo: 2}").unwrap();
    // A minimal deep merge, as a caller of validate_value would do.
    let (serde_norway::Value::Mapping(b), serde_norway::Value::Mapping(p)) = (&mut base, &patch)
    else {
        panic!("not mappings")
    };
    for (k, v) in p {
        if let (Some(serde_norway::Value::Mapping(bg)), serde_norway::Value::Mapping(pg)) =
            (b.get_mut(k), v)
        {
            for (fk, fv) in pg {
                bg.insert(fk.clone(), fv.clone());
            }
        }
    }
    let err = validate_value(&base).unwrap_err();
    let mut ids = err.rule_ids();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "bounds.lease.skew-grace-ms",
            LEASE_SKEW_GRACE_NONNEG,
            SCHEMA_UNKNOWN_KEY
        ]
    );
    assert_eq!(paths_of(&err, SCHEMA_UNKNOWN_KEY), vec!["lease.typo"]);

    let ok: serde_norway::Value = serde_norway::from_str("kv: {max-versions: 5}").unwrap();
    assert_eq!(validate_value(&ok).unwrap().kv.max_versions, 5);
}

#[test]
fn hostile_strings_are_clipped_in_messages() {
    let long = "x".repeat(10_000);
    let err = rejected(&format!(
        "raft: {{heartbeat-interval-ms: {long}}}\n{long}: 1\n"
    ));
    assert!(err.to_string().len() < 1_000, "{}", err.to_string().len());
}
