//! `aegis-agent run`: every interval, fetch a window → classify → act only on an anomaly
//! sustained over N consecutive windows (once per episode) → propose and, when critical, draft
//! a postmortem. Serves its own `/metrics`; stops cleanly on the shutdown future.

use crate::anomaly::{Anomaly, AnomalyKind, Severity};
use crate::classifier::{Classifier, RuleClassifier};
use crate::diagnoser::{
    Diagnoser, DiagnosisRequest, HeuristicDiagnoser, KnowledgeBase, LlmReranker,
};
use crate::github::GitHub;
use crate::llm::LlmClient;
use crate::postmortem;
use crate::proposer::{self, ProposerSettings};
use crate::telemetry::PrometheusSource;
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RunSettings {
    pub interval: Duration,
    pub window_length: Duration,
    pub step: Duration,
    /// Consecutive windows of the same non-`none` kind before the agent acts.
    pub sustain_windows: u32,
    pub dry_run: bool,
    pub proposer: ProposerSettings,
    /// Deployed config text, when not read from the repository.
    pub deployed: Option<String>,
    /// Where postmortem knowledge records are written (and read for retrieval).
    pub knowledge_dir: Option<PathBuf>,
}

/// Counts consecutive windows of one kind; says "act" once per sustained episode.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    kind: Option<AnomalyKind>,
    streak: u32,
    acted: bool,
}

impl Tracker {
    pub fn observe(&mut self, kind: AnomalyKind, sustain: u32) -> bool {
        if self.kind == Some(kind) {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.kind = Some(kind);
            self.streak = 1;
            self.acted = false;
        }
        if kind == AnomalyKind::None || self.acted || self.streak < sustain.max(1) {
            return false;
        }
        self.acted = true;
        true
    }

    pub fn streak(&self) -> u32 {
        self.streak
    }
}

#[derive(Clone)]
pub struct AgentMetrics {
    pub registry: Registry,
    pub windows: IntCounter,
    pub window_errors: IntCounter,
    pub anomalies: IntCounterVec,
    pub streak: IntGauge,
    pub proposals: IntCounterVec,
    pub postmortems: IntCounterVec,
}

impl AgentMetrics {
    pub fn new() -> Result<AgentMetrics, prometheus::Error> {
        let registry = Registry::new();
        let windows = IntCounter::new("aegis_agent_windows_total", "telemetry windows classified")?;
        let window_errors = IntCounter::new(
            "aegis_agent_window_errors_total",
            "windows that could not be fetched from Prometheus",
        )?;
        let anomalies = IntCounterVec::new(
            Opts::new("aegis_agent_anomalies_total", "classified windows by kind"),
            &["kind"],
        )?;
        let streak = IntGauge::new(
            "aegis_agent_anomaly_streak",
            "consecutive windows of the current kind",
        )?;
        let proposals = IntCounterVec::new(
            Opts::new("aegis_agent_proposals_total", "proposer outcomes"),
            &["outcome"],
        )?;
        let postmortems = IntCounterVec::new(
            Opts::new("aegis_agent_postmortems_total", "postmortem outcomes"),
            &["outcome"],
        )?;
        registry.register(Box::new(windows.clone()))?;
        registry.register(Box::new(window_errors.clone()))?;
        registry.register(Box::new(anomalies.clone()))?;
        registry.register(Box::new(streak.clone()))?;
        registry.register(Box::new(proposals.clone()))?;
        registry.register(Box::new(postmortems.clone()))?;
        Ok(AgentMetrics {
            registry,
            windows,
            window_errors,
            anomalies,
            streak,
            proposals,
            postmortems,
        })
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Serves `/metrics` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: AgentMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// What one window led to, for logs and tests.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    FetchFailed(String),
    Observed {
        kind: AnomalyKind,
        streak: u32,
    },
    Acted {
        kind: AnomalyKind,
        proposal: String,
        postmortem: Option<String>,
    },
}

pub struct Agent {
    pub prometheus: PrometheusSource,
    pub github: Option<GitHub>,
    pub llm: Option<LlmClient>,
    pub knowledge: KnowledgeBase,
    pub settings: RunSettings,
    pub metrics: AgentMetrics,
    tracker: Tracker,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Agent {
    pub fn new(
        prometheus: PrometheusSource,
        github: Option<GitHub>,
        llm: Option<LlmClient>,
        knowledge: KnowledgeBase,
        settings: RunSettings,
        metrics: AgentMetrics,
    ) -> Agent {
        Agent {
            prometheus,
            github,
            llm,
            knowledge,
            settings,
            metrics,
            tracker: Tracker::default(),
        }
    }

    /// One iteration of the loop at `end_ms`.
    pub async fn step(&mut self, end_ms: i64) -> StepOutcome {
        let window = match self
            .prometheus
            .window(end_ms, self.settings.window_length, self.settings.step)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                self.metrics.window_errors.inc();
                tracing::warn!(error = %e, "cannot fetch the telemetry window; will retry next interval");
                return StepOutcome::FetchFailed(e.to_string());
            }
        };
        if window.metrics.is_empty() {
            // Nothing scraped is not "healthy": the selector or the scrape config is wrong, or
            // every node is down.
            self.metrics.window_errors.inc();
            let why = "Prometheus returned no aegis_* series for the window".to_string();
            tracing::warn!("{why}");
            return StepOutcome::FetchFailed(why);
        }
        self.metrics.windows.inc();
        let anomaly = RuleClassifier.classify(&window);
        self.metrics
            .anomalies
            .with_label_values(&[anomaly.kind.as_str()])
            .inc();
        let act = self
            .tracker
            .observe(anomaly.kind, self.settings.sustain_windows);
        self.metrics.streak.set(i64::from(self.tracker.streak()));
        tracing::info!(kind = %anomaly.kind, severity = %anomaly.severity, streak = self.tracker.streak(), "window classified");
        if !act {
            return StepOutcome::Observed {
                kind: anomaly.kind,
                streak: self.tracker.streak(),
            };
        }
        let proposal = self.propose(&anomaly).await;
        let postmortem = if anomaly.severity == Severity::Critical {
            Some(self.postmortem(&anomaly, &window).await)
        } else {
            None
        };
        StepOutcome::Acted {
            kind: anomaly.kind,
            proposal,
            postmortem,
        }
    }

