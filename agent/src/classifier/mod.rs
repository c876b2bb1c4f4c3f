//! The classifier: telemetry window → one `Anomaly`. Deterministic rules only (ADR-001: no
//! model decides what fired).

pub mod rules;

use crate::anomaly::{round3, Anomaly, AnomalyKind, Severity, SuggestedAction};
use crate::signals::Signals;
use crate::telemetry::TelemetryWindow;
use serde_json::json;

/// Anything that turns a window into an anomaly; ConsensusOps-Bench scores only `kind`.
pub trait Classifier: Send + Sync {
    fn name(&self) -> &str;
    fn classify(&self, window: &TelemetryWindow) -> Anomaly;
}

/// The built-in classifier: the five rules of [`rules`].
#[derive(Debug, Default, Clone, Copy)]
pub struct RuleClassifier;

impl Classifier for RuleClassifier {
    fn name(&self) -> &str {
        "rules"
    }

    fn classify(&self, window: &TelemetryWindow) -> Anomaly {
        classify_signals(&Signals::from_window(window))
    }
}

/// Highest confidence wins; a tie goes to the more severe rule, then to the fixed rule order.
/// With nothing fired the answer is `none`, as confident as the strongest rule was not.
pub fn classify_signals(s: &Signals) -> Anomaly {
    let results = rules::evaluate(s);
    let fired: Vec<&rules::RuleResult> = results.iter().filter(|r| r.fired()).collect();
    let confidences: serde_json::Map<String, serde_json::Value> = results
        .iter()
        .map(|r| (r.kind.as_str().to_string(), json!(round3(r.confidence))))
        .collect();

    let mut winner: Option<&rules::RuleResult> = None;
    for r in &fired {
        winner = match winner {
            None => Some(r),
            Some(w) => {
                let better = r.confidence > w.confidence
                    || (r.confidence == w.confidence && r.severity > w.severity);
                Some(if better { r } else { w })
            }
        };
    }

    let Some(w) = winner else {
        let strongest = results.iter().map(|r| r.confidence).fold(0.0, f64::max);
        let mut evidence = crate::anomaly::Evidence::new();
        evidence.insert("rule_confidences".into(), json!(confidences));
        evidence.insert("nodes".into(), json!(s.nodes));
        evidence.insert("samples".into(), json!(s.samples));
        return Anomaly {
            kind: AnomalyKind::None,
            severity: Severity::Info,
            confidence: round3(1.0 - strongest),
            evidence,
            suggested_action: SuggestedAction::NoAction,
        };
    };

    let mut evidence = w.evidence.clone();
    let also: Vec<&str> = fired
        .iter()
        .filter(|r| r.kind != w.kind)
        .map(|r| r.kind.as_str())
        .collect();
    // Several independent signals firing together is a cascade, whatever each alone says.
    let severity = if also.is_empty() {
        w.severity
    } else {
        Severity::Critical
    };
    evidence.insert("also_fired".into(), json!(also));
    evidence.insert("rule_confidences".into(), json!(confidences));
    Anomaly {
        kind: w.kind,
        severity,
        confidence: round3(w.confidence),
        evidence,
        suggested_action: w.suggested_action,
    }
}
