//! Watch delivery latency: watchers follow a prefix, one writer puts keys at a fixed rate,
//! and each delivery is timed from just before its put was sent to the watcher receiving it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{Conn, Target};
use crate::progress::Progress;
use crate::report::{Report, RunInfo, Samples};
use crate::runner::connect_round_robin;

#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub watchers: usize,
    pub conns: usize,
    pub puts: u64,
    pub put_rate: u64,
    pub value: Vec<u8>,
    pub timeout: Duration,
}

const PREFIX: &str = "bench/watch/";

fn key_of(run: u64, seq: u64) -> Vec<u8> {
    format!("{PREFIX}{run}/{seq:08}").into_bytes()
}

/// The sequence number of a key written by this run, if it is one.
fn seq_of(run_prefix: &[u8], key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(run_prefix)?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

pub async fn run(target: Target, endpoints: &[String], spec: &WatchSpec) -> anyhow::Result<Report> {
    anyhow::ensure!(
        spec.watchers >= 1 && spec.watchers <= 10_000,
        "--clients (watchers) must be 1..=10000"
    );
    anyhow::ensure!(
        spec.puts >= 1 && spec.puts <= 1_000_000,
        "--total (puts) must be 1..=1000000"
    );
    anyhow::ensure!(
        spec.put_rate >= 1 && spec.put_rate <= 100_000,
        "--put-rate must be 1..=100000"
    );
    // A distinct prefix per run keeps earlier runs' keys out of this run's counts.
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let run_prefix = format!("{PREFIX}{run_id}/").into_bytes();
    let conns = connect_round_robin(target, endpoints, spec.conns, spec.timeout).await?;
    let writer = Conn::connect(target, &endpoints[0], spec.timeout)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;

    let mut watchers = Vec::with_capacity(spec.watchers);
    for i in 0..spec.watchers {
        let w = conns[i % conns.len()]
            .watch_prefix(&run_prefix)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        watchers.push(w);
    }

    let base = Instant::now();
    // Send time of put `seq` in ns since `base`, plus one (0 = not sent yet).
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..spec.puts).map(|_| AtomicU64::new(0)).collect());
    let delivered = Arc::new(AtomicU64::new(0));
    let expected = spec.puts * spec.watchers as u64;
    let put_time = Duration::from_secs_f64(spec.puts as f64 / spec.put_rate as f64);
    let deadline = Instant::now() + put_time + spec.timeout + Duration::from_secs(5);
    let progress = Progress::start(delivered.clone(), Some(expected), None);

    let watch_tasks: Vec<_> = watchers
        .into_iter()
        .map(|mut w| {
            let sent = sent.clone();
            let delivered = delivered.clone();
            let run_prefix = run_prefix.clone();
            let puts = spec.puts;
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut got = 0u64;
                while got < puts {
                    let next = tokio::time::timeout_at(deadline.into(), w.next_keys()).await;
                    let keys = match next {
                        Err(_) => {
                            samples.error("watch: deadline before every event arrived");
                            break;
                        }
                        Ok(Err(e)) => {
                            samples.error(&e);
                            break;
                        }
                        Ok(Ok(None)) => {
                            samples.error("watch: stream ended");
                            break;
                        }
                        Ok(Ok(Some(k))) => k,
                    };
                    let now = base.elapsed().as_nanos() as u64 + 1;
                    for k in keys {
                        let Some(seq) = seq_of(&run_prefix, &k) else {
                            continue;
                        };
                        let Some(t) = sent.get(seq as usize).map(|a| a.load(Ordering::Acquire))
                        else {
                            continue;
                        };
                        if t == 0 {
                            samples.error("watch: event before its put was sent");
                            continue;
                        }
                        samples.record(Duration::from_nanos(now.saturating_sub(t)));
                        got += 1;
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                samples
            })
        })
        .collect();

    let started = Instant::now();
    let mut put_errors = Samples::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / spec.put_rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 0..spec.puts {
        tick.tick().await;
        if Instant::now() >= deadline {
            put_errors.error("writer: deadline before every put was sent");
            break;
        }
        sent[seq as usize].store(base.elapsed().as_nanos() as u64 + 1, Ordering::Release);
        if let Err(e) = writer.put(key_of(run_id, seq), spec.value.clone()).await {
            put_errors.error(&format!("put: {e}"));
        }
    }
    let mut samples = put_errors;
    for t in watch_tasks {
        samples.merge(t.await?);
    }
    let elapsed = started.elapsed();
    progress.finish().await;
    let info = RunInfo {
        target: target.name().into(),
        op: format!("watch({} puts at {}/s)", spec.puts, spec.put_rate),
        clients: spec.watchers,
        conns: spec.conns,
        value_size: spec.value.len(),
    };
    Ok(Report::build(&info, samples, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_only_for_this_run() {
        let p = format!("{PREFIX}42/").into_bytes();
        assert_eq!(seq_of(&p, &key_of(42, 7)), Some(7));
        assert_eq!(seq_of(&p, &key_of(43, 7)), None);
        assert_eq!(seq_of(&p, b"other"), None);
    }
}
