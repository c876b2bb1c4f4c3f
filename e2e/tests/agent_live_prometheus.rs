//! The agent's live path: a real Prometheus (Debian package) scrapes real
//! `aegis-node` processes; the agent reads `query_range` windows from it and
//! classifies them. Healthy cluster → `none`; repeated leader kills →
//! `election_churn`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aegis_agent::anomaly::AnomalyKind;
use aegis_agent::classifier::{Classifier, RuleClassifier};
use aegis_agent::telemetry::prometheus::PrometheusSource;
use aegis_client::devcluster::{resolve_node_bin, DevCluster};

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    aegis_client::devcluster::free_loopback_ports(1).unwrap()[0]
}

fn prometheus_bin() -> Option<PathBuf> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn start_prometheus(bin: &Path, dir: &Path, targets: &[String]) -> Prometheus {
    let port = free_port();
    let list = targets
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: aegis\n    static_configs:\n      - targets: [{list}]\n"
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("start prometheus");
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn classify(source: &PrometheusSource, length: Duration) -> aegis_agent::anomaly::Anomaly {
    let window = source
        .window(now_ms(), length, Duration::from_secs(1))
        .await
        .expect("window from prometheus");
    RuleClassifier.classify(&window)
}

/// Waits until Prometheus has scraped every node at least `samples` times.
async fn wait_scraped(source: &PrometheusSource, nodes: usize, samples: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(w) = source
            .window(now_ms(), Duration::from_secs(30), Duration::from_secs(1))
            .await
        {
            let ok = w.nodes().len() >= nodes
                && w.series("aegis_raft_term")
                    .all(|s| s.samples.len() >= samples);
            if ok {
                return;
            }
        }
        assert!(Instant::now() < deadline, "prometheus scraped the nodes");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_classifier_sees_a_healthy_cluster_then_election_churn() {
    let Some(prom) = prometheus_bin() else {
        // scripts/install-deps.sh installs it; say so loudly rather than pass silently.
        panic!("prometheus is not installed (run scripts/install-deps.sh)");
    };
    let node_bin = std::env::var_os("AEGIS_NODE_BIN")
        .map(PathBuf::from)
        .or_else(|| resolve_node_bin(None).ok())
        .expect("aegis-node binary next to the test binary (cargo test --workspace builds it)");
    let mut cluster = DevCluster::ephemeral(node_bin, 5).unwrap();
    cluster.up().await.expect("cluster up");
    let dir = tempfile::tempdir().unwrap();
    let prometheus = start_prometheus(&prom, dir.path(), &cluster.metrics_addrs());
    let source = PrometheusSource::new(&prometheus.url, Duration::from_secs(5))
        .unwrap()
        .with_retry(5, Duration::from_millis(500));

    // Healthy: steady leader, light traffic.
    let client = cluster.client().unwrap();
    for i in 0..20 {
        client.put(format!("k{i}"), "v").await.unwrap();
    }
    wait_scraped(&source, 5, 12).await;
    let healthy = classify(&source, Duration::from_secs(12)).await;
    assert_eq!(
        healthy.kind,
        AnomalyKind::None,
        "healthy cluster: {healthy:?}"
    );

    // Repeated leader kills: each one elects a new leader in a new term.
    for _ in 0..4 {
        let leader = cluster
            .wait_for_leader(Duration::from_secs(20))
            .await
            .unwrap() as usize;
        cluster.kill(leader).unwrap();
        cluster
            .wait_for_leader(Duration::from_secs(20))
            .await
            .unwrap();
        // Let Prometheus see this leader before the next kill.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        cluster.start(leader).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let churn = classify(&source, Duration::from_secs(30)).await;
    assert_eq!(
        churn.kind,
        AnomalyKind::ElectionChurn,
        "after leader kills: {churn:?}"
    );
}
