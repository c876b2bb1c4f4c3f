//! The `aegis-agent` binary as a user runs it: real process, real files.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aegis-agent"));
    c.env("RUST_BACKTRACE", "0").env("RUST_LOG", "error");
    c
}

fn incidents() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/incidents")
}

#[test]
fn bench_prints_the_scorecard_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("card.json");
    let out = bin().args(["bench", "--json"]).arg(&json).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("anomaly classification accuracy       1.000 (33/33)"),
        "{table}"
    );
    assert!(table.contains("wall time:"));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(card["incidents"], 33);
    assert_eq!(card["results"].as_array().unwrap().len(), 33);
    assert_eq!(card["classification_by_kind"]["slow_follower"]["total"], 8);
}

#[test]
fn classify_is_byte_identical_across_runs() {
    let file = incidents().join("seed-split_brain_risk.json");
    let run = || {
        bin()
            .args(["classify", "--window"])
            .arg(&file)
            .output()
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let anomaly: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(anomaly["kind"], "split_brain_risk");
    assert_eq!(anomaly["severity"], "critical");
    assert_eq!(anomaly["suggested_action"], "investigate_partition");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("w.json");
    std::fs::write(
        &bad,
        "{\"start_ms\": 0, \"end_ms\": 10, \"step_ms\": -5, \"metrics\": []}",
    )
    .unwrap();
    let out = bin()
        .args(["classify", "--window"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("step_ms must be positive"), "{err}");
    assert!(!err.contains("panicked"));

    let out = bin().args(["classify"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--window FILE or --prometheus URL"));
}

#[test]
fn propose_dry_run_prints_the_pull_request_and_a_blocked_patch_fails_with_rule_ids() {
    let dir = tempfile::tempdir().unwrap();
    let deployed = dir.path().join("aegis.yaml");
    std::fs::write(&deployed, "raft:\n  heartbeat-interval-ms: 50\n").unwrap();
    let window = incidents().join("seed-clock_skew.json");
    let out = bin()
        .args(["propose", "--dry-run", "--window"])
        .arg(&window)
        .arg("--deployed")
        .arg(&deployed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("branch: aegis-agent/clock_skew/"),
        "{text}"
    );
    assert!(text.contains("lease.skew-grace-ms 500 →"));
    assert!(text.contains("## Rollback"));

    let patch = dir.path().join("patch.yaml");
    std::fs::write(&patch, "lease: {skew-grace-ms: -1}\n").unwrap();
    let audit = dir.path().join("audit.jsonl");
    let out = bin()
        .args(["propose", "--window"])
        .arg(&window)
        .arg("--deployed")
        .arg(&deployed)
        .arg("--patch")
        .arg(&patch)
        .arg("--audit-log")
        .arg(&audit)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lease.skew-grace-nonneg"));
    assert!(std::fs::read_to_string(&audit)
        .unwrap()
        .contains("lease.skew-grace-nonneg"));
}
