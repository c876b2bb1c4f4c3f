//! Fault injection on a loopback cluster of real node processes: kill -9,
//! SIGSTOP/SIGCONT pauses, and failpoints (slow fsync, crash on apply)
//! armed per node at its next start.
//!
//! Per-node failpoints: the cluster runs each node through a small wrapper
//! script that exports `AEGIS_FAILPOINTS` from `failpoints-<id>` in the
//! harness directory (if present) and then execs the real binary, so the
//! process id, command line and signals stay those of the node.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aegis_client::devcluster::DevCluster;
use aegis_client::{Backoff, Client, ClientConfig, NodeStatus};
use serde::Serialize;

use crate::check::digest::DigestSample;
use crate::rng::Rng;

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("cluster: {0}")]
    Dev(#[from] aegis_client::devcluster::DevError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("client: {0}")]
    Client(#[from] aegis_client::Error),
    #[error("no leader within {0:?}")]
    NoLeader(Duration),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> FaultError {
    let context = context.into();
    move |source| FaultError::Io { context, source }
}

/// A client that asks one node once, quickly: for observing, not for load.
pub fn probe_client(endpoint: &str) -> Result<Client, aegis_client::Error> {
    Client::new_lazy(
        vec![endpoint.to_owned()],
        ClientConfig {
            connect_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(800),
            backoff: Backoff {
                max_attempts: 1,
                ..Backoff::default()
            },
            ..ClientConfig::default()
        },
    )
}

pub struct Cluster {
    pub dev: DevCluster,
    harness_dir: tempfile::TempDir,
    probes: Prober,
}

/// Observes every node's Admin status; cheap to clone into a sampler task.
#[derive(Clone)]
pub struct Prober {
    probes: Vec<Client>,
}

impl Prober {
    /// One probe client per node, node N at position N - 1.
    pub fn new(probes: Vec<Client>) -> Self {
        Prober { probes }
    }

    /// The node that says it leads, if one answers.
    pub async fn leader(&self) -> Option<usize> {
        self.statuses_brief().await.into_iter().find_map(|(n, s)| {
            s.filter(|s| s.role == "leader" && s.leader_id == s.node_id)
                .map(|_| n)
        })
    }

    pub async fn wait_leader(&self, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader().await {
                return Some(l);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every node has applied everything the leader had
    /// committed when the wait began; returns whether they did, and the
    /// digests of a moment when all answered at one index if one came
    /// within a few seconds more (else the last digests seen).
    ///
    /// Commits never stop (the leader's clock ticks, session keep-alives),
    /// so equal applied indexes at one instant are a matter of timing;
    /// catching up to a fixed target is what healing must achieve.
    pub async fn converge(&self, at_ns: u64, timeout: Duration) -> (bool, Vec<DigestSample>) {
        let deadline = Instant::now() + timeout;
        let mut target = None;
        let caught_up = loop {
            let st = self.statuses_brief().await;
            let answered: Vec<&NodeStatus> = st.iter().filter_map(|(_, s)| s.as_ref()).collect();
            if target.is_none() {
                target = answered
                    .iter()
                    .filter(|s| s.role == "leader" && s.leader_id == s.node_id)
                    .map(|s| s.commit_index)
                    .max();
            }
            if let Some(t) = target {
                if answered.len() == self.probes.len()
                    && answered.iter().all(|s| s.applied_index >= t)
                {
                    break true;
                }
            }
            if Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let settle = Instant::now() + Duration::from_secs(5);
        loop {
            let digests = self.digests(at_ns).await;
            let at_one_index = digests.len() == self.probes.len()
                && digests.windows(2).all(|w| w[0].index == w[1].index);
            if !caught_up || at_one_index || Instant::now() > settle {
                return (caught_up, digests);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Status of node `n` without the state digest, which is costly for a
    /// node to compute.
    pub async fn brief(&self, n: usize) -> Option<NodeStatus> {
        self.probes
            .get(n.checked_sub(1)?)?
            .status_brief()
            .await
            .ok()
    }

    pub async fn statuses_brief(&self) -> Vec<(usize, Option<NodeStatus>)> {
        let futs = (1..=self.probes.len()).map(|n| async move { (n, self.brief(n).await) });
        futures::future::join_all(futs).await
    }

    pub async fn status(&self, n: usize) -> Option<NodeStatus> {
        self.probes.get(n.checked_sub(1)?)?.status().await.ok()
    }

    pub async fn statuses(&self) -> Vec<(usize, Option<NodeStatus>)> {
        let futs = (1..=self.probes.len()).map(|n| async move { (n, self.status(n).await) });
        futures::future::join_all(futs).await
    }

    /// One digest observation per answering node.
    pub async fn digests(&self, at_ns: u64) -> Vec<DigestSample> {
        self.statuses()
            .await
            .into_iter()
            .filter_map(|(n, s)| {
                let s = s?;
                Some(DigestSample {
                    node: n as u64,
                    index: s.digest_index,
                    digest: s.state_digest,
                    at_ns,
                })
            })
            .collect()
    }
}

/// Raft timing for a chaos cluster other than the node's default (heartbeat 50, election
/// 250..500 ms): `aegis-chaos soak --timing 20,80,160` soaks the timing the failover benchmark
/// meets its target at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl std::str::FromStr for RaftTiming {
    type Err = String;

    /// `HEARTBEAT,MIN,MAX` in milliseconds.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [hb, min, max] = parts[..] else {
            return Err(format!(
                "timing {s:?}: expected HEARTBEAT,MIN,MAX in milliseconds, e.g. 20,80,160"
            ));
        };
        let ms = |what: &str, v: &str| {
            v.parse::<u64>().map_err(|_| {
                format!("timing {s:?}: {what} {v:?} is not a whole number of milliseconds")
            })
        };
        Ok(RaftTiming {
            heartbeat_ms: ms("heartbeat", hb)?,
            election_min_ms: ms("election minimum", min)?,
            election_max_ms: ms("election maximum", max)?,
        })
    }
}

impl std::fmt::Display for RaftTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "heartbeat {} ms, election {}..{} ms",
            self.heartbeat_ms, self.election_min_ms, self.election_max_ms
        )
    }
}

/// The chaos cluster's config: snapshots every 10,000 entries rather than the default 100,000,
/// so a run of a few minutes still builds, purges and installs them while faults are injected;
/// and the timing, if one is given (the node's envelope checks it at start).
fn chaos_config_yaml(timing: Option<RaftTiming>) -> String {
    let mut yaml = String::from("raft:\n  snapshot-logs-since-last: 10000\n");
    if let Some(t) = timing {
        yaml.push_str(&format!(
            "  heartbeat-interval-ms: {}\n  election-timeout-min-ms: {}\n  election-timeout-max-ms: {}\n",
            t.heartbeat_ms, t.election_min_ms, t.election_max_ms
        ));
    }
    yaml
}

impl Cluster {
    /// Starts `nodes` nodes of `node_bin` and waits for a leader.
    pub async fn start(node_bin: &Path, nodes: usize) -> Result<Cluster, FaultError> {
        Self::start_with_timing(node_bin, nodes, None).await
    }

    /// As [`Cluster::start`], at the given Raft timing instead of the node's default.
    pub async fn start_with_timing(
        node_bin: &Path,
        nodes: usize,
        timing: Option<RaftTiming>,
    ) -> Result<Cluster, FaultError> {
        let harness_dir = tempfile::Builder::new()
            .prefix("aegis-chaos-")
            .tempdir()
            .map_err(io("creating the harness directory"))?;
        let wrapper = harness_dir.path().join("aegis-node");
        let script = format!(
            "#!/bin/sh\n# $1 is --id, $2 the node id (the order devcluster uses).\nf='{dir}/failpoints-'\"$2\"\nif [ -f \"$f\" ]; then AEGIS_FAILPOINTS=\"$(cat \"$f\")\"; export AEGIS_FAILPOINTS; else unset AEGIS_FAILPOINTS; fi\nexec '{bin}' \"$@\"\n",
            dir = harness_dir.path().display(),
            bin = node_bin.display()
        );
        std::fs::write(&wrapper, script).map_err(io("writing the node wrapper"))?;
        let mut perms = std::fs::metadata(&wrapper)
            .map_err(io("reading the wrapper"))?
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&wrapper, perms).map_err(io("making the wrapper executable"))?;

        let mut dev = DevCluster::ephemeral(&wrapper, nodes)?
            .with_config_yaml(&chaos_config_yaml(timing))?
            .with_up_timeout(Duration::from_secs(60));
        dev.up().await?;
        let probes = (1..=nodes)
            .map(|n| probe_client(&dev.addrs(n).map(|a| a.client.clone()).unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cluster {
            dev,
            harness_dir,
            probes: Prober { probes },
        })
    }

    pub fn size(&self) -> usize {
        self.dev.size()
    }

    pub fn client(&self, config: ClientConfig) -> Result<Client, aegis_client::Error> {
        Client::new_lazy(self.dev.client_endpoints(), config)
    }

    fn fp_path(&self, n: usize) -> PathBuf {
        self.harness_dir.path().join(format!("failpoints-{n}"))
    }

    /// Failpoints node `n` gets at its next start (`None` clears them).
    pub fn set_failpoints(&self, n: usize, spec: Option<&str>) -> Result<(), FaultError> {
        let p = self.fp_path(n);
        match spec {
            Some(s) => std::fs::write(&p, s).map_err(io(format!("writing {}", p.display()))),
            None => match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io("clearing failpoints")(e))
                }
                _ => Ok(()),
            },
        }
    }

    /// How many times node `n` has reported armed failpoints in its log.
    pub fn armed_count(&self, n: usize) -> usize {
        std::fs::read_to_string(self.dev.log_path(n))
            .map(|t| t.matches("failpoints armed").count())
            .unwrap_or(0)
    }

    pub fn prober(&self) -> Prober {
        self.probes.clone()
    }

    pub async fn status(&self, n: usize) -> Option<NodeStatus> {
        self.probes.status(n).await
    }

    pub async fn statuses(&self) -> Vec<(usize, Option<NodeStatus>)> {
        self.probes.statuses().await
    }

    /// The node that says it leads, if one answers.
    pub async fn leader(&self) -> Option<usize> {
        self.probes.leader().await
    }

    pub async fn wait_leader(&self, timeout: Duration) -> Result<usize, FaultError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader().await {
                return Ok(l);
            }
            if Instant::now() > deadline {
                return Err(FaultError::NoLeader(timeout));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn digests(&self, at_ns: u64) -> Vec<DigestSample> {
        self.probes.digests(at_ns).await
    }

    /// Waits until every node answers with the same applied index; returns
    /// whether they did and the final digests.
    pub async fn converge(&self, at_ns: u64, timeout: Duration) -> (bool, Vec<DigestSample>) {
        self.probes.converge(at_ns, timeout).await
    }
}

