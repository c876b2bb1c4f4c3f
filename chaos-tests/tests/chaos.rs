//! A short randomized chaos run on a 5-node loopback cluster of real
//! processes: kill -9 of leaders and followers, SIGSTOP/SIGCONT pauses, then
//! kill -9 of every node under load and a restart. Fails on any checker
//! violation, any lost acknowledged write, or replicas that disagree.
//!
//! The seed is printed; rerun one with `AEGIS_CHAOS_SEED=<seed>`.
//! `AEGIS_CHAOS_FAILPOINTS=1` also draws failpoint faults (slow fsync,
//! crash on apply), building the node with the `failpoints` feature.

use std::time::Duration;

use aegis_chaos::faults::Cluster;
use aegis_chaos::node_bin::{self, Variant};
use aegis_chaos::rng::Rng;
use aegis_chaos::scenario::{run_epoch, EpochOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_faults_keep_every_property() {
    let seed = std::env::var("AEGIS_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(Rng::fresh_seed);
    let failpoints = std::env::var("AEGIS_CHAOS_FAILPOINTS").is_ok_and(|v| v == "1");
    eprintln!("chaos seed {seed} (failpoints: {failpoints})");
    let variant = if failpoints {
        Variant::Failpoints
    } else {
        Variant::Default
    };
    let bin = node_bin::ensure(variant).expect("node binary");
    let mut cluster = Cluster::start(&bin, 5).await.expect("cluster up");
    let mut rng = Rng::new(seed);
    let out = tempfile::tempdir().unwrap();
    let mut opts = EpochOptions::new("chaos");
    opts.rounds = 4;
    opts.fault_hold = Duration::from_secs(3);
    opts.failpoints = failpoints;
    opts.out_dir = Some(out.path().to_path_buf());
    let report = tokio::time::timeout(
        Duration::from_secs(240),
        run_epoch(&mut cluster, &opts, &mut rng),
    )
    .await
    .expect("the chaos run finishes in bounded time")
    .expect("the harness ran");
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    let keep = std::env::temp_dir().join(format!("aegis-chaos-history-{seed}.jsonl"));
    if let Some(h) = &report.history {
        let _ = std::fs::copy(h, &keep);
        eprintln!("history kept at {}", keep.display());
    }
    assert!(
        report.operations > 100,
        "the workload made progress: {}",
        report.operations
    );
    assert!(
        report.outcomes.get("ok").copied().unwrap_or(0) > 50,
        "{:?}",
        report.outcomes
    );
    assert_eq!(report.faults.len(), 5, "four rounds plus the kill-all");
    assert!(report.acknowledged_durable_writes > 0);
    assert_eq!(
        report.faults_not_effective, 0,
        "every fault took effect (failpoint faults need aegis_node::failpoint::setup() in main)"
    );
    assert!(
        report.digest_indexes_compared > 0,
        "replica digests were compared"
    );
    assert!(report.converged, "replicas converged after healing");
    assert!(
        report.violations.is_empty(),
        "seed {seed}: {} violations:\n{}",
        report.violations.len(),
        report
            .violations
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        report.lost_acknowledged_writes.is_empty(),
        "seed {seed}: lost {:?}",
        report.lost_acknowledged_writes
    );
}
