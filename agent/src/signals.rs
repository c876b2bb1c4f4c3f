//! Signals derived from a telemetry window. The classifier, the diagnoser and the postmortem
//! drafter all read these, so one window always means the same numbers everywhere.
//!
//! Everything here is a pure function of the window's metrics (never its events), iterates in
//! sorted order and so is deterministic.

use crate::telemetry::window::{TelemetryWindow, FOLLOWER_LABEL};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Consecutive samples a condition must hold to count as sustained. One scrape can catch a
/// transient (a leader handover half-observed, a follower mid-catch-up); three cannot be a race.
pub const SUSTAIN_SAMPLES: usize = 3;
/// A node's fsync p99 below this is treated as this, so a ratio against an idle, very fast disk
/// does not explode.
pub const FSYNC_FLOOR_S: f64 = 0.002;
/// A follower's fsync p99 at least this many times the cluster median marks its disk as the
/// bottleneck: a network problem delays AppendEntries but leaves local fsync alone.
pub const FSYNC_RATIO_DISK: f64 = 4.0;
/// Lag (entries) at which the lag onset is stamped; mirrors the classifier's firing threshold.
pub const LAG_ONSET_ENTRIES: f64 = 1000.0;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Signals {
    pub nodes: usize,
    pub samples: usize,

    /// Largest lag (entries) one follower held for [`SUSTAIN_SAMPLES`] consecutive samples.
    pub sustained_lag: f64,
    pub peak_lag: f64,
    pub lagging_follower: Option<String>,
    /// First time the lagging follower was at least [`LAG_ONSET_ENTRIES`] behind.
    pub lag_onset_ms: Option<i64>,
    /// Mean fsync p99 (s) of the lagging follower, and the median of the other nodes' means.
    pub lagging_fsync_p99_s: f64,
    pub median_fsync_p99_s: f64,
    pub fsync_ratio: f64,
    /// First time the lagging follower's fsync p99 reached [`FSYNC_RATIO_DISK`] × the median.
    pub fsync_onset_ms: Option<i64>,

    /// Samples in which two or more nodes claimed leadership at once.
    pub concurrent_leader_samples: usize,
    pub max_concurrent_leaders: usize,
    /// Largest term gap between two nodes held for two consecutive samples: a node campaigning
    /// alone, cut off from the majority, runs its term ahead of everyone else's.
    pub term_divergence: f64,
    pub split_onset_ms: Option<i64>,
    /// Leadership changes in the window: the larger of the counter increase (max over nodes)
    /// and the number of distinct leader terms observed minus one.
    pub leader_changes: f64,
    pub cluster_term_increase: f64,
    pub churn_onset_ms: Option<i64>,
    pub leaderless_samples: usize,
    pub proposals_failed: f64,

    /// Median over samples of (max − min) node clock offset, ms.
    pub clock_spread_ms: f64,
    pub clock_peak_spread_ms: f64,
    pub skewed_node: Option<String>,
    pub clock_onset_ms: Option<i64>,

    /// Counter increases over the window (max over nodes: every replica applies the same
    /// keep-alives and expiries, so summing would count each one per replica).
    pub lease_renewals: f64,
    pub lease_expirations: f64,
    /// expirations / (expirations + renewals).
    pub lease_expiration_ratio: f64,
    pub lease_onset_ms: Option<i64>,
}

/// Sum of positive steps, treating a drop as a counter reset (the new value counts from zero).
pub fn counter_increase(samples: &[(i64, f64)]) -> f64 {
    let mut total = 0.0;
    for pair in samples.windows(2) {
        let (prev, cur) = (pair[0].1, pair[1].1);
        total += if cur >= prev { cur - prev } else { cur };
    }
    total
}

/// Largest value a sequence holds for `n` consecutive samples; 0 when it has fewer than `n`
/// samples, since nothing can be called sustained on less.
pub fn sustained(values: &[f64], n: usize) -> f64 {
    let n = n.max(1);
    if values.len() < n {
        return 0.0;
    }
    values
        .windows(n)
        .map(|w| w.iter().copied().fold(f64::INFINITY, f64::min))
        .fold(f64::NEG_INFINITY, f64::max)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn mean(v: &[(i64, f64)]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().map(|s| s.1).sum::<f64>() / v.len() as f64
    }
}

