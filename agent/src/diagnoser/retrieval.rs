//! Retrieval of similar past incidents: the labelled corpus plus every postmortem already
//! drafted, each reduced to a small feature vector of classifier signals.

use crate::anomaly::RootCause;
use crate::bench::incident::Incident;
use crate::classifier::rules;
use crate::signals::{Signals, FSYNC_RATIO_DISK};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Neighbours that vote.
pub const K_NEAREST: usize = 3;

/// The signal space incidents are compared in: the five rule confidences plus how strongly the
/// lagging follower's own disk is implicated. All in [0, 1].
pub fn features(s: &Signals) -> Vec<f64> {
    let r = rules::evaluate(s);
    let mut f: Vec<f64> = r.iter().map(|x| x.confidence).collect();
    f.push(rules::ramp(
        s.fsync_ratio,
        FSYNC_RATIO_DISK,
        4.0 * FSYNC_RATIO_DISK,
    ));
    f
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeEntry {
    pub id: String,
    /// Entries of the same family are left out when diagnosing a member of it.
    pub family: String,
    pub root_cause: RootCause,
    pub features: Vec<f64>,
    #[serde(default)]
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbour {
    pub id: String,
    pub root_cause: RootCause,
    pub similarity: f64,
    pub summary: String,
}

#[derive(Debug, Clone, Default)]
pub struct KnowledgeBase {
    pub entries: Vec<KnowledgeEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("cannot read knowledge base {path}: {message}")]
    Read { path: String, message: String },
}

impl KnowledgeBase {
    pub fn from_incidents(incidents: &[Incident]) -> KnowledgeBase {
        KnowledgeBase {
            entries: incidents
                .iter()
                .map(|i| KnowledgeEntry {
                    id: i.id.clone(),
                    family: i.family.clone(),
                    root_cause: i.root_cause,
                    features: features(&Signals::from_window(&i.window)),
                    summary: i.description.clone(),
                })
                .collect(),
        }
    }

    /// Adds the `*.json` records the postmortem drafter left in `dir` (missing dir: nothing).
    pub fn add_postmortems(&mut self, dir: &Path) -> Result<usize, KnowledgeError> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(0);
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        let mut added = 0;
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|e| KnowledgeError::Read {
                path: p.display().to_string(),
                message: e.to_string(),
            })?;
            let entry: KnowledgeEntry =
                serde_json::from_str(&text).map_err(|e| KnowledgeError::Read {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
            if entry.features.len() == 6 && entry.features.iter().all(|x| x.is_finite()) {
                self.entries.push(entry);
                added += 1;
            }
        }
        Ok(added)
    }

    /// The `k` most similar entries outside `exclude_family`; similarity is 1 / (1 + euclidean
    /// distance), ties broken by id so the answer is stable.
    pub fn nearest(&self, f: &[f64], k: usize, exclude_family: Option<&str>) -> Vec<Neighbour> {
        let mut scored: Vec<Neighbour> = self
            .entries
            .iter()
            .filter(|e| exclude_family != Some(e.family.as_str()))
            .filter(|e| e.features.len() == f.len())
            .map(|e| {
                let d2: f64 = e
                    .features
                    .iter()
                    .zip(f)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                Neighbour {
                    id: e.id.clone(),
                    root_cause: e.root_cause,
                    similarity: 1.0 / (1.0 + d2.sqrt()),
                    summary: e.summary.clone(),
                }
            })
            .collect();
        scored.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then_with(|| a.id.cmp(&b.id))
        });
        scored.truncate(k);
        scored
    }
}
