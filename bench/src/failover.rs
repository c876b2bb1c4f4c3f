//! Leader failover: kill -9 the leader, then time (a) until a survivor reports itself
//! leader and (b) until a write is acknowledged; restart the victim, let the cluster settle,
//! repeat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::backend::{connect_all, Conn, MemberStatus, Target};
use crate::metrics_probe;
use crate::procs::Cluster;

pub const MAX_ROUNDS: usize = 50;

#[derive(Debug, Clone)]
pub struct FailoverSpec {
    pub rounds: usize,
    pub endpoints: Vec<String>,
    /// Longest wait for a new leader and a write in one round.
    pub round_timeout: Duration,
    /// Pause after the cluster is whole again, before the next kill.
    pub settle: Duration,
    /// A new write attempt goes to every survivor this often (earlier ones stay in flight).
    pub write_interval: Duration,
    pub value: Vec<u8>,
    /// AEGIS metrics addresses (node 1 first); when given, leadership is read from
    /// `/metrics` instead of a status RPC.
    pub metrics: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Round {
    /// Node number (1-based, as in the cluster directory) that was killed.
    pub killed: usize,
    pub old_term: u64,
    pub new_term: u64,
    pub to_leader_ms: Option<f64>,
    pub to_write_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailoverReport {
    pub target: String,
    pub rounds: Vec<Round>,
    pub leader_median_ms: Option<f64>,
    pub leader_max_ms: Option<f64>,
    pub write_median_ms: Option<f64>,
    pub write_max_ms: Option<f64>,
    /// Rounds where no leader or no write was seen within the round timeout.
    pub incomplete_rounds: usize,
}

pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    Some(if s.len().is_multiple_of(2) {
        (s[m - 1] + s[m]) / 2.0
    } else {
        s[m]
    })
}

impl FailoverReport {
    pub fn from_rounds(target: &str, rounds: Vec<Round>) -> FailoverReport {
        let leader: Vec<f64> = rounds.iter().filter_map(|r| r.to_leader_ms).collect();
        let write: Vec<f64> = rounds.iter().filter_map(|r| r.to_write_ms).collect();
        let incomplete = rounds
            .iter()
            .filter(|r| r.to_leader_ms.is_none() || r.to_write_ms.is_none())
            .count();
        FailoverReport {
            target: target.into(),
            leader_median_ms: median(&leader),
            leader_max_ms: leader.iter().copied().reduce(f64::max),
            write_median_ms: median(&write),
            write_max_ms: write.iter().copied().reduce(f64::max),
            incomplete_rounds: incomplete,
            rounds,
        }
    }

