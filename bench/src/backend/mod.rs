//! The two systems under test behind one interface. Each backend maps the benchmark's
//! operations onto its own API: AEGIS sessions and locks, etcd leases and its lock service.

mod aegis;
mod etcd;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use aegis::{AegisConn, AegisWatcher, AegisWorker};
pub use etcd::{EtcdConn, EtcdWatcher, EtcdWorker};

/// Which system to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Aegis,
    Etcd,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Aegis => "aegis",
            Target::Etcd => "etcd",
        }
    }
}

/// A closed-loop operation; one "request" of the report is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// A durable put of one key.
    Put,
    /// A linearizable get of one key (read index on both systems).
    GetLinearizable,
    /// A serializable (possibly stale) get served by the contacted member.
    GetSerializable,
    /// compare(mod_revision < max) then put: a one-compare, one-put transaction.
    Txn,
    /// Acquire a lock with the worker's session/lease, then release it: one request = both.
    Lock,
    /// One session keep-alive (AEGIS unary KeepAlive, etcd LeaseKeepAlive stream round trip).
    KeepAlive,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::GetLinearizable => "get-linearizable",
            Op::GetSerializable => "get-serializable",
            Op::Txn => "txn",
            Op::Lock => "lock",
            Op::KeepAlive => "keepalive",
        }
    }
}

/// What every worker of a run shares.
#[derive(Debug, Clone)]
pub struct OpSpec {
    pub op: Op,
    pub value: Arc<Vec<u8>>,
    pub key_size: usize,
    pub key_space: u64,
    /// Distinct lock names; fewer than clients means contention.
    pub lock_names: u64,
    pub session_ttl: Duration,
    pub request_timeout: Duration,
}

/// What a status call learns about one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: u64,
    /// 0 when unknown.
    pub leader: u64,
    pub is_leader: bool,
    pub term: u64,
    /// AEGIS applied index / etcd raft index.
    pub index: u64,
}

/// `host:port` or a URL -> a URL tonic accepts.
pub fn url(endpoint: &str) -> String {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

/// One connection to one member.
#[derive(Clone)]
pub enum Conn {
    Aegis(AegisConn),
    Etcd(Box<EtcdConn>),
}

impl Conn {
    pub async fn connect(
        target: Target,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Conn, String> {
        match target {
            Target::Aegis => AegisConn::connect(endpoint, timeout).await.map(Conn::Aegis),
            Target::Etcd => EtcdConn::connect(endpoint, timeout)
                .await
                .map(|c| Conn::Etcd(Box::new(c))),
        }
    }

    /// Sets up one closed-loop worker (its session, lease or lock name).
    pub async fn worker(&self, spec: &OpSpec, index: u64) -> Result<Worker, String> {
        match self {
            Conn::Aegis(c) => c
                .worker(spec, index)
                .await
                .map(|w| Worker::Aegis(Box::new(w))),
            Conn::Etcd(c) => c
                .worker(spec, index)
                .await
                .map(|w| Worker::Etcd(Box::new(w))),
        }
    }

    pub async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        match self {
            Conn::Aegis(c) => c.put(key, value).await,
            Conn::Etcd(c) => c.put(key, value).await,
        }
    }

    pub async fn status(&self) -> Result<MemberStatus, String> {
        match self {
            Conn::Aegis(c) => c.status().await,
            Conn::Etcd(c) => c.status().await,
        }
    }

    /// Watches every key under `prefix` from now; returns once the server confirmed the watch.
    pub async fn watch_prefix(&self, prefix: &[u8]) -> Result<Watcher, String> {
        match self {
            Conn::Aegis(c) => c.watch_prefix(prefix).await.map(Watcher::Aegis),
            Conn::Etcd(c) => c.watch_prefix(prefix).await.map(Watcher::Etcd),
        }
    }
}

/// A closed-loop worker: owns whatever per-client state its operation needs.
pub enum Worker {
    Aegis(Box<AegisWorker>),
    Etcd(Box<EtcdWorker>),
}

impl Worker {
    pub async fn run_once(&mut self) -> Result<(), String> {
        match self {
            Worker::Aegis(w) => w.run_once().await,
            Worker::Etcd(w) => w.run_once().await,
        }
    }

    /// Best-effort: closes the worker's session or revokes its lease.
    pub async fn cleanup(self) {
        match self {
            Worker::Aegis(w) => (*w).cleanup().await,
            Worker::Etcd(w) => (*w).cleanup().await,
        }
    }
}

/// A watch stream yielding the keys of each delivered batch of events.
pub enum Watcher {
    Aegis(AegisWatcher),
    Etcd(EtcdWatcher),
}

impl Watcher {
    /// `Ok(None)` when the stream ended.
    pub async fn next_keys(&mut self) -> Result<Option<Vec<Vec<u8>>>, String> {
        match self {
            Watcher::Aegis(w) => w.next_keys().await,
            Watcher::Etcd(w) => w.next_keys().await,
        }
    }
}

/// Connects to every endpoint (one connection each); `None` where it failed.
pub async fn connect_all(
    target: Target,
    endpoints: &[String],
    timeout: Duration,
) -> Vec<Option<Conn>> {
    let futs = endpoints.iter().map(|e| Conn::connect(target, e, timeout));
    futures::future::join_all(futs)
        .await
        .into_iter()
        .map(Result::ok)
        .collect()
}

/// Index of the endpoint whose member says it is the leader, asking each with `timeout`.
pub async fn find_leader(conns: &[Option<Conn>], timeout: Duration) -> Option<usize> {
    let futs = conns.iter().map(|c| async move {
        match c {
            Some(c) => tokio::time::timeout(timeout, c.status())
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        }
    });
    let statuses = futures::future::join_all(futs).await;
    statuses
        .iter()
        .position(|s| s.map(|s| s.is_leader).unwrap_or(false))
}

/// As [`find_leader`], asking again (over new connections) every 200 ms for
/// up to `patience`: no member says it leads while an election runs, and a
/// fresh cluster often holds a second one just after its first.
pub async fn wait_for_leader(
    target: Target,
    endpoints: &[String],
    timeout: Duration,
    patience: Duration,
) -> Option<usize> {
    retry_lookup(patience, Duration::from_millis(200), || async {
        let conns = connect_all(target, endpoints, timeout).await;
        find_leader(&conns, timeout).await
    })
    .await
}

/// Calls `lookup` until it answers or `patience` has passed since the first
/// call, pausing `every` between calls.
async fn retry_lookup<F, Fut>(patience: Duration, every: Duration, mut lookup: F) -> Option<usize>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<usize>>,
{
    let t0 = Instant::now();
    loop {
        if let Some(found) = lookup().await {
            return Some(found);
        }
        if t0.elapsed() >= patience {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lookup_is_repeated_until_a_leader_is_found() {
        let mut calls = 0;
        let found = retry_lookup(Duration::from_secs(10), Duration::from_millis(1), || {
            calls += 1;
            let answer = (calls == 3).then_some(2);
            async move { answer }
        })
        .await;
        assert_eq!((found, calls), (Some(2), 3));
    }

    #[tokio::test]
    async fn a_lookup_gives_up_after_its_patience() {
        let mut calls = 0;
        let t0 = Instant::now();
        let found = retry_lookup(Duration::from_millis(30), Duration::from_millis(5), || {
            calls += 1;
            async { None }
        })
        .await;
        assert_eq!(found, None);
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert!(calls >= 2, "asked {calls} times");
    }

    #[test]
    fn url_adds_scheme_once() {
        assert_eq!(url("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(url("http://h:2"), "http://h:2");
    }
}
