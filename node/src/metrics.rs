//! The telemetry contract (DESIGN.md §4) and the metrics port: `/metrics`,
//! `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aegis_state_machine::{Applied, Reply};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::raft::Consensus;

struct Inner {
    registry: Registry,
    term: IntGauge,
    is_leader: IntGauge,
    commit_index: IntGauge,
    applied_index: IntGauge,
    log_lag: IntGaugeVec,
    leader_changes: IntCounter,
    proposals_failed: IntCounter,
    forwarded: IntCounter,
    step_ins: IntCounter,
    wall_clock: IntGauge,
    fsync: Histogram,
    renewals: IntCounter,
    expirations: IntCounter,
    acquisitions: IntCounter,
    waiters: IntGauge,
    requests: HistogramVec,
    config_info: IntGaugeVec,
    snapshot_seconds: HistogramVec,
    snapshot_bytes: IntGauge,
}

/// Cheap to clone; every clone feeds the same registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("static metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("static metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

/// Buckets of the request and snapshot histograms, 0.5 ms to 5 s.
const SECONDS_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
    label: &str,
) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &[label])
        .expect("static metric definition");
    r.register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    // The `expect`s below run on constant names and help strings, once at
    // start-up: they cannot be reached by input.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let log_lag = IntGaugeVec::new(
            Opts::new(
                "aegis_raft_log_lag",
                "Leader only: leader last index minus follower matched index",
            ),
            &["follower"],
        )
        .expect("static metric definition");
        r.register(Box::new(log_lag.clone()))
            .expect("metric registered once");
        let fsync = Histogram::with_opts(
            HistogramOpts::new("aegis_storage_fsync_seconds", "Raft log fsync latency").buckets(
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0,
                ],
            ),
        )
        .expect("static metric definition");
        r.register(Box::new(fsync.clone()))
            .expect("metric registered once");
        let requests = histogram_vec(
            &r,
            "aegis_client_request_seconds",
            "gRPC request latency by method",
            SECONDS_BUCKETS.to_vec(),
            "method",
        );
        // A snapshot holds up apply only while it copies the state, but its
        // CPU and its file compete with the writes for the machine: its
        // phases, so an operator can see what a larger state costs.
        let snapshot_seconds = histogram_vec(
            &r,
            "aegis_snapshot_seconds",
            "Snapshot building by phase: copy (under the state lock), encode, write (file and fsync)",
            // A large state's snapshot may take longer than any request.
            [&SECONDS_BUCKETS[..], &[10.0]].concat(),
            "phase",
        );
        let config_info = IntGaugeVec::new(
            Opts::new("aegis_config_info", "1 for the config in force"),
            &["hash"],
        )
        .expect("static metric definition");
        r.register(Box::new(config_info.clone()))
            .expect("metric registered once");
        Metrics(Arc::new(Inner {
            term: gauge(&r, "aegis_raft_term", "Current Raft term"),
            is_leader: gauge(&r, "aegis_raft_is_leader", "1 if this node is leader"),
            commit_index: gauge(&r, "aegis_raft_commit_index", "Last committed log index"),
            applied_index: gauge(
                &r,
                "aegis_raft_last_applied_index",
                "Last applied log index",
            ),
            leader_changes: counter(
                &r,
                "aegis_raft_leader_changes_total",
                "Leader changes seen by this node",
            ),
            proposals_failed: counter(
                &r,
                "aegis_raft_proposals_failed_total",
                "Proposals that failed",
            ),
            forwarded: counter(
                &r,
                "aegis_raft_forwarded_requests_total",
                "Requests other nodes forwarded to this node as leader",
            ),
            step_ins: counter(
                &r,
                "aegis_raft_step_ins_total",
                "Pre-vote rounds this node asked for after refusing a candidate with an older log",
            ),
            wall_clock: gauge(
                &r,
                "aegis_node_wall_clock_ms",
                "This node's wall clock at scrape",
            ),
            renewals: counter(
                &r,
                "aegis_lease_renewals_total",
                "Session keep-alives applied",
            ),
            expirations: counter(&r, "aegis_lease_expirations_total", "Sessions expired"),
            acquisitions: counter(&r, "aegis_lock_acquisitions_total", "Lock grants applied"),
            waiters: gauge(&r, "aegis_lock_waiters", "Sessions waiting for a lock"),
            snapshot_bytes: gauge(
                &r,
                "aegis_snapshot_bytes",
                "Size of the snapshot this node holds (built, installed or found at start)",
            ),
            registry: r,
            log_lag,
            fsync,
            requests,
            config_info,
            snapshot_seconds,
        }))
    }

    pub fn observe_fsync(&self, seconds: f64) {
        self.0.fsync.observe(seconds);
    }

    pub fn observe_snapshot_built(&self, phases: &SnapshotPhases, bytes: usize) {
        let h = &self.0.snapshot_seconds;
        h.with_label_values(&["copy"])
            .observe(phases.copy.as_secs_f64());
        h.with_label_values(&["encode"])
            .observe(phases.encode.as_secs_f64());
        h.with_label_values(&["write"])
            .observe(phases.write.as_secs_f64());
        self.snapshot_held(bytes);
    }

    /// The snapshot this node now holds: built, installed from the leader,
    /// or found at start.
    pub fn snapshot_held(&self, bytes: usize) {
        self.0.snapshot_bytes.set(bytes as i64);
    }

    pub fn observe_applied(&self, a: &Applied) {
        match &a.result {
            Ok(Reply::KeptAlive { .. }) => self.0.renewals.inc(),
            Ok(Reply::KeptAliveMany { renewed }) => {
                let n = renewed.iter().filter(|r| r.is_ok()).count();
                self.0.renewals.inc_by(n as u64);
            }
            _ => {}
        }
        self.0.expirations.inc_by(a.expired_sessions.len() as u64);
        self.0.acquisitions.inc_by(a.grants.len() as u64);
    }

    pub fn proposal_failed(&self) {
        self.0.proposals_failed.inc();
    }

    pub fn forwarded(&self) {
        self.0.forwarded.inc();
    }

    /// A pre-vote round asked for after refusing a candidate with an older log (`raft::step_in`).
    pub fn stepped_in(&self) {
        self.0.step_ins.inc();
    }

    pub fn leader_changed(&self) {
        self.0.leader_changes.inc();
    }

    pub fn set_config_hash(&self, hash: &str) {
        self.0.config_info.reset();
        self.0.config_info.with_label_values(&[hash]).set(1);
    }

    /// Times one gRPC call; records on drop.
    pub fn request(&self, method: &'static str) -> RequestTimer {
        RequestTimer {
            hist: self.0.requests.with_label_values(&[method]),
            start: Instant::now(),
        }
    }

    fn render(&self, consensus: &Consensus) -> String {
        let v = consensus.view();
        let i = &self.0;
        i.term.set(v.term as i64);
        i.is_leader.set(i64::from(v.role == "leader"));
        i.commit_index.set(v.commit_index as i64);
        i.applied_index.set(v.applied_index as i64);
        i.log_lag.reset();
        for (f, lag) in &v.lags {
            i.log_lag
                .with_label_values(&[&f.to_string()])
                .set(*lag as i64);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        i.wall_clock.set(now);
        i.waiters
            .set(consensus.sm().read(|sm| sm.stats().waiters) as i64);
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&i.registry.gather(), &mut buf) {
            return format!("# encode error: {e}\n");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// How long each phase of building one snapshot took.
#[derive(Debug, Default, Clone, Copy)]
pub struct SnapshotPhases {
    pub copy: Duration,
    pub encode: Duration,
    pub write: Duration,
}

pub struct RequestTimer {
    hist: Histogram,
    start: Instant,
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        self.hist.observe(self.start.elapsed().as_secs_f64());
    }
}

/// Committed entries a replica may still have to apply and be ready. Under
/// a steady write load a healthy follower always has the latest append's
/// entries committed but not yet applied (with replication streamed the
/// commit index arrives with each append), so "applied >= committed" made
/// `/readyz` flicker on healthy members. A replica replaying its log after a
/// restart is thousands of entries behind until it has caught up.
pub const READY_MAX_APPLY_LAG: u64 = 1000;

/// Ready means this replica is a member, knows a leader and has applied
/// what it knows to be committed, give or take [`READY_MAX_APPLY_LAG`]: it can
/// serve serializable reads that are not stale by more than replication
/// delay.
pub fn is_ready(consensus: &Consensus) -> bool {
    let v = consensus.view();
    caught_up(
        v.leader.is_some(),
        v.members.contains_key(&v.id),
        v.applied_index,
        v.commit_index,
    )
}

fn caught_up(knows_leader: bool, member: bool, applied: u64, committed: u64) -> bool {
    knows_leader && member && committed.saturating_sub(applied) <= READY_MAX_APPLY_LAG
}

#[derive(Clone)]
struct HttpState {
    metrics: Metrics,
    consensus: Arc<Consensus>,
}

async fn metrics_handler(
    State(s): State<HttpState>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(&s.consensus),
    )
}

async fn readyz(State(s): State<HttpState>) -> (StatusCode, &'static str) {
    if is_ready(&s.consensus) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    consensus: Arc<Consensus>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(HttpState { metrics, consensus });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

pub fn local_addr(l: &tokio::net::TcpListener) -> Option<SocketAddr> {
    l.local_addr().ok()
}

#[cfg(test)]
mod tests {
    use super::{caught_up, READY_MAX_APPLY_LAG as LAG};

    #[test]
    fn ready_is_caught_up_within_one_apply_batch() {
        assert!(caught_up(true, true, 500, 500));
        assert!(
            caught_up(true, true, 500, 500 + LAG),
            "one batch behind is ready"
        );
        assert!(
            !caught_up(true, true, 500, 501 + LAG),
            "replaying is not ready"
        );
        assert!(
            caught_up(true, true, 900, 500),
            "applied ahead of a stale commit index"
        );
        assert!(!caught_up(false, true, 500, 500), "no leader");
        assert!(!caught_up(true, false, 500, 500), "not a member");
    }
}
