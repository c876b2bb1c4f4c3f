//! Config rotation planner: restart outdated pods one at a time, followers first and
//! the leader last (after moving leadership to an updated follower), behind health gates.
//! A gate that stays failed for `gate_timeout` halts the rollout; the reconciler then
//! points the template back at the last good config and rolls that out.
//!
//! Pure: time comes in as `now_s`, seconds since the rollout's own epoch.

use std::collections::BTreeMap;

use crate::admin::NodeStatus;
use crate::membership::PodView;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gates {
    pub max_lag: u64,
    pub gate_timeout_s: i64,
    pub max_unplanned_leader_changes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateFailure {
    NoLeader,
    PodsNotReady(Vec<String>),
    LagNotRecovered { node: u64, lag: u64 },
    ElectionStorm { unplanned: u64 },
}

impl std::fmt::Display for GateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateFailure::NoLeader => write!(f, "no leader"),
            GateFailure::PodsNotReady(p) => write!(f, "pods not ready: {}", p.join(", ")),
            GateFailure::LagNotRecovered { node, lag } => {
                write!(f, "node {node} is {lag} entries behind")
            }
            GateFailure::ElectionStorm { unplanned } => {
                write!(f, "{unplanned} unplanned leader changes")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationStep {
    /// Every pod runs the target.
    Complete,
    DeletePod {
        name: String,
    },
    TransferLeader {
        from: u64,
        to: u64,
    },
    /// A gate fails, for the first time (`since` = now) or still within the timeout.
    GateWait {
        failure: GateFailure,
        since: i64,
    },
    /// A gate failed for longer than the timeout: stop and roll back.
    Halt {
        failure: GateFailure,
    },
    /// Waiting on something that is not a gate (a pod being replaced).
    Wait(String),
}

pub struct RotationInputs<'a> {
    pub target_hash: &'a str,
    pub image: &'a str,
    pub pods: &'a BTreeMap<u32, PodView>,
    pub leader: Option<&'a NodeStatus>,
    pub start_term: u64,
    pub planned_transfers: u64,
    pub gate_failing_since: Option<i64>,
    pub now_s: i64,
    pub gates: &'a Gates,
    /// Rolling back: gates are not enforced (the config being left is the suspect) and
    /// only a running pod is awaited between restarts.
    pub rolling_back: bool,
}

pub fn outdated(p: &PodView, target_hash: &str, image: &str) -> bool {
    p.config_hash.as_deref() != Some(target_hash) || p.image.as_deref() != Some(image)
}

fn check_gates(i: &RotationInputs) -> Result<(), GateFailure> {
    let Some(lead) = i.leader else {
        return Err(GateFailure::NoLeader);
    };
    let not_ready: Vec<String> = i
        .pods
        .values()
        .filter(|p| !p.ready || p.terminating)
        .map(|p| p.name.clone())
        .collect();
    if !not_ready.is_empty() {
        return Err(GateFailure::PodsNotReady(not_ready));
    }
    if let Some((&node, &lag)) = lead.lags.iter().max_by_key(|(_, lag)| **lag) {
        if lag > i.gates.max_lag {
            return Err(GateFailure::LagNotRecovered { node, lag });
        }
    }
    let changes = lead.term.saturating_sub(i.start_term);
    let unplanned = changes.saturating_sub(i.planned_transfers);
    if unplanned > i.gates.max_unplanned_leader_changes {
        return Err(GateFailure::ElectionStorm { unplanned });
    }
    Ok(())
}

pub fn plan(i: &RotationInputs) -> RotationStep {
    if i.pods.values().any(|p| p.terminating) {
        return RotationStep::Wait("a pod is restarting".into());
    }
    if i.rolling_back {
        if let Some(p) = i.pods.values().find(|p| !p.running) {
            return RotationStep::Wait(format!("{} is not running", p.name));
        }
    } else if let Err(failure) = check_gates(i) {
        return match i.gate_failing_since {
            Some(since) if i.now_s.saturating_sub(since) >= i.gates.gate_timeout_s => {
                RotationStep::Halt { failure }
            }
            Some(since) => RotationStep::GateWait { failure, since },
            None if i.gates.gate_timeout_s == 0 => RotationStep::Halt { failure },
            None => RotationStep::GateWait {
                failure,
                since: i.now_s,
            },
        };
    }

    let leader_id = i.leader.map(|l| l.node_id);
    let is_leader = |p: &PodView| leader_id == Some(crate::names::node_id(p.ordinal));
    let stale: Vec<&PodView> = i
        .pods
        .values()
        .filter(|p| outdated(p, i.target_hash, i.image))
        .collect();
    if stale.is_empty() {
        // A rollback skips the health gates on the way, but is only over once
        // the restored members are ready again.
        if i.rolling_back {
            if let Some(p) = i.pods.values().find(|p| !p.ready) {
                return RotationStep::Wait(format!("{} is not ready yet", p.name));
            }
        }
        return RotationStep::Complete;
    }
    if let Some(p) = stale.iter().rev().find(|p| !is_leader(p)) {
        return RotationStep::DeletePod {
            name: p.name.clone(),
        };
    }
    // Only the leader is left. Hand leadership to the most caught-up updated follower.
    let (Some(lead), Some(p)) = (i.leader, stale.first()) else {
        return RotationStep::Wait("no outdated pod".into());
    };
    let to = lead
        .voters()
        .map(|m| m.id)
        .filter(|id| *id != lead.node_id)
        .min_by_key(|id| (lead.lags.get(id).copied().unwrap_or(u64::MAX), *id));
    match to {
        Some(to) => RotationStep::TransferLeader {
            from: lead.node_id,
            to,
        },
        // A single-member group has no one to hand over to.
        None => RotationStep::DeletePod {
            name: p.name.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeRaft;
    use crate::membership::leader;

    fn pods(n: u32, hash: &str) -> BTreeMap<u32, PodView> {
        (0..n)
            .map(|o| {
                (
                    o,
                    PodView {
                        ordinal: o,
                        name: format!("demo-{o}"),
                        running: true,
                        ready: true,
                        terminating: false,
                        config_hash: Some(hash.to_string()),
                        image: Some("img".into()),
                    },
                )
            })
            .collect()
    }

    const GATES: Gates = Gates {
        max_lag: 10,
        gate_timeout_s: 60,
        max_unplanned_leader_changes: 1,
    };

    fn run(
        raft: &FakeRaft,
        pods: &BTreeMap<u32, PodView>,
        since: Option<i64>,
        now: i64,
        start_term: u64,
        planned: u64,
    ) -> RotationStep {
        let nodes = raft.statuses();
        plan(&RotationInputs {
            target_hash: "new",
            image: "img",
            pods,
            leader: leader(&nodes),
            start_term,
            planned_transfers: planned,
            gate_failing_since: since,
            now_s: now,
            gates: &GATES,
            rolling_back: false,
        })
    }

    #[test]
    fn rolls_followers_highest_first_and_the_leader_last() {
        let mut raft = FakeRaft::formed("demo", 3);
        raft.transfer(2).unwrap();
        let mut p = pods(3, "old");
        let mut order = Vec::new();
        let mut planned = 0;
        for _ in 0..10 {
            match run(&raft, &p, None, 0, 2, planned) {
                RotationStep::DeletePod { name } => {
                    let o: u32 = name.rsplit('-').next().unwrap().parse().unwrap();
                    p.get_mut(&o).unwrap().config_hash = Some("new".into());
                    order.push(name);
                }
                RotationStep::TransferLeader { from, to } => {
                    assert_eq!(from, 2);
                    raft.transfer(to).unwrap();
                    planned += 1;
                    order.push(format!("transfer {from}->{to}"));
                }
                RotationStep::Complete => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(order, vec!["demo-2", "demo-0", "transfer 2->1", "demo-1"]);
    }

    #[test]
    fn a_rollback_completes_only_once_every_member_is_ready() {
        let raft = FakeRaft::formed("demo", 3);
        let nodes = raft.statuses();
        let mut p = pods(3, "old");
        p.get_mut(&1).unwrap().ready = false;
        let step = |pods: &BTreeMap<u32, PodView>| {
            plan(&RotationInputs {
                target_hash: "old",
                image: "img",
                pods,
                leader: leader(&nodes),
                start_term: 1,
                planned_transfers: 0,
                gate_failing_since: None,
                now_s: 0,
                gates: &GATES,
                rolling_back: true,
            })
        };
        assert_eq!(
            step(&p),
            RotationStep::Wait("demo-1 is not ready yet".into())
        );
        p.get_mut(&1).unwrap().ready = true;
        assert_eq!(step(&p), RotationStep::Complete);
    }

    #[test]
    fn failed_gate_waits_then_halts_after_the_timeout() {
        let mut raft = FakeRaft::formed("demo", 3);
        raft.leader = None;
        let p = pods(3, "old");
        assert_eq!(
            run(&raft, &p, None, 100, 1, 0),
            RotationStep::GateWait {
                failure: GateFailure::NoLeader,
                since: 100
            }
        );
        assert_eq!(
            run(&raft, &p, Some(100), 159, 1, 0),
            RotationStep::GateWait {
                failure: GateFailure::NoLeader,
                since: 100
            }
        );
        assert_eq!(
            run(&raft, &p, Some(100), 160, 1, 0),
            RotationStep::Halt {
                failure: GateFailure::NoLeader
            }
        );
    }

    #[test]
    fn lag_and_election_storm_are_gates() {
        let mut raft = FakeRaft::formed("demo", 3);
        raft.lags.insert(3, 50);
        let p = pods(3, "old");
        assert!(matches!(
            run(&raft, &p, None, 0, 1, 0),
            RotationStep::GateWait {
                failure: GateFailure::LagNotRecovered { node: 3, lag: 50 },
                ..
            }
        ));
        raft.lags.insert(3, 0);
        raft.term = 4;
        // Three changes, one planned: two unplanned > 1 allowed.
        assert!(matches!(
            run(&raft, &p, None, 0, 1, 1),
            RotationStep::GateWait {
                failure: GateFailure::ElectionStorm { unplanned: 2 },
                ..
            }
        ));
        assert!(matches!(
            run(&raft, &p, None, 0, 1, 2),
            RotationStep::DeletePod { .. }
        ));
    }

    #[test]
    fn a_restarting_pod_is_awaited_and_up_to_date_pods_complete() {
        let raft = FakeRaft::formed("demo", 3);
        let mut p = pods(3, "new");
        assert_eq!(run(&raft, &p, None, 0, 1, 0), RotationStep::Complete);
        p.get_mut(&1).unwrap().terminating = true;
        assert!(matches!(
            run(&raft, &p, None, 0, 1, 0),
            RotationStep::Wait(_)
        ));
    }
}
