//! ConsensusOps-Bench: labelled incidents scoring anomaly classification and ranked
//! root-cause diagnosis as two separate capabilities. Any classifier and diagnoser plug in;
//! an omitted one falls back to the built-in.

pub mod incident;
pub mod variants;

use crate::anomaly::{AnomalyKind, RootCause};
use crate::classifier::{Classifier, RuleClassifier};
use crate::diagnoser::{Diagnoser, DiagnosisRequest, HeuristicDiagnoser, KnowledgeBase};
use incident::Incident;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub use incident::{load_dir, CorpusError};

/// Cut-off of the top-k root-cause score.
pub const TOP_K: usize = 3;

/// The seed files plus their deterministic variants.
pub fn corpus(seed_dir: &Path) -> Result<Vec<Incident>, CorpusError> {
    let seeds = load_dir(seed_dir)?;
    Ok(variants::expand(&seeds))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentResult {
    pub id: String,
    pub expected_kind: AnomalyKind,
    pub predicted_kind: AnomalyKind,
    pub expected_cause: RootCause,
    pub ranking: Vec<RootCause>,
    pub top1: bool,
    pub top3: bool,
    pub diagnosis_method: String,
    pub fallback_reason: Option<String>,
    pub latency_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Tally {
    pub correct: usize,
    pub total: usize,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        self.total += 1;
        if ok {
            self.correct += 1;
        }
    }

    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scorecard {
    pub classifier: String,
    pub diagnoser: String,
    pub incidents: usize,
    pub k: usize,
    pub classification: Tally,
    pub classification_by_kind: BTreeMap<String, Tally>,
    pub root_cause_top1: Tally,
    pub root_cause_top3: Tally,
    pub top1_by_cause: BTreeMap<String, Tally>,
    pub top3_by_cause: BTreeMap<String, Tally>,
    pub llm_prompt_tokens: u64,
    pub llm_completion_tokens: u64,
    pub llm_cost_usd: f64,
    pub llm_fallbacks: usize,
    /// Wall time of the scoring run (not asserted anywhere; reported only).
    pub wall_time_ms: u64,
    pub results: Vec<IncidentResult>,
}

/// Scores `classifier` and `diagnoser` (built-ins when `None`) on `incidents`. Retrieval in
/// the built-in diagnoser uses the corpus itself, leaving out the incident's own family.
pub async fn run(
    incidents: &[Incident],
    classifier: Option<&dyn Classifier>,
    diagnoser: Option<&dyn Diagnoser>,
) -> Scorecard {
    let started = Instant::now();
    let builtin_classifier = RuleClassifier;
    let classifier = classifier.unwrap_or(&builtin_classifier);
    let builtin_diagnoser =
        HeuristicDiagnoser::new(Arc::new(KnowledgeBase::from_incidents(incidents)));
    let diagnoser = diagnoser.unwrap_or(&builtin_diagnoser);

    let mut card = Scorecard {
        classifier: classifier.name().to_string(),
        diagnoser: diagnoser.name().to_string(),
        incidents: incidents.len(),
        k: TOP_K,
        classification: Tally::default(),
        classification_by_kind: BTreeMap::new(),
        root_cause_top1: Tally::default(),
        root_cause_top3: Tally::default(),
        top1_by_cause: BTreeMap::new(),
        top3_by_cause: BTreeMap::new(),
        llm_prompt_tokens: 0,
        llm_completion_tokens: 0,
        llm_cost_usd: 0.0,
        llm_fallbacks: 0,
        wall_time_ms: 0,
        results: Vec::new(),
    };
    for incident in incidents {
        let anomaly = classifier.classify(&incident.window);
        let diagnosis = diagnoser
            .diagnose(DiagnosisRequest {
                anomaly: &anomaly,
                window: &incident.window,
                exclude_family: Some(&incident.family),
            })
            .await;
        let ranking = diagnosis.top(usize::MAX);
        let top1 = ranking.first() == Some(&incident.root_cause);
        let top3 = ranking
            .iter()
            .take(TOP_K)
            .any(|c| *c == incident.root_cause);
        let kind_ok = anomaly.kind == incident.classifier_label;
        card.classification.add(kind_ok);
        card.classification_by_kind
            .entry(incident.classifier_label.to_string())
            .or_default()
            .add(kind_ok);
        card.root_cause_top1.add(top1);
        card.root_cause_top3.add(top3);
        let cause = incident.root_cause.to_string();
        card.top1_by_cause
            .entry(cause.clone())
            .or_default()
            .add(top1);
        card.top3_by_cause.entry(cause).or_default().add(top3);
        card.llm_prompt_tokens += diagnosis.prompt_tokens;
        card.llm_completion_tokens += diagnosis.completion_tokens;
        card.llm_cost_usd += diagnosis.cost_usd;
        if diagnosis.fallback_reason.is_some() {
            card.llm_fallbacks += 1;
        }
        card.results.push(IncidentResult {
            id: incident.id.clone(),
            expected_kind: incident.classifier_label,
            predicted_kind: anomaly.kind,
            expected_cause: incident.root_cause,
            ranking,
            top1,
            top3,
            diagnosis_method: diagnosis.method,
            fallback_reason: diagnosis.fallback_reason,
            latency_ms: diagnosis.latency_ms,
        });
    }
    card.wall_time_ms = started.elapsed().as_millis() as u64;
    card
}

impl Scorecard {
    /// The scorecard as a plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let frac = |t: &Tally| format!("{:.3} ({}/{})", t.ratio(), t.correct, t.total);
        let _ = writeln!(
            out,
            "ConsensusOps-Bench — {} incidents, k={}, classifier={}, diagnoser={}",
            self.incidents, self.k, self.classifier, self.diagnoser
        );
        let _ = writeln!(out, "{:<34} {:>16}", "metric", "score");
        let _ = writeln!(out, "{:-<34} {:->16}", "", "");
        let _ = writeln!(
            out,
            "{:<34} {:>16}",
            "anomaly classification accuracy",
            frac(&self.classification)
        );
        let _ = writeln!(
            out,
            "{:<34} {:>16}",
            "root-cause top-1 accuracy",
            frac(&self.root_cause_top1)
        );
        let _ = writeln!(
            out,
            "{:<34} {:>16}",
            format!("root-cause top-{} accuracy", self.k),
            frac(&self.root_cause_top3)
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<20} {:>10}", "anomaly kind", "classified");
        for (kind, t) in &self.classification_by_kind {
            let _ = writeln!(
                out,
                "{:<20} {:>10}",
                kind,
                format!("{}/{}", t.correct, t.total)
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>10}",
            "root cause",
            "top-1",
            format!("top-{}", self.k)
        );
        for (cause, t) in &self.top1_by_cause {
            let t3 = self.top3_by_cause.get(cause).cloned().unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<20} {:>10} {:>10}",
                cause,
                format!("{}/{}", t.correct, t.total),
                format!("{}/{}", t3.correct, t3.total)
            );
        }
        let misses: Vec<&IncidentResult> = self
            .results
            .iter()
            .filter(|r| !r.top1 || r.expected_kind != r.predicted_kind)
            .collect();
        let _ = writeln!(out);
        if misses.is_empty() {
            let _ = writeln!(out, "misses: none");
        }
        for m in misses {
            let _ = writeln!(
                out,
                "miss: {} kind {} (expected {}), ranking {:?} (expected {})",
                m.id,
                m.predicted_kind,
                m.expected_kind,
                m.ranking
                    .iter()
                    .take(self.k)
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>(),
                m.expected_cause
            );
        }
        if self.llm_prompt_tokens + self.llm_completion_tokens > 0 || self.llm_fallbacks > 0 {
            let _ = writeln!(
                out,
                "LLM: {} prompt + {} completion tokens, ${:.4}, {} fallbacks to the heuristic",
                self.llm_prompt_tokens,
                self.llm_completion_tokens,
                self.llm_cost_usd,
                self.llm_fallbacks
            );
        }
        let _ = writeln!(out, "wall time: {} ms", self.wall_time_ms);
        out
    }
}
