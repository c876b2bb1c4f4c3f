//! The deterministic diagnoser: classifier signals, cross-signal correlation, then a blend
//! with the votes of similar past incidents.

use super::retrieval::{features, KnowledgeBase, K_NEAREST};
use super::{BoxFut, Diagnoser, Diagnosis, DiagnosisRequest, Hypothesis};
use crate::anomaly::{round3, RootCause};
use crate::classifier::rules::{self, FIRE};
use crate::signals::{Signals, FSYNC_RATIO_DISK};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Share of the final score that comes from retrieval; the signals carry the rest. Small
/// enough that neighbours only reorder causes the signals find nearly equally likely.
pub const RETRIEVAL_WEIGHT: f64 = 0.2;
/// Lag seen without a slow disk keeps this share of its weight as a disk hypothesis: the
/// follower may still be disk-bound in a way fsync p99 does not show.
pub const DISK_WITHOUT_FSYNC_EVIDENCE: f64 = 0.3;
/// Lag without a slow disk and without churn is most likely the link: share of weight moved
/// to `network_partition`.
pub const LAG_AS_PARTITION: f64 = 0.8;
/// An election storm that followed a disk-bound follower's lag is a symptom; it keeps this
/// share of its weight.
pub const STORM_AS_SYMPTOM: f64 = 0.85;

/// Once a rule has fired, "healthy" only means "the threshold is wrong": it keeps this share of
/// the doubt the strongest rule leaves.
pub const HEALTHY_WHEN_FIRED: f64 = 0.5;

#[derive(Debug, Clone, Default)]
pub struct HeuristicDiagnoser {
    pub knowledge: Arc<KnowledgeBase>,
}

impl HeuristicDiagnoser {
    pub fn new(knowledge: Arc<KnowledgeBase>) -> HeuristicDiagnoser {
        HeuristicDiagnoser { knowledge }
    }

    pub fn diagnose_sync(&self, req: &DiagnosisRequest<'_>) -> Diagnosis {
        let s = Signals::from_window(req.window);
        let (scores, why) = signal_scores(&s);
        let neighbours = self
            .knowledge
            .nearest(&features(&s), K_NEAREST, req.exclude_family);
        let total_sim: f64 = neighbours.iter().map(|n| n.similarity).sum();
        let mut votes: BTreeMap<RootCause, f64> = BTreeMap::new();
        if total_sim > 0.0 {
            for n in &neighbours {
                *votes.entry(n.root_cause).or_default() += n.similarity / total_sim;
            }
        }
        let weight = if neighbours.is_empty() {
            0.0
        } else {
            RETRIEVAL_WEIGHT
        };
        let mut hypotheses: Vec<Hypothesis> = RootCause::ALL
            .iter()
            .map(|c| {
                let sig = scores.get(c).copied().unwrap_or(0.0);
                let vote = votes.get(c).copied().unwrap_or(0.0);
                let mut rationale = why.get(c).cloned().unwrap_or_default();
                if vote > 0.0 {
                    rationale.push(format!("{:.0}% of similar past incidents", vote * 100.0));
                }
                Hypothesis {
                    cause: *c,
                    confidence: round3((1.0 - weight) * sig + weight * vote),
                    rationale: rationale.join("; "),
                }
            })
            .collect();
        sort_hypotheses(&mut hypotheses);
        Diagnosis {
            method: "heuristic".into(),
            hypotheses,
            similar: neighbours,
            latency_ms: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_usd: 0.0,
            fallback_reason: None,
        }
    }
}

/// Highest confidence first; equal confidences in the fixed cause order, so output is stable.
pub fn sort_hypotheses(h: &mut [Hypothesis]) {
    h.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| a.cause.cmp(&b.cause))
    });
}

