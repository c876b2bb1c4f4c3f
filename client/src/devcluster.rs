//! A local cluster of real `aegis-node` processes on loopback, for development and tests.
//!
//! Layout under the cluster directory, per node N: `node-N/data/` (the data dir),
//! `node-N/node.log` (stdout and stderr, appended across restarts) and `node-N/pid`. The pid
//! files let a later process adopt the nodes: `aegisctl dev up` in one command and
//! `aegisctl dev kill 3` in another.
//!
//! Default ports (see [`BasePorts`]): node N listens for clients on 127.0.0.1:740N, for peers on
//! 127.0.0.1:750N and serves metrics on 127.0.0.1:760N.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{Client, ClientConfig};
use crate::endpoints::Backoff;

/// Name of the node executable looked up next to the current one and on PATH.
pub const NODE_BIN_NAME: &str = "aegis-node";

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no node {0} in this cluster (nodes are 1..={1})")]
    NoSuchNode(usize, usize),
    #[error("node {0} is not running")]
    NotRunning(usize),
    #[error("cannot find the {NODE_BIN_NAME} binary: pass --node-bin or set AEGIS_NODE_BIN")]
    NodeBinNotFound,
    #[error("no leader within {0:?}; see the node logs under {1}")]
    NoLeader(Duration, PathBuf),
    #[error("port base {0} + node {1} is beyond 65535")]
    PortOutOfRange(u16, usize),
    #[error("a cluster needs 1..=9 nodes, got {0}")]
    BadSize(usize),
    #[error("node {0} did not reach state {1:?} within {2:?} of the signal")]
    SignalNotApplied(usize, ProcState, Duration),
    #[error("signal {signal} to pid {pid} failed: {source}")]
    Signal {
        signal: i32,
        pid: i32,
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevError {
    let context = context.into();
    move |source| DevError::Io { context, source }
}

/// The first port of each kind; node N uses base + N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasePorts {
    pub client: u16,
    pub peer: u16,
    pub metrics: u16,
}

impl Default for BasePorts {
    fn default() -> Self {
        Self {
            client: 7400,
            peer: 7500,
            metrics: 7600,
        }
    }
}

/// Where one node listens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeAddrs {
    pub client: String,
    pub peer: String,
    pub metrics: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcState {
    Running,
    /// Frozen by SIGSTOP.
    Stopped,
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeProcess {
    pub id: usize,
    pub pid: Option<i32>,
    pub state: ProcState,
    pub addrs: NodeAddrs,
    pub log: PathBuf,
}

/// Finds the node binary: an explicit path, else next to the current executable (and its
/// parent, which covers test binaries in `target/debug/deps`), else PATH.
pub fn resolve_node_bin(explicit: Option<PathBuf>) -> Result<PathBuf, DevError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(DevError::Io {
                context: format!("node binary {}", p.display()),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            })
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let cand = dir.join(NODE_BIN_NAME);
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(NODE_BIN_NAME))
        .find(|c| c.is_file())
        .ok_or(DevError::NodeBinNotFound)
}

/// Each node's share of this machine's CPUs, at least 1. Nodes that share a
/// machine and each start a worker per CPU wake one another's workers across
/// cores at every hand-off (docs/adr/0015).
fn worker_share(cpus: usize, nodes: usize) -> usize {
    (cpus / nodes.max(1)).max(1)
}

/// The `--members` value every node of the cluster starts with.
pub fn members_arg(nodes: &[NodeAddrs]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={}/{}", i + 1, a.peer, a.client))
        .collect::<Vec<_>>()
        .join(",")
}

pub struct DevCluster {
    dir: PathBuf,
    node_bin: PathBuf,
    nodes: Vec<NodeAddrs>,
    extra_args: Vec<String>,
    children: HashMap<usize, Child>,
    /// Set for ephemeral clusters: the directory goes away and the children die with us.
    temp: Option<tempfile::TempDir>,
    up_timeout: Duration,
    /// Nodes 1..=founders bootstrap the cluster with `--members`; later ones join as learners.
    founders: usize,
    /// Port bases of a fixed-port cluster; None for an ephemeral one (free ports).
    base: Option<BasePorts>,
}

