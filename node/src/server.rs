//! Starts a node: storage and Raft, the three ports, and the leader's
//! background duties.

use std::sync::Arc;
use std::time::Duration;

use aegis_config::ClusterConfig;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

use crate::api::Api;
use crate::cli::{parse_members, Args};
use crate::metrics::{self, Metrics};
use crate::raft::{incarnation, Consensus, StartOptions};
use crate::ticker;

/// Streams a peer may reset before this node accepted them, per connection.
const PEER_PENDING_RESET_STREAMS: usize = 1024;

/// Binds an address given as `host:port`. An IP host is bound as given; a
/// name (e.g. a pod's stable DNS name, which may not resolve yet while the
/// pod starts) is what peers use to reach us, so we listen on every
/// interface at that port instead.
async fn bind(addr: &str, what: &str) -> anyhow::Result<TcpListener> {
    let listen =
        listen_addr(addr).with_context(|| format!("the {what} address {addr} is not HOST:PORT"))?;
    TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding the {what} address {listen}"))
}

/// Accepted connections with Nagle off: requests and replies are small and
/// latency-bound, and Nagle's delay would put a ~40 ms floor under every
/// request that waits on a previous reply's ACK.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

fn listen_addr(addr: &str) -> Option<String> {
    if addr.parse::<std::net::SocketAddr>().is_ok() {
        return Some(addr.to_string());
    }
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.is_empty() {
        return None;
    }
    Some(format!("0.0.0.0:{port}"))
}

pub async fn run(
    args: Args,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if args.id == 0 {
        anyhow::bail!("--id must be greater than 0");
    }
    // The envelope check happens here: a node refuses to start on a config
    // that fails it, naming every violated rule.
    let config = match &args.config {
        Some(path) => ClusterConfig::from_file(path)?,
        None => ClusterConfig::default(),
    };
    let initial_members = args.members.as_deref().map(parse_members).transpose()?;
    if let Some(m) = &initial_members {
        if !m.contains_key(&args.id) {
            anyhow::bail!("--members does not include this node's id {}", args.id);
        }
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    // Before anything else is written there (docs/adr/0009-node-incarnation.md).
    let incarnation = incarnation::load_or_create(&args.data_dir)?;

    let peer_listener = bind(&args.peer_addr, "peer").await?;
    let client_listener = bind(&args.client_addr, "client").await?;
    let metrics_listener = bind(&args.metrics_addr, "metrics").await?;

    let metrics = Metrics::new();
    let config_hash: Arc<str> = config.short_hash().into();
    metrics.set_config_hash(&config_hash);
    let consensus = Consensus::start(StartOptions {
        id: args.id,
        data_dir: &args.data_dir,
        incarnation,
        config: &config,
        metrics: metrics.clone(),
        wal_flusher_nice: args.wal_flusher_nice,
    })
    .await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let api = Api {
        consensus: consensus.clone(),
        config: Arc::new(config.clone()),
        config_hash,
        metrics: metrics.clone(),
    };
    let (session, lock, kv, watch_svc, admin) = api.services();
    let client_server = tonic::transport::Server::builder()
        .add_service(session)
        .add_service(lock)
        .add_service(kv)
        .add_service(watch_svc)
        .add_service(admin)
        .serve_with_incoming_shutdown(
            crate::timeline::client_sockets(incoming(client_listener)),
            stopped(),
        );
    let peer_server = tonic::transport::Server::builder()
        // openraft cancels a heartbeat after one heartbeat interval; when
        // this node is too busy to accept streams that fast, each cancel is
        // a reset of a not-yet-accepted stream, and at h2's default limit
        // (20) it closes the whole peer connection, failing the
        // replication on it too (seen in the chaos soak, RELIABILITY.md).
        // Peers are members of the group, not arbitrary clients.
        .http2_max_pending_accept_reset_streams(Some(PEER_PENDING_RESET_STREAMS))
        .add_service(consensus.peer_service())
        .serve_with_incoming_shutdown(
            crate::timeline::peer_sockets(consensus.serve_peer_port(peer_listener)),
            stopped(),
        );
    let metrics_server = metrics::serve(
        metrics_listener,
        metrics.clone(),
        consensus.clone(),
        stopped(),
    );

    let duties = tokio::spawn(ticker::run(
        consensus.clone(),
        metrics.clone(),
        Duration::from_millis(u64::try_from(config.lease.tick_interval_ms).unwrap_or(500)),
        u64::try_from(config.kv.max_versions).unwrap_or(1),
        stopped(),
    ));

    // Founders learn each other's incarnations over the peer service before
    // initialising, so this runs alongside the servers. A misconfigured member
    // list stops the node.
    let bootstrap = async {
        match initial_members {
            Some(m) => consensus.bootstrap(m).await.context("bootstrap"),
            None => Ok(()),
        }
    };

    tracing::info!(
        id = args.id,
        incarnation = format_args!("{incarnation:016x}"),
        client = %args.client_addr,
        peer = %args.peer_addr,
        "node started"
    );
    let servers = async {
        tokio::try_join!(
            async { client_server.await.context("client server") },
            async { peer_server.await.context("peer server") },
            async { metrics_server.await.context("metrics server") },
            bootstrap,
        )
    };
    tokio::select! {
        r = servers => { r?; }
        _ = shutdown => { tracing::info!("shutting down"); }
    }
    let _ = stop_tx.send(true);
    duties.abort();
    consensus.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::listen_addr;

    #[test]
    fn names_listen_on_every_interface_ips_as_given() {
        assert_eq!(
            listen_addr("127.0.0.1:7401").as_deref(),
            Some("127.0.0.1:7401")
        );
        assert_eq!(listen_addr("[::1]:7401").as_deref(), Some("[::1]:7401"));
        assert_eq!(
            listen_addr("aegis-0.aegis-peer.ns.svc:7500").as_deref(),
            Some("0.0.0.0:7500")
        );
        assert_eq!(listen_addr("no-port"), None);
        assert_eq!(listen_addr("host:notaport"), None);
        assert_eq!(listen_addr(":7500"), None);
    }
}
