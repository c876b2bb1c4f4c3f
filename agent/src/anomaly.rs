//! The `Anomaly` contract every stage of the pipeline is keyed on, and the two label sets
//! (anomaly kinds and root causes) ConsensusOps-Bench scores against.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What signal fired. One deterministic classifier rule per kind, plus `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    SlowFollower,
    LeaseStarvation,
    ClockSkew,
    SplitBrainRisk,
    ElectionChurn,
    None,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 6] = [
        AnomalyKind::ClockSkew,
        AnomalyKind::ElectionChurn,
        AnomalyKind::LeaseStarvation,
        AnomalyKind::None,
        AnomalyKind::SlowFollower,
        AnomalyKind::SplitBrainRisk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::SlowFollower => "slow_follower",
            AnomalyKind::LeaseStarvation => "lease_starvation",
            AnomalyKind::ClockSkew => "clock_skew",
            AnomalyKind::SplitBrainRisk => "split_brain_risk",
            AnomalyKind::ElectionChurn => "election_churn",
            AnomalyKind::None => "none",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What actually caused it. The diagnoser ranks all six.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootCause {
    SlowFollowerDisk,
    NetworkPartition,
    ClockDrift,
    ElectionStorm,
    LeaseStarvation,
    Healthy,
}

impl RootCause {
    pub const ALL: [RootCause; 6] = [
        RootCause::ClockDrift,
        RootCause::ElectionStorm,
        RootCause::Healthy,
        RootCause::LeaseStarvation,
        RootCause::NetworkPartition,
        RootCause::SlowFollowerDisk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RootCause::SlowFollowerDisk => "slow_follower_disk",
            RootCause::NetworkPartition => "network_partition",
            RootCause::ClockDrift => "clock_drift",
            RootCause::ElectionStorm => "election_storm",
            RootCause::LeaseStarvation => "lease_starvation",
            RootCause::Healthy => "healthy",
        }
    }

    pub fn parse(s: &str) -> Option<RootCause> {
        RootCause::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for RootCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ordered so that `max` picks the most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of remedy a human would consider; the proposer turns it into a concrete patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestedAction {
    /// Give replication more slack: longer RPC timeout, heartbeat and election timeouts.
    RelaxReplicationTimeouts,
    /// Widen the randomised election timeout so candidates stop colliding.
    WidenElectionTimeouts,
    /// Raise the lease skew grace to cover the measured clock spread.
    RaiseLeaseSkewGrace,
    /// Longer minimum TTL so sessions survive a few missed keep-alives.
    RaiseLeaseMinTtl,
    /// Leadership is contested: longer election timeouts, and a human should look at the network.
    InvestigatePartition,
    NoAction,
}

/// Evidence values are kept as sorted JSON so the same window always serialises to the same
/// bytes and hashes to the same branch name.
pub type Evidence = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub severity: Severity,
    pub confidence: f64,
    pub evidence: Evidence,
    pub suggested_action: SuggestedAction,
}

impl Anomaly {
    /// Canonical JSON (sorted keys, fixed float formatting), the input of the evidence hash.
    pub fn evidence_json(&self) -> String {
        serde_json::to_string(&self.evidence).unwrap_or_default()
    }

    /// `sha1` of the canonical evidence, hex: the idempotency key of the proposer.
    pub fn evidence_sha1(&self) -> String {
        use sha1::{Digest, Sha1};
        let digest = Sha1::digest(self.evidence_json().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Rounds to three decimals so evidence does not carry float noise into hashes and output.
pub fn round3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}