    pub fn to_text(&self) -> String {
        let f = |v: Option<f64>| {
            v.map(|x| format!("{x:.1} ms"))
                .unwrap_or_else(|| "-".into())
        };
        let mut s = format!(
            "{} failover: {} rounds of kill -9 of the leader\n\n",
            self.target,
            self.rounds.len()
        );
        s.push_str("  round  killed  term      to-leader   to-first-write\n");
        for (i, r) in self.rounds.iter().enumerate() {
            s.push_str(&format!(
                "  {:>5}  {:>6}  {:>3}->{:<3}  {:>10}  {:>14}\n",
                i + 1,
                r.killed,
                r.old_term,
                r.new_term,
                f(r.to_leader_ms),
                f(r.to_write_ms)
            ));
        }
        s.push_str(&format!(
            "\n  new leader:   median {}, max {}\n  first write:  median {}, max {}\n",
            f(self.leader_median_ms),
            f(self.leader_max_ms),
            f(self.write_median_ms),
            f(self.write_max_ms)
        ));
        if self.incomplete_rounds > 0 {
            s.push_str(&format!(
                "  incomplete rounds: {}\n",
                self.incomplete_rounds
            ));
        }
        s
    }
}

/// Status of the members `which` (indexes into the endpoint list), in that order.
async fn statuses(
    conns: &[Option<Conn>],
    metrics: &[String],
    which: &[usize],
    timeout: Duration,
) -> Vec<Option<MemberStatus>> {
    let futs = which.iter().map(|&i| async move {
        if let Some(addr) = metrics.get(i) {
            return metrics_probe::probe(i as u64 + 1, addr, timeout).await;
        }
        match conns.get(i).and_then(Option::as_ref) {
            Some(c) => tokio::time::timeout(timeout, c.status())
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        }
    });
    futures::future::join_all(futs).await
}

/// Waits until every member answers and all name the same leader; returns its index.
async fn wait_whole(
    target: Target,
    endpoints: &[String],
    metrics: &[String],
    limit: Duration,
) -> anyhow::Result<(Vec<Option<Conn>>, usize, u64)> {
    let t0 = Instant::now();
    loop {
        let conns = connect_all(target, endpoints, Duration::from_millis(500)).await;
        let all: Vec<usize> = (0..endpoints.len()).collect();
        let st = statuses(&conns, metrics, &all, Duration::from_millis(500)).await;
        let leaders: Vec<usize> = st
            .iter()
            .enumerate()
            .filter(|(_, s)| s.map(|s| s.is_leader).unwrap_or(false))
            .map(|(i, _)| i)
            .collect();
        if let ([l], true) = (leaders.as_slice(), st.iter().all(Option::is_some)) {
            let lid = st[*l].map(|s| s.id).unwrap_or(0);
            let term = st[*l].map(|s| s.term).unwrap_or(0);
            // Metrics carry no leader id; the same term everywhere is the agreement signal.
            let agreed = |s: &MemberStatus| {
                if metrics.is_empty() {
                    s.leader == lid
                } else {
                    s.term == term
                }
            };
            if st.iter().all(|s| s.map(|s| agreed(&s)).unwrap_or(false)) {
                return Ok((conns, *l, term));
            }
        }
        anyhow::ensure!(
            t0.elapsed() < limit,
            "cluster not whole with one agreed leader within {limit:?}: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(
    target: Target,
    cluster: &mut Cluster,
    spec: &FailoverSpec,
) -> anyhow::Result<FailoverReport> {
    anyhow::ensure!(
        (1..=MAX_ROUNDS).contains(&spec.rounds),
        "--rounds must be 1..={MAX_ROUNDS}"
    );
    anyhow::ensure!(
        spec.endpoints.len() >= 3,
        "failover needs at least 3 endpoints"
    );
    let mut rounds = Vec::with_capacity(spec.rounds);
    for round in 0..spec.rounds {
        let (conns, leader, old_term) = wait_whole(
            target,
            &spec.endpoints,
            &spec.metrics,
            Duration::from_secs(60),
        )
        .await?;
        tokio::time::sleep(spec.settle).await;
        let survivor_idx: Vec<usize> = (0..conns.len()).filter(|i| *i != leader).collect();
        let survivors: Vec<Conn> = conns
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != leader)
            .filter_map(|(_, c)| c.clone())
            .collect();
        // Warm every survivor's connection so the measurement holds no handshakes.
        for c in &survivors {
            c.put(b"bench/failover/warm".to_vec(), spec.value.clone())
                .await
                .map_err(|e| anyhow::anyhow!("warm-up write before round {}: {e}", round + 1))?;
        }
        let victim = leader + 1;
        let t0 = Instant::now();
        cluster.kill9(victim)?;
        let deadline = t0 + spec.round_timeout;
        let ((to_leader, new_term), to_write) = tokio::join!(
            poll_leader(&conns, &spec.metrics, &survivor_idx, t0, deadline),
            first_write(&survivors, spec, t0, deadline)
        );
        let r = Round {
            killed: victim,
            old_term,
            new_term: new_term.unwrap_or(0),
            to_leader_ms: to_leader.map(|d| d.as_secs_f64() * 1e3),
            to_write_ms: to_write.map(|d| d.as_secs_f64() * 1e3),
        };
        eprintln!(
            "round {}: killed node {victim}: leader {:?} ms, first write {:?} ms",
            round + 1,
            r.to_leader_ms,
            r.to_write_ms
        );
        rounds.push(r);
        cluster.restart(victim)?;
    }
    wait_whole(
        target,
        &spec.endpoints,
        &spec.metrics,
        Duration::from_secs(60),
    )
    .await?;
    Ok(FailoverReport::from_rounds(target.name(), rounds))
}

async fn poll_leader(
    conns: &[Option<Conn>],
    metrics: &[String],
    survivors: &[usize],
    t0: Instant,
    deadline: Instant,
) -> (Option<Duration>, Option<u64>) {
    while Instant::now() < deadline {
        let st = statuses(conns, metrics, survivors, Duration::from_millis(100)).await;
        if let Some(s) = st.iter().flatten().find(|s| s.is_leader) {
            return (Some(t0.elapsed()), Some(s.term));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (None, None)
}

async fn first_write(
    survivors: &[Conn],
    spec: &FailoverSpec,
    t0: Instant,
    deadline: Instant,
) -> Option<Duration> {
    let first: Arc<Mutex<Option<Duration>>> = Arc::new(Mutex::new(None));
    let mut set = JoinSet::new();
    let mut n = 0u64;
    let mut tick = tokio::time::interval(spec.write_interval);
    while Instant::now() < deadline {
        if first.lock().await.is_some() {
            break;
        }
        tokio::select! {
            _ = tick.tick() => {
                for c in survivors {
                    let c = c.clone();
                    let first = first.clone();
                    let value = spec.value.clone();
                    let key = format!("bench/failover/{n}").into_bytes();
                    n += 1;
                    set.spawn(async move {
                        let r = tokio::time::timeout_at(deadline.into(), c.put(key, value)).await;
                        if let Ok(Ok(())) = r {
                            let mut f = first.lock().await;
                            if f.is_none() {
                                *f = Some(t0.elapsed());
                            }
                        }
                    });
                }
            }
            Some(_) = set.join_next(), if !set.is_empty() => {}
        }
    }
    set.abort_all();
    let out = *first.lock().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn report_counts_incomplete_rounds() {
        let r = |l: Option<f64>, w: Option<f64>| Round {
            killed: 1,
            old_term: 1,
            new_term: 2,
            to_leader_ms: l,
            to_write_ms: w,
        };
        let rep = FailoverReport::from_rounds(
            "aegis",
            vec![
                r(Some(100.0), Some(150.0)),
                r(Some(300.0), None),
                r(Some(200.0), Some(250.0)),
            ],
        );
        assert_eq!(rep.incomplete_rounds, 1);
        assert_eq!(rep.leader_median_ms, Some(200.0));
        assert_eq!(rep.leader_max_ms, Some(300.0));
        assert_eq!(rep.write_median_ms, Some(200.0));
        assert_eq!(rep.write_max_ms, Some(250.0));
        assert!(rep.to_text().contains("incomplete rounds: 1"));
    }
}
