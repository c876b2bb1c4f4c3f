//! A telemetry window from the Prometheus HTTP API (`/api/v1/query_range`).
//!
//! One range query per DESIGN §4 metric. Counters and gauges are fetched raw (the classifier
//! takes increases itself, handling counter resets); histograms are reduced to a per-node p99;
//! the wall clock is fetched as an offset from the scrape time and stored back as
//! `scrape time + offset`, which is what a file window holds.

use super::window::{Series, TelemetryWindow, INSTANCE_LABEL};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One range query and the series name its results get in the window.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    pub name: &'static str,
    pub promql: &'static str,
    /// Added to each value after the query; only the clock uses it (see module docs).
    pub add_timestamp: bool,
}

/// The DESIGN §4 metrics as the classifier reads them.
pub const QUERIES: &[MetricQuery] = &[
    q("aegis_raft_term", "aegis_raft_term"),
    q("aegis_raft_is_leader", "aegis_raft_is_leader"),
    q("aegis_raft_commit_index", "aegis_raft_commit_index"),
    q("aegis_raft_last_applied_index", "aegis_raft_last_applied_index"),
    q("aegis_raft_log_lag", "aegis_raft_log_lag"),
    q("aegis_raft_leader_changes_total", "aegis_raft_leader_changes_total"),
    q("aegis_raft_proposals_failed_total", "aegis_raft_proposals_failed_total"),
    MetricQuery {
        name: "aegis_node_wall_clock_ms",
        // Offset of the node's clock from Prometheus's scrape timestamp; a raw range query
        // would return a value up to one scrape interval stale and fake a skew.
        promql: "aegis_node_wall_clock_ms - timestamp(aegis_node_wall_clock_ms) * 1000",
        add_timestamp: true,
    },
    q(
        "aegis_storage_fsync_seconds_p99",
        "histogram_quantile(0.99, sum by (instance, le) (rate(aegis_storage_fsync_seconds_bucket[1m])))",
    ),
    q("aegis_lease_renewals_total", "aegis_lease_renewals_total"),
    q("aegis_lease_expirations_total", "aegis_lease_expirations_total"),
    q("aegis_lock_acquisitions_total", "aegis_lock_acquisitions_total"),
    q("aegis_lock_waiters", "aegis_lock_waiters"),
    q(
        "aegis_client_request_seconds_p99",
        "histogram_quantile(0.99, sum by (instance, method, le) (rate(aegis_client_request_seconds_bucket[1m])))",
    ),
    q("aegis_config_info", "aegis_config_info"),
];

const fn q(name: &'static str, promql: &'static str) -> MetricQuery {
    MetricQuery {
        name,
        promql,
        add_timestamp: false,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("Prometheus at {url} is unreachable after {attempts} attempts: {message}")]
    Unreachable {
        url: String,
        attempts: u32,
        message: String,
    },
    #[error("Prometheus rejected query `{query}`: {error_type}: {message}")]
    Query {
        query: String,
        error_type: String,
        message: String,
    },
    #[error(
        "Prometheus answered query `{query}` with something that is not a range result: {message}"
    )]
    Malformed { query: String, message: String },
    #[error("bad Prometheus base URL {url}: {message}")]
    BadUrl { url: String, message: String },
}

#[derive(Debug, Clone)]
pub struct PrometheusSource {
    base_url: String,
    http: reqwest::Client,
    attempts: u32,
    backoff: Duration,
    /// Optional PromQL label matcher narrowing every query to one cluster, e.g. `job="aegis"`.
    selector: Option<String>,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<ApiSeries>,
}

#[derive(Deserialize)]
struct ApiSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

