//! Durable append latency and throughput of the WAL, compared with redb doing the same appends
//! with one durable commit per batch.
//!
//! Run from the workspace root: `cargo run --release -p aegis-wal --example wal_bench`.
//! Files go to a fresh directory under the CURRENT directory (not $TMPDIR, which may be a
//! tmpfs where fsync is free), or under `$AEGIS_BENCH_DIR` if set; it is removed afterwards.
//! Optional: `AEGIS_BENCH_SCALE` multiplies the number of batches (default 1).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aegis_wal::{Wal, WalOptions};
use anyhow::{Context, Result};

const PAYLOAD_BYTES: usize = 256;
/// (entries per batch, batches measured).
const RUNS: [(usize, usize); 3] = [(1, 2000), (16, 1000), (256, 300)];
const WARMUP_BATCHES: usize = 20;

const TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
    entries_per_sec: f64,
    mib_per_sec: f64,
}

fn stats(mut latencies: Vec<Duration>, batch: usize) -> Stats {
    latencies.sort();
    let total: Duration = latencies.iter().sum();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let entries = (latencies.len() * batch) as f64;
    let secs = total.as_secs_f64().max(f64::MIN_POSITIVE);
    Stats {
        p50: pick(0.50),
        p99: pick(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        entries_per_sec: entries / secs,
        mib_per_sec: entries * PAYLOAD_BYTES as f64 / secs / (1024.0 * 1024.0),
    }
}

fn print_row(store: &str, batch: usize, s: &Stats) {
    println!(
        "| {store:<16} | {batch:>5} | {:>9.3} | {:>9.3} | {:>9.3} | {:>12.0} | {:>8.2} |",
        s.p50.as_secs_f64() * 1e3,
        s.p99.as_secs_f64() * 1e3,
        s.max.as_secs_f64() * 1e3,
        s.entries_per_sec,
        s.mib_per_sec,
    );
}

fn payload(index: u64) -> Vec<u8> {
    (0..PAYLOAD_BYTES)
        .map(|i| (index as u8).wrapping_add(i as u8))
        .collect()
}

fn bench_wal(dir: &Path, batch: usize, batches: usize, sync: bool) -> Result<(Stats, Duration)> {
    let opts = WalOptions {
        sync,
        ..WalOptions::default()
    };
    let mut wal = Wal::open(dir, opts).with_context(|| format!("open wal in {}", dir.display()))?;
    let mut next = 1u64;
    let mut latencies = Vec::with_capacity(batches);
    let mut syncs = Vec::with_capacity(batches);
    for round in 0..WARMUP_BATCHES + batches {
        let payloads: Vec<Vec<u8>> = (next..next + batch as u64).map(payload).collect();
        let entries: Vec<(u64, &[u8])> = (next..).zip(payloads.iter().map(Vec::as_slice)).collect();
        let started = Instant::now();
        wal.append(&entries).context("wal append")?;
        let took = started.elapsed();
        if round >= WARMUP_BATCHES {
            latencies.push(took);
            syncs.push(Duration::from_secs_f64(wal.last_sync_seconds()));
        }
        next += batch as u64;
    }
    syncs.sort();
    let sync_p50 = syncs.get(syncs.len() / 2).copied().unwrap_or_default();
    Ok((stats(latencies, batch), sync_p50))
}

fn bench_redb(dir: &Path, batch: usize, batches: usize) -> Result<Stats> {
    let path = dir.join("log.redb");
    let db = redb::Database::create(&path)
        .with_context(|| format!("create redb at {}", path.display()))?;
    let mut next = 1u64;
    let mut latencies = Vec::with_capacity(batches);
    for round in 0..WARMUP_BATCHES + batches {
        let payloads: Vec<Vec<u8>> = (next..next + batch as u64).map(payload).collect();
        let started = Instant::now();
        // Default durability is Immediate: commit returns once the data is fsynced.
        let txn = db.begin_write().context("redb begin_write")?;
        {
            let mut table = txn.open_table(TABLE).context("redb open_table")?;
            for (i, p) in (next..).zip(&payloads) {
                table.insert(i, p.as_slice()).context("redb insert")?;
            }
        }
        txn.commit().context("redb commit")?;
        let took = started.elapsed();
        if round >= WARMUP_BATCHES {
            latencies.push(took);
        }
        next += batch as u64;
    }
    Ok(stats(latencies, batch))
}

fn bench_root() -> Result<PathBuf> {
    match std::env::var_os("AEGIS_BENCH_DIR") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => std::env::current_dir().context("current directory"),
    }
}

fn main() -> Result<()> {
    let scale: usize = match std::env::var("AEGIS_BENCH_SCALE") {
        Ok(s) => s
            .parse()
            .context("AEGIS_BENCH_SCALE must be a positive integer")?,
        Err(_) => 1,
    };
    let root = bench_root()?;
    let work = tempfile::Builder::new()
        .prefix("wal-bench-")
        .tempdir_in(&root)
        .with_context(|| format!("create bench dir under {}", root.display()))?;
    println!(
        "bench dir: {} ({PAYLOAD_BYTES}-byte payloads, {WARMUP_BATCHES} warm-up batches not counted)",
        work.path().display()
    );
    println!(
        "| store            | batch |  p50 (ms) |  p99 (ms) |  max (ms) |    entries/s |    MiB/s |"
    );
    println!(
        "|------------------|------:|----------:|----------:|----------:|-------------:|---------:|"
    );
    let mut sync_notes = Vec::new();
    for (n, (batch, batches)) in RUNS.into_iter().enumerate() {
        let batches = batches * scale.max(1);
        let wal_dir = work.path().join(format!("wal-{n}"));
        let (s, sync_p50) = bench_wal(&wal_dir, batch, batches, true)?;
        print_row("aegis-wal", batch, &s);
        sync_notes.push((batch, sync_p50));
        let redb_dir = work.path().join(format!("redb-{n}"));
        std::fs::create_dir_all(&redb_dir).context("create redb dir")?;
        let s = bench_redb(&redb_dir, batch, batches)?;
        print_row("redb", batch, &s);
    }
    // Without fsync, to show how much of the latency is the disk rather than the code.
    let (s, _) = bench_wal(
        &work.path().join("wal-nosync"),
        16,
        1000 * scale.max(1),
        false,
    )?;
    print_row("aegis-wal nosync", 16, &s);
    for (batch, p50) in sync_notes {
        println!(
            "aegis-wal batch {batch}: fdatasync p50 {:.3} ms",
            p50.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