/// Scores in [0, 1] per cause from the signals alone, with a short reason for each.
pub fn signal_scores(s: &Signals) -> (BTreeMap<RootCause, f64>, BTreeMap<RootCause, Vec<String>>) {
    let lag = rules::slow_follower(s).confidence;
    let lease = rules::lease_starvation(s).confidence;
    let clock = rules::clock_skew(s).confidence;
    let split = rules::split_brain_risk(s).confidence;
    let churn = rules::election_churn(s).confidence;
    let disk_bound = s.fsync_ratio >= FSYNC_RATIO_DISK;
    let mut why: BTreeMap<RootCause, Vec<String>> = BTreeMap::new();
    let mut note = |c: RootCause, text: String| why.entry(c).or_default().push(text);

    let mut disk = if disk_bound {
        note(
            RootCause::SlowFollowerDisk,
            format!(
                "follower {} lags {:.0} entries and its fsync p99 is {:.1}x the cluster median",
                s.lagging_follower.as_deref().unwrap_or("?"),
                s.sustained_lag,
                s.fsync_ratio
            ),
        );
        lag
    } else {
        lag * DISK_WITHOUT_FSYNC_EVIDENCE
    };

    let mut partition = split;
    if split >= FIRE {
        note(
            RootCause::NetworkPartition,
            format!(
                "{} samples with concurrent leaders, term divergence {:.0}",
                s.concurrent_leader_samples, s.term_divergence
            ),
        );
    }
    if lag >= FIRE && !disk_bound {
        // Lag together with leadership churn, on a follower whose disk is fine, is the
        // signature of a link that drops: the follower misses heartbeats and entries alike.
        let from_lag = if churn >= FIRE {
            note(
                RootCause::NetworkPartition,
                "follower lag together with leadership churn and a healthy disk".into(),
            );
            // Two independent signals agreeing: noisy-OR, stronger than either alone.
            1.0 - (1.0 - lag) * (1.0 - churn)
        } else {
            note(
                RootCause::NetworkPartition,
                "follower lag with a healthy disk".into(),
            );
            lag * LAG_AS_PARTITION
        };
        partition = partition.max(from_lag);
    }

    let mut storm = churn;
    if churn >= FIRE {
        note(
            RootCause::ElectionStorm,
            format!(
                "{:.0} leadership changes, {} leaderless samples",
                s.leader_changes, s.leaderless_samples
            ),
        );
    }
    let lag_first = match (s.fsync_onset_ms.or(s.lag_onset_ms), s.churn_onset_ms) {
        (Some(l), Some(c)) => l < c,
        _ => false,
    };
    if disk_bound && lag >= FIRE && churn >= FIRE && lag_first {
        // The disk slowed before leadership started moving: the storm is the consequence.
        note(
            RootCause::SlowFollowerDisk,
            "the follower's disk slowed before the elections began (cascade)".into(),
        );
        disk = disk.max((churn + 0.1).min(1.0));
        storm *= STORM_AS_SYMPTOM;
    }

    if clock >= FIRE {
        note(
            RootCause::ClockDrift,
            format!(
                "node clocks spread {:.0} ms (most off: {})",
                s.clock_spread_ms,
                s.skewed_node.as_deref().unwrap_or("?")
            ),
        );
    }
    if lease >= FIRE {
        note(
            RootCause::LeaseStarvation,
            format!(
                "{:.0} leases expired against {:.0} renewals",
                s.lease_expirations, s.lease_renewals
            ),
        );
    }
    let strongest = [disk, partition, clock, storm, lease]
        .into_iter()
        .fold(0.0, f64::max);
    let healthy = if strongest < FIRE {
        note(RootCause::Healthy, "no rule fired".into());
        1.0 - strongest
    } else {
        (1.0 - strongest) * HEALTHY_WHEN_FIRED
    };
    let scores = BTreeMap::from([
        (RootCause::SlowFollowerDisk, disk),
        (RootCause::NetworkPartition, partition),
        (RootCause::ClockDrift, clock),
        (RootCause::ElectionStorm, storm),
        (RootCause::LeaseStarvation, lease),
        (RootCause::Healthy, healthy),
    ]);
    (scores, why)
}

impl Diagnoser for HeuristicDiagnoser {
    fn name(&self) -> &str {
        "heuristic"
    }

    fn diagnose<'a>(&'a self, req: DiagnosisRequest<'a>) -> BoxFut<'a, Diagnosis> {
        Box::pin(async move { self.diagnose_sync(&req) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(s: &Signals) -> RootCause {
        let (scores, _) = signal_scores(s);
        let mut v: Vec<(RootCause, f64)> = scores.into_iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v[0].0
    }

    /// A moderately lagging, disk-bound follower and a strong election storm.
    fn cascade(lag_onset: i64, churn_onset: i64) -> Signals {
        Signals {
            sustained_lag: 3000.0,
            lagging_follower: Some("aegis-4".into()),
            lag_onset_ms: Some(lag_onset),
            fsync_onset_ms: Some(lag_onset),
            lagging_fsync_p99_s: 0.3,
            median_fsync_p99_s: 0.004,
            fsync_ratio: 75.0,
            leader_changes: 10.0,
            churn_onset_ms: Some(churn_onset),
            ..Signals::default()
        }
    }

    #[test]
    fn the_cause_that_came_first_ranks_first() {
        // Disk first, then elections: the storm is the symptom.
        assert_eq!(top(&cascade(10_000, 60_000)), RootCause::SlowFollowerDisk);
        // Elections first, then the lag: the storm is the cause.
        assert_eq!(top(&cascade(60_000, 10_000)), RootCause::ElectionStorm);
    }

    #[test]
    fn lag_with_a_healthy_disk_points_to_the_network() {
        let mut s = cascade(10_000, 60_000);
        s.fsync_ratio = 1.0;
        s.fsync_onset_ms = None;
        assert_eq!(top(&s), RootCause::NetworkPartition);
    }

    #[test]
    fn nothing_fired_is_healthy() {
        assert_eq!(top(&Signals::default()), RootCause::Healthy);
    }
}