/// Per metric, per node: samples keyed by bucket.
fn per_node(w: &TelemetryWindow, name: &str) -> BTreeMap<String, BTreeMap<i64, (i64, f64)>> {
    let mut out: BTreeMap<String, BTreeMap<i64, (i64, f64)>> = BTreeMap::new();
    for s in w.series(name) {
        if let Some(node) = s.instance() {
            let entry = out.entry(node.to_string()).or_default();
            for &(t, v) in &s.samples {
                entry.insert(w.bucket(t), (t, v));
            }
        }
    }
    out
}

fn node_samples(w: &TelemetryWindow, name: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    per_node(w, name)
        .into_iter()
        .map(|(n, b)| (n, b.into_values().collect()))
        .collect()
}

impl Signals {
    pub fn from_window(w: &TelemetryWindow) -> Signals {
        let mut s = Signals {
            nodes: w.nodes().len(),
            ..Signals::default()
        };
        let mut buckets = BTreeSet::new();
        for series in &w.metrics {
            for &(t, _) in &series.samples {
                buckets.insert(w.bucket(t));
            }
        }
        s.samples = buckets.len();
        s.lag(w);
        s.leadership(w);
        s.clock(w);
        s.lease(w);
        s
    }

    fn lag(&mut self, w: &TelemetryWindow) {
        // Leadership moves during a window, so one follower's lag comes from several leaders'
        // series (and from two at once during a partition): merge them per follower, keeping
        // the worst report of each sample.
        let mut per_follower: BTreeMap<String, BTreeMap<i64, (i64, f64)>> = BTreeMap::new();
        for series in w.series("aegis_raft_log_lag") {
            let Some(follower) = series.labels.get(FOLLOWER_LABEL) else {
                continue;
            };
            let merged = per_follower.entry(follower.clone()).or_default();
            for &(t, v) in &series.samples {
                let e = merged.entry(w.bucket(t)).or_insert((t, v));
                if v > e.1 {
                    *e = (t, v);
                }
            }
        }
        // (follower, its merged samples, sustained lag)
        type Candidate = (String, Vec<(i64, f64)>, f64);
        let mut best: Option<Candidate> = None;
        for (follower, merged) in per_follower {
            let samples: Vec<(i64, f64)> = merged.into_values().collect();
            let values: Vec<f64> = samples.iter().map(|x| x.1).collect();
            let sus = sustained(&values, SUSTAIN_SAMPLES);
            self.peak_lag = values.iter().copied().fold(self.peak_lag, f64::max);
            if best.as_ref().is_none_or(|b| sus > b.2) {
                best = Some((follower, samples, sus));
            }
        }
        let Some((follower, samples, sus)) = best else {
            return;
        };
        self.sustained_lag = sus.max(0.0);
        self.lag_onset_ms = samples
            .iter()
            .find(|x| x.1 >= LAG_ONSET_ENTRIES)
            .map(|x| x.0);

        let fsync = node_samples(w, "aegis_storage_fsync_seconds_p99");
        if let Some(own) = fsync.get(&follower) {
            let others: Vec<f64> = fsync
                .iter()
                .filter(|(n, _)| **n != follower)
                .map(|(_, v)| mean(v))
                .collect();
            self.lagging_fsync_p99_s = mean(own);
            self.median_fsync_p99_s = median(others);
            let base = self.median_fsync_p99_s.max(FSYNC_FLOOR_S);
            self.fsync_ratio = self.lagging_fsync_p99_s.max(FSYNC_FLOOR_S) / base;
            self.fsync_onset_ms = own
                .iter()
                .find(|x| x.1 >= FSYNC_RATIO_DISK * base)
                .map(|x| x.0);
        }
        self.lagging_follower = Some(follower);
    }

