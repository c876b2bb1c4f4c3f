//! Telemetry windows: the Prometheus `query_range` source against a local fake of the
//! Prometheus HTTP API, and the JSON window file format's error handling.

use aegis_agent::classifier::{Classifier, RuleClassifier};
use aegis_agent::telemetry::{PrometheusError, PrometheusSource, TelemetryWindow, WindowError};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const END_MS: i64 = 1_780_000_120_000;

/// Answers each query with a small matrix: five nodes, 13 samples, with `aegis-3`'s follower
/// lag growing and `aegis-1`'s clock 900 ms ahead.
struct FakePrometheus;

impl Respond for FakePrometheus {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        let query = q.get("query").cloned().unwrap_or_default();
        let start: f64 = q["start"].parse().unwrap();
        let step: f64 = q["step"].parse().unwrap();
        let ts: Vec<f64> = (0..13).map(|i| start + step * i as f64).collect();
        let mut result = Vec::new();
        for n in 0..5 {
            let instance = format!("aegis-{n}");
            let values: Vec<(f64, String)> = if query.starts_with("aegis_node_wall_clock_ms") {
                // The offset query: node clock minus scrape time, in ms.
                ts.iter()
                    .map(|t| (*t, if n == 1 { "900".into() } else { "3".into() }))
                    .collect()
            } else if query == "aegis_raft_is_leader" {
                ts.iter()
                    .map(|t| (*t, if n == 0 { "1".into() } else { "0".into() }))
                    .collect()
            } else if query == "aegis_raft_term" {
                ts.iter().map(|t| (*t, "4".into())).collect()
            } else if query.starts_with("histogram_quantile(0.99, sum by (instance, le)") {
                // An idle histogram yields NaN: must be dropped, not poison the window.
                ts.iter()
                    .map(|t| (*t, if n == 2 { "NaN".into() } else { "0.004".into() }))
                    .collect()
            } else {
                continue;
            };
            result.push(json!({"metric": {"__name__": "x", "instance": instance, "job": "aegis"}, "values": values}));
        }
        if query == "aegis_raft_log_lag" {
            for f in 1..5 {
                let values: Vec<(f64, String)> = ts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        (
                            *t,
                            if f == 3 {
                                format!("{}", 500 * i)
                            } else {
                                "20".into()
                            },
                        )
                    })
                    .collect();
                result.push(json!({"metric": {"instance": "aegis-0", "follower": format!("aegis-{f}")}, "values": values}));
            }
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "status": "success",
            "data": {"resultType": "matrix", "result": result}
        }))
    }
}

fn source(server: &MockServer) -> PrometheusSource {
    PrometheusSource::new(&server.uri(), Duration::from_secs(2))
        .unwrap()
        .with_retry(3, Duration::from_millis(5))
}

#[tokio::test]
async fn a_window_is_built_from_query_range_over_the_design_metrics() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query_range"))
        .and(query_param("step", "10.000"))
        .respond_with(FakePrometheus)
        .mount(&server)
        .await;
    let w = source(&server)
        .window(END_MS, Duration::from_secs(120), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(w.start_ms, END_MS - 120_000);
    assert_eq!(
        w.nodes(),
        vec!["aegis-0", "aegis-1", "aegis-2", "aegis-3", "aegis-4"]
    );
    // The clock comes back as scrape time + offset.
    let clock = w
        .series("aegis_node_wall_clock_ms")
        .find(|s| s.instance() == Some("aegis-1"))
        .unwrap();
    assert_eq!(
        clock.samples[0],
        (END_MS - 120_000, (END_MS - 120_000 + 900) as f64)
    );
    // NaN quantiles are dropped: aegis-2 has no fsync series at all.
    assert!(w
        .series("aegis_storage_fsync_seconds_p99")
        .all(|s| s.instance() != Some("aegis-2")));
    // One range query per DESIGN §4 metric.
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        reqs.len(),
        aegis_agent::telemetry::prometheus::QUERIES.len()
    );
    // And the window classifies like a file window would: aegis-1's clock is skewed.
    let a = RuleClassifier.classify(&w);
    assert_eq!(a.kind.as_str(), "clock_skew");
    assert_eq!(a.evidence["skewed_node"], json!("aegis-1"));
}

#[tokio::test]
async fn a_prometheus_that_is_down_gives_a_clear_error_after_retries() {
    let src = PrometheusSource::new("http://127.0.0.1:9", Duration::from_millis(500))
        .unwrap()
        .with_retry(2, Duration::from_millis(1));
    let err = src
        .window(END_MS, Duration::from_secs(60), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PrometheusError::Unreachable { attempts: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("unreachable after 2 attempts"));
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(FakePrometheus)
        .with_priority(2)
        .mount(&server)
        .await;
    let w = source(&server)
        .window(END_MS, Duration::from_secs(120), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!w.metrics.is_empty());
}

#[tokio::test]
async fn query_errors_and_garbage_are_reported_not_panicked_on() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "error", "errorType": "bad_data", "error": "parse error at char 5"
        })))
        .mount(&server)
        .await;
    let err = source(&server)
        .window(END_MS, Duration::from_secs(60), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad_data: parse error"), "{err}");

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>proxy login</html>"))
        .mount(&server)
        .await;
    let err = source(&server)
        .window(END_MS, Duration::from_secs(60), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(err, PrometheusError::Malformed { .. }), "{err}");
}

#[test]
fn malformed_window_files_give_clear_errors() {
    let cases: &[(&str, &str)] = &[
        ("{not json", "not valid JSON"),
        ("{\"start_ms\": 0, \"end_ms\": 10}", "missing field `step_ms`"),
        ("{\"start_ms\": 0, \"end_ms\": 10, \"step_ms\": 0, \"metrics\": []}", "step_ms must be positive"),
        ("{\"start_ms\": 10, \"end_ms\": 0, \"step_ms\": 5, \"metrics\": []}", "before start_ms"),
        (
            "{\"start_ms\": 0, \"end_ms\": 10, \"step_ms\": 5, \"metrics\": [{\"name\": \"aegis_raft_term\", \"samples\": [[5, 1], [0, 1]]}]}",
            "ascending",
        ),
        (
            "{\"start_ms\": 0, \"end_ms\": 10, \"step_ms\": 5, \"metrics\": [{\"name\": \"aegis_raft_term\", \"samples\": [[0, \"x\"]]}]}",
            "not valid JSON",
        ),
    ];
    for (text, needle) in cases {
        let err = TelemetryWindow::from_json_str(text, "w.json").unwrap_err();
        assert!(err.to_string().contains(needle), "{text}: {err}");
        assert!(err.to_string().contains("w.json"));
    }
    let err = TelemetryWindow::from_file(std::path::Path::new("/nonexistent/w.json")).unwrap_err();
    assert!(matches!(err, WindowError::Io { .. }));
}
