//! How much of an idle node's memory is the lookup tables of openraft's runtime-statistics
//! histograms. `base2histogram` (0.2.3, a dependency of openraft's `RuntimeStats`) builds the
//! bucket tables of all 16 histogram widths the first time any histogram is made, and every
//! `Raft` makes histograms when it starts; openraft has no setting that leaves them out. This
//! prints the process's anonymous resident memory before and after the first histogram (the
//! same crate and version, Cargo.lock):
//!
//!   cargo run --release -p aegis-node --example histogram_tables

use std::time::Instant;

/// `RssAnon` of this process, in KiB.
fn rss_anon_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next())
        .ok_or_else(|| "no RssAnon in /proc/self/status".to_string())?
        .parse()
        .map_err(|e| format!("RssAnon: {e}"))
}

fn main() -> Result<(), String> {
    let before = rss_anon_kib()?;
    let started = Instant::now();
    let first = base2histogram::Histogram::<()>::new();
    let took = started.elapsed();
    let after = rss_anon_kib()?;
    let second = base2histogram::Histogram::<()>::new();
    let after_second = rss_anon_kib()?;
    println!(
        "anonymous RSS: {before} KiB before, {after} KiB after the first histogram \
         (+{} KiB, {took:.1?}), {after_second} KiB after a second (+{} KiB)",
        after.saturating_sub(before),
        after_second.saturating_sub(after)
    );
    drop((first, second));
    Ok(())
}
