//! Optional LLM re-ranking of the heuristic hypotheses, from the signals and the retrieved
//! similar incidents. Any failure — no endpoint, timeout, HTTP error, an answer that is not a
//! ranking of known causes — returns the heuristic diagnosis with the reason recorded.

use super::heuristic::HeuristicDiagnoser;
use super::{BoxFut, Diagnoser, Diagnosis, DiagnosisRequest, Hypothesis};
use crate::anomaly::{round3, RootCause};
use crate::llm::{extract_json_object, LlmClient};
use crate::signals::Signals;
use serde_json::json;

pub const SYSTEM_PROMPT: &str = "You diagnose incidents of a 5-replica Raft coordination service. \
Rank the root causes from most to least likely. Allowed causes: slow_follower_disk, \
network_partition, clock_drift, election_storm, lease_starvation, healthy. Answer with JSON only: \
{\"hypotheses\":[{\"cause\":\"...\",\"confidence\":0.0}]}";

pub struct LlmReranker {
    pub heuristic: HeuristicDiagnoser,
    pub client: Option<LlmClient>,
}

impl LlmReranker {
    pub fn prompt(req: &DiagnosisRequest<'_>, baseline: &Diagnosis) -> String {
        let s = Signals::from_window(req.window);
        json!({
            "anomaly": req.anomaly,
            "signals": s,
            "heuristic_ranking": baseline.hypotheses,
            "similar_past_incidents": baseline.similar,
        })
        .to_string()
    }

    async fn rerank(&self, req: &DiagnosisRequest<'_>, baseline: Diagnosis) -> Diagnosis {
        let Some(client) = &self.client else {
            return with_fallback(baseline, "no LLM endpoint configured".into());
        };
        let reply = match client
            .chat(SYSTEM_PROMPT, &Self::prompt(req, &baseline))
            .await
        {
            Ok(r) => r,
            Err(e) => return with_fallback(baseline, e.to_string()),
        };
        let ranked = match parse_ranking(&reply.content) {
            Ok(r) => r,
            Err(why) => {
                let mut d = with_fallback(baseline, why);
                d.latency_ms = reply.latency_ms;
                d.prompt_tokens = reply.prompt_tokens;
                d.completion_tokens = reply.completion_tokens;
                d.cost_usd = reply.cost_usd;
                return d;
            }
        };
        let mut hypotheses = ranked;
        // Causes the model left out keep their heuristic order after the ones it ranked.
        for h in &baseline.hypotheses {
            if !hypotheses.iter().any(|x| x.cause == h.cause) {
                hypotheses.push(Hypothesis {
                    cause: h.cause,
                    confidence: 0.0,
                    rationale: h.rationale.clone(),
                });
            }
        }
        for h in hypotheses.iter_mut() {
            if let Some(b) = baseline.hypotheses.iter().find(|b| b.cause == h.cause) {
                if h.rationale.is_empty() {
                    h.rationale = b.rationale.clone();
                }
            }
        }
        Diagnosis {
            method: format!("llm:{}", client.model()),
            hypotheses,
            similar: baseline.similar,
            latency_ms: reply.latency_ms,
            prompt_tokens: reply.prompt_tokens,
            completion_tokens: reply.completion_tokens,
            cost_usd: reply.cost_usd,
            fallback_reason: None,
        }
    }
}

fn with_fallback(mut d: Diagnosis, reason: String) -> Diagnosis {
    d.fallback_reason = Some(reason);
    d
}

/// The model's ranking, in its order; unknown or repeated causes make the whole answer invalid.
pub fn parse_ranking(content: &str) -> Result<Vec<Hypothesis>, String> {
    let value = extract_json_object(content).ok_or("LLM answer holds no JSON object")?;
    let list = value
        .get("hypotheses")
        .and_then(|v| v.as_array())
        .ok_or("LLM answer has no `hypotheses` array")?;
    let mut out: Vec<Hypothesis> = Vec::new();
    for item in list {
        let name = item
            .get("cause")
            .and_then(|c| c.as_str())
            .ok_or("LLM hypothesis without a `cause` string")?;
        let cause =
            RootCause::parse(name).ok_or_else(|| format!("LLM named unknown cause {name:?}"))?;
        if out.iter().any(|h| h.cause == cause) {
            return Err(format!("LLM ranked {name} twice"));
        }
        let confidence = item
            .get("confidence")
            .and_then(|c| c.as_f64())
            .filter(|c| c.is_finite())
            .unwrap_or(0.0)
            .clamp(0.0, 1.0);
        out.push(Hypothesis {
            cause,
            confidence: round3(confidence),
            rationale: String::new(),
        });
    }
    if out.is_empty() {
        return Err("LLM ranked no cause".into());
    }
    Ok(out)
}

impl Diagnoser for LlmReranker {
    fn name(&self) -> &str {
        "llm-rerank"
    }

    fn diagnose<'a>(&'a self, req: DiagnosisRequest<'a>) -> BoxFut<'a, Diagnosis> {
        Box::pin(async move {
            let baseline = self.heuristic.diagnose_sync(&req);
            self.rerank(&req, baseline).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_parses_from_fenced_json() {
        let r = parse_ranking("```json\n{\"hypotheses\":[{\"cause\":\"clock_drift\",\"confidence\":0.9},{\"cause\":\"healthy\",\"confidence\":0.1}]}\n```").unwrap();
        assert_eq!(r[0].cause, RootCause::ClockDrift);
        assert_eq!(r[1].cause, RootCause::Healthy);
    }

    #[test]
    fn unknown_or_duplicate_causes_are_rejected() {
        assert!(parse_ranking("{\"hypotheses\":[{\"cause\":\"cosmic_rays\"}]}").is_err());
        assert!(parse_ranking(
            "{\"hypotheses\":[{\"cause\":\"healthy\"},{\"cause\":\"healthy\"}]}"
        )
        .is_err());
        assert!(parse_ranking("no json here").is_err());
    }
}
