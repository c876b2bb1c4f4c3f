//! Rollout planning (pure): starting a rollout for outdated pods and choosing its next
//! step, halting into a rollback when a health gate fails.

use super::config::short;
use super::observe::Observed;
use super::{Act, Notes};
use crate::admin::NodeStatus;
use crate::crd::{phase, AegisCluster, AegisClusterStatus, RolloutStatus};
use crate::membership::MembershipStep;
use crate::rotation::{self, Gates, RotationInputs, RotationStep};

/// Pure: pods that differ from the template for another reason than a new config (an
/// image change) are rolled by the same machinery, with the config in force as target.
pub(super) fn start_rollout_for_outdated_pods(
    cluster: &AegisCluster,
    obs: &Observed,
    step: &MembershipStep,
    lead: Option<&NodeStatus>,
    status: &mut AegisClusterStatus,
    notes: &mut Notes,
) {
    let active = status
        .rollout
        .as_ref()
        .is_some_and(RolloutStatus::is_active);
    let Some(hash) = status.config_hash.clone() else {
        return;
    };
    if !status.initialized || active || step.in_progress() {
        return;
    }
    let halted_on_this_image = status.rollout.as_ref().is_some_and(|r| {
        r.phase == phase::HALTED && r.image.as_deref() == Some(cluster.spec.image.as_str())
    });
    if halted_on_this_image {
        return;
    }
    let outdated: Vec<&str> = obs
        .pods
        .values()
        .filter(|p| rotation::outdated(p, &hash, &cluster.spec.image))
        .map(|p| p.name.as_str())
        .collect();
    if outdated.is_empty() {
        return;
    }
    notes.push((
        false,
        "RolloutStarted",
        format!("pods differ from the template: {}", outdated.join(", ")),
    ));
    status.rollout = Some(RolloutStatus {
        phase: phase::ROLLING.into(),
        target_hash: hash.clone(),
        previous_hash: status.last_good_config_hash.clone().or(Some(hash)),
        image: Some(cluster.spec.image.clone()),
        start_term: lead.map_or(0, |l| l.term),
        planned_transfers: 0,
        gate_failing_since: None,
        message: String::new(),
    });
}

/// Pure: the next rollout step, updating the rollout record (halt → roll back).
pub(super) fn plan_rollout(
    cluster: &AegisCluster,
    obs: &Observed,
    lead: Option<&NodeStatus>,
    gates: &Gates,
    now: i64,
    status: &mut AegisClusterStatus,
    notes: &mut Notes,
) -> Act {
    let Some(target) = status.config_hash.clone() else {
        return Act::None;
    };
    let Some(rollout) = status.rollout.as_mut() else {
        return Act::None;
    };
    if !rollout.is_active() {
        return Act::None;
    }
    let mut rolling_back = rollout.phase == phase::ROLLING_BACK;
    let mut step = rotation::plan(&RotationInputs {
        target_hash: &target,
        image: &cluster.spec.image,
        pods: &obs.pods,
        leader: lead,
        start_term: rollout.start_term,
        planned_transfers: rollout.planned_transfers,
        gate_failing_since: rollout.gate_failing_since,
        now_s: now,
        gates,
        rolling_back,
    });
    let image_only = rollout.previous_hash.as_deref() == Some(target.as_str());
    if let (RotationStep::Halt { failure }, true) = (&step, image_only) {
        // Rolling "back" to the same config under spec.image would push the
        // new image onto the remaining pods without gates: stop instead.
        notes.push((
            true,
            "RolloutHalted",
            format!(
                "health gate failed ({failure}); image {} rollout stopped, revert spec.image to roll back",
                cluster.spec.image
            ),
        ));
        rollout.phase = phase::HALTED.into();
        rollout.gate_failing_since = None;
        rollout.message = format!("halted: {failure}");
        return Act::None;
    }
    if let RotationStep::Halt { failure } = &step {
        let back_to = rollout
            .previous_hash
            .clone()
            .unwrap_or_else(|| target.clone());
        notes.push((
            true,
            "RolloutHalted",
            format!(
                "health gate failed ({failure}); rolling back to {}",
                short(&back_to)
            ),
        ));
        rollout.phase = phase::ROLLING_BACK.into();
        rollout.gate_failing_since = None;
        rollout.message = format!("halted: {failure}");
        status.config_hash = Some(back_to.clone());
        rolling_back = true;
        step = rotation::plan(&RotationInputs {
            target_hash: &back_to,
            image: &cluster.spec.image,
            pods: &obs.pods,
            leader: lead,
            start_term: rollout.start_term,
            planned_transfers: rollout.planned_transfers,
            gate_failing_since: None,
            now_s: now,
            gates,
            rolling_back,
        });
    }
    match step {
        RotationStep::Complete => {
            rollout.gate_failing_since = None;
            if rolling_back {
                rollout.phase = phase::ROLLED_BACK.into();
                notes.push((
                    true,
                    "RolledBack",
                    format!("every member runs {} again", short(&target_of(status))),
                ));
            } else {
                rollout.phase = phase::COMPLETE.into();
                rollout.message = String::new();
                status.last_good_config_hash = Some(target.clone());
                notes.push((
                    false,
                    "RolloutComplete",
                    format!("every member runs {}", short(&target)),
                ));
            }
            Act::None
        }
        RotationStep::GateWait { failure, since } => {
            rollout.gate_failing_since = Some(since);
            rollout.message = format!("waiting: {failure}");
            Act::None
        }
        RotationStep::Wait(why) => {
            rollout.message = why;
            Act::None
        }
        RotationStep::DeletePod { name } => {
            rollout.gate_failing_since = None;
            Act::DeletePod(name)
        }
        RotationStep::TransferLeader { from, to } => {
            rollout.gate_failing_since = None;
            rollout.planned_transfers = rollout.planned_transfers.saturating_add(1);
            Act::TransferLeader { from, to }
        }
        // Halts were turned into a rollback above, and a rollback never halts.
        RotationStep::Halt { .. } => Act::None,
    }
}

fn target_of(status: &AegisClusterStatus) -> String {
    status.config_hash.clone().unwrap_or_default()
}