impl PrometheusSource {
    pub fn new(base_url: &str, timeout: Duration) -> Result<PrometheusSource, PrometheusError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| PrometheusError::BadUrl {
                url: base_url.to_string(),
                message: e.to_string(),
            })?;
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(PrometheusError::BadUrl {
                url: base_url.to_string(),
                message: "must start with http:// or https://".into(),
            });
        }
        Ok(PrometheusSource {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
            attempts: 3,
            backoff: Duration::from_millis(500),
            selector: None,
        })
    }

    /// Retry policy for connection errors and 5xx answers (tests shorten the backoff).
    pub fn with_retry(mut self, attempts: u32, backoff: Duration) -> PrometheusSource {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    pub fn with_selector(mut self, selector: Option<String>) -> PrometheusSource {
        self.selector = selector.filter(|s| !s.trim().is_empty());
        self
    }

    /// Fetches `[end - length, end]` at `step` for every metric in [`QUERIES`].
    pub async fn window(
        &self,
        end_ms: i64,
        length: Duration,
        step: Duration,
    ) -> Result<TelemetryWindow, PrometheusError> {
        let step_ms = (step.as_millis() as i64).max(1);
        let start_ms = end_ms - length.as_millis() as i64;
        let mut metrics = Vec::new();
        for query in QUERIES {
            let promql = self.apply_selector(query.promql);
            let results = self.query_range(&promql, start_ms, end_ms, step_ms).await?;
            for r in results {
                let mut labels = r.metric;
                labels.remove("__name__");
                let mut samples = Vec::with_capacity(r.values.len());
                for (ts, raw) in r.values {
                    let t_ms = (ts * 1000.0).round() as i64;
                    let Ok(v) = raw.parse::<f64>() else {
                        return Err(PrometheusError::Malformed {
                            query: promql.clone(),
                            message: format!("sample value {raw:?} is not a number"),
                        });
                    };
                    // NaN comes from histogram_quantile over an idle histogram: no sample.
                    if !v.is_finite() {
                        continue;
                    }
                    let v = if query.add_timestamp {
                        v + t_ms as f64
                    } else {
                        v
                    };
                    samples.push((t_ms, v));
                }
                if labels.contains_key(INSTANCE_LABEL) && !samples.is_empty() {
                    metrics.push(Series {
                        name: query.name.to_string(),
                        labels,
                        samples,
                    });
                }
            }
        }
        metrics.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        let window = TelemetryWindow {
            start_ms,
            end_ms,
            step_ms,
            metrics,
            events: Vec::new(),
        };
        window
            .validate()
            .map_err(|message| PrometheusError::Malformed {
                query: "(window)".into(),
                message,
            })?;
        Ok(window)
    }

    fn apply_selector(&self, promql: &str) -> String {
        match &self.selector {
            // Each metric name is followed by the matcher; names are the only `aegis_` tokens.
            Some(sel) => {
                let mut out = String::with_capacity(promql.len() + 32);
                let mut rest = promql;
                while let Some(pos) = rest.find("aegis_") {
                    out.push_str(&rest[..pos]);
                    let tail = &rest[pos..];
                    let end = tail
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(tail.len());
                    out.push_str(&tail[..end]);
                    out.push('{');
                    out.push_str(sel);
                    out.push('}');
                    rest = &tail[end..];
                }
                out.push_str(rest);
                out
            }
            None => promql.to_string(),
        }
    }

    async fn query_range(
        &self,
        promql: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<ApiSeries>, PrometheusError> {
        let url = format!("{}/api/v1/query_range", self.base_url);
        let params = [
            ("query", promql.to_string()),
            ("start", secs(start_ms)),
            ("end", secs(end_ms)),
            ("step", secs(step_ms)),
        ];
        let mut last_error = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(self.backoff, attempt)).await;
            }
            let response = match self.http.get(&url).query(&params).send().await {
                Ok(r) => r,
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            let status = response.status();
            if status.is_server_error() || status.as_u16() == 429 {
                last_error = format!("HTTP {status}");
                continue;
            }
            let body = response
                .text()
                .await
                .map_err(|e| PrometheusError::Malformed {
                    query: promql.to_string(),
                    message: e.to_string(),
                })?;
            let parsed: ApiResponse =
                serde_json::from_str(&body).map_err(|e| PrometheusError::Malformed {
                    query: promql.to_string(),
                    message: format!("HTTP {status}: {e}"),
                })?;
            if parsed.status != "success" {
                return Err(PrometheusError::Query {
                    query: promql.to_string(),
                    error_type: parsed.error_type.unwrap_or_else(|| "unknown".into()),
                    message: parsed.error.unwrap_or_default(),
                });
            }
            let data = parsed.data.ok_or_else(|| PrometheusError::Malformed {
                query: promql.to_string(),
                message: "no data".into(),
            })?;
            if data.result_type != "matrix" {
                return Err(PrometheusError::Malformed {
                    query: promql.to_string(),
                    message: format!("resultType {} instead of matrix", data.result_type),
                });
            }
            return Ok(data.result);
        }
        Err(PrometheusError::Unreachable {
            url: self.base_url.clone(),
            attempts: self.attempts,
            message: last_error,
        })
    }
}

/// Exponential backoff, capped at a minute (and never an overflow).
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    base.checked_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .unwrap_or(Duration::from_secs(60))
        .min(Duration::from_secs(60))
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_is_added_after_every_metric_name() {
        let src = PrometheusSource::new("http://127.0.0.1:1", Duration::from_secs(1))
            .unwrap()
            .with_selector(Some("job=\"aegis\"".into()));
        assert_eq!(
            src.apply_selector("aegis_node_wall_clock_ms - timestamp(aegis_node_wall_clock_ms) * 1000"),
            "aegis_node_wall_clock_ms{job=\"aegis\"} - timestamp(aegis_node_wall_clock_ms{job=\"aegis\"}) * 1000"
        );
    }

    #[test]
    fn seconds_are_formatted_with_millisecond_precision() {
        assert_eq!(secs(1_700_000_000_123), "1700000000.123");
        assert_eq!(secs(5000), "5.000");
    }
}
