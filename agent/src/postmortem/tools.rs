//! The drafter's four read-only tools. Each answers only from telemetry that already happened
//! (a window, the knowledge base); none can reach the cluster.

use crate::diagnoser::retrieval::{features, KnowledgeBase, Neighbour};
use crate::signals::Signals;
use crate::telemetry::TelemetryWindow;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at_ms: i64,
    pub source: String,
    pub text: String,
}

/// Chaos/operator events, signal onsets and leadership moves, in time order.
pub fn get_timeline(w: &TelemetryWindow) -> Vec<TimelineEntry> {
    let s = Signals::from_window(w);
    let mut out = Vec::new();
    for e in &w.events {
        out.push(TimelineEntry {
            at_ms: e.at_ms,
            source: "event".into(),
            text: format!("{} {}", e.scenario, e.phase),
        });
    }
    let mut onset = |t: Option<i64>, text: String| {
        if let Some(t) = t {
            out.push(TimelineEntry {
                at_ms: t,
                source: "signal".into(),
                text,
            });
        }
    };
    let follower = s.lagging_follower.clone().unwrap_or_else(|| "?".into());
    onset(
        s.fsync_onset_ms,
        format!("fsync p99 of {follower} rises above 4x the cluster median"),
    );
    onset(
        s.lag_onset_ms,
        format!("{follower} falls 1000+ entries behind the leader"),
    );
    onset(s.churn_onset_ms, "leadership starts to move".into());
    onset(
        s.split_onset_ms,
        "leadership contested (concurrent claims or term divergence)".into(),
    );
    onset(s.clock_onset_ms, "node clocks spread beyond 250 ms".into());
    onset(s.lease_onset_ms, "lease expirations begin".into());
    for (at_ms, leader) in
        leader_by_sample(w)
            .into_iter()
            .fold(Vec::<(i64, String)>::new(), |mut acc, (t, l)| {
                if acc.last().map(|x| &x.1) != Some(&l) {
                    acc.push((t, l));
                }
                acc
            })
    {
        out.push(TimelineEntry {
            at_ms,
            source: "leadership".into(),
            text: format!("leader: {leader}"),
        });
    }
    out.sort_by(|a, b| (a.at_ms, &a.source, &a.text).cmp(&(b.at_ms, &b.source, &b.text)));
    out
}

