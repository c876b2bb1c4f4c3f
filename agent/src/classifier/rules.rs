//! One deterministic rule per anomaly kind. Each reads one family of signals and returns a
//! confidence in [0, 1]; a rule *fires* at [`FIRE`] and above.
//!
//! Confidence is a ramp: below the firing threshold it rises linearly from 0 to just under
//! [`FIRE`] (so "almost" is visible in the evidence), and from the threshold to the saturation
//! point it rises from [`FIRE`] to 1.

use crate::anomaly::{round3, AnomalyKind, Evidence, Severity, SuggestedAction};
use crate::signals::{Signals, SUSTAIN_SAMPLES};
use serde_json::json;

/// Confidence at which a rule counts as fired.
pub const FIRE: f64 = 0.5;

// --- slow_follower: aegis_raft_log_lag{follower}, sustained over SUSTAIN_SAMPLES samples ---
/// A healthy follower trails the leader by a few hundred entries at most (one batch in
/// flight); a thousand entries held for three scrapes means it is not keeping up.
pub const LAG_FIRE_ENTRIES: f64 = 1000.0;
/// Beyond this the follower is far enough behind to need a snapshot install; confidence 1.
pub const LAG_SATURATE_ENTRIES: f64 = 20000.0;
/// With this much lag the follower no longer counts towards a safe quorum margin.
pub const LAG_CRITICAL_ENTRIES: f64 = 50000.0;

// --- lease_starvation: aegis_lease_expirations_total vs aegis_lease_renewals_total ---
/// Fewer expirations than this in a window are ordinary session churn (clients that quit
/// without closing), whatever the ratio.
pub const LEASE_MIN_EXPIRATIONS: f64 = 5.0;
/// One session in five expiring instead of being renewed means keep-alives are not landing.
pub const LEASE_RATIO_FIRE: f64 = 0.2;
pub const LEASE_RATIO_SATURATE: f64 = 0.6;
/// Half of all sessions dying: locks are being lost wholesale.
pub const LEASE_RATIO_CRITICAL: f64 = 0.5;

// --- clock_skew: aegis_node_wall_clock_ms offsets from the scrape time, spread across nodes ---
/// Half of the default `lease.skew-grace-ms` (500): past this, skew eats most of the grace a
/// lease has before a replica and a client disagree about its expiry.
pub const CLOCK_SPREAD_FIRE_MS: f64 = 250.0;
pub const CLOCK_SPREAD_SATURATE_MS: f64 = 2000.0;
/// Twice the default grace: leases can expire early from a client's point of view.
pub const CLOCK_SPREAD_CRITICAL_MS: f64 = 1000.0;

// --- split_brain_risk: aegis_raft_is_leader claims at the same scrape, and aegis_raft_term gaps ---
/// Two scrapes with two leaders: a single one can be a handover caught half-way.
pub const SPLIT_CONCURRENT_FIRE: f64 = 2.0;
pub const SPLIT_CONCURRENT_SATURATE: f64 = 6.0;
/// A node three terms ahead of another for two scrapes is campaigning alone, cut off from
/// the majority: it will depose the leader when it rejoins.
pub const TERM_DIVERGENCE_FIRE: f64 = 3.0;
pub const TERM_DIVERGENCE_SATURATE: f64 = 10.0;

// --- election_churn: aegis_raft_leader_changes_total and leader terms ---
/// A leadership transfer or a single failover is one change; three in one window is churn.
pub const CHURN_FIRE_CHANGES: f64 = 3.0;
pub const CHURN_SATURATE_CHANGES: f64 = 12.0;
pub const CHURN_CRITICAL_CHANGES: f64 = 8.0;
/// Scrapes with no leader at all: writes are failing.
pub const LEADERLESS_CRITICAL_SAMPLES: usize = 3;
/// A dozen leaderless scrapes: the cluster has been unavailable for writes the whole time.
pub const LEADERLESS_SATURATE_SAMPLES: f64 = 12.0;

