//! Real node processes in Linux network namespaces, one per node, joined
//! by veth pairs to a bridge in a hub namespace, so links can be cut
//! (blackhole routes), delayed and made lossy, and flapped (`ip link set
//! down/up`). The test process reaches the nodes through one more veth pair
//! from the root namespace into the hub.
//!
//! Delay and loss come from `tc netem` where the kernel has it; otherwise
//! ([`Shaping::Iptables`]) loss is iptables `statistic` DROP rules and
//! delay is a [`DelayProxy`] in the test process that the node's peer
//! connections are steered through by DNAT rules (see [`shaping`]).
//!
//! Needs root and iproute2; [`available`] says why not when it cannot run.
//! Every name carries a per-process tag, and everything is removed on drop.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use aegis_client::{Client, ClientConfig};

use crate::delay_proxy::DelayProxy;
use crate::faults::{probe_client, Prober};

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("`{cmd}` failed: {stderr}")]
    Command { cmd: String, stderr: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("client: {0}")]
    Client(#[from] aegis_client::Error),
}

fn run(cmd: &[&str]) -> Result<(), NetnsError> {
    output(cmd).map(|_| ())
}

fn output(cmd: &[&str]) -> Result<String, NetnsError> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|source| NetnsError::Io {
            context: format!("running {}", cmd[0]),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetnsError::Command {
            cmd: cmd.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Whether namespaces can be used here; the error says why not.
pub fn available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root".into());
    }
    let probe = format!("aegis-probe-{}", std::process::id());
    run(&["ip", "netns", "add", &probe]).map_err(|e| format!("`ip netns` unavailable: {e}"))?;
    let tc = run(&["ip", "netns", "exec", &probe, "tc", "qdisc", "show"]);
    let _ = run(&["ip", "netns", "del", &probe]);
    tc.map_err(|e| format!("`tc` unavailable: {e}"))
}

/// Whether the kernel has the netem qdisc (delay and loss); some sandboxed
/// kernels lack it while namespaces, routes and links work.
pub fn netem_available() -> bool {
    let probe = format!("aegis-netem-{}", std::process::id());
    if run(&["ip", "netns", "add", &probe]).is_err() {
        return false;
    }
    let ok = run(&[
        "ip", "netns", "exec", &probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay",
        "1ms",
    ])
    .is_ok();
    let _ = run(&["ip", "netns", "del", &probe]);
    ok
}

/// How delay and loss are made on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shaping {
    /// `tc netem` on both ends of the node's veth pair.
    Netem,
    /// Loss: iptables `statistic --mode random` DROP rules. Delay: the
    /// node's peer connections (both the ones it opens and the ones opened
    /// to it) are DNAT-ed to a [`DelayProxy`] in the test process, and the
    /// connections that existed before are reset so they reconnect
    /// through it.
    Iptables,
}

/// netem when the kernel has it, else iptables (statistic, nat and
/// conntrack matches); the error says why neither works.
pub fn shaping() -> Result<Shaping, String> {
    if netem_available() {
        return Ok(Shaping::Netem);
    }
    let probe = format!("aegis-ipt-{}", std::process::id());
    run(&["ip", "netns", "add", &probe]).map_err(|e| format!("`ip netns` unavailable: {e}"))?;
    let in_ns = |rule: &[&str]| {
        let mut cmd = vec!["ip", "netns", "exec", &probe, "iptables", "-w"];
        cmd.extend_from_slice(rule);
        run(&cmd)
    };
    let r = in_ns(&[
        "-A",
        "INPUT",
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        "0.5",
        "-j",
        "DROP",
    ])
    .and_then(|_| {
        in_ns(&[
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            "10.0.0.1",
            "--dport",
            "1",
            "-j",
            "DNAT",
            "--to-destination",
            "10.0.0.2:2",
        ])
    })
    .and_then(|_| {
        in_ns(&[
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "--dport",
            "1",
            "-m",
            "conntrack",
            "!",
            "--ctstate",
            "DNAT",
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ])
    });
    let _ = run(&["ip", "netns", "del", &probe]);
    r.map(|_| Shaping::Iptables)
        .map_err(|e| format!("no netem qdisc, and iptables cannot shape here: {e}"))
}

