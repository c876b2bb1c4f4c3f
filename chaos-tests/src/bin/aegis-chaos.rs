//! `aegis-chaos`: the soak runner and an offline history checker.
//!
//! `aegis-chaos soak --minutes N --out DIR` runs chaos epochs on one
//! 5-node cluster until the time is up, each ending with kill -9 of every
//! node under load; it keeps every history it checked under DIR and prints
//! the totals as JSON. `aegis-chaos check FILE...` checks recorded
//! histories (JSON lines, docs/HISTORY-FORMAT.md).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aegis_chaos::check::check_history;
use aegis_chaos::faults::{Cluster, Fault, RaftTiming};
use aegis_chaos::history::read_jsonl;
use aegis_chaos::node_bin::{self, Variant};
use aegis_chaos::rng::Rng;
use aegis_chaos::scenario::{run_epoch, EpochOptions, EpochReport};
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(name = "aegis-chaos", about = "AEGIS chaos soak and history checker")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run chaos epochs for a while and report.
    Soak {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// Where histories, digests and the summary go.
        #[arg(long, default_value = "chaos-out")]
        out: PathBuf,
        #[arg(long)]
        seed: Option<u64>,
        /// Fault rounds per epoch (each epoch also ends with kill -9 of all nodes).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Also draw failpoint faults (slow fsync, crash on apply).
        #[arg(long)]
        failpoints: bool,
        /// Stop after this many epochs even if time remains.
        #[arg(long)]
        max_epochs: Option<usize>,
        /// Raft timing as HEARTBEAT,MIN,MAX in ms instead of the node's default
        /// (50,250,500), e.g. 20,80,160; the node refuses one outside the envelope.
        #[arg(long)]
        timing: Option<RaftTiming>,
    },
    /// Check recorded histories.
    Check {
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 5_000_000)]
        search_limit: u64,
    },
}

/// Faults of one kind over the whole soak.
#[derive(Serialize, Default)]
struct KindTotals {
    injected: usize,
    /// Could not be applied (a failpoint the node did not report armed).
    not_effective: usize,
    /// Crash on apply only: how many times the armed node did crash.
    #[serde(skip_serializing_if = "Option::is_none")]
    crashed: Option<usize>,
}

#[derive(Serialize, Default)]
struct Totals {
    seed: u64,
    minutes_requested: u64,
    /// The Raft timing, when not the node's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    timing: Option<String>,
    seconds: f64,
    epochs: usize,
    operations: usize,
    faults_injected: usize,
    faults_not_effective: usize,
    faults_by_kind: BTreeMap<&'static str, KindTotals>,
    kill_all_restarts: usize,
    violations: usize,
    acknowledged_durable_writes: usize,
    acknowledged_writes_lost: usize,
    digest_indexes_compared: usize,
    histories: Vec<PathBuf>,
}

async fn soak(
    minutes: u64,
    out: PathBuf,
    seed: Option<u64>,
    rounds: usize,
    failpoints: bool,
    max_epochs: Option<usize>,
    timing: Option<RaftTiming>,
) -> anyhow::Result<bool> {
    let seed = seed.unwrap_or_else(Rng::fresh_seed);
    let timing_note = timing.map(|t| format!(", {t}")).unwrap_or_default();
    eprintln!(
        "aegis-chaos soak: seed {seed}, {minutes} minutes{timing_note}, output in {}",
        out.display()
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let variant = if failpoints {
        Variant::Failpoints
    } else {
        Variant::Default
    };
    let bin = node_bin::ensure(variant).context("finding the node binary")?;
    let mut rng = Rng::new(seed);
    let mut cluster = Cluster::start_with_timing(&bin, 5, timing)
        .await
        .context("starting the cluster")?;
    let deadline = Instant::now() + Duration::from_secs(minutes * 60);
    let t0 = Instant::now();
    let mut totals = Totals {
        seed,
        minutes_requested: minutes,
        timing: timing.map(|t| t.to_string()),
        ..Totals::default()
    };
    let mut reports: Vec<EpochReport> = Vec::new();
    let mut epoch = 0;
    while Instant::now() < deadline && max_epochs.is_none_or(|m| epoch < m) {
        epoch += 1;
        let mut opts = EpochOptions::new(format!("soak{epoch}"));
        opts.rounds = rounds;
        opts.failpoints = failpoints;
        if failpoints && epoch == 1 {
            // Both failpoint faults in every --failpoints soak, however short.
            opts.first_faults = vec![Fault::SlowFsync { ms: 150 }, Fault::CrashOnApply];
        }
        opts.out_dir = Some(out.clone());
        let r = run_epoch(&mut cluster, &opts, &mut rng)
            .await
            .with_context(|| format!("epoch {epoch}"))?;
        eprintln!(
            "epoch {epoch}: {} ops, {} faults, {} violations, {} of {} acknowledged writes lost, {:.0}s",
            r.operations,
            r.faults.len(),
            r.violations.len(),
            r.lost_acknowledged_writes.len(),
            r.acknowledged_durable_writes,
            r.seconds
        );
        for v in &r.violations {
            eprintln!("  VIOLATION {v}");
        }
        totals.epochs += 1;
        totals.operations += r.operations;
        totals.faults_injected += r.faults.len();
        totals.faults_not_effective += r.faults_not_effective;
        for f in &r.faults {
            let k = totals.faults_by_kind.entry(f.fault.kind()).or_default();
            k.injected += 1;
            k.not_effective += usize::from(!f.effective);
            if let Some(c) = f.crashed {
                *k.crashed.get_or_insert(0) += usize::from(c);
            }
        }
        totals.kill_all_restarts += 1;
        totals.violations += r.violations.len();
        totals.acknowledged_durable_writes += r.acknowledged_durable_writes;
        totals.acknowledged_writes_lost += r.lost_acknowledged_writes.len();
        totals.digest_indexes_compared += r.digest_indexes_compared;
        totals.histories.extend(r.history.clone());
        reports.push(r);
        let text = serde_json::to_string_pretty(&reports)?;
        std::fs::write(out.join("epochs.json"), text)?;
    }
    totals.seconds = t0.elapsed().as_secs_f64();
    let summary = serde_json::to_string_pretty(&totals)?;
    std::fs::write(out.join("summary.json"), &summary)?;
    println!("{summary}");
    Ok(totals.violations == 0 && totals.acknowledged_writes_lost == 0)
}

fn check(files: &[PathBuf], limit: u64) -> anyhow::Result<bool> {
    let mut clean = true;
    for f in files {
        let records = read_jsonl(f)?;
        let v = check_history(&records, limit);
        println!(
            "{}: {} records, {} violations",
            f.display(),
            records.len(),
            v.len()
        );
        for x in &v {
            println!("  {x}");
        }
        clean &= v.is_empty();
    }
    Ok(clean)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Soak {
            minutes,
            out,
            seed,
            rounds,
            failpoints,
            max_epochs,
            timing,
        } => soak(minutes, out, seed, rounds, failpoints, max_epochs, timing).await,
        Cmd::Check {
            files,
            search_limit,
        } => check(&files, search_limit),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("aegis-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}
