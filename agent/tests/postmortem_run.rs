//! The postmortem drafter (template, LLM narration, idempotent issue, knowledge record) and the
//! `run` loop, against local fakes of GitHub, the LLM endpoint and Prometheus.

use aegis_agent::anomaly::AnomalyKind;
use aegis_agent::bench::{self, incident::Incident};
use aegis_agent::classifier::{Classifier, RuleClassifier};
use aegis_agent::diagnoser::{DiagnosisRequest, HeuristicDiagnoser, KnowledgeBase};
use aegis_agent::github::{GitHub, RetryPolicy};
use aegis_agent::llm::{LlmClient, LlmConfig};
use aegis_agent::postmortem::{self, IssueOutcome};
use aegis_agent::proposer::ProposerSettings;
use aegis_agent::run::{Agent, AgentMetrics, RunSettings, StepOutcome};
use aegis_agent::telemetry::PrometheusSource;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn corpus() -> Vec<Incident> {
    bench::corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/incidents")).unwrap()
}

fn cascade(c: &[Incident]) -> &Incident {
    c.iter().find(|i| i.id == "seed-critical_cascade").unwrap()
}

fn draft_for(c: &[Incident], inc: &Incident) -> postmortem::Draft {
    let kb = KnowledgeBase::from_incidents(c);
    let a = RuleClassifier.classify(&inc.window);
    let d = HeuristicDiagnoser::new(Arc::new(kb.clone())).diagnose_sync(&DiagnosisRequest {
        anomaly: &a,
        window: &inc.window,
        exclude_family: Some(&inc.family),
    });
    postmortem::draft(&a, &inc.window, &d, &kb, Some(&inc.family))
}

#[test]
fn the_template_is_deterministic_and_complete() {
    let c = corpus();
    let d1 = draft_for(&c, cascade(&c));
    let d2 = draft_for(&c, cascade(&c));
    assert_eq!(d1, d2);
    assert_eq!(
        d1.title,
        "Postmortem: slow_follower (critical) starting 2026-05-28T20:26:40Z"
    );
    for section in [
        "## Summary",
        "## Timeline",
        "## Raft term history",
        "## Ranked root-cause hypotheses",
        "## Similar past incidents",
        "## Correlations",
        "## Action items",
    ] {
        assert!(d1.body.contains(section), "missing {section}");
    }
    // Tool output made it in: the chaos event, the disk onset before the churn, term moves.
    assert!(d1.body.contains("critical-cascade start"));
    let disk = d1.body.find("fsync p99 of aegis-4").unwrap();
    let churn = d1.body.find("leadership starts to move").unwrap();
    assert!(disk < churn, "timeline is in time order");
    assert!(d1.body.contains("| 3 → 4 |"));
    assert!(d1.body.contains("| 1 | slow_follower_disk |"));
}

fn github(server: &MockServer) -> GitHub {
    GitHub::new(
        &server.uri(),
        Some("t".into()),
        "acme",
        "aegis-config",
        RetryPolicy {
            attempts: 2,
            base_backoff: Duration::from_millis(1),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn one_issue_per_title_even_when_run_twice() {
    let c = corpus();
    let d = draft_for(&c, cascade(&c));
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/aegis-config/issues"))
        .and(query_param("labels", "aegis-postmortem"))
        .and(query_param("state", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"number": 3, "html_url": "https://github.example/i/3", "title": "Postmortem: something else"}
        ])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/aegis-config/issues"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"number": 3, "html_url": "https://github.example/i/3", "title": "Postmortem: something else"},
            {"number": 9, "html_url": "https://github.example/i/9", "title": d.title}
        ])))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/aegis-config/issues"))
        .and(body_partial_json(
            json!({"title": d.title, "labels": ["aegis-postmortem"]}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "number": 9, "html_url": "https://github.example/i/9", "title": d.title
        })))
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    let first = postmortem::publish(Some(&gh), &d, false).await.unwrap();
    assert!(matches!(first, IssueOutcome::Created(ref i) if i.number == 9));
    let second = postmortem::publish(Some(&gh), &d, false).await.unwrap();
    assert!(matches!(second, IssueOutcome::Reused(ref i) if i.number == 9));
    let reqs = server.received_requests().await.unwrap();
    let methods: Vec<String> = reqs.iter().map(|r| r.method.to_string()).collect();
    assert_eq!(methods, vec!["GET", "POST", "GET"]);
    let body: serde_json::Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(body["body"].as_str().unwrap(), d.body);
}