/// Linear ramp (see module docs).
pub fn ramp(x: f64, fire: f64, saturate: f64) -> f64 {
    if !x.is_finite() || x <= 0.0 {
        return 0.0;
    }
    if x < fire {
        // Strictly below FIRE so a sub-threshold signal never fires by rounding.
        return (FIRE * x / fire).min(FIRE - 0.001);
    }
    FIRE + (1.0 - FIRE) * ((x - fire) / (saturate - fire)).min(1.0)
}

#[derive(Debug, Clone)]
pub struct RuleResult {
    pub kind: AnomalyKind,
    pub confidence: f64,
    pub severity: Severity,
    pub evidence: Evidence,
    pub suggested_action: SuggestedAction,
}

impl RuleResult {
    pub fn fired(&self) -> bool {
        self.confidence >= FIRE
    }
}

fn ev(pairs: &[(&str, serde_json::Value)]) -> Evidence {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub fn slow_follower(s: &Signals) -> RuleResult {
    let confidence = ramp(s.sustained_lag, LAG_FIRE_ENTRIES, LAG_SATURATE_ENTRIES);
    let severity = if s.sustained_lag >= LAG_CRITICAL_ENTRIES {
        Severity::Critical
    } else {
        Severity::Warning
    };
    RuleResult {
        kind: AnomalyKind::SlowFollower,
        confidence,
        severity,
        evidence: ev(&[
            ("follower", json!(s.lagging_follower)),
            ("sustained_lag_entries", json!(round3(s.sustained_lag))),
            ("peak_lag_entries", json!(round3(s.peak_lag))),
            ("sustain_samples", json!(SUSTAIN_SAMPLES)),
            ("follower_fsync_p99_s", json!(round3(s.lagging_fsync_p99_s))),
            (
                "cluster_median_fsync_p99_s",
                json!(round3(s.median_fsync_p99_s)),
            ),
        ]),
        suggested_action: SuggestedAction::RelaxReplicationTimeouts,
    }
}

pub fn lease_starvation(s: &Signals) -> RuleResult {
    let confidence = if s.lease_expirations < LEASE_MIN_EXPIRATIONS {
        ramp(
            s.lease_expiration_ratio,
            LEASE_RATIO_FIRE,
            LEASE_RATIO_SATURATE,
        )
        .min(FIRE - 0.001)
    } else {
        ramp(
            s.lease_expiration_ratio,
            LEASE_RATIO_FIRE,
            LEASE_RATIO_SATURATE,
        )
    };
    let severity = if s.lease_expiration_ratio >= LEASE_RATIO_CRITICAL {
        Severity::Critical
    } else {
        Severity::Warning
    };
    RuleResult {
        kind: AnomalyKind::LeaseStarvation,
        confidence,
        severity,
        evidence: ev(&[
            ("lease_expirations", json!(round3(s.lease_expirations))),
            ("lease_renewals", json!(round3(s.lease_renewals))),
            ("expiration_ratio", json!(round3(s.lease_expiration_ratio))),
        ]),
        suggested_action: SuggestedAction::RaiseLeaseMinTtl,
    }
}

pub fn clock_skew(s: &Signals) -> RuleResult {
    let confidence = ramp(
        s.clock_spread_ms,
        CLOCK_SPREAD_FIRE_MS,
        CLOCK_SPREAD_SATURATE_MS,
    );
    let severity = if s.clock_spread_ms >= CLOCK_SPREAD_CRITICAL_MS {
        Severity::Critical
    } else {
        Severity::Warning
    };
    RuleResult {
        kind: AnomalyKind::ClockSkew,
        confidence,
        severity,
        evidence: ev(&[
            ("clock_spread_ms", json!(round3(s.clock_spread_ms))),
            (
                "clock_peak_spread_ms",
                json!(round3(s.clock_peak_spread_ms)),
            ),
            ("skewed_node", json!(s.skewed_node)),
        ]),
        suggested_action: SuggestedAction::RaiseLeaseSkewGrace,
    }
}

pub fn split_brain_risk(s: &Signals) -> RuleResult {
    let claims = ramp(
        s.concurrent_leader_samples as f64,
        SPLIT_CONCURRENT_FIRE,
        SPLIT_CONCURRENT_SATURATE,
    );
    let divergence = ramp(
        s.term_divergence,
        TERM_DIVERGENCE_FIRE,
        TERM_DIVERGENCE_SATURATE,
    );
    RuleResult {
        kind: AnomalyKind::SplitBrainRisk,
        confidence: claims.max(divergence),
        // Contested leadership is always critical: a stale leader may still serve reads.
        severity: Severity::Critical,
        evidence: ev(&[
            (
                "concurrent_leader_samples",
                json!(s.concurrent_leader_samples),
            ),
            ("max_concurrent_leaders", json!(s.max_concurrent_leaders)),
            ("term_divergence", json!(round3(s.term_divergence))),
        ]),
        suggested_action: SuggestedAction::InvestigatePartition,
    }
}

pub fn election_churn(s: &Signals) -> RuleResult {
    // No leader for several scrapes is churn even when no election has succeeded yet.
    let leaderless = if s.leaderless_samples >= LEADERLESS_CRITICAL_SAMPLES {
        ramp(
            s.leaderless_samples as f64,
            LEADERLESS_CRITICAL_SAMPLES as f64,
            LEADERLESS_SATURATE_SAMPLES,
        )
    } else {
        0.0
    };
    let confidence =
        ramp(s.leader_changes, CHURN_FIRE_CHANGES, CHURN_SATURATE_CHANGES).max(leaderless);
    let severity = if s.leader_changes >= CHURN_CRITICAL_CHANGES
        || s.leaderless_samples >= LEADERLESS_CRITICAL_SAMPLES
    {
        Severity::Critical
    } else {
        Severity::Warning
    };
    RuleResult {
        kind: AnomalyKind::ElectionChurn,
        confidence,
        severity,
        evidence: ev(&[
            ("leader_changes", json!(round3(s.leader_changes))),
            ("term_increase", json!(round3(s.cluster_term_increase))),
            ("leaderless_samples", json!(s.leaderless_samples)),
            ("proposals_failed", json!(round3(s.proposals_failed))),
        ]),
        suggested_action: SuggestedAction::WidenElectionTimeouts,
    }
}

/// All five rules, in a fixed order.
pub fn evaluate(s: &Signals) -> Vec<RuleResult> {
    vec![
        slow_follower(s),
        lease_starvation(s),
        clock_skew(s),
        split_brain_risk(s),
        election_churn(s),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_fires_exactly_at_threshold_and_saturates() {
        assert_eq!(ramp(0.0, 10.0, 20.0), 0.0);
        assert!(ramp(9.99, 10.0, 20.0) < FIRE);
        assert_eq!(ramp(10.0, 10.0, 20.0), FIRE);
        assert_eq!(ramp(15.0, 10.0, 20.0), 0.75);
        assert_eq!(ramp(1e9, 10.0, 20.0), 1.0);
        assert_eq!(ramp(f64::NAN, 10.0, 20.0), 0.0);
    }

    #[test]
    fn a_few_expirations_never_fire_lease_starvation() {
        let s = Signals {
            lease_expirations: 4.0,
            lease_renewals: 0.0,
            lease_expiration_ratio: 1.0,
            ..Signals::default()
        };
        assert!(!lease_starvation(&s).fired());
        let s = Signals {
            lease_expirations: 40.0,
            lease_renewals: 60.0,
            lease_expiration_ratio: 0.4,
            ..Signals::default()
        };
        assert!(lease_starvation(&s).fired());
    }

    #[test]
    fn a_cluster_without_a_leader_is_churn_even_without_elections() {
        let s = Signals {
            leaderless_samples: 13,
            ..Signals::default()
        };
        let r = election_churn(&s);
        assert!(r.fired());
        assert_eq!(r.severity, Severity::Critical);
        let s = Signals {
            leaderless_samples: 2,
            ..Signals::default()
        };
        assert!(!election_churn(&s).fired());
    }

    #[test]
    fn one_concurrent_claim_is_not_split_brain_but_two_are() {
        let mut s = Signals {
            concurrent_leader_samples: 1,
            ..Signals::default()
        };
        assert!(!split_brain_risk(&s).fired());
        s.concurrent_leader_samples = 2;
        assert!(split_brain_risk(&s).fired());
    }
}
