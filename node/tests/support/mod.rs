//! Real `aegis-node` processes on loopback for integration tests.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use aegis_client::devcluster::DevCluster;
use aegis_client::{Client, ClientConfig, NodeStatus};

/// Cluster tests share two cores: one at a time keeps elections honest.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// A loopback address on a free port, for a node a test starts by hand.
pub fn free_addr() -> String {
    let port = aegis_client::devcluster::free_loopback_ports(1).unwrap()[0];
    format!("127.0.0.1:{port}")
}

pub fn node_bin() -> &'static str {
    env!("CARGO_BIN_EXE_aegis-node")
}

pub async fn cluster(nodes: usize) -> DevCluster {
    cluster_with(nodes, &[]).await
}

/// A fresh cluster with extra config YAML lines (written to a file).
pub async fn cluster_with(nodes: usize, config_yaml: &[&str]) -> DevCluster {
    let mut c = DevCluster::ephemeral(node_bin(), nodes).expect("ephemeral cluster");
    if !config_yaml.is_empty() {
        c = c
            .with_config_yaml(&config_yaml.join("\n"))
            .expect("write config");
    }
    c.up().await.expect("cluster up");
    c
}

/// A client pinned to one node (no failover), to observe that node.
pub fn pinned(endpoint: &str) -> Client {
    Client::new_lazy(vec![endpoint.to_string()], ClientConfig::default()).expect("client")
}

pub async fn status_of(c: &DevCluster, n: usize) -> Option<NodeStatus> {
    let ep = c.addrs(n).ok()?.client.clone();
    pinned(&ep).status().await.ok()
}

/// Waits until some live node other than `not` reports itself leader.
pub async fn wait_new_leader(c: &DevCluster, not: u64, timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for n in 1..=c.size() {
            if n as u64 == not {
                continue;
            }
            if let Some(s) = status_of(c, n).await {
                if s.role == "leader" && s.node_id != not {
                    return Some(s.node_id);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

pub async fn leader_of(c: &DevCluster) -> u64 {
    wait_new_leader(c, 0, Duration::from_secs(20))
        .await
        .expect("a leader")
}

/// Waits until every listed node has applied at least `index`.
pub async fn wait_applied(c: &DevCluster, nodes: &[usize], index: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    'outer: while Instant::now() < deadline {
        for n in nodes {
            match status_of(c, *n).await {
                Some(s) if s.applied_index >= index => {}
                _ => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue 'outer;
                }
            }
        }
        return true;
    }
    false
}

/// One series' value from a node's metrics page, e.g.
/// `aegis_snapshot_seconds_count{phase="encode"}`; `None` if the page lacks it.
pub async fn metric(metrics_addr: &str, series: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(metrics_addr).await.ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .ok()?;
    let mut page = String::new();
    conn.read_to_string(&mut page).await.ok()?;
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
