//! The optional LLM re-ranker against a local fake of an OpenAI-compatible endpoint: the exact
//! request, latency and token cost, and fallback to the heuristic on every kind of failure.

use aegis_agent::anomaly::RootCause;
use aegis_agent::bench::{self, incident::Incident};
use aegis_agent::classifier::{Classifier, RuleClassifier};
use aegis_agent::diagnoser::{
    Diagnoser, DiagnosisRequest, HeuristicDiagnoser, KnowledgeBase, LlmReranker,
};
use aegis_agent::llm::{LlmClient, LlmConfig};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn corpus() -> Vec<Incident> {
    bench::corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/incidents")).unwrap()
}

fn reranker(server_uri: &str, timeout_ms: u64, c: &[Incident]) -> LlmReranker {
    let cfg = LlmConfig {
        base_url: format!("{server_uri}/api/v1"),
        model: "vendor/flash-lite".into(),
        api_key: Some("sk-test".into()),
        timeout: Duration::from_millis(timeout_ms),
        usd_per_mtok_prompt: 0.1,
        usd_per_mtok_completion: 0.4,
    };
    LlmReranker {
        heuristic: HeuristicDiagnoser::new(Arc::new(KnowledgeBase::from_incidents(c))),
        client: Some(LlmClient::new(cfg).unwrap()),
    }
}

fn completion(content: &str) -> serde_json::Value {
    json!({
        "id": "x", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80}
    })
}

#[tokio::test]
async fn the_model_ranking_is_used_with_tokens_cost_and_latency_recorded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_partial_json(json!({"model": "vendor/flash-lite", "temperature": 0})))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            "{\"hypotheses\":[{\"cause\":\"network_partition\",\"confidence\":0.7},{\"cause\":\"slow_follower_disk\",\"confidence\":0.2}]}",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let c = corpus();
    let d = reranker(&server.uri(), 5000, &c);
    let inc = c.iter().find(|i| i.id == "seed-slow_follower").unwrap();
    let a = RuleClassifier.classify(&inc.window);
    let diag = d
        .diagnose(DiagnosisRequest {
            anomaly: &a,
            window: &inc.window,
            exclude_family: None,
        })
        .await;
    assert_eq!(diag.method, "llm:vendor/flash-lite");
    assert_eq!(diag.fallback_reason, None);
    assert_eq!(diag.hypotheses[0].cause, RootCause::NetworkPartition);
    assert_eq!(diag.hypotheses[1].cause, RootCause::SlowFollowerDisk);
    assert_eq!(diag.hypotheses.len(), 6, "unranked causes are appended");
    assert_eq!(diag.prompt_tokens, 1200);
    assert_eq!(diag.completion_tokens, 80);
    assert!((diag.cost_usd - (1200.0 * 0.1 + 80.0 * 0.4) / 1e6).abs() < 1e-12);
    // The prompt carries the signals and the retrieved incidents, not the labels.
    let req = &server.received_requests().await.unwrap()[0];
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("similar_past_incidents") && user.contains("sustained_lag"));
    assert!(!user.contains("classifier_label"));
}

#[tokio::test]
async fn every_failure_falls_back_to_the_heuristic() {
    let c = corpus();
    let inc = c.iter().find(|i| i.id == "seed-clock_skew").unwrap();
    let a = RuleClassifier.classify(&inc.window);
    let req = DiagnosisRequest {
        anomaly: &a,
        window: &inc.window,
        exclude_family: None,
    };
    let baseline =
        HeuristicDiagnoser::new(Arc::new(KnowledgeBase::from_incidents(&c))).diagnose_sync(&req);

    let cases: Vec<(&str, ResponseTemplate)> = vec![
        (
            "HTTP 500",
            ResponseTemplate::new(500).set_body_string("upstream error"),
        ),
        (
            "429",
            ResponseTemplate::new(429).set_body_json(json!({"error": "rate limited"})),
        ),
        (
            "not a completion",
            ResponseTemplate::new(200).set_body_string("<html>"),
        ),
        (
            "no JSON in the answer",
            ResponseTemplate::new(200).set_body_json(completion("I think it is the clock.")),
        ),
        (
            "unknown cause",
            ResponseTemplate::new(200)
                .set_body_json(completion("{\"hypotheses\":[{\"cause\":\"solar_flare\"}]}")),
        ),
        (
            "timeout",
            ResponseTemplate::new(200)
                .set_body_json(completion("{}"))
                .set_delay(Duration::from_millis(1500)),
        ),
    ];
    for (name, response) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        let d = reranker(&server.uri(), 300, &c);
        let diag = d.diagnose(req).await;
        assert!(
            diag.fallback_reason.is_some(),
            "{name}: no fallback recorded"
        );
        assert_eq!(diag.method, "heuristic", "{name}");
        assert_eq!(diag.hypotheses, baseline.hypotheses, "{name}");
        if name == "timeout" {
            assert!(diag.fallback_reason.unwrap().contains("timed out"));
        }
    }

    // No endpoint configured at all.
    let d = LlmReranker {
        heuristic: HeuristicDiagnoser::new(Arc::new(KnowledgeBase::from_incidents(&c))),
        client: None,
    };
    let diag = d.diagnose(req).await;
    assert_eq!(diag.hypotheses, baseline.hypotheses);
    assert!(diag.fallback_reason.unwrap().contains("no LLM endpoint"));
}

#[tokio::test]
async fn a_bench_run_with_an_unavailable_model_degrades_to_the_baseline_scores() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .mount(&server)
        .await;
    let c = corpus();
    let d = reranker(&server.uri(), 2000, &c);
    let llm_card = bench::run(&c, None, Some(&d)).await;
    let baseline = bench::run(&c, None, None).await;
    assert_eq!(llm_card.diagnoser, "llm-rerank");
    assert_eq!(llm_card.llm_fallbacks, 33);
    assert_eq!(server.received_requests().await.unwrap().len(), 33);
    assert_eq!(llm_card.root_cause_top1, baseline.root_cause_top1);
    assert_eq!(llm_card.root_cause_top3, baseline.root_cause_top3);
    assert!(llm_card.table().contains("33 fallbacks to the heuristic"));
}
