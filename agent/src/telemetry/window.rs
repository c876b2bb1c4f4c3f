//! The telemetry window: every input of the classifier, diagnoser and postmortem drafter.
//!
//! The same JSON shape is produced by the Prometheus source and stored in benchmark incident
//! files, so an incident replays through the pipeline with no translation. See docs/AGENT.md.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Label naming the node a series was scraped from.
pub const INSTANCE_LABEL: &str = "instance";
/// Label naming the follower a leader-side lag gauge is about.
pub const FOLLOWER_LABEL: &str = "follower";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryWindow {
    /// Inclusive start of the window, Unix milliseconds of the scraper's clock.
    pub start_ms: i64,
    /// Inclusive end of the window.
    pub end_ms: i64,
    /// Spacing of the samples (Prometheus `step`).
    pub step_ms: i64,
    /// One entry per (metric, label set).
    pub metrics: Vec<Series>,
    /// Chaos or operator events (`{at_ms, phase, scenario}`), shown on the postmortem timeline.
    /// The classifier and diagnoser never read them: they must judge from the metrics alone.
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `[timestamp_ms, value]` pairs in ascending time order.
    pub samples: Vec<(i64, f64)>,
}

impl Series {
    pub fn instance(&self) -> Option<&str> {
        self.labels.get(INSTANCE_LABEL).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: i64,
    #[serde(default)]
    pub phase: String,
    pub scenario: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("cannot read telemetry window {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("telemetry window {path} is not valid JSON for the window format: {message}")]
    Json {
        path: String,
        message: String,
        line: usize,
        column: usize,
    },
    #[error("telemetry window {path} is invalid: {message}")]
    Invalid { path: String, message: String },
}

impl TelemetryWindow {
    pub fn from_json_str(text: &str, origin: &str) -> Result<TelemetryWindow, WindowError> {
        let window: TelemetryWindow =
            serde_json::from_str(text).map_err(|e| WindowError::Json {
                path: origin.to_string(),
                message: e.to_string(),
                line: e.line(),
                column: e.column(),
            })?;
        window.validate().map_err(|message| WindowError::Invalid {
            path: origin.to_string(),
            message,
        })?;
        Ok(window)
    }

    pub fn from_file(path: &Path) -> Result<TelemetryWindow, WindowError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| WindowError::Io {
            path: shown.clone(),
            source,
        })?;
        TelemetryWindow::from_json_str(&text, &shown)
    }

    /// Structural checks the signal code relies on, so that no later arithmetic sees a
    /// non-finite value, an empty range or samples out of order.
    pub fn validate(&self) -> Result<(), String> {
        if self.step_ms <= 0 {
            return Err(format!("step_ms must be positive, got {}", self.step_ms));
        }
        if self.end_ms < self.start_ms {
            return Err(format!(
                "end_ms ({}) is before start_ms ({})",
                self.end_ms, self.start_ms
            ));
        }
        for (i, s) in self.metrics.iter().enumerate() {
            if s.name.is_empty() {
                return Err(format!("metrics[{i}] has an empty name"));
            }
            let mut last = i64::MIN;
            for (t, v) in &s.samples {
                if !v.is_finite() {
                    return Err(format!(
                        "metrics[{i}] ({}) has a non-finite value at {t}",
                        s.name
                    ));
                }
                if *t <= last {
                    return Err(format!(
                        "metrics[{i}] ({}) samples are not in strictly ascending time order at {t}",
                        s.name
                    ));
                }
                last = *t;
            }
        }
        Ok(())
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Every series of one metric.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
        self.metrics.iter().filter(move |s| s.name == name)
    }

    /// Nodes that reported anything, sorted.
    pub fn nodes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .metrics
            .iter()
            .filter_map(|s| s.instance().map(str::to_string))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Index of the step a timestamp falls in, so samples of different nodes scraped a few
    /// milliseconds apart line up.
    pub fn bucket(&self, t_ms: i64) -> i64 {
        t_ms.saturating_sub(self.start_ms)
            .saturating_add(self.step_ms / 2)
            .div_euclid(self.step_ms.max(1))
    }
}
