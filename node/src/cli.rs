//! The node's command line.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::Parser;

use crate::raft::{Member, NodeId};

#[derive(Debug, Parser)]
#[command(
    name = "aegis-node",
    version,
    about = "An AEGIS replica: Raft-replicated locks, sessions and KV"
)]
pub struct Args {
    /// This node's Raft id (> 0).
    #[arg(long, env = "AEGIS_NODE_ID")]
    pub id: NodeId,
    /// Where the log, vote and snapshots live.
    #[arg(long, env = "AEGIS_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Raft RPCs from peers.
    #[arg(long, env = "AEGIS_PEER_ADDR")]
    pub peer_addr: String,
    /// The public aegis.v1 services.
    #[arg(long, env = "AEGIS_CLIENT_ADDR")]
    pub client_addr: String,
    /// /metrics, /healthz and /readyz.
    #[arg(long, env = "AEGIS_METRICS_ADDR")]
    pub metrics_addr: String,
    /// Cluster config (YAML). Defaults apply when omitted.
    #[arg(long, env = "AEGIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Initial membership of a new cluster, the same on every founding
    /// node: `1=PEER/CLIENT,2=PEER/CLIENT,...`. Without it a node with an
    /// empty log waits to be added as a learner.
    #[arg(long, env = "AEGIS_MEMBERS")]
    pub members: Option<String>,
    /// Async runtime worker threads. Default: the CPUs this process may use
    /// (affinity and cgroup CPU limits included). Nodes sharing one machine
    /// should each get their share of it, at least 1 (docs/adr/0015).
    #[arg(long, env = "AEGIS_WORKER_THREADS")]
    pub worker_threads: Option<NonZeroUsize>,
    /// Nice value of the thread that fdatasyncs the log (-20..=19; 0 leaves
    /// it at the process's). Every write waits for that thread, and it uses
    /// little CPU: ahead of the runtime's workers, its syncs do not wait for
    /// a busy core. Raising it needs CAP_SYS_NICE; without that the node says
    /// so once and runs on (docs/adr/0018).
    #[arg(long, env = "AEGIS_WAL_FLUSHER_NICE", default_value_t = -10,
          allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-20..=19))]
    pub wal_flusher_nice: i32,
    /// Microseconds a leader's runtime worker keeps its CPU, yielding,
    /// before it sleeps while it waits on one to four writes, and after the
    /// last of so few returned (0: sleep at once). On a virtual machine a
    /// sleeping worker halts its vCPU, and the quorum's reply or the client's
    /// next request then waits for the host to run it again (docs/adr/0021).
    #[arg(long, env = "AEGIS_LEADER_SPIN_US", default_value_t = 400,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub leader_spin_us: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MembersError {
    #[error("member '{0}' is not ID=PEER_ADDR/CLIENT_ADDR")]
    Malformed(String),
    #[error("member id '{0}' is not a positive integer")]
    BadId(String),
    #[error("member id {0} appears twice")]
    Duplicate(NodeId),
}

pub fn parse_members(s: &str) -> Result<BTreeMap<NodeId, Member>, MembersError> {
    let mut out = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, addrs) = item
            .split_once('=')
            .ok_or_else(|| MembersError::Malformed(item.into()))?;
        let (peer, client) = addrs
            .split_once('/')
            .ok_or_else(|| MembersError::Malformed(item.into()))?;
        if peer.is_empty() || client.is_empty() {
            return Err(MembersError::Malformed(item.into()));
        }
        let id: NodeId = id
            .trim()
            .parse()
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(|| MembersError::BadId(id.into()))?;
        let member = Member {
            peer_addr: peer.to_string(),
            client_addr: client.to_string(),
            // Learned from the member itself before the group is initialised.
            incarnation: 0,
        };
        if out.insert(id, member).is_some() {
            return Err(MembersError::Duplicate(id));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The required arguments and then `extra`.
    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let required = [
            "aegis-node",
            "--id=1",
            "--data-dir=d",
            "--peer-addr=p",
            "--client-addr=c",
            "--metrics-addr=m",
        ];
        Args::try_parse_from(required.iter().chain(extra))
    }

    #[test]
    fn parses_members() {
        let m = parse_members("1=127.0.0.1:7501/127.0.0.1:7401, 2=h:2/h:3").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&1].peer_addr, "127.0.0.1:7501");
        assert_eq!(m[&2].client_addr, "h:3");
    }

    #[test]
    fn worker_threads_is_optional_and_positive() {
        assert_eq!(parse(&[]).map(|a| a.worker_threads).ok(), Some(None));
        assert_eq!(
            parse(&["--worker-threads=3"])
                .ok()
                .and_then(|a| a.worker_threads),
            NonZeroUsize::new(3)
        );
        assert!(parse(&["--worker-threads=0"]).is_err());
        assert!(parse(&["--worker-threads=many"]).is_err());
    }

    #[test]
    fn leader_spin_defaults_to_400_us_and_is_bounded() {
        assert_eq!(parse(&[]).map(|a| a.leader_spin_us).ok(), Some(400));
        assert_eq!(
            parse(&["--leader-spin-us=0"])
                .map(|a| a.leader_spin_us)
                .ok(),
            Some(0)
        );
        assert!(parse(&["--leader-spin-us=10001"]).is_err());
        assert!(parse(&["--leader-spin-us=-1"]).is_err());
    }

    #[test]
    fn wal_flusher_nice_defaults_high_and_is_bounded() {
        assert_eq!(parse(&[]).map(|a| a.wal_flusher_nice).ok(), Some(-10));
        assert_eq!(
            parse(&["--wal-flusher-nice", "-5"])
                .map(|a| a.wal_flusher_nice)
                .ok(),
            Some(-5)
        );
        assert_eq!(
            parse(&["--wal-flusher-nice=0"])
                .map(|a| a.wal_flusher_nice)
                .ok(),
            Some(0)
        );
        assert!(parse(&["--wal-flusher-nice=-21"]).is_err());
        assert!(parse(&["--wal-flusher-nice=20"]).is_err());
        assert!(parse(&["--wal-flusher-nice=high"]).is_err());
    }

    #[test]
    fn rejects_bad_members() {
        assert_eq!(
            parse_members("1=a"),
            Err(MembersError::Malformed("1=a".into()))
        );
        assert_eq!(parse_members("x=a/b"), Err(MembersError::BadId("x".into())));
        assert_eq!(parse_members("0=a/b"), Err(MembersError::BadId("0".into())));
        assert_eq!(
            parse_members("1=a/b,1=c/d"),
            Err(MembersError::Duplicate(1))
        );
        assert_eq!(
            parse_members("1=/b"),
            Err(MembersError::Malformed("1=/b".into()))
        );
    }
}