    fn leadership(&mut self, w: &TelemetryWindow) {
        let leader = per_node(w, "aegis_raft_is_leader");
        let term = per_node(w, "aegis_raft_term");

        // Per bucket: who claims leadership, and every node's term.
        let mut claims: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
        for (node, samples) in &leader {
            for (bucket, (t, v)) in samples {
                let entry = claims.entry(*bucket).or_default();
                if *v >= 0.5 {
                    entry.push((node.clone(), *t));
                }
            }
        }
        let mut leader_terms = BTreeSet::new();
        let mut first_leader: Option<(String, i64)> = None;
        let mut first_concurrent: Option<i64> = None;
        // A leader that dies keeps its last `is_leader = 1` sample until the
        // next failed scrape marks it stale, so a handover shows one bucket
        // with two claimants. Only claims held over consecutive buckets are
        // contested leadership.
        let concurrent: Vec<bool> = claims.values().map(|who| who.len() > 1).collect();
        let sustained_claim: Vec<bool> = (0..concurrent.len())
            .map(|i| {
                concurrent[i]
                    && ((i > 0 && concurrent[i - 1])
                        || concurrent.get(i + 1).copied().unwrap_or(false))
            })
            .collect();
        for (i, (bucket, who)) in claims.iter().enumerate() {
            self.max_concurrent_leaders = self.max_concurrent_leaders.max(who.len());
            match who.len() {
                0 => self.leaderless_samples += 1,
                1 => {}
                _ if sustained_claim[i] => {
                    self.concurrent_leader_samples += 1;
                    let t = who.iter().map(|x| x.1).min().unwrap_or(0);
                    first_concurrent.get_or_insert(t);
                }
                _ => {}
            }
            for (node, t) in who {
                let node_term = term
                    .get(node)
                    .and_then(|b| b.get(bucket))
                    .map(|x| x.1 as i64)
                    .unwrap_or(-1);
                leader_terms.insert(node_term);
                match &first_leader {
                    None => first_leader = Some((node.clone(), node_term)),
                    Some(first) if (first.0 != *node || first.1 != node_term) => {
                        self.churn_onset_ms = Some(self.churn_onset_ms.map_or(*t, |o| o.min(*t)));
                    }
                    _ => {}
                }
            }
        }

        if self.concurrent_leader_samples as f64 >= crate::classifier::rules::SPLIT_CONCURRENT_FIRE
        {
            self.split_onset_ms = first_concurrent;
        }

        let mut divergence_by_bucket: BTreeMap<i64, (i64, f64, f64)> = BTreeMap::new();
        for samples in term.values() {
            for (bucket, (t, v)) in samples {
                let e = divergence_by_bucket.entry(*bucket).or_insert((
                    *t,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ));
                e.1 = e.1.min(*v);
                e.2 = e.2.max(*v);
            }
        }
        let divergence: Vec<(i64, f64)> = divergence_by_bucket
            .values()
            .map(|(t, lo, hi)| (*t, hi - lo))
            .collect();
        let values: Vec<f64> = divergence.iter().map(|x| x.1).collect();
        self.term_divergence = sustained(&values, 2);
        if self.term_divergence >= crate::classifier::rules::TERM_DIVERGENCE_FIRE {
            let t = divergence
                .iter()
                .find(|x| x.1 >= crate::classifier::rules::TERM_DIVERGENCE_FIRE)
                .map(|x| x.0);
            if let Some(t) = t {
                self.split_onset_ms = Some(self.split_onset_ms.map_or(t, |o| o.min(t)));
            }
        }
        let cluster_term: Vec<f64> = divergence_by_bucket.values().map(|x| x.2).collect();
        if let (Some(first), Some(last)) = (cluster_term.first(), cluster_term.last()) {
            self.cluster_term_increase = (last - first).max(0.0);
        }

        let mut counter_changes: f64 = 0.0;
        for samples in node_samples(w, "aegis_raft_leader_changes_total").values() {
            counter_changes = counter_changes.max(counter_increase(samples));
            if let Some(pair) = samples.windows(2).find(|p| p[1].1 != p[0].1) {
                let t = pair[1].0;
                self.churn_onset_ms = Some(self.churn_onset_ms.map_or(t, |o| o.min(t)));
            }
        }
        let term_changes = leader_terms.len().saturating_sub(1) as f64;
        self.leader_changes = counter_changes.max(term_changes);

        self.proposals_failed = node_samples(w, "aegis_raft_proposals_failed_total")
            .values()
            .map(|v| counter_increase(v))
            .sum();
    }