/// A fault the harness knows how to inject and heal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Fault {
    /// kill -9 of the current leader.
    KillLeader,
    /// kill -9 of one follower.
    KillFollower,
    /// kill -9 of two nodes at once (a minority).
    KillTwo,
    /// SIGSTOP of the leader for `ms`, then SIGCONT.
    PauseLeader { ms: u64 },
    /// SIGSTOP of one follower for `ms`, then SIGCONT.
    PauseFollower { ms: u64 },
    /// Restart one node with a failpoint that sleeps `ms` before each log
    /// fsync; healed by restarting it without.
    SlowFsync { ms: u64 },
    /// Restart one node with a failpoint that crashes it on apply now and
    /// then; healed by restarting it without.
    CrashOnApply,
    /// kill -9 of every node under load, then a restart of all (the end of
    /// each epoch; never drawn by [`Fault::random`]).
    KillAll,
}

impl Fault {
    /// Needs a node built with the `failpoints` feature.
    pub fn needs_failpoints(self) -> bool {
        matches!(self, Fault::SlowFsync { .. } | Fault::CrashOnApply)
    }

    /// The `kind` it is reported under.
    pub fn kind(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill_leader",
            Fault::KillFollower => "kill_follower",
            Fault::KillTwo => "kill_two",
            Fault::PauseLeader { .. } => "pause_leader",
            Fault::PauseFollower { .. } => "pause_follower",
            Fault::SlowFsync { .. } => "slow_fsync",
            Fault::CrashOnApply => "crash_on_apply",
            Fault::KillAll => "kill_all",
        }
    }

    /// A random fault. With `failpoints`, half the draws are failpoint
    /// faults (slow fsync or crash on apply), so a short run sees both.
    pub fn random(rng: &mut Rng, failpoints: bool) -> Fault {
        if failpoints && rng.below(2) == 0 {
            return if rng.below(2) == 0 {
                Fault::SlowFsync {
                    ms: 50 + rng.below(200),
                }
            } else {
                Fault::CrashOnApply
            };
        }
        match rng.below(5) {
            0 => Fault::KillLeader,
            1 => Fault::KillFollower,
            2 => Fault::KillTwo,
            3 => Fault::PauseLeader {
                ms: 1500 + rng.below(2500),
            },
            _ => Fault::PauseFollower {
                ms: 1000 + rng.below(3000),
            },
        }
    }
}