    async fn propose(&self, anomaly: &Anomaly) -> String {
        let outcome = proposer::propose(
            self.github.as_ref(),
            &self.settings.proposer,
            anomaly,
            self.settings.deployed.as_deref(),
            self.settings.dry_run,
        )
        .await;
        let label = match &outcome {
            Ok(proposer::Outcome::NoAction { .. }) => "no_action",
            Ok(proposer::Outcome::Blocked(_)) => "blocked",
            Ok(proposer::Outcome::DryRun(_)) => "dry_run",
            Ok(proposer::Outcome::Opened { .. }) => "opened",
            Ok(proposer::Outcome::Reused { .. }) => "reused",
            Err(_) => "error",
        };
        self.metrics.proposals.with_label_values(&[label]).inc();
        match outcome {
            Ok(o) => {
                tracing::info!(outcome = ?o, "proposer");
                label.to_string()
            }
            Err(e) => {
                tracing::error!(error = %e, "proposer failed");
                format!("error: {e}")
            }
        }
    }

    async fn postmortem(
        &mut self,
        anomaly: &Anomaly,
        window: &crate::telemetry::TelemetryWindow,
    ) -> String {
        let heuristic = HeuristicDiagnoser::new(Arc::new(self.knowledge.clone()));
        let req = DiagnosisRequest {
            anomaly,
            window,
            exclude_family: None,
        };
        let diagnosis = match &self.llm {
            Some(client) => {
                LlmReranker {
                    heuristic,
                    client: Some(client.clone()),
                }
                .diagnose(req)
                .await
            }
            None => heuristic.diagnose_sync(&req),
        };
        let mut d = postmortem::draft(anomaly, window, &diagnosis, &self.knowledge, None);
        if let Some(client) = &self.llm {
            d = postmortem::narrate(client, d).await;
        }
        if let Some(dir) = &self.settings.knowledge_dir {
            match postmortem::record(dir, &d, window, &diagnosis) {
                Ok(_) => {
                    let mut fresh = KnowledgeBase::default();
                    if fresh.add_postmortems(dir).is_ok() {
                        self.knowledge
                            .entries
                            .retain(|e| !fresh.entries.iter().any(|f| f.id == e.id));
                        self.knowledge.entries.extend(fresh.entries);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot write the knowledge record"),
            }
        }
        let outcome = postmortem::publish(self.github.as_ref(), &d, self.settings.dry_run).await;
        let label = match &outcome {
            Ok(postmortem::IssueOutcome::Created(_)) => "created",
            Ok(postmortem::IssueOutcome::Reused(_)) => "reused",
            Ok(postmortem::IssueOutcome::DryRun { .. }) => "dry_run",
            Err(_) => "error",
        };
        self.metrics.postmortems.with_label_values(&[label]).inc();
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "postmortem issue failed");
        }
        label.to_string()
    }

    /// Runs until `shutdown` resolves; the iteration in flight finishes first.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Vec<StepOutcome> {
        let mut ticker =
            tokio::time::interval(self.settings.interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut outcomes = Vec::new();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = ticker.tick() => {
                    let o = self.step(now_ms()).await;
                    outcomes.push(o);
                }
            }
        }
        tracing::info!(windows = outcomes.len(), "agent loop stopped");
        outcomes
    }
}

/// Binds the metrics listener early so a bad address fails at start, not later.
pub async fn bind_metrics(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acts_once_per_sustained_episode() {
        let mut t = Tracker::default();
        let k = AnomalyKind::ClockSkew;
        assert!(!t.observe(k, 3));
        assert!(!t.observe(k, 3));
        assert!(t.observe(k, 3));
        assert!(!t.observe(k, 3), "once per episode");
        assert!(!t.observe(AnomalyKind::None, 3));
        assert!(!t.observe(k, 3));
        assert!(!t.observe(k, 3));
        assert!(t.observe(k, 3), "a new episode acts again");
        let mut t = Tracker::default();
        for _ in 0..10 {
            assert!(!t.observe(AnomalyKind::None, 1), "none never acts");
        }
    }
}
