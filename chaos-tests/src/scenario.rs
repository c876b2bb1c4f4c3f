//! One chaos epoch on a running cluster: start the workload, inject a few
//! random faults (healing each), optionally kill -9 every node mid-load and
//! restart them, then stop, read everything back, and run the checkers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aegis_client::{Client, ClientConfig};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::check::digest::{self, DigestSample};
use crate::check::{check_history, Violation};
use crate::faults::{self, Cluster, Fault, FaultError, Injected, Prober};
use crate::history::{self, OpKind, Outcome, Record, Recorder};
use crate::rng::Rng;
use crate::workload::{outcome_of, Workload, WorkloadConfig};

#[derive(Debug, Clone)]
pub struct EpochOptions {
    pub run: String,
    pub rounds: usize,
    /// How long a non-pause fault is held before it is healed.
    pub fault_hold: Duration,
    /// Quiet time after each heal.
    pub settle: Duration,
    /// Whether failpoint faults may be drawn (needs a failpoints build).
    pub failpoints: bool,
    /// Injected first, in order, before the random draws (each one uses
    /// up a round).
    pub first_faults: Vec<Fault>,
    /// End with kill -9 of every node under load, then a restart.
    pub kill_all: bool,
    /// Where to keep the history and digests; not kept when `None`.
    pub out_dir: Option<PathBuf>,
    pub search_limit: u64,
}

