//! The diagnoser: anomaly + window → ranked hypotheses over the six root causes.

pub mod heuristic;
pub mod llm_rerank;
pub mod retrieval;

use crate::anomaly::{Anomaly, RootCause};
use crate::telemetry::TelemetryWindow;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;

pub use heuristic::HeuristicDiagnoser;
pub use llm_rerank::LlmReranker;
pub use retrieval::{KnowledgeBase, Neighbour};

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy)]
pub struct DiagnosisRequest<'a> {
    pub anomaly: &'a Anomaly,
    pub window: &'a TelemetryWindow,
    /// Leave this incident family out of retrieval (the benchmark's leave-one-family-out).
    pub exclude_family: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hypothesis {
    pub cause: RootCause,
    pub confidence: f64,
    pub rationale: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub method: String,
    /// Best first, all six causes.
    pub hypotheses: Vec<Hypothesis>,
    pub similar: Vec<Neighbour>,
    pub latency_ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    /// Set when an LLM diagnoser fell back to the heuristic, with the reason.
    pub fallback_reason: Option<String>,
}

impl Diagnosis {
    pub fn top(&self, k: usize) -> Vec<RootCause> {
        self.hypotheses.iter().take(k).map(|h| h.cause).collect()
    }
}

/// Any ranked diagnoser; ConsensusOps-Bench scores the order of `hypotheses`.
pub trait Diagnoser: Send + Sync {
    fn name(&self) -> &str;
    fn diagnose<'a>(&'a self, req: DiagnosisRequest<'a>) -> BoxFut<'a, Diagnosis>;
}
