//! Membership planner: one Raft membership change at a time, chosen from what the
//! leader and each pod report. Pure; the reconciler executes the step it returns.
//!
//! Order of concerns: bootstrap, repair of a member whose volume was lost, learners in
//! flight, scale-out (grow the StatefulSet by one, add the pod as learner, promote when
//! caught up), scale-in (move leadership off, remove from Raft, then shrink).

use std::collections::BTreeMap;

use crate::admin::{Member, NodeStatus, Role};
use crate::names;

/// What one pod looks like to the planners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub ordinal: u32,
    pub name: String,
    pub running: bool,
    pub ready: bool,
    pub terminating: bool,
    pub config_hash: Option<String>,
    pub image: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipStep {
    /// No StatefulSet yet: create it with the bootstrap member list.
    Bootstrap {
        replicas: u32,
    },
    /// The initial members have not elected a leader with the full voter set yet.
    AwaitBootstrap,
    /// The group formed: record it so `--members` is never handed out again.
    MarkInitialized,
    ResizeStatefulSet {
        replicas: u32,
    },
    AddLearner(Member),
    Promote {
        id: u64,
    },
    TransferLeader {
        from: u64,
        to: u64,
    },
    RemoveMember {
        id: u64,
        reason: RemoveReason,
    },
    Wait(String),
    Stable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveReason {
    ScaleIn,
    VolumeLost,
}

impl MembershipStep {
    /// True when the Raft group or the StatefulSet is being changed (a rollout waits).
    pub fn in_progress(&self) -> bool {
        !matches!(self, MembershipStep::Stable)
    }
}

pub struct MembershipInputs<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub desired: u32,
    pub statefulset_replicas: Option<u32>,
    pub initialized: bool,
    pub pods: &'a BTreeMap<u32, PodView>,
    /// Status per node id, for the nodes that answered.
    pub nodes: &'a BTreeMap<u64, NodeStatus>,
    pub max_lag: u64,
}

/// The leader's status: the node that says it leads with the highest term.
pub fn leader(nodes: &BTreeMap<u64, NodeStatus>) -> Option<&NodeStatus> {
    nodes
        .values()
        .filter(|s| s.role == Role::Leader)
        .max_by_key(|s| (s.term, s.node_id))
}

fn member_for(cluster: &str, namespace: &str, id: u64) -> Option<Member> {
    let ordinal = u32::try_from(id.checked_sub(1)?).ok()?;
    Some(Member {
        id,
        peer_addr: names::peer_addr(cluster, namespace, ordinal),
        client_addr: names::client_addr(cluster, namespace, ordinal),
        voter: false,
        incarnation: 0,
    })
}

/// True when the node answering for member `m` is not the one the group admitted: its
/// data directory was replaced (docs/adr/0009-node-incarnation.md). Such a node refuses
/// the leader's RPCs, so it never catches up on its own and must be removed and re-added.
/// A learner just added reports an empty membership until the leader's first append
/// reaches it, with the incarnation the group recorded: not a lost volume.
fn volume_lost(m: &Member, s: &NodeStatus) -> bool {
    if s.role == Role::Leader {
        return false;
    }
    if m.incarnation != 0 && s.incarnation != 0 {
        return m.incarnation != s.incarnation;
    }
    // Without incarnations: a voter always holds a membership, so an empty one means
    // the volume went.
    m.voter && s.members.is_empty()
}