    fn clock(&mut self, w: &TelemetryWindow) {
        let clocks = per_node(w, "aegis_node_wall_clock_ms");
        let mut per_bucket: BTreeMap<i64, (i64, Vec<(String, f64)>)> = BTreeMap::new();
        for (node, samples) in &clocks {
            for (bucket, (t, v)) in samples {
                let e = per_bucket.entry(*bucket).or_insert((*t, Vec::new()));
                e.1.push((node.clone(), v - *t as f64));
            }
        }
        let mut spreads = Vec::new();
        for (t, offsets) in per_bucket.values() {
            if offsets.len() < 2 {
                continue;
            }
            let lo = offsets.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
            let hi = offsets
                .iter()
                .map(|x| x.1)
                .fold(f64::NEG_INFINITY, f64::max);
            spreads.push((*t, hi - lo));
        }
        self.clock_peak_spread_ms = spreads.iter().map(|x| x.1).fold(0.0, f64::max);
        self.clock_spread_ms = median(spreads.iter().map(|x| x.1).collect());
        self.clock_onset_ms = spreads
            .iter()
            .find(|x| x.1 >= crate::classifier::rules::CLOCK_SPREAD_FIRE_MS)
            .map(|x| x.0);
        // The skewed node is the one whose typical offset sits farthest from the others'.
        let typical: Vec<(String, f64)> = clocks
            .iter()
            .map(|(n, b)| {
                (
                    n.clone(),
                    median(b.values().map(|(t, v)| v - *t as f64).collect()),
                )
            })
            .collect();
        let centre = median(typical.iter().map(|x| x.1).collect());
        self.skewed_node = typical
            .iter()
            .max_by(|a, b| {
                (a.1 - centre)
                    .abs()
                    .total_cmp(&(b.1 - centre).abs())
                    .then_with(|| b.0.cmp(&a.0))
            })
            .filter(|_| typical.len() >= 2)
            .map(|x| x.0.clone());
    }

    fn lease(&mut self, w: &TelemetryWindow) {
        let renewals = node_samples(w, "aegis_lease_renewals_total");
        let expirations = node_samples(w, "aegis_lease_expirations_total");
        self.lease_renewals = renewals
            .values()
            .map(|v| counter_increase(v))
            .fold(0.0, f64::max);
        self.lease_expirations = expirations
            .values()
            .map(|v| counter_increase(v))
            .fold(0.0, f64::max);
        let total = self.lease_renewals + self.lease_expirations;
        self.lease_expiration_ratio = if total > 0.0 {
            self.lease_expirations / total
        } else {
            0.0
        };
        self.lease_onset_ms = expirations
            .values()
            .filter_map(|v| v.windows(2).find(|p| p[1].1 > p[0].1).map(|p| p[1].0))
            .min();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Series;

    #[test]
    fn counter_increase_survives_a_reset() {
        let s = [(0, 10.0), (1, 15.0), (2, 3.0), (3, 4.0)];
        assert_eq!(counter_increase(&s), 5.0 + 3.0 + 1.0);
    }

    #[test]
    fn sustained_ignores_a_single_spike() {
        assert_eq!(sustained(&[0.0, 9000.0, 0.0, 10.0], 3), 0.0);
        assert_eq!(sustained(&[0.0, 900.0, 1000.0, 1100.0, 5.0], 3), 900.0);
        assert_eq!(sustained(&[7.0], 3), 0.0);
        assert_eq!(sustained(&[7.0, 8.0, 9.0], 3), 7.0);
        assert_eq!(sustained(&[], 3), 0.0);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    fn leadership_window(claims: &[(&str, &[f64])]) -> TelemetryWindow {
        let metrics = claims
            .iter()
            .flat_map(|(node, values)| {
                let labels: BTreeMap<String, String> =
                    [("instance".to_string(), node.to_string())].into();
                let samples = |f: &dyn Fn(f64) -> f64| -> Vec<(i64, f64)> {
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (i as i64 * 1000, f(*v)))
                        .collect()
                };
                vec![
                    Series {
                        name: "aegis_raft_is_leader".into(),
                        labels: labels.clone(),
                        samples: samples(&|v| v),
                    },
                    Series {
                        name: "aegis_raft_term".into(),
                        labels,
                        samples: samples(&|_| 3.0),
                    },
                ]
            })
            .collect();
        TelemetryWindow {
            start_ms: 0,
            end_ms: 9000,
            step_ms: 1000,
            metrics,
            events: Vec::new(),
        }
    }

    #[test]
    fn a_handover_sample_is_not_contested_leadership() {
        // Each kill leaves the dead leader's last sample overlapping its
        // successor's first: single buckets, never consecutive.
        let w = leadership_window(&[
            ("a", &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            ("b", &[0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            ("c", &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        ]);
        let s = Signals::from_window(&w);
        assert_eq!(s.max_concurrent_leaders, 2);
        assert_eq!(s.concurrent_leader_samples, 0);
    }

    #[test]
    fn claims_held_over_consecutive_samples_are_contested() {
        let w = leadership_window(&[
            ("a", &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
            ("b", &[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        ]);
        let s = Signals::from_window(&w);
        assert_eq!(s.concurrent_leader_samples, 4);
    }
}
