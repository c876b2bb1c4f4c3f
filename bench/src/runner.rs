//! The closed loop: `clients` workers spread over `conns` connections, each issuing its next
//! request as soon as the previous one answered, until a request count or a deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::backend::{Conn, OpSpec, Target, Worker};
use crate::progress::Progress;
use crate::report::{Report, RunInfo, Samples};

/// Hard ceilings, so a typo cannot turn into an hour-long load on a shared machine.
pub const MAX_CLIENTS: usize = 10_000;
pub const MAX_TOTAL: u64 = 10_000_000;
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// How much load, for how long.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub clients: usize,
    pub conns: usize,
    /// Stop after this many requests (successful or not).
    pub total: Option<u64>,
    /// Stop at this deadline; a run always has one (`MAX_DURATION` when only a total is set).
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("--clients must be 1..={MAX_CLIENTS}, got {0}")]
    Clients(usize),
    #[error("--conns must be 1..=clients ({1}), got {0}")]
    Conns(usize, usize),
    #[error("--total must be 1..={MAX_TOTAL}, got {0}")]
    Total(u64),
    #[error("--duration must be >0 and <= 600s, got {0:?}")]
    Duration(Duration),
    #[error("give --total, --duration or both")]
    NoBound,
    #[error("no endpoints given")]
    NoEndpoints,
}

impl LoadSpec {
    /// Checks the bounds and fills the deadline when only a count was given.
    pub fn new(
        clients: usize,
        conns: usize,
        total: Option<u64>,
        duration: Option<Duration>,
    ) -> Result<LoadSpec, SpecError> {
        if clients == 0 || clients > MAX_CLIENTS {
            return Err(SpecError::Clients(clients));
        }
        if conns == 0 || conns > clients {
            return Err(SpecError::Conns(conns, clients));
        }
        if let Some(t) = total {
            if t == 0 || t > MAX_TOTAL {
                return Err(SpecError::Total(t));
            }
        }
        if let Some(d) = duration {
            if d.is_zero() || d > MAX_DURATION {
                return Err(SpecError::Duration(d));
            }
        }
        if total.is_none() && duration.is_none() {
            return Err(SpecError::NoBound);
        }
        Ok(LoadSpec {
            clients,
            conns,
            total,
            duration: duration.unwrap_or(MAX_DURATION),
        })
    }
}

/// Opens `n` connections, the i-th to `endpoints[i % len]`, as etcd's tool does.
pub async fn connect_round_robin(
    target: Target,
    endpoints: &[String],
    n: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<Conn>> {
    anyhow::ensure!(!endpoints.is_empty(), SpecError::NoEndpoints);
    let futs = (0..n).map(|i| {
        let ep = endpoints[i % endpoints.len()].clone();
        async move {
            Conn::connect(target, &ep, timeout)
                .await
                .map_err(|e| anyhow::anyhow!(e))
        }
    });
    futures::future::try_join_all(futs).await
}

/// Runs the closed loop and summarises it.
pub async fn run(
    target: Target,
    endpoints: &[String],
    load: &LoadSpec,
    op: &OpSpec,
    value_size: usize,
) -> anyhow::Result<Report> {
    let conns = connect_round_robin(target, endpoints, load.conns, op.request_timeout).await?;
    // Set-up (sessions, leases) happens before the clock starts and in parallel, bounded.
    let setups = futures::stream::iter(0..load.clients)
        .map(|i| {
            let conn = conns[i % conns.len()].clone();
            async move { conn.worker(op, i as u64).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let mut workers = Vec::with_capacity(load.clients);
    for s in setups {
        workers.push(s.map_err(|e| anyhow::anyhow!("worker set-up failed: {e}"))?);
    }

    let issued = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(done.clone(), load.total, Some(load.duration));
    let started = Instant::now();
    let deadline = started + load.duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let issued = issued.clone();
            let done = done.clone();
            let total = load.total;
            tokio::spawn(async move {
                let mut samples = Samples::default();
                loop {
                    if let Some(t) = total {
                        if issued.fetch_add(1, Ordering::Relaxed) >= t {
                            break;
                        }
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    // A request still in flight at the deadline is abandoned, not waited for.
                    match tokio::time::timeout_at(deadline.into(), w.run_once()).await {
                        Ok(Ok(())) => samples.record(now.elapsed()),
                        Ok(Err(e)) => samples.error(&e),
                        Err(_) => break,
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (w, samples)
            })
        })
        .collect();
    let mut samples = Samples::default();
    let mut finished: Vec<Worker> = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (w, s) = t.await?;
        samples.merge(s);
        finished.push(w);
    }
    let elapsed = started.elapsed();
    progress.finish().await;
    let cleanup = futures::stream::iter(finished)
        .map(|w| w.cleanup())
        .buffer_unordered(64)
        .collect::<Vec<_>>();
    let _ = tokio::time::timeout(Duration::from_secs(10), cleanup).await;

    let info = RunInfo {
        target: target.name().into(),
        op: op.op.name().into(),
        clients: load.clients,
        conns: load.conns,
        value_size,
    };
    Ok(Report::build(&info, samples, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_bounds() {
        assert_eq!(
            LoadSpec::new(0, 1, Some(1), None).unwrap_err(),
            SpecError::Clients(0)
        );
        assert_eq!(
            LoadSpec::new(4, 5, Some(1), None).unwrap_err(),
            SpecError::Conns(5, 4)
        );
        assert_eq!(
            LoadSpec::new(1, 1, None, None).unwrap_err(),
            SpecError::NoBound
        );
        assert_eq!(
            LoadSpec::new(1, 1, Some(0), None).unwrap_err(),
            SpecError::Total(0)
        );
        assert!(matches!(
            LoadSpec::new(1, 1, None, Some(Duration::from_secs(601))),
            Err(SpecError::Duration(_))
        ));
        let s = LoadSpec::new(8, 2, Some(100), None).unwrap();
        assert_eq!(
            s.duration, MAX_DURATION,
            "a count-only run still has a deadline"
        );
        let s = LoadSpec::new(8, 2, None, Some(Duration::from_secs(3))).unwrap();
        assert_eq!((s.total, s.duration), (None, Duration::from_secs(3)));
    }
}