pub fn plan(i: &MembershipInputs) -> MembershipStep {
    let Some(sts) = i.statefulset_replicas else {
        return MembershipStep::Bootstrap {
            replicas: i.desired,
        };
    };
    let Some(lead) = leader(i.nodes) else {
        return if i.initialized {
            MembershipStep::Wait("no leader".into())
        } else {
            MembershipStep::AwaitBootstrap
        };
    };
    if !i.initialized {
        let voters: Vec<u64> = lead.voters().map(|m| m.id).collect();
        let expected: Vec<u64> = (1..=u64::from(sts)).collect();
        return if voters == expected {
            MembershipStep::MarkInitialized
        } else {
            MembershipStep::AwaitBootstrap
        };
    }

    // A pod whose node is not the incarnation the leader counts as a member lost its
    // volume: take it out of the group, it comes back as a learner below.
    for m in &lead.members {
        if let Some(s) = i.nodes.get(&m.id) {
            if volume_lost(m, s) {
                return MembershipStep::RemoveMember {
                    id: m.id,
                    reason: RemoveReason::VolumeLost,
                };
            }
        }
    }

    if let Some(l) = lead.learners().next() {
        if l.id > u64::from(i.desired) {
            return MembershipStep::RemoveMember {
                id: l.id,
                reason: RemoveReason::ScaleIn,
            };
        }
        let lag = lead.lags.get(&l.id).copied();
        return match lag {
            Some(lag) if lag <= i.max_lag => MembershipStep::Promote { id: l.id },
            Some(lag) => MembershipStep::Wait(format!("learner {} is {lag} entries behind", l.id)),
            None => MembershipStep::Wait(format!("learner {} has no lag report yet", l.id)),
        };
    }

    let voters: Vec<u64> = lead.voters().map(|m| m.id).collect();
    if let Some(missing) = (1..=u64::from(i.desired)).find(|id| !voters.contains(id)) {
        let ordinal = u32::try_from(missing - 1).unwrap_or(u32::MAX);
        if sts < ordinal.saturating_add(1) {
            return MembershipStep::ResizeStatefulSet {
                replicas: ordinal.saturating_add(1),
            };
        }
        let pod_up = i
            .pods
            .get(&ordinal)
            .is_some_and(|p| p.running && !p.terminating);
        let answers_empty = i.nodes.get(&missing).is_some_and(|s| s.members.is_empty());
        if pod_up && answers_empty {
            if let Some(member) = member_for(i.cluster, i.namespace, missing) {
                return MembershipStep::AddLearner(member);
            }
        }
        return MembershipStep::Wait(format!("waiting for the pod of node {missing} to start"));
    }

    if let Some(&extra) = voters.iter().rev().find(|id| **id > u64::from(i.desired)) {
        if extra == lead.node_id {
            let to = voters
                .iter()
                .copied()
                .filter(|id| *id <= u64::from(i.desired))
                .min_by_key(|id| (lead.lags.get(id).copied().unwrap_or(u64::MAX), *id));
            return match to {
                Some(to) => MembershipStep::TransferLeader { from: extra, to },
                None => MembershipStep::Wait("no voter to take leadership".into()),
            };
        }
        return MembershipStep::RemoveMember {
            id: extra,
            reason: RemoveReason::ScaleIn,
        };
    }

    if sts > i.desired {
        return MembershipStep::ResizeStatefulSet {
            replicas: i.desired,
        };
    }
    MembershipStep::Stable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeRaft;

    fn pods(n: u32) -> BTreeMap<u32, PodView> {
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
                        config_hash: None,
                        image: None,
                    },
                )
            })
            .collect()
    }

    fn inputs<'a>(
        desired: u32,
        sts: Option<u32>,
        pods: &'a BTreeMap<u32, PodView>,
        nodes: &'a BTreeMap<u64, NodeStatus>,
    ) -> MembershipInputs<'a> {
        MembershipInputs {
            cluster: "demo",
            namespace: "ns",
            desired,
            statefulset_replicas: sts,
            initialized: true,
            pods,
            nodes,
            max_lag: 10,
        }
    }

    #[test]
    fn new_cluster_bootstraps_once_then_marks_initialized() {
        let p = pods(0);
        let none = BTreeMap::new();
        let mut i = inputs(5, None, &p, &none);
        i.initialized = false;
        assert_eq!(plan(&i), MembershipStep::Bootstrap { replicas: 5 });

        let p = pods(5);
        let raft = FakeRaft::formed("demo", 5);
        let nodes = raft.statuses();
        let mut i = inputs(5, Some(5), &p, &nodes);
        i.initialized = false;
        assert_eq!(plan(&i), MembershipStep::MarkInitialized);

        let empty = BTreeMap::new();
        let mut i = inputs(5, Some(5), &p, &empty);
        i.initialized = false;
        assert_eq!(plan(&i), MembershipStep::AwaitBootstrap);
    }

    /// Drives the planner against the fake group until it is stable, executing each
    /// step as the reconciler would, and returns the steps taken.
    fn drive(raft: &mut FakeRaft, desired: u32, sts: &mut u32) -> Vec<MembershipStep> {
        let mut steps = Vec::new();
        for _ in 0..50 {
            let p = pods(*sts);
            let nodes = raft.statuses();
            let step = plan(&inputs(desired, Some(*sts), &p, &nodes));
            steps.push(step.clone());
            match step {
                MembershipStep::Stable => return steps,
                MembershipStep::ResizeStatefulSet { replicas } => {
                    // A new pod starts empty and waits to be added.
                    for o in *sts..replicas {
                        raft.start_empty(names::node_id(o));
                    }
                    for o in replicas..*sts {
                        raft.stop(names::node_id(o));
                    }
                    *sts = replicas;
                }
                MembershipStep::AddLearner(m) => raft.add_learner(m.id).unwrap(),
                MembershipStep::Promote { id } => raft.promote(id).unwrap(),
                MembershipStep::RemoveMember { id, .. } => raft.remove(id).unwrap(),
                MembershipStep::TransferLeader { to, .. } => raft.transfer(to).unwrap(),
                MembershipStep::Wait(_) => raft.catch_up_all(),
                other => panic!("unexpected step {other:?}"),
            }
        }
        panic!("did not converge: {steps:?}");
    }

    #[test]
    fn scale_out_adds_one_learner_at_a_time_and_promotes_when_caught_up() {
        let mut raft = FakeRaft::formed("demo", 3);
        let mut sts = 3;
        let steps = drive(&mut raft, 5, &mut sts);
        let kinds: Vec<String> = steps
            .iter()
            .map(|s| {
                format!("{s:?}")
                    .split([' ', '('])
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                "ResizeStatefulSet",
                "AddLearner",
                "Wait",
                "Promote",
                "ResizeStatefulSet",
                "AddLearner",
                "Wait",
                "Promote",
                "Stable"
            ]
        );
        assert_eq!(raft.voters(), vec![1, 2, 3, 4, 5]);
        assert_eq!(sts, 5);
    }

    #[test]
    fn scale_in_removes_from_raft_before_shrinking_and_moves_leadership_first() {
        let mut raft = FakeRaft::formed("demo", 5);
        raft.transfer(5).unwrap();
        let mut sts = 5;
        let steps = drive(&mut raft, 3, &mut sts);
        assert_eq!(steps[0], MembershipStep::TransferLeader { from: 5, to: 1 });
        assert_eq!(
            steps[1],
            MembershipStep::RemoveMember {
                id: 5,
                reason: RemoveReason::ScaleIn
            }
        );
        assert_eq!(
            steps[2],
            MembershipStep::RemoveMember {
                id: 4,
                reason: RemoveReason::ScaleIn
            }
        );
        assert_eq!(steps[3], MembershipStep::ResizeStatefulSet { replicas: 3 });
        assert_eq!(raft.voters(), vec![1, 2, 3]);
        assert_eq!(sts, 3);
    }

    #[test]
    fn member_whose_volume_was_lost_is_removed_then_re_added() {
        let mut raft = FakeRaft::formed("demo", 5);
        raft.lose_volume(3);
        let mut sts = 5;
        let steps = drive(&mut raft, 5, &mut sts);
        assert_eq!(
            steps[0],
            MembershipStep::RemoveMember {
                id: 3,
                reason: RemoveReason::VolumeLost
            }
        );
        assert!(matches!(&steps[1], MembershipStep::AddLearner(m) if m.id == 3));
        assert!(steps.contains(&MembershipStep::Promote { id: 3 }));
        assert_eq!(raft.voters(), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_learner_not_yet_replicated_to_is_not_a_lost_volume() {
        let mut raft = FakeRaft::formed("demo", 3);
        raft.start_empty(4);
        raft.add_learner(4).unwrap();
        // Added, but the leader's first append has not reached it yet.
        raft.not_yet_replicated(4);
        let p = pods(4);
        let nodes = raft.statuses();
        assert!(nodes[&4].members.is_empty());
        assert_eq!(
            plan(&inputs(4, Some(4), &p, &nodes)),
            MembershipStep::Wait("learner 4 is 500 entries behind".into())
        );
        // The same learner after losing its volume is.
        raft.lose_volume(4);
        let nodes = raft.statuses();
        assert_eq!(
            plan(&inputs(4, Some(4), &p, &nodes)),
            MembershipStep::RemoveMember {
                id: 4,
                reason: RemoveReason::VolumeLost
            }
        );
    }

    #[test]
    fn a_voter_with_a_new_incarnation_is_a_lost_volume_even_if_it_holds_a_membership() {
        let mut raft = FakeRaft::formed("demo", 3);
        raft.lose_volume(2);
        let mut nodes = raft.statuses();
        // e.g. restarted with --members: it answers with a membership of its own.
        let leader_members = nodes[&1].members.clone();
        nodes.get_mut(&2).unwrap().members = leader_members;
        let p = pods(3);
        assert_eq!(
            plan(&inputs(3, Some(3), &p, &nodes)),
            MembershipStep::RemoveMember {
                id: 2,
                reason: RemoveReason::VolumeLost
            }
        );
    }

    #[test]
    fn no_leader_means_no_change() {
        let raft = FakeRaft::formed("demo", 3);
        let mut nodes = raft.statuses();
        for s in nodes.values_mut() {
            s.role = Role::Candidate;
        }
        let p = pods(3);
        assert!(matches!(
            plan(&inputs(5, Some(3), &p, &nodes)),
            MembershipStep::Wait(_)
        ));
    }
}
