//! Adversarial patches: each one must be blocked by the safety envelope with the right rule id,
//! appended to the audit log, and must not cause a single request to GitHub.

use aegis_agent::anomaly::{Anomaly, AnomalyKind, Evidence, Severity, SuggestedAction};
use aegis_agent::github::{GitHub, RetryPolicy};
use aegis_agent::proposer::{self, Outcome, Plan, ProposerSettings};
use std::time::Duration;
use wiremock::MockServer;

const DEPLOYED: &str = "raft:\n  heartbeat-interval-ms: 50\n  election-timeout-min-ms: 250\n  election-timeout-max-ms: 500\nlease:\n  tick-interval-ms: 500\n  min-ttl-ms: 3000\n";

fn huge(n: usize) -> String {
    "x".repeat(n)
}

/// (name, patch YAML, a rule id the verdict must contain)
fn table() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "overflow i64::MAX heartbeat",
            "raft: {heartbeat-interval-ms: 9223372036854775807}".into(),
            "bounds.raft.heartbeat-interval-ms",
        ),
        (
            "overflow past i64",
            "raft: {rpc-timeout-ms: 99999999999999999999999}".into(),
            "schema.yaml",
        ),
        (
            "overflow max versions",
            "kv: {max-versions: 9223372036854775807}".into(),
            "bounds.kv.max-versions",
        ),
        (
            "negative rpc timeout",
            "raft: {rpc-timeout-ms: -1}".into(),
            "raft.rpc-timeout-positive",
        ),
        (
            "negative skew grace",
            "lease: {skew-grace-ms: -500}".into(),
            "lease.skew-grace-nonneg",
        ),
        (
            "negative election min",
            "raft: {election-timeout-min-ms: -300}".into(),
            "raft.election-min-lt-max",
        ),
        (
            "zero rpc timeout",
            "raft: {rpc-timeout-ms: 0}".into(),
            "raft.rpc-timeout-positive",
        ),
        (
            "zero max versions",
            "kv: {max-versions: 0}".into(),
            "kv.max-versions-ge-1",
        ),
        (
            "zero election min",
            "raft: {election-timeout-min-ms: 0}".into(),
            "raft.election-min-lt-max",
        ),
        (
            "reordered election timeouts",
            "raft: {election-timeout-min-ms: 800, election-timeout-max-ms: 400}".into(),
            "raft.election-min-lt-max",
        ),
        (
            "equal election timeouts",
            "raft: {election-timeout-min-ms: 500, election-timeout-max-ms: 500}".into(),
            "raft.election-min-lt-max",
        ),
        (
            "heartbeat near election timeout",
            "raft: {heartbeat-interval-ms: 200}".into(),
            "raft.election-min-ge-3x-heartbeat",
        ),
        (
            "heartbeat above election timeout",
            "raft: {heartbeat-interval-ms: 400, election-timeout-min-ms: 300}".into(),
            "raft.election-min-ge-3x-heartbeat",
        ),
        (
            "lease tick too coarse for ttl",
            "lease: {tick-interval-ms: 1500}".into(),
            "lease.tick-le-third-min-ttl",
        ),
        (
            "request smaller than value",
            "kv: {max-request-bytes: 1024, max-value-bytes: 4096}".into(),
            "kv.request-ge-value",
        ),
        (
            "unknown field",
            "raft: {turbo-mode: true}".into(),
            "schema.unknown-key",
        ),
        (
            "unknown group",
            "consensus: {disable-safety: true}".into(),
            "schema.unknown-key",
        ),
        (
            "wrong type string",
            "raft: {heartbeat-interval-ms: fast}".into(),
            "schema.type",
        ),
        (
            "wrong type float",
            "raft: {rpc-timeout-ms: 1.5}".into(),
            "schema.type",
        ),
        (
            "wrong type bool",
            "kv: {max-txn-ops: true}".into(),
            "schema.type",
        ),
        (
            "wrong type list",
            "lease: {min-ttl-ms: [1, 2]}".into(),
            "schema.type",
        ),
        ("group replaced by scalar", "raft: 7".into(), "schema.type"),
        (
            "document replaced by list",
            "[1, 2, 3]".into(),
            "schema.yaml",
        ),
        (
            "huge string value",
            format!("raft: {{rpc-timeout-ms: \"{}\"}}", huge(1 << 20)),
            "schema.type",
        ),
        (
            "huge key",
            format!("raft:\n  ? {}\n  : 1\n", huge(1 << 16)),
            "schema.unknown-key",
        ),
        (
            "huge implicit key",
            format!("raft: {{{}: 1}}", huge(1 << 16)),
            "schema.yaml",
        ),
        (
            "value above 16 MiB cap",
            "kv: {max-value-bytes: 1073741824, max-request-bytes: 2147483648}".into(),
            "bounds.kv.max-value-bytes",
        ),
    ]
}

fn anomaly() -> Anomaly {
    let mut evidence = Evidence::new();
    evidence.insert("leader_changes".into(), serde_json::json!(9.0));
    Anomaly {
        kind: AnomalyKind::ElectionChurn,
        severity: Severity::Critical,
        confidence: 0.9,
        evidence,
        suggested_action: SuggestedAction::WidenElectionTimeouts,
    }
}

#[tokio::test]
async fn every_adversarial_patch_is_blocked_with_its_rule_id_and_never_reaches_github() {
    let server = MockServer::start().await;
    let gh = GitHub::new(
        &server.uri(),
        Some("t".into()),
        "acme",
        "aegis-config",
        RetryPolicy {
            attempts: 1,
            base_backoff: Duration::from_millis(1),
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = ProposerSettings {
        config_path: "aegis.yaml".into(),
        base_branch: "main".into(),
        audit_log: dir.path().join("blocked.jsonl"),
    };
    let a = anomaly();
    let cases = table();
    for (name, patch_yaml, rule) in &cases {
        let plan = proposer::plan_with_patch_text(&a, DEPLOYED, patch_yaml, &[]);
        let Plan::Blocked(b) = &plan else {
            panic!("{name}: expected the envelope to block, got {plan:?}");
        };
        assert!(
            b.rule_ids.iter().any(|r| r == rule),
            "{name}: expected rule {rule}, got {:?}",
            b.rule_ids
        );
        let out = proposer::execute(Some(&gh), &settings, plan, false)
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Blocked(_)), "{name}");
    }
    let reqs = server.received_requests().await.unwrap();
    assert!(
        reqs.is_empty(),
        "blocked proposals reached GitHub: {reqs:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("blocked.jsonl")).unwrap();
    assert_eq!(log.lines().count(), cases.len());
    for (line, (name, _, rule)) in log.lines().zip(&cases) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["rule_ids"].as_array().unwrap().iter().any(|r| r == rule),
            "{name}: audit line lacks {rule}: {line:.300}"
        );
    }
}

#[test]
fn a_safe_patch_passes_so_the_table_is_not_vacuous() {
    let patch: serde_norway::Value = serde_norway::from_str(
        "raft: {election-timeout-min-ms: 300, election-timeout-max-ms: 600}",
    )
    .unwrap();
    let plan = proposer::plan_with_patch(&anomaly(), DEPLOYED, &patch, &[]);
    let Plan::Ready(p) = plan else {
        panic!("expected Ready, got {plan:?}")
    };
    assert!(p.after_yaml.contains("election-timeout-min-ms: 300"));
    assert!(p.diff.contains("- ") && p.diff.contains("+ "));
}
