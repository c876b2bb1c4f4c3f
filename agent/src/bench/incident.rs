//! A labelled incident: a telemetry window plus ground truth. The window fields sit at the top
//! level, so an incident file is also a valid window file (`aegis-agent classify --window`).

use crate::anomaly::{AnomalyKind, RootCause, Severity};
use crate::telemetry::window::{TelemetryWindow, WindowError};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// The seed this incident was derived from (itself for a seed). Retrieval during the
    /// benchmark leaves out the whole family so a variant is never matched to its own seed.
    #[serde(default)]
    pub family: String,
    pub classifier_label: AnomalyKind,
    pub root_cause: RootCause,
    pub severity: Severity,
    #[serde(flatten)]
    pub window: TelemetryWindow,
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error("cannot list incidents in {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("two incidents share the id {0}")]
    DuplicateId(String),
}

impl Incident {
    pub fn from_file(path: &Path) -> Result<Incident, WindowError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| WindowError::Io {
            path: shown.clone(),
            source,
        })?;
        let mut incident: Incident =
            serde_json::from_str(&text).map_err(|e| WindowError::Json {
                path: shown.clone(),
                message: e.to_string(),
                line: e.line(),
                column: e.column(),
            })?;
        incident
            .window
            .validate()
            .map_err(|message| WindowError::Invalid {
                path: shown,
                message,
            })?;
        if incident.family.is_empty() {
            incident.family = incident.id.clone();
        }
        Ok(incident)
    }
}

/// Every `*.json` in a directory, sorted by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<Incident>, CorpusError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CorpusError::Dir {
        path: dir.display().to_string(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CorpusError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut out: Vec<Incident> = Vec::with_capacity(paths.len());
    for p in paths {
        let incident = Incident::from_file(&p)?;
        if out.iter().any(|i| i.id == incident.id) {
            return Err(CorpusError::DuplicateId(incident.id));
        }
        out.push(incident);
    }
    Ok(out)
}