fn leader_by_sample(w: &TelemetryWindow) -> Vec<(i64, String)> {
    let mut by_bucket: BTreeMap<i64, (i64, Vec<String>)> = BTreeMap::new();
    for s in w.series("aegis_raft_is_leader") {
        let Some(node) = s.instance() else { continue };
        for &(t, v) in &s.samples {
            let e = by_bucket.entry(w.bucket(t)).or_insert((t, Vec::new()));
            if v >= 0.5 {
                e.1.push(node.to_string());
            }
        }
    }
    by_bucket
        .into_values()
        .map(|(t, mut l)| {
            l.sort();
            (
                t,
                if l.is_empty() {
                    "none".to_string()
                } else {
                    l.join(" + ")
                },
            )
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermChange {
    pub at_ms: i64,
    pub node: String,
    pub from: i64,
    pub to: i64,
}

/// Every term change of every node.
pub fn get_raft_term_history(w: &TelemetryWindow) -> Vec<TermChange> {
    let mut out = Vec::new();
    for s in w.series("aegis_raft_term") {
        let Some(node) = s.instance() else { continue };
        for pair in s.samples.windows(2) {
            if pair[1].1 != pair[0].1 {
                out.push(TermChange {
                    at_ms: pair[1].0,
                    node: node.to_string(),
                    from: pair[0].1 as i64,
                    to: pair[1].1 as i64,
                });
            }
        }
    }
    out.sort_by(|a, b| (a.at_ms, &a.node).cmp(&(b.at_ms, &b.node)));
    out
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correlation {
    pub a: String,
    pub b: String,
    /// Pearson coefficient over the samples both metrics have; `None` with fewer than three
    /// or when either is constant.
    pub coefficient: Option<f64>,
    pub samples: usize,
}

/// Per sample: the largest value across a metric's series, or for a counter its largest
/// per-sample increase, so counters and gauges compare as rates and levels.
fn cluster_series(w: &TelemetryWindow, name: &str) -> BTreeMap<i64, f64> {
    let counter = name.ends_with("_total");
    let mut out: BTreeMap<i64, f64> = BTreeMap::new();
    for s in w.series(name) {
        let points: Vec<(i64, f64)> = if counter {
            s.samples
                .windows(2)
                .map(|p| {
                    (
                        p[1].0,
                        if p[1].1 >= p[0].1 {
                            p[1].1 - p[0].1
                        } else {
                            p[1].1
                        },
                    )
                })
                .collect()
        } else {
            s.samples.clone()
        };
        for (t, v) in points {
            let e = out.entry(w.bucket(t)).or_insert(f64::NEG_INFINITY);
            *e = e.max(v);
        }
    }
    out
}

pub fn correlate_metric(w: &TelemetryWindow, a: &str, b: &str) -> Correlation {
    let sa = cluster_series(w, a);
    let sb = cluster_series(w, b);
    let pairs: Vec<(f64, f64)> = sa
        .iter()
        .filter_map(|(k, x)| sb.get(k).map(|y| (*x, *y)))
        .collect();
    let n = pairs.len();
    let coefficient = if n < 3 {
        None
    } else {
        let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n as f64;
        let my = pairs.iter().map(|p| p.1).sum::<f64>() / n as f64;
        let cov: f64 = pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let vx: f64 = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let vy: f64 = pairs.iter().map(|p| (p.1 - my).powi(2)).sum();
        if vx <= f64::EPSILON || vy <= f64::EPSILON {
            None
        } else {
            Some(crate::anomaly::round3(cov / (vx.sqrt() * vy.sqrt())))
        }
    };
    Correlation {
        a: a.to_string(),
        b: b.to_string(),
        coefficient,
        samples: n,
    }
}

pub fn find_similar_past_incident(
    kb: &KnowledgeBase,
    w: &TelemetryWindow,
    k: usize,
    exclude_family: Option<&str>,
) -> Vec<Neighbour> {
    kb.nearest(&features(&Signals::from_window(w)), k, exclude_family)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Series;

    fn series(name: &str, node: &str, samples: Vec<(i64, f64)>) -> Series {
        Series {
            name: name.into(),
            labels: [("instance".to_string(), node.to_string())].into(),
            samples,
        }
    }

    #[test]
    fn correlation_of_a_metric_with_its_double_is_one() {
        let w = TelemetryWindow {
            start_ms: 0,
            end_ms: 40,
            step_ms: 10,
            metrics: vec![
                series("a", "n", vec![(0, 1.0), (10, 5.0), (20, 2.0), (30, 8.0)]),
                series("b", "n", vec![(0, 2.0), (10, 10.0), (20, 4.0), (30, 16.0)]),
                series("c", "n", vec![(0, 3.0), (10, 3.0), (20, 3.0), (30, 3.0)]),
            ],
            events: vec![],
        };
        assert_eq!(correlate_metric(&w, "a", "b").coefficient, Some(1.0));
        assert_eq!(correlate_metric(&w, "a", "c").coefficient, None);
        assert_eq!(correlate_metric(&w, "a", "missing").samples, 0);
    }

    #[test]
    fn term_history_lists_each_change() {
        let w = TelemetryWindow {
            start_ms: 0,
            end_ms: 20,
            step_ms: 10,
            metrics: vec![series(
                "aegis_raft_term",
                "n1",
                vec![(0, 3.0), (10, 4.0), (20, 4.0)],
            )],
            events: vec![],
        };
        assert_eq!(
            get_raft_term_history(&w),
            vec![TermChange {
                at_ms: 10,
                node: "n1".into(),
                from: 3,
                to: 4
            }]
        );
    }
}