#[tokio::test]
async fn llm_narration_is_added_and_its_failure_keeps_the_template() {
    let c = corpus();
    let d = draft_for(&c, cascade(&c));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"message": {"role": "assistant", "content": "The disk of aegis-4 degraded first."}}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 40, "cost": 0.00012}
        })))
        .mount(&server)
        .await;
    let client = |base: String| {
        LlmClient::new(LlmConfig {
            base_url: base,
            model: "m".into(),
            api_key: None,
            timeout: Duration::from_millis(500),
            usd_per_mtok_prompt: 0.0,
            usd_per_mtok_completion: 0.0,
        })
        .unwrap()
    };
    let narrated = postmortem::narrate(&client(format!("{}/v1", server.uri())), d.clone()).await;
    assert_eq!(narrated.narration, "llm:m");
    assert!(narrated
        .body
        .starts_with("## Narrative\n\nThe disk of aegis-4 degraded first."));
    assert!(narrated.body.contains("$0.00012"));
    assert!(narrated.body.ends_with(&d.body));

    let down = postmortem::narrate(&client("http://127.0.0.1:9/v1".into()), d.clone()).await;
    assert_eq!(down, d);
}

#[test]
fn a_recorded_postmortem_grows_the_knowledge_base() {
    let c = corpus();
    let inc = cascade(&c);
    let d = draft_for(&c, inc);
    let kb = KnowledgeBase::from_incidents(&c);
    let a = RuleClassifier.classify(&inc.window);
    let diag = HeuristicDiagnoser::new(Arc::new(kb)).diagnose_sync(&DiagnosisRequest {
        anomaly: &a,
        window: &inc.window,
        exclude_family: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let written = postmortem::record(dir.path(), &d, &inc.window, &diag)
        .unwrap()
        .unwrap();
    assert!(written.exists());
    let mut grown = KnowledgeBase::default();
    assert_eq!(grown.add_postmortems(dir.path()).unwrap(), 1);
    let near = postmortem::tools::find_similar_past_incident(&grown, &inc.window, 1, None);
    assert_eq!(near[0].summary, d.title);
    assert!(
        (near[0].similarity - 1.0).abs() < 1e-9,
        "same window, distance 0"
    );
}

/// A fake Prometheus whose every window shows aegis-1's clock 900 ms ahead.
struct SkewedPrometheus;

impl Respond for SkewedPrometheus {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        let start: f64 = q["start"].parse().unwrap();
        let step: f64 = q["step"].parse().unwrap();
        let query = q["query"].as_str();
        let mut result = vec![];
        if query.starts_with("aegis_node_wall_clock_ms") {
            for n in 0..3 {
                let values: Vec<(f64, String)> = (0..6)
                    .map(|i| {
                        (
                            start + step * i as f64,
                            if n == 1 { "900".into() } else { "0".into() },
                        )
                    })
                    .collect();
                result
                    .push(json!({"metric": {"instance": format!("aegis-{n}")}, "values": values}));
            }
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "status": "success", "data": {"resultType": "matrix", "result": result}
        }))
    }
}