/// Evidence that a delay or loss step acted on the link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkEffect {
    /// Connections and bytes that went through the delay proxy.
    pub proxied_connections: u64,
    pub proxied_bytes: u64,
    /// Packets the loss rules dropped.
    pub dropped_packets: u64,
}

pub struct NetCluster {
    tag: String,
    subnet: u8,
    nodes: usize,
    dir: tempfile::TempDir,
    bin: PathBuf,
    children: Vec<Option<Child>>,
    prober: Prober,
    proxy: Option<DelayProxy>,
}

const CLIENT_PORT: u16 = 7400;
const PEER_PORT: u16 = 7500;
const METRICS_PORT: u16 = 7600;

impl NetCluster {
    fn ns(&self, n: usize) -> String {
        format!("ag{}n{n}", self.tag)
    }
    fn hub(&self) -> String {
        format!("ag{}hub", self.tag)
    }
    fn ip(&self, n: usize) -> String {
        format!("10.77.{}.{n}", self.subnet)
    }
    fn dev(&self, n: usize) -> String {
        format!("ag{}v{n}", self.tag)
    }
    /// The hub end of node `n`'s veth pair.
    fn hub_dev(&self, n: usize) -> String {
        format!("ag{}h{n}", self.tag)
    }
    pub fn client_endpoints(&self) -> Vec<String> {
        (1..=self.nodes)
            .map(|n| format!("{}:{CLIENT_PORT}", self.ip(n)))
            .collect()
    }
    pub fn client(&self, config: ClientConfig) -> Result<Client, aegis_client::Error> {
        Client::new_lazy(self.client_endpoints(), config)
    }
    pub fn prober(&self) -> Prober {
        self.prober.clone()
    }
    pub fn log_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("node-{n}.log"))
    }

    /// Builds the namespaces and links and starts every node.
    pub fn start(bin: &Path, nodes: usize) -> Result<NetCluster, NetnsError> {
        let pid = std::process::id();
        let tag = format!("{}", pid % 1000);
        let subnet = (pid % 200 + 20) as u8;
        let dir = tempfile::Builder::new()
            .prefix("aegis-netns-")
            .tempdir()
            .map_err(|source| NetnsError::Io {
                context: "creating the cluster directory".into(),
                source,
            })?;
        let endpoints: Vec<String> = (1..=nodes)
            .map(|n| format!("10.77.{subnet}.{n}:{CLIENT_PORT}"))
            .collect();
        let probes = endpoints
            .iter()
            .map(|e| probe_client(e))
            .collect::<Result<Vec<_>, _>>()?;
        let mut c = NetCluster {
            tag,
            subnet,
            nodes,
            dir,
            bin: bin.to_path_buf(),
            children: (0..nodes).map(|_| None).collect(),
            prober: Prober::new(probes),
            proxy: None,
        };
        c.build_network()?;
        for n in 1..=nodes {
            c.start_node(n)?;
        }
        Ok(c)
    }

    fn build_network(&self) -> Result<(), NetnsError> {
        let hub = self.hub();
        let br = format!("ag{}br", self.tag);
        run(&["ip", "netns", "add", &hub])?;
        run(&["ip", "-n", &hub, "link", "add", &br, "type", "bridge"])?;
        run(&["ip", "-n", &hub, "link", "set", &br, "up"])?;
        run(&["ip", "-n", &hub, "link", "set", "lo", "up"])?;
        for n in 1..=self.nodes {
            let ns = self.ns(n);
            let (dev, peer) = (self.dev(n), self.hub_dev(n));
            run(&["ip", "netns", "add", &ns])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            run(&[
                "ip", "link", "add", &dev, "netns", &ns, "type", "veth", "peer", "name", &peer,
                "netns", &hub,
            ])?;
            run(&["ip", "-n", &hub, "link", "set", &peer, "master", &br])?;
            run(&["ip", "-n", &hub, "link", "set", &peer, "up"])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.ip(n)),
                "dev",
                &dev,
            ])?;
            run(&["ip", "-n", &ns, "link", "set", &dev, "up"])?;
        }
        // The test process's own way in.
        let (root, peer) = (format!("ag{}r", self.tag), format!("ag{}rh", self.tag));
        run(&[
            "ip", "link", "add", &root, "type", "veth", "peer", "name", &peer, "netns", &hub,
        ])?;
        run(&["ip", "-n", &hub, "link", "set", &peer, "master", &br])?;
        run(&["ip", "-n", &hub, "link", "set", &peer, "up"])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", self.ip(254)),
            "dev",
            &root,
        ])?;
        run(&["ip", "link", "set", &root, "up"])?;
        Ok(())
    }

    fn members(&self) -> String {
        (1..=self.nodes)
            .map(|n| format!("{n}={ip}:{PEER_PORT}/{ip}:{CLIENT_PORT}", ip = self.ip(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn start_node(&mut self, n: usize) -> Result<(), NetnsError> {
        if self.children[n - 1].is_some() {
            return Ok(());
        }
        let io = |context: String| move |source| NetnsError::Io { context, source };
        let data = self.dir.path().join(format!("node-{n}"));
        std::fs::create_dir_all(&data).map_err(io(format!("creating {}", data.display())))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(n))
            .map_err(io("opening the node log".into()))?;
        let log2 = log.try_clone().map_err(io("opening the node log".into()))?;
        let ip = self.ip(n);
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(n)])
            .arg(&self.bin)
            .args(["--id", &n.to_string(), "--data-dir"])
            .arg(&data)
            .args(["--peer-addr", &format!("{ip}:{PEER_PORT}")])
            .args(["--client-addr", &format!("{ip}:{CLIENT_PORT}")])
            .args(["--metrics-addr", &format!("{ip}:{METRICS_PORT}")])
            .args(["--members", &self.members()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io("starting a node in its namespace".into()))?;
        self.children[n - 1] = Some(child);
        Ok(())
    }

    /// kill -9 (`ip netns exec` execs the node, so the child is the node).
    pub fn kill(&mut self, n: usize) {
        if let Some(mut c) = self.children[n - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Drops all traffic between the two groups, both ways.
    pub fn partition(&self, a: &[usize], b: &[usize]) -> Result<(), NetnsError> {
        self.blackholes(a, b, "add")
    }

    pub fn heal_partition(&self, a: &[usize], b: &[usize]) -> Result<(), NetnsError> {
        self.blackholes(a, b, "del")
    }

    fn blackholes(&self, a: &[usize], b: &[usize], verb: &str) -> Result<(), NetnsError> {
        for &x in a {
            for &y in b {
                run(&[
                    "ip",
                    "-n",
                    &self.ns(x),
                    "route",
                    verb,
                    "blackhole",
                    &format!("{}/32", self.ip(y)),
                ])?;
                run(&[
                    "ip",
                    "-n",
                    &self.ns(y),
                    "route",
                    verb,
                    "blackhole",
                    &format!("{}/32", self.ip(x)),
                ])?;
            }
        }
        Ok(())
    }

    /// Delays (and optionally drops a share of) everything node `n` sends.
    pub fn netem(&self, n: usize, delay_ms: u64, loss_percent: u32) -> Result<(), NetnsError> {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns(n),
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.dev(n),
            "root",
            "netem",
            "delay",
            &format!("{delay_ms}ms"),
            "loss",
            &format!("{loss_percent}%"),
        ])
    }

    pub fn clear_netem(&self, n: usize) -> Result<(), NetnsError> {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns(n),
            "tc",
            "qdisc",
            "del",
            "dev",
            &self.dev(n),
            "root",
        ])
    }

    /// In node `n`'s namespace, sends new TCP connections to `dest:port`
    /// to `via` instead (the delay proxy).
    fn redirect(&self, n: usize, dest: &str, port: &str, via: &str) -> Result<String, NetnsError> {
        self.iptables(
            n,
            &[
                "-t",
                "nat",
                "-A",
                "OUTPUT",
                "-p",
                "tcp",
                "-d",
                dest,
                "--dport",
                port,
                "-j",
                "DNAT",
                "--to-destination",
                via,
            ],
        )
    }

    /// In node `n`'s namespace, resets TCP connections to `dest:port` that
    /// were not redirected through the proxy.
    fn reset_unproxied(&self, n: usize, dest: &str, port: &str) -> Result<String, NetnsError> {
        self.iptables(
            n,
            &[
                "-A",
                "OUTPUT",
                "-p",
                "tcp",
                "-d",
                dest,
                "--dport",
                port,
                "-m",
                "conntrack",
                "!",
                "--ctstate",
                "DNAT",
                "-j",
                "REJECT",
                "--reject-with",
                "tcp-reset",
            ],
        )
    }

    fn iptables(&self, n: usize, rule: &[&str]) -> Result<String, NetnsError> {
        let ns = self.ns(n);
        let mut cmd = vec!["ip", "netns", "exec", &ns, "iptables", "-w"];
        cmd.extend_from_slice(rule);
        output(&cmd)
    }

    fn others(&self, n: usize) -> impl Iterator<Item = usize> {
        (1..=self.nodes).filter(move |m| *m != n)
    }

    /// Adds `delay` to each direction of node `n`'s peer traffic.
    pub async fn delay_link(
        &mut self,
        n: usize,
        delay: Duration,
        how: Shaping,
    ) -> Result<(), NetnsError> {
        match how {
            Shaping::Netem => {
                let ms = format!("{}ms", delay.as_millis());
                let replace = |ns: String, dev: String| {
                    run(&[
                        "ip", "netns", "exec", &ns, "tc", "qdisc", "replace", "dev", &dev, "root",
                        "netem", "delay", &ms,
                    ])
                };
                replace(self.ns(n), self.dev(n))?;
                replace(self.hub(), self.hub_dev(n))
            }
            Shaping::Iptables => self.proxy_peer_links(n, delay).await,
        }
    }

    async fn proxy_peer_links(&mut self, n: usize, delay: Duration) -> Result<(), NetnsError> {
        let proxy = DelayProxy::new(delay);
        let here: IpAddr = self.ip(254).parse().map_err(|_| NetnsError::Command {
            cmd: "parsing the harness address".into(),
            stderr: self.ip(254),
        })?;
        let addr = |m: usize| -> Result<SocketAddr, NetnsError> {
            format!("{}:{PEER_PORT}", self.ip(m))
                .parse()
                .map_err(|_| NetnsError::Command {
                    cmd: "parsing a peer address".into(),
                    stderr: self.ip(m),
                })
        };
        let listen = SocketAddr::new(here, 0);
        let bind_err = |source| NetnsError::Io {
            context: "binding the delay proxy".into(),
            source,
        };
        let peer = PEER_PORT.to_string();
        // Connections to node n from every other node.
        let to_n = proxy.forward(listen, addr(n)?).await.map_err(bind_err)?;
        for m in self.others(n).collect::<Vec<_>>() {
            // Connections from node n to node m.
            let to_m = proxy.forward(listen, addr(m)?).await.map_err(bind_err)?;
            self.redirect(n, &self.ip(m), &peer, &to_m.to_string())?;
            self.redirect(m, &self.ip(n), &peer, &to_n.to_string())?;
            // Established connections bypass the new NAT rules: reset them
            // (on their next send) so that they reconnect through the proxy.
            self.reset_unproxied(m, &self.ip(n), &peer)?;
        }
        let subnet = format!("10.77.{}.0/24", self.subnet);
        self.reset_unproxied(n, &subnet, &peer)?;
        self.proxy = Some(proxy);
        Ok(())
    }

    /// Drops `percent` of the packets node `n` sends (netem), or of the
    /// packets arriving at node `n` and of node `n`'s packets arriving at
    /// its peers (iptables).
    pub fn lossy_link(&self, n: usize, percent: u32, how: Shaping) -> Result<(), NetnsError> {
        match how {
            Shaping::Netem => self.netem(n, 0, percent),
            Shaping::Iptables => {
                let p = format!("{:.4}", f64::from(percent.min(100)) / 100.0);
                let stat = ["-m", "statistic", "--mode", "random", "--probability", &p];
                let mut rule = vec!["-A", "INPUT", "-i"];
                let dev = self.dev(n);
                rule.push(&dev);
                rule.extend_from_slice(&stat);
                rule.extend_from_slice(&["-j", "DROP"]);
                self.iptables(n, &rule)?;
                let src = self.ip(n);
                for m in self.others(n) {
                    let mut rule = vec!["-A", "INPUT", "-s", &src];
                    rule.extend_from_slice(&stat);
                    rule.extend_from_slice(&["-j", "DROP"]);
                    self.iptables(m, &rule)?;
                }
                Ok(())
            }
        }
    }

    /// Removes delay and loss from node `n`'s link (and closes the delay
    /// proxy's connections, so the nodes reconnect directly).
    pub fn clear_link(&mut self, n: usize, how: Shaping) -> Result<(), NetnsError> {
        match how {
            Shaping::Netem => {
                // Either end may have no qdisc of ours.
                let _ = run(&[
                    "ip",
                    "netns",
                    "exec",
                    &self.hub(),
                    "tc",
                    "qdisc",
                    "del",
                    "dev",
                    &self.hub_dev(n),
                    "root",
                ]);
                let _ = self.clear_netem(n);
                Ok(())
            }
            Shaping::Iptables => {
                for m in 1..=self.nodes {
                    self.iptables(m, &["-F", "INPUT"])?;
                    self.iptables(m, &["-F", "OUTPUT"])?;
                    self.iptables(m, &["-t", "nat", "-F", "OUTPUT"])?;
                }
                if let Some(p) = self.proxy.take() {
                    p.stop();
                }
                Ok(())
            }
        }
    }

    /// What the current delay proxy carried and how many packets the loss
    /// rules dropped, in every namespace (netem keeps no such counts: zero).
    pub fn link_effect(&self) -> LinkEffect {
        let mut e = LinkEffect::default();
        if let Some(p) = &self.proxy {
            e.proxied_connections = p.stats().connections.load(Ordering::Relaxed);
            e.proxied_bytes = p.stats().bytes.load(Ordering::Relaxed);
        }
        for m in 1..=self.nodes {
            let Ok(text) = self.iptables(m, &["-nvxL", "INPUT"]) else {
                continue;
            };
            e.dropped_packets += text
                .lines()
                .filter(|l| l.contains("DROP") && l.contains("statistic"))
                .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
                .sum::<u64>();
        }
        e
    }

    pub fn link(&self, n: usize, up: bool) -> Result<(), NetnsError> {
        run(&[
            "ip",
            "-n",
            &self.ns(n),
            "link",
            "set",
            &self.dev(n),
            if up { "up" } else { "down" },
        ])
    }

    /// Takes node `n`'s link down and up `times` times.
    pub async fn flap(&self, n: usize, times: usize, period: Duration) -> Result<(), NetnsError> {
        for _ in 0..times {
            self.link(n, false)?;
            tokio::time::sleep(period).await;
            self.link(n, true)?;
            tokio::time::sleep(period).await;
        }
        Ok(())
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        for n in 1..=self.nodes {
            self.kill(n);
        }
        // A failed test keeps the nodes' logs and data: they say why.
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("node logs and data kept in {}", self.dir.path().display());
        }
        for n in 1..=self.nodes {
            let _ = run(&["ip", "netns", "del", &self.ns(n)]);
        }
        let _ = run(&["ip", "link", "del", &format!("ag{}r", self.tag)]);
        let _ = run(&["ip", "netns", "del", &self.hub()]);
    }
}