/// What was done, so it can be undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Injected {
    pub fault: Fault,
    pub nodes: Vec<usize>,
    /// False when the fault could not be applied (e.g. failpoints not armed).
    pub effective: bool,
    /// For crash on apply: whether the node did crash while armed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crashed: Option<bool>,
}

fn followers(leader: usize, size: usize) -> Vec<usize> {
    (1..=size).filter(|n| *n != leader).collect()
}

/// Injects `fault`; the caller holds it for a while and then calls [`heal`].
pub async fn inject(c: &mut Cluster, fault: Fault, rng: &mut Rng) -> Result<Injected, FaultError> {
    if fault == Fault::KillAll {
        for n in 1..=c.size() {
            c.dev.kill(n)?;
        }
        return Ok(Injected {
            fault,
            nodes: (1..=c.size()).collect(),
            effective: true,
            crashed: None,
        });
    }
    let leader = c.wait_leader(Duration::from_secs(20)).await?;
    let fs = followers(leader, c.size());
    let pick = |rng: &mut Rng| fs[rng.below(fs.len() as u64) as usize];
    let mut effective = true;
    let nodes = match fault {
        // (KillAll returned above.)
        Fault::KillLeader | Fault::KillAll => {
            c.dev.kill(leader)?;
            vec![leader]
        }
        Fault::KillFollower => {
            let n = pick(rng);
            c.dev.kill(n)?;
            vec![n]
        }
        Fault::KillTwo => {
            let a = pick(rng);
            let mut b = pick(rng);
            if b == a {
                b = leader;
            }
            c.dev.kill(a)?;
            c.dev.kill(b)?;
            vec![a, b]
        }
        Fault::PauseLeader { .. } => {
            c.dev.stop(leader)?;
            vec![leader]
        }
        Fault::PauseFollower { .. } => {
            let n = pick(rng);
            c.dev.stop(n)?;
            vec![n]
        }
        Fault::SlowFsync { ms } => {
            let n = pick(rng);
            let spec = format!("log_store::append::before=sleep({ms})");
            effective = restart_with(c, n, Some(&spec)).await?;
            vec![n]
        }
        Fault::CrashOnApply => {
            let n = pick(rng);
            effective = restart_with(c, n, Some("state_machine::apply::before=2%panic")).await?;
            vec![n]
        }
    };
    Ok(Injected {
        fault,
        nodes,
        effective,
        crashed: None,
    })
}

