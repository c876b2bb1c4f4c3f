//! The operator's own Prometheus metrics and the `/metrics` endpoint.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub reconciliations: IntCounterVec,
    pub reconcile_duration: Histogram,
    pub applies: IntCounter,
    pub membership_changes: IntCounterVec,
    pub rollout_steps: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciliations = IntCounterVec::new(
            Opts::new(
                "aegis_operator_reconciliations_total",
                "Reconciles by result",
            ),
            &["result"],
        )?;
        let reconcile_duration = Histogram::with_opts(HistogramOpts::new(
            "aegis_operator_reconcile_duration_seconds",
            "Duration of one reconcile",
        ))?;
        let applies = IntCounter::new(
            "aegis_operator_applies_total",
            "Server-side applies of a cluster's object set",
        )?;
        let membership_changes = IntCounterVec::new(
            Opts::new(
                "aegis_operator_membership_changes_total",
                "Membership steps executed",
            ),
            &["kind"],
        )?;
        let rollout_steps = IntCounterVec::new(
            Opts::new(
                "aegis_operator_rollout_steps_total",
                "Config rollout steps executed",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(reconciliations.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(applies.clone()))?;
        registry.register(Box::new(membership_changes.clone()))?;
        registry.register(Box::new(rollout_steps.clone()))?;
        Ok(Metrics {
            registry,
            reconciliations,
            reconcile_duration,
            applies,
            membership_changes,
            rollout_steps,
        })
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding our own well-formed families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

async fn metrics_handler(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], m.render())
}

pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(metrics)
}

pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(metrics)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metrics_endpoint_serves_the_registry_over_http() {
        let m = Arc::new(Metrics::new().unwrap());
        m.reconciliations.with_label_values(&["ok"]).inc();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = m.clone();
        let server = tokio::spawn(async move { axum::serve(listener, router(served)).await });
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        server.abort();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(
            body.contains("aegis_operator_reconciliations_total{result=\"ok\"} 1"),
            "{body}"
        );
    }
}