impl std::fmt::Debug for DevCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCluster")
            .field("dir", &self.dir)
            .field("nodes", &self.nodes)
            .finish()
    }
}

impl DevCluster {
    /// A cluster whose node N uses `base + N` ports. Nothing starts until [`DevCluster::up`].
    pub fn new(
        dir: impl Into<PathBuf>,
        node_bin: impl Into<PathBuf>,
        nodes: usize,
        base: BasePorts,
    ) -> Result<Self, DevError> {
        if !(1..=9).contains(&nodes) {
            return Err(DevError::BadSize(nodes));
        }
        let addrs = (1..=nodes)
            .map(|n| fixed_addrs(base, n))
            .collect::<Result<_, _>>()?;
        let mut c = Self::with_addrs(dir.into(), node_bin.into(), addrs);
        c.base = Some(base);
        Ok(c)
    }

    /// A throwaway cluster on free ports in a temporary directory; its processes are killed
    /// and the directory removed when the value is dropped. Call [`DevCluster::up`] to start.
    pub fn ephemeral(node_bin: impl Into<PathBuf>, nodes: usize) -> Result<Self, DevError> {
        if !(1..=9).contains(&nodes) {
            return Err(DevError::BadSize(nodes));
        }
        let temp = tempfile::Builder::new()
            .prefix("aegis-dev-")
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        let addrs = free_addrs(nodes)?;
        let mut c = Self::with_addrs(temp.path().to_path_buf(), node_bin.into(), addrs);
        c.temp = Some(temp);
        Ok(c)
    }