impl EpochOptions {
    pub fn new(run: impl Into<String>) -> Self {
        EpochOptions {
            run: run.into(),
            rounds: 3,
            fault_hold: Duration::from_secs(3),
            settle: Duration::from_secs(1),
            failpoints: false,
            first_faults: Vec::new(),
            kill_all: true,
            out_dir: None,
            search_limit: 5_000_000,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochReport {
    pub run: String,
    pub operations: usize,
    pub outcomes: BTreeMap<String, usize>,
    pub faults: Vec<Injected>,
    pub faults_not_effective: usize,
    pub violations: Vec<Violation>,
    pub acknowledged_durable_writes: usize,
    pub lost_acknowledged_writes: Vec<String>,
    pub digest_indexes_compared: usize,
    pub converged: bool,
    pub history: Option<PathBuf>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    #[error("fault injection: {0}")]
    Fault(#[from] FaultError),
    #[error("client: {0}")]
    Client(#[from] aegis_client::Error),
    #[error("cluster: {0}")]
    Dev(#[from] aegis_client::devcluster::DevError),
    #[error("history: {0}")]
    History(#[from] history::HistoryError),
    #[error("writing {0}: {1}")]
    Io(String, std::io::Error),
}

fn load_client_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_millis(500),
        ..ClientConfig::default()
    }
}

/// Reads `key` until a read succeeds (recording every attempt), up to `timeout`.
pub async fn read_back(
    client: &Client,
    rec: &Recorder,
    key: &str,
    timeout: Duration,
) -> Option<Option<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let call_ns = rec.now_ns();
        let r = client.get(key.to_owned()).await;
        let return_ns = rec.now_ns();
        let (outcome, result, out) = match r {
            Ok(g) => {
                let v = g.kv.as_ref().map(|kv| kv.value_str().into_owned());
                (
                    Outcome::Ok,
                    json!({"value": v, "revision": g.revision}),
                    Some(v),
                )
            }
            Err(e) => (outcome_of(&e), json!({"error": e.to_string()}), None),
        };
        rec.push(Record {
            client: "final-read".into(),
            op: OpKind::Get,
            key: key.to_owned(),
            value: serde_json::Value::Null,
            result,
            call_ns,
            return_ns,
            outcome,
        });
        if out.is_some() || Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Samples every node's digest every 300 ms until told to stop: replicas
/// at the same index must agree at every moment, not only at the end.
pub fn spawn_sampler(
    prober: Prober,
    recorder: Recorder,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<Vec<DigestSample>>,
) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let mut samples = Vec::new();
        while !*stopped.borrow() {
            samples.extend(prober.digests(recorder.now_ns()).await);
            let _ = tokio::time::timeout(Duration::from_millis(300), stopped.changed()).await;
        }
        samples
    });
    (stop, task)
}

/// The revision of the last acknowledged change under `prefix`: what a
/// prefix watcher must have delivered by the end. Only changes count — a
/// failed compare-and-swap or a delete that found nothing answers with a
/// revision but makes no event, and waiting for one would never end.
pub fn watch_target(records: &[Record], prefix: &str) -> u64 {
    records
        .iter()
        .filter(|r| r.outcome == Outcome::Ok && r.key.starts_with(prefix))
        .filter(|r| match r.op {
            OpKind::Put | OpKind::GuardedPut => true,
            OpKind::Cas => r.result.get("succeeded").and_then(|v| v.as_bool()) == Some(true),
            OpKind::Delete => r.result_u64("deleted").is_some_and(|d| d > 0),
            _ => false,
        })
        .filter_map(Record::revision)
        .max()
        .unwrap_or(0)
}

/// Runs one epoch on `cluster`. Violations are returned in the report, not
/// as errors; errors mean the harness itself could not do its job.
pub async fn run_epoch(
    cluster: &mut Cluster,
    opts: &EpochOptions,
    rng: &mut Rng,
) -> Result<EpochReport, EpochError> {
    let t0 = Instant::now();
    let recorder = Recorder::new();
    let cfg = WorkloadConfig::new(opts.run.clone());
    let client = cluster.client(load_client_config())?;
    let mut workload = Workload::start(client.clone(), cfg.clone(), rng, recorder.clone()).await;

    let (stop_sampler, sampler) = spawn_sampler(cluster.prober(), recorder.clone());

    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut injected = Vec::new();
    for round in 0..opts.rounds {
        let fault = match opts.first_faults.get(round) {
            Some(f) => *f,
            None => Fault::random(rng, opts.failpoints),
        };
        let mut inj = faults::inject(cluster, fault, rng).await?;
        let at = recorder.now_ns() as f64 / 1e9;
        eprintln!(
            "[{}] {at:.3}s round {round}: {:?} on nodes {:?} (effective: {})",
            opts.run, inj.fault, inj.nodes, inj.effective
        );
        faults::hold(&inj, opts.fault_hold).await;
        faults::heal(cluster, &mut inj).await?;
        eprintln!(
            "[{}] {:.3}s healed",
            opts.run,
            recorder.now_ns() as f64 / 1e9
        );
        let revived = faults::revive_all(cluster)?;
        if !revived.is_empty() {
            eprintln!("[{}] restarted crashed nodes {revived:?}", opts.run);
        }
        cluster.wait_leader(Duration::from_secs(30)).await?;
        tokio::time::sleep(opts.settle).await;
        injected.push(inj);
    }
    if opts.kill_all {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let inj = faults::inject(cluster, Fault::KillAll, rng).await?;
        eprintln!(
            "[{}] {:.3}s kill -9 of all {} nodes under load",
            opts.run,
            recorder.now_ns() as f64 / 1e9,
            cluster.size()
        );
        injected.push(inj);
        tokio::time::sleep(Duration::from_millis(300)).await;
        for n in 1..=cluster.size() {
            cluster.dev.start(n)?;
        }
        let leader = cluster.wait_leader(Duration::from_secs(60)).await?;
        eprintln!(
            "[{}] {:.3}s restarted; node {leader} leads",
            opts.run,
            recorder.now_ns() as f64 / 1e9
        );
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    workload.stop_writers().await;
    faults::revive_all(cluster)?;
    cluster.wait_leader(Duration::from_secs(30)).await?;

    // Final state of every register key, through the linearizable path.
    let reader = cluster.client(load_client_config())?;
    for k in 0..cfg.keys {
        read_back(&reader, &recorder, &cfg.kv_key(k), Duration::from_secs(30)).await;
    }
    // Every acknowledged unique write must still be there.
    let acks = workload
        .durable_acks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let reads = futures::stream::iter(acks.iter().cloned())
        .map(|(k, v)| {
            let (reader, recorder) = (reader.clone(), recorder.clone());
            async move {
                let got = read_back(&reader, &recorder, &k, Duration::from_secs(30)).await;
                (k, v, got)
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let lost: Vec<String> = reads
        .into_iter()
        .filter(|(_, v, got)| {
            got.as_ref()
                .map(|g| g.as_deref() != Some(v.as_str()))
                .unwrap_or(true)
        })
        .map(|(k, _, _)| k)
        .collect();

    // The watcher must catch up to the last committed write it watches.
    let target = watch_target(&recorder.snapshot(), &cfg.kv_prefix());
    workload.finish_watch(target, Duration::from_secs(20)).await;

    let (converged, last) = cluster
        .converge(recorder.now_ns(), Duration::from_secs(30))
        .await;
    let _ = stop_sampler.send(true);
    let mut samples: Vec<DigestSample> = sampler.await.unwrap_or_default();
    samples.extend(last);

    let records = recorder.snapshot();
    let mut violations = check_history(&records, opts.search_limit);
    violations.extend(digest::check(&samples));
    if !converged {
        violations.push(Violation {
            checker: "determinism",
            key: "cluster".into(),
            message: "replicas did not all apply what was committed when healing within 30s".into(),
        });
    }
    for k in &lost {
        violations.push(Violation {
            checker: "durability",
            key: k.clone(),
            message: "acknowledged write missing after restart".into(),
        });
    }
    let mut outcomes = BTreeMap::new();
    for r in &records {
        *outcomes
            .entry(format!("{:?}", r.outcome).to_lowercase())
            .or_insert(0) += 1;
    }
    let history = match &opts.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| EpochError::Io(dir.display().to_string(), e))?;
            let h = dir.join(format!("history-{}.jsonl", opts.run.replace('/', "_")));
            history::write_jsonl(&h, &records)?;
            // Node logs are the evidence a violation needs; the cluster's
            // own directory disappears with it.
            if !violations.is_empty() {
                for n in 1..=cluster.size() {
                    let to = dir.join(format!("node-{n}-{}.log", opts.run.replace('/', "_")));
                    let _ = std::fs::copy(cluster.dev.log_path(n), to);
                }
            }
            let d = dir.join(format!("digests-{}.json", opts.run.replace('/', "_")));
            let text = serde_json::to_string(&samples).unwrap_or_default();
            std::fs::write(&d, text).map_err(|e| EpochError::Io(d.display().to_string(), e))?;
            Some(h)
        }
        None => None,
    };
    Ok(EpochReport {
        run: opts.run.clone(),
        operations: records.iter().filter(|r| r.op != OpKind::Watch).count(),
        outcomes,
        faults_not_effective: injected.iter().filter(|i| !i.effective).count(),
        faults: injected,
        violations,
        acknowledged_durable_writes: acks.len(),
        lost_acknowledged_writes: lost,
        digest_indexes_compared: digest::compared_indexes(&samples),
        converged,
        history,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(op: OpKind, key: &str, result: serde_json::Value) -> Record {
        Record {
            client: "t".into(),
            op,
            key: key.into(),
            value: serde_json::Value::Null,
            result,
            call_ns: 0,
            return_ns: 1,
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn watch_target_counts_only_changes() {
        let records = vec![
            rec(OpKind::Put, "r/kv/0", json!({"revision": 4})),
            rec(
                OpKind::Cas,
                "r/kv/1",
                json!({"revision": 6, "succeeded": true}),
            ),
            // No event at these revisions: nothing to wait for.
            rec(
                OpKind::Cas,
                "r/kv/1",
                json!({"revision": 9, "succeeded": false}),
            ),
            rec(
                OpKind::Delete,
                "r/kv/2",
                json!({"revision": 10, "deleted": 0}),
            ),
            rec(OpKind::Get, "r/kv/0", json!({"revision": 11})),
            rec(OpKind::Put, "r/other", json!({"revision": 12})),
        ];
        assert_eq!(watch_target(&records, "r/kv/"), 6);
    }
}