/// Restarts node `n` with (or without) failpoints; returns whether the
/// node reported them armed.
async fn restart_with(c: &mut Cluster, n: usize, spec: Option<&str>) -> Result<bool, FaultError> {
    let before = c.armed_count(n);
    c.set_failpoints(n, spec)?;
    if c.dev.pid(n).is_some() {
        c.dev.kill(n)?;
    }
    c.dev.start(n)?;
    if spec.is_none() {
        return Ok(true);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if c.armed_count(n) > before {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(false)
}

/// Holds a pause for its duration; other faults are held by the caller.
pub async fn hold(inj: &Injected, default: Duration) {
    let d = match inj.fault {
        Fault::PauseLeader { ms } | Fault::PauseFollower { ms } => Duration::from_millis(ms),
        _ => default,
    };
    tokio::time::sleep(d).await;
}

/// Undoes an injected fault: resumes paused nodes, restarts killed ones and
/// clears failpoints. For a crash on apply, first notes whether the node
/// crashed.
pub async fn heal(c: &mut Cluster, inj: &mut Injected) -> Result<(), FaultError> {
    if inj.fault == Fault::CrashOnApply {
        let crashed = inj.nodes.iter().any(|&n| c.dev.pid(n).is_none());
        inj.crashed = Some(crashed);
    }
    for &n in &inj.nodes {
        match inj.fault {
            Fault::PauseLeader { .. } | Fault::PauseFollower { .. } => c.dev.cont(n)?,
            Fault::SlowFsync { .. } | Fault::CrashOnApply => {
                restart_with(c, n, None).await?;
            }
            _ => c.dev.start(n)?,
        }
    }
    Ok(())
}

/// Restarts every node that is down (a crash from a failpoint, say).
pub fn revive_all(c: &mut Cluster) -> Result<Vec<usize>, FaultError> {
    let mut revived = Vec::new();
    for n in 1..=c.size() {
        if c.dev.pid(n).is_none() {
            c.dev.start(n)?;
            revived.push(n);
        }
    }
    Ok(revived)
}

#[cfg(test)]
mod tests {
    use super::{chaos_config_yaml, RaftTiming};

    #[test]
    fn a_timing_reads_as_heartbeat_min_max() {
        let t: RaftTiming = "20, 80,160".parse().expect("parses");
        assert_eq!(
            t,
            RaftTiming {
                heartbeat_ms: 20,
                election_min_ms: 80,
                election_max_ms: 160
            }
        );
        assert_eq!(t.to_string(), "heartbeat 20 ms, election 80..160 ms");
        for bad in ["20,80", "20,80,160,1", "20,eighty,160", "-1,80,160", ""] {
            let err = bad.parse::<RaftTiming>().expect_err(bad);
            assert!(err.contains("timing"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_timing_goes_under_raft_beside_the_snapshot_interval() {
        assert_eq!(
            chaos_config_yaml(None),
            "raft:\n  snapshot-logs-since-last: 10000\n"
        );
        let t = RaftTiming {
            heartbeat_ms: 20,
            election_min_ms: 80,
            election_max_ms: 160,
        };
        let cfg = aegis_config::ClusterConfig::from_yaml(&chaos_config_yaml(Some(t)))
            .expect("a config the node reads");
        assert_eq!(cfg.raft.heartbeat_interval_ms, 20);
        assert_eq!(cfg.raft.election_timeout_min_ms, 80);
        assert_eq!(cfg.raft.election_timeout_max_ms, 160);
        assert_eq!(cfg.raft.snapshot_logs_since_last, 10_000);
        assert_eq!(cfg.check(), vec![]);
    }
}