    fn with_addrs(dir: PathBuf, node_bin: PathBuf, nodes: Vec<NodeAddrs>) -> Self {
        // Absolute, so the data dir on a node's command line identifies it to a later
        // invocation started from another working directory.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Self {
            dir,
            node_bin,
            extra_args: Vec::new(),
            children: HashMap::new(),
            temp: None,
            up_timeout: Duration::from_secs(30),
            founders: nodes.len(),
            base: None,
            nodes,
        }
    }

    /// Starts one more node, without `--members`, so it waits to be added as a learner
    /// (`Client::member_add_learner` with its [`DevCluster::addrs`]). Returns its id.
    pub fn add_node(&mut self) -> Result<usize, DevError> {
        let n = self.nodes.len() + 1;
        if n > 9 {
            return Err(DevError::BadSize(n));
        }
        let addrs = match self.base {
            Some(b) => fixed_addrs(b, n)?,
            None => free_addrs(1)?.remove(0),
        };
        self.nodes.push(addrs);
        self.spawn(n)?;
        Ok(n)
    }

    /// Extra arguments for every node, e.g. `["--config", "aegis.yaml"]`.
    pub fn with_node_args(mut self, args: Vec<String>) -> Self {
        self.extra_args = args;
        self
    }

    /// Writes `yaml` to `aegis.yaml` in the cluster directory and starts
    /// every node with `--config` pointing at it (replacing other extra
    /// arguments).
    pub fn with_config_yaml(self, yaml: &str) -> Result<Self, DevError> {
        let path = self.dir.join("aegis.yaml");
        std::fs::write(&path, yaml).map_err(io(format!("writing {}", path.display())))?;
        Ok(self.with_node_args(vec!["--config".into(), path.display().to_string()]))
    }

    pub fn with_up_timeout(mut self, t: Duration) -> Self {
        self.up_timeout = t;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    pub fn addrs(&self, n: usize) -> Result<&NodeAddrs, DevError> {
        self.check(n)?;
        Ok(&self.nodes[n - 1])
    }

    pub fn client_endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|a| a.client.clone()).collect()
    }

    pub fn metrics_addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|a| a.metrics.clone()).collect()
    }

    pub fn node_dir(&self, n: usize) -> PathBuf {
        self.dir.join(format!("node-{n}"))
    }

    pub fn data_dir(&self, n: usize) -> PathBuf {
        self.node_dir(n).join("data")
    }

    pub fn log_path(&self, n: usize) -> PathBuf {
        self.node_dir(n).join("node.log")
    }

    fn pid_path(&self, n: usize) -> PathBuf {
        self.node_dir(n).join("pid")
    }

    fn check(&self, n: usize) -> Result<(), DevError> {
        if n == 0 || n > self.nodes.len() {
            return Err(DevError::NoSuchNode(n, self.nodes.len()));
        }
        Ok(())
    }

    /// A client over every node's client address.
    pub fn client(&self) -> Result<Client, crate::Error> {
        Client::new_lazy(self.client_endpoints(), ClientConfig::default())
    }

    /// Starts every node that is not running, then waits until one reports itself leader.
    /// Returns the leader's id.
    pub async fn up(&mut self) -> Result<u64, DevError> {
        for n in 1..=self.nodes.len() {
            if self.pid(n).is_none() {
                self.spawn(n)?;
            }
        }
        self.wait_for_leader(self.up_timeout).await
    }

    /// Starts node `n` (no-op when it already runs).
    pub fn start(&mut self, n: usize) -> Result<(), DevError> {
        self.check(n)?;
        if self.pid(n).is_some() {
            return Ok(());
        }
        self.spawn(n)
    }

    fn spawn(&mut self, n: usize) -> Result<(), DevError> {
        let data = self.data_dir(n);
        fs::create_dir_all(&data).map_err(io(format!("creating {}", data.display())))?;
        let log_path = self.log_path(n);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(format!("opening {}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(io(format!("opening {}", log_path.display())))?;
        let a = &self.nodes[n - 1];
        let mut cmd = Command::new(&self.node_bin);
        cmd.arg("--id")
            .arg(n.to_string())
            .arg("--data-dir")
            .arg(&data)
            .arg("--peer-addr")
            .arg(&a.peer)
            .arg("--client-addr")
            .arg(&a.client)
            .arg("--metrics-addr")
            .arg(&a.metrics)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let chosen = std::env::var_os("AEGIS_WORKER_THREADS").is_some()
            || self
                .extra_args
                .iter()
                .any(|a| a.starts_with("--worker-threads"));
        if !chosen {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            cmd.arg("--worker-threads")
                .arg(worker_share(cpus, self.nodes.len()).to_string());
        }
        if n <= self.founders {
            cmd.arg("--members")
                .arg(members_arg(&self.nodes[..self.founders]));
        }
        // Its own process group: a Ctrl-C in the terminal that ran `dev up` must not reach it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .map_err(io(format!("starting {}", self.node_bin.display())))?;
        let pid_path = self.pid_path(n);
        fs::write(&pid_path, format!("{}\n", child.id()))
            .map_err(io(format!("writing {}", pid_path.display())))?;
        self.children.insert(n, child);
        Ok(())
    }

    /// The pid of node `n` if it is alive (running or stopped).
    pub fn pid(&mut self, n: usize) -> Option<i32> {
        if let Some(child) = self.children.get_mut(&n) {
            match child.try_wait() {
                Ok(None) => return i32::try_from(child.id()).ok(),
                _ => {
                    self.children.remove(&n);
                    return None;
                }
            }
        }
        let text = fs::read_to_string(self.pid_path(n)).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        (proc_state(pid, &self.data_dir(n)) != ProcState::Down).then_some(pid)
    }

    pub fn state(&mut self, n: usize) -> ProcState {
        match self.pid(n) {
            Some(pid) => proc_state(pid, &self.data_dir(n)),
            None => ProcState::Down,
        }
    }

    pub fn status(&mut self) -> Vec<NodeProcess> {
        (1..=self.nodes.len())
            .map(|n| {
                let pid = self.pid(n);
                NodeProcess {
                    id: n,
                    pid,
                    state: pid
                        .map(|p| proc_state(p, &self.data_dir(n)))
                        .unwrap_or(ProcState::Down),
                    addrs: self.nodes[n - 1].clone(),
                    log: self.log_path(n),
                }
            })
            .collect()
    }

    fn signal(&mut self, n: usize, sig: i32) -> Result<i32, DevError> {
        self.check(n)?;
        let pid = self.pid(n).ok_or(DevError::NotRunning(n))?;
        send_signal(pid, sig)?;
        Ok(pid)
    }

    /// SIGKILL: the node dies without any chance to clean up.
    pub fn kill(&mut self, n: usize) -> Result<(), DevError> {
        self.signal(n, libc::SIGKILL)?;
        self.reap(n, Duration::from_secs(5));
        let _ = fs::remove_file(self.pid_path(n));
        Ok(())
    }

    /// SIGSTOP: the node freezes, keeping its sockets open. Returns once the kernel reports
    /// the process stopped, so a caller that acts next (a test, a script) sees it frozen.
    pub fn stop(&mut self, n: usize) -> Result<(), DevError> {
        self.signal(n, libc::SIGSTOP)?;
        self.await_state(n, ProcState::Stopped)
    }

    /// SIGCONT: resumes a stopped node, returning once it is no longer stopped.
    pub fn cont(&mut self, n: usize) -> Result<(), DevError> {
        self.signal(n, libc::SIGCONT)?;
        self.await_state(n, ProcState::Running)
    }

    /// Signal delivery is asynchronous: `kill(2)` returns before every thread of the target
    /// has stopped or resumed.
    fn await_state(&mut self, n: usize, want: ProcState) -> Result<(), DevError> {
        let timeout = Duration::from_secs(5);
        if self.poll_until(timeout, Duration::from_millis(5), |c| c.state(n) == want) {
            Ok(())
        } else {
            Err(DevError::SignalNotApplied(n, want, timeout))
        }
    }

    /// Waits up to `timeout` for node `n` to exit.
    fn reap(&mut self, n: usize, timeout: Duration) -> bool {
        self.poll_until(timeout, Duration::from_millis(20), |c| c.pid(n).is_none())
    }

    /// Checks `done` every `every` until it holds (true) or `timeout` has passed (false).
    fn poll_until(
        &mut self,
        timeout: Duration,
        every: Duration,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(every);
        }
    }

    /// Stops every node: SIGTERM (after SIGCONT, so frozen nodes can act on it), then SIGKILL
    /// for any still alive after five seconds. Data is kept.
    pub fn down(&mut self) -> Result<(), DevError> {
        for n in 1..=self.nodes.len() {
            if let Some(pid) = self.pid(n) {
                let _ = send_signal(pid, libc::SIGCONT);
                let _ = send_signal(pid, libc::SIGTERM);
            }
        }
        for n in 1..=self.nodes.len() {
            if !self.reap(n, Duration::from_secs(5)) {
                if let Some(pid) = self.pid(n) {
                    send_signal(pid, libc::SIGKILL)?;
                }
                self.reap(n, Duration::from_secs(5));
            }
            let _ = fs::remove_file(self.pid_path(n));
        }
        Ok(())
    }

    /// Polls Admin.Status on every node until one says it is the leader; returns its id.
    pub async fn wait_for_leader(&mut self, timeout: Duration) -> Result<u64, DevError> {
        let deadline = Instant::now() + timeout;
        let client = Client::new_lazy(
            self.client_endpoints(),
            ClientConfig {
                connect_timeout: Duration::from_millis(500),
                request_timeout: Duration::from_secs(1),
                backoff: Backoff {
                    max_attempts: 1,
                    ..Backoff::default()
                },
                ..ClientConfig::default()
            },
        )
        .map_err(|e| DevError::Io {
            context: "building a client".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        loop {
            for (_, st) in client.status_all().await {
                if let Ok(s) = st {
                    if s.role == "leader" && s.leader_id == s.node_id {
                        return Ok(s.node_id);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(DevError::NoLeader(timeout, self.dir.clone()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills the children this value started; used on drop of an ephemeral cluster.
    fn kill_children(&mut self) {
        for (_, mut child) in self.children.drain() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = send_signal(pid, libc::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if self.temp.is_some() {
            self.kill_children();
        }
    }
}

/// Node `n`'s addresses in a fixed-port cluster: each base + n.
fn fixed_addrs(base: BasePorts, n: usize) -> Result<NodeAddrs, DevError> {
    let port = |b: u16| {
        u16::try_from(n)
            .ok()
            .and_then(|n| b.checked_add(n))
            .ok_or(DevError::PortOutOfRange(b, n))
    };
    Ok(NodeAddrs {
        client: format!("127.0.0.1:{}", port(base.client)?),
        peer: format!("127.0.0.1:{}", port(base.peer)?),
        metrics: format!("127.0.0.1:{}", port(base.metrics)?),
    })
}

/// Loopback addresses on `nodes * 3` distinct free ports. All listeners are held until every
/// port is chosen so none is handed out twice.
fn free_addrs(nodes: usize) -> Result<Vec<NodeAddrs>, DevError> {
    let ports = free_loopback_ports(nodes * 3)?;
    Ok(ports
        .chunks(3)
        .map(|p| NodeAddrs {
            client: format!("127.0.0.1:{}", p[0]),
            peer: format!("127.0.0.1:{}", p[1]),
            metrics: format!("127.0.0.1:{}", p[2]),
        })
        .collect())
}

/// The lowest port ephemeral clusters use.
const EXPLICIT_PORTS_FROM: u16 = 10_000;

/// `n` distinct loopback ports, free right now, from below the kernel's ephemeral range,
/// for processes a test starts. A port in that range (what a bind to port 0 returns) may
/// be taken by any outgoing connection on the machine between this check and the
/// process's bind, or while a killed process is down; one below it is only ever taken by a
/// listener that names it. Calls in one process never return a port twice (until the
/// ~22,000 ports below the range wrap around).
pub fn free_loopback_ports(n: usize) -> Result<Vec<u16>, DevError> {
    static CURSOR: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let top = ephemeral_range_start().unwrap_or(32768);
    let span = u32::from(top.saturating_sub(EXPLICIT_PORTS_FROM));
    let mut held = Vec::with_capacity(n);
    if span >= 1000 {
        // Processes start at different points, threads of one process never repeat a port.
        let start = std::process::id().wrapping_mul(7919) % span;
        for _ in 0..span {
            if held.len() == n {
                break;
            }
            let step = CURSOR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let port = EXPLICIT_PORTS_FROM + ((start + step) % span) as u16;
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                held.push(l);
            }
        }
    }
    // No room below the ephemeral range (an unusual sysctl): fall back to port 0.
    while held.len() < n {
        held.push(
            std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(io("binding a free loopback port"))?,
        );
    }
    held.iter()
        .map(|l| Ok(l.local_addr().map_err(io("reading a bound port"))?.port()))
        .collect()
}

/// The first port of `net.ipv4.ip_local_port_range`.
fn ephemeral_range_start() -> Option<u16> {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

fn send_signal(pid: i32, sig: i32) -> Result<(), DevError> {
    if pid <= 0 {
        return Err(DevError::Signal {
            signal: sig,
            pid,
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a process id"),
        });
    }
    // SAFETY: kill(2) has no memory-safety preconditions; pid > 0 targets one process only.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(DevError::Signal {
            signal: sig,
            pid,
            source: std::io::Error::last_os_error(),
        })
    }
}

/// The state of `pid` from /proc. Zombies count as down, and so does any process whose
/// command line lacks `data_dir`: a pid file can outlive its node and the pid be reused.
fn proc_state(pid: i32, data_dir: &Path) -> ProcState {
    if pid <= 0 {
        return ProcState::Down;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcState::Down;
    };
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return ProcState::Down;
    };
    let want = data_dir.as_os_str().as_encoded_bytes();
    if !cmdline.split(|b| *b == 0).any(|arg| arg == want) {
        return ProcState::Down;
    }
    // The state letter follows the parenthesised command name, which may contain spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("");
    match state {
        "Z" | "X" | "x" | "" => ProcState::Down,
        "T" | "t" => ProcState::Stopped,
        _ => ProcState::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_gets_its_share_of_the_cpus_and_at_least_one() {
        assert_eq!(worker_share(2, 5), 1);
        assert_eq!(worker_share(16, 5), 3);
        assert_eq!(worker_share(8, 1), 8);
        assert_eq!(worker_share(4, 0), 4);
    }

    #[test]
    fn default_ports_and_members() {
        let c = DevCluster::new("/tmp/x", "/bin/true", 3, BasePorts::default()).unwrap();
        assert_eq!(
            c.client_endpoints(),
            vec!["127.0.0.1:7401", "127.0.0.1:7402", "127.0.0.1:7403"]
        );
        assert_eq!(c.metrics_addrs()[2], "127.0.0.1:7603");
        assert_eq!(
            members_arg(&c.nodes),
            "1=127.0.0.1:7501/127.0.0.1:7401,2=127.0.0.1:7502/127.0.0.1:7402,3=127.0.0.1:7503/127.0.0.1:7403"
        );
        assert!(matches!(
            DevCluster::new("/tmp/x", "/bin/true", 0, BasePorts::default()),
            Err(DevError::BadSize(0))
        ));
        let high = BasePorts {
            client: 65534,
            ..BasePorts::default()
        };
        assert!(matches!(
            DevCluster::new("/tmp/x", "/bin/true", 3, high),
            Err(DevError::PortOutOfRange(65534, 2))
        ));
    }

    #[test]
    fn ephemeral_ports_are_distinct_and_below_the_ephemeral_range() {
        let c = DevCluster::ephemeral("/bin/true", 5).unwrap();
        let top = ephemeral_range_start().unwrap_or(32768);
        for a in &c.nodes {
            for addr in [&a.client, &a.peer, &a.metrics] {
                let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
                assert!((EXPLICIT_PORTS_FROM..top).contains(&port), "{addr}");
            }
        }
        let mut all: Vec<String> = c
            .nodes
            .iter()
            .flat_map(|a| [a.client.clone(), a.peer.clone(), a.metrics.clone()])
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 15);
        assert!(c.dir().is_dir());
    }

    #[test]
    fn node_numbers_are_checked() {
        let mut c = DevCluster::new("/tmp/x", "/bin/true", 3, BasePorts::default()).unwrap();
        assert!(matches!(c.kill(4), Err(DevError::NoSuchNode(4, 3))));
        assert!(matches!(c.stop(0), Err(DevError::NoSuchNode(0, 3))));
    }

    /// A shell script stands in for the node: it is started, adopted through its pid file
    /// by a second handle, frozen, resumed and killed.
    #[test]
    fn process_control_with_a_real_process() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join(NODE_BIN_NAME);
        fs::write(&bin, "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
        let mut perms = fs::metadata(&bin).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        fs::set_permissions(&bin, perms).unwrap();

        let cdir = dir.path().join("cluster");
        let mut c = DevCluster::new(&cdir, &bin, 2, BasePorts::default()).unwrap();
        c.start(1).unwrap();
        let pid = c.pid(1).unwrap();
        assert_eq!(c.state(2), ProcState::Down);
        assert!(matches!(c.kill(2), Err(DevError::NotRunning(2))));
        let pid_file = fs::read_to_string(cdir.join("node-1/pid")).unwrap();
        assert_eq!(pid_file.trim(), pid.to_string());

        let mut other = DevCluster::new(&cdir, &bin, 2, BasePorts::default()).unwrap();
        // Right after spawn the child's command line may not show the exec'd arguments yet.
        for _ in 0..100 {
            if other.pid(1).is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(other.pid(1), Some(pid));
        // stop and cont return only once the kernel shows the new state, whichever handle asks.
        other.stop(1).unwrap();
        assert_eq!(c.state(1), ProcState::Stopped);
        other.cont(1).unwrap();
        assert_eq!(c.state(1), ProcState::Running);
        other.kill(1).unwrap();
        assert_eq!(other.state(1), ProcState::Down);
        // The first handle holds the child: it sees the death once the
        // kernel has delivered SIGKILL, which is asynchronous too.
        for _ in 0..100 {
            if c.pid(1).is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(c.pid(1), None);
        assert!(!cdir.join("node-1/pid").exists());
        assert!(cdir.join("node-1/node.log").exists());

        // A pid file naming a process that is not this node is not adopted.
        fs::create_dir_all(cdir.join("node-2")).unwrap();
        fs::write(cdir.join("node-2/pid"), format!("{}\n", std::process::id())).unwrap();
        assert_eq!(other.pid(2), None);
    }
}