#[tokio::test]
async fn the_loop_acts_once_on_a_sustained_anomaly_serves_metrics_and_stops_cleanly() {
    let prom = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query_range"))
        .respond_with(SkewedPrometheus)
        .mount(&prom)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = AgentMetrics::new().unwrap();
    let settings = RunSettings {
        interval: Duration::from_millis(20),
        window_length: Duration::from_secs(50),
        step: Duration::from_secs(10),
        sustain_windows: 3,
        dry_run: true,
        proposer: ProposerSettings {
            config_path: "aegis.yaml".into(),
            base_branch: "main".into(),
            audit_log: dir.path().join("audit.jsonl"),
        },
        deployed: Some("lease:\n  skew-grace-ms: 500\n".into()),
        knowledge_dir: None,
    };
    let source = PrometheusSource::new(&prom.uri(), Duration::from_secs(2)).unwrap();
    let mut agent = Agent::new(
        source,
        None,
        None,
        KnowledgeBase::default(),
        settings.clone(),
        metrics.clone(),
    );
    let mut outcomes = vec![];
    for i in 0..5 {
        outcomes.push(agent.step(1_780_000_000_000 + i * 10_000).await);
    }
    assert_eq!(
        outcomes[0],
        StepOutcome::Observed {
            kind: AnomalyKind::ClockSkew,
            streak: 1
        }
    );
    assert_eq!(
        outcomes[1],
        StepOutcome::Observed {
            kind: AnomalyKind::ClockSkew,
            streak: 2
        }
    );
    assert_eq!(
        outcomes[2],
        StepOutcome::Acted {
            kind: AnomalyKind::ClockSkew,
            proposal: "dry_run".into(),
            postmortem: None
        }
    );
    assert_eq!(
        outcomes[3],
        StepOutcome::Observed {
            kind: AnomalyKind::ClockSkew,
            streak: 4
        }
    );

    // /metrics over HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(aegis_agent::run::serve_metrics(
        listener,
        metrics.clone(),
        async {
            let _ = rx.await;
        },
    ));
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("aegis_agent_windows_total 5"), "{text}");
    assert!(text.contains("aegis_agent_anomalies_total{kind=\"clock_skew\"} 5"));
    assert!(text.contains("aegis_agent_proposals_total{outcome=\"dry_run\"} 1"));
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();

    // The timed loop stops when asked, finishing the iteration in flight.
    let source = PrometheusSource::new(&prom.uri(), Duration::from_secs(2)).unwrap();
    let agent = Agent::new(
        source,
        None,
        None,
        KnowledgeBase::default(),
        settings,
        AgentMetrics::new().unwrap(),
    );
    let outcomes = agent
        .run(tokio::time::sleep(Duration::from_millis(150)))
        .await;
    assert!(!outcomes.is_empty());
    assert!(
        outcomes
            .iter()
            .filter(|o| matches!(o, StepOutcome::Acted { .. }))
            .count()
            <= 1
    );
}

#[tokio::test]
async fn the_loop_survives_a_prometheus_outage() {
    let source = PrometheusSource::new("http://127.0.0.1:9", Duration::from_millis(200))
        .unwrap()
        .with_retry(1, Duration::from_millis(1));
    let dir = tempfile::tempdir().unwrap();
    let metrics = AgentMetrics::new().unwrap();
    let mut agent = Agent::new(
        source,
        None,
        None,
        KnowledgeBase::default(),
        RunSettings {
            interval: Duration::from_millis(10),
            window_length: Duration::from_secs(60),
            step: Duration::from_secs(10),
            sustain_windows: 1,
            dry_run: true,
            proposer: ProposerSettings {
                config_path: "aegis.yaml".into(),
                base_branch: "main".into(),
                audit_log: dir.path().join("a.jsonl"),
            },
            deployed: None,
            knowledge_dir: None,
        },
        metrics.clone(),
    );
    for _ in 0..2 {
        assert!(matches!(
            agent.step(1_780_000_000_000).await,
            StepOutcome::FetchFailed(_)
        ));
    }
    assert!(metrics
        .render()
        .contains("aegis_agent_window_errors_total 2"));
}
