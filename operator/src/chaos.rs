//! Typed Chaos Mesh resources (the subset the scenarios use), the scenario catalogue and
//! the runner. There is no maintained Chaos Mesh crate, so the types live here; unknown
//! fields are refused so a typo in a manifest fails the parse test instead of being
//! silently dropped.

pub mod runner;
pub mod types;

use std::time::Duration;

/// The six scenarios of DESIGN §6, one manifest file each under `chaos-manifests/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    PartitionLeader,
    SlowFollower,
    ClockSkew,
    KillAndRestore,
    FlappingNetwork,
    CriticalCascade,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::PartitionLeader,
        Scenario::SlowFollower,
        Scenario::ClockSkew,
        Scenario::KillAndRestore,
        Scenario::FlappingNetwork,
        Scenario::CriticalCascade,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::PartitionLeader => "partition-leader",
            Scenario::SlowFollower => "slow-follower",
            Scenario::ClockSkew => "clock-skew",
            Scenario::KillAndRestore => "kill-and-restore",
            Scenario::FlappingNetwork => "flapping-network",
            Scenario::CriticalCascade => "critical-cascade",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }

    pub fn file_name(self) -> String {
        format!("{}.yaml", self.name())
    }

    /// How long the runner keeps the experiment in place before removing it. Fault
    /// experiments carry their own `duration`; a Schedule or Workflow runs until deleted.
    pub fn hold(self) -> Duration {
        Duration::from_secs(match self {
            Scenario::PartitionLeader => 60,
            Scenario::SlowFollower => 120,
            Scenario::ClockSkew => 90,
            Scenario::KillAndRestore => 30,
            Scenario::FlappingNetwork => 300,
            Scenario::CriticalCascade => 240,
        })
    }
}
