//! Status: conditions from what was applied and observed, and the status patch.

use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use super::observe::Observed;
use super::{Context, Error};
use crate::admin::{ClusterAdmin, NodeStatus};
use crate::crd::{condition, phase, AegisCluster, AegisClusterStatus, Condition, MemberStatus};
use crate::membership::MembershipStep;
use crate::names::{self, *};

pub(super) fn set_condition(
    status: &mut AegisClusterStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    cluster: &AegisCluster,
    now: i64,
) {
    let value = if value { "True" } else { "False" };
    let prev = status.conditions.iter().find(|c| c.type_ == type_);
    let since = match prev {
        Some(p) if p.status == value => p.last_transition_time.clone(),
        _ => jiff::Timestamp::from_second(now)
            .map(|t| t.to_string())
            .unwrap_or_default(),
    };
    let cond = Condition {
        type_: type_.into(),
        status: value.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: since,
        observed_generation: cluster.metadata.generation,
    };
    status.conditions.retain(|c| c.type_ != type_);
    status.conditions.push(cond);
    status.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

pub(super) fn finish_conditions(
    cluster: &AegisCluster,
    obs: &Observed,
    lead: Option<&NodeStatus>,
    step: &MembershipStep,
    status: &mut AegisClusterStatus,
    now: i64,
) {
    let name = cluster.name_any();
    let desired = cluster.spec.replicas;
    let ready = obs.pods.values().filter(|p| p.ready).count();
    status.ready_replicas = i32::try_from(ready).unwrap_or(i32::MAX);
    status.leader = lead.map(|l| l.node_id);
    status.leader_pod = lead.and_then(|l| {
        u32::try_from(l.node_id.checked_sub(1)?)
            .ok()
            .map(|o| names::pod(&name, o))
    });
    status.term = lead.map(|l| l.term);
    status.members = lead
        .map(|l| {
            l.members
                .iter()
                .map(|m| MemberStatus {
                    id: m.id,
                    pod: u32::try_from(m.id.saturating_sub(1))
                        .map(|o| names::pod(&name, o))
                        .unwrap_or_default(),
                    role: obs
                        .nodes
                        .get(&m.id)
                        .map_or("unknown", |s| s.role.as_str())
                        .to_string(),
                    voter: m.voter,
                    lag: if m.id == l.node_id {
                        Some(0)
                    } else {
                        l.lags.get(&m.id).copied()
                    },
                })
                .collect()
        })
        .unwrap_or_default();

    let quorum = usize::try_from(desired / 2 + 1).unwrap_or(1);
    let available = lead.is_some() && ready >= quorum;
    set_condition(
        status,
        condition::AVAILABLE,
        available,
        if available { "QuorumReady" } else { "NoQuorum" },
        &format!("{ready} of {desired} members ready"),
        cluster,
        now,
    );
    let active = status.rollout.as_ref().filter(|r| r.is_active());
    let (progressing, reason, msg) = if let Some(r) = active {
        let reason = if r.phase == phase::ROLLING {
            "RollingConfig"
        } else {
            "RollingBack"
        };
        (true, reason, r.message.clone())
    } else if step.in_progress() {
        (
            true,
            "Membership",
            status.membership_change.clone().unwrap_or_default(),
        )
    } else {
        (false, "Stable", String::new())
    };
    set_condition(
        status,
        condition::PROGRESSING,
        progressing,
        reason,
        &msg,
        cluster,
        now,
    );

    let rolled_back = status
        .rollout
        .as_ref()
        .filter(|r| r.phase == phase::ROLLING_BACK || r.phase == phase::ROLLED_BACK)
        .map(|r| r.message.clone());
    let halted = status
        .rollout
        .as_ref()
        .filter(|r| r.phase == phase::HALTED && r.image.as_deref() == Some(&cluster.spec.image))
        .map(|r| r.message.clone());
    let has_degraded_reason = status.conditions.iter().any(|c| {
        c.type_ == condition::DEGRADED
            && c.status == "True"
            && (c.reason == "ConfigMissing"
                || c.reason == "SpecInvalid"
                || c.reason == "ConfigRejected")
            && status.config_hash.is_none()
    });
    if !has_degraded_reason {
        let (degraded, reason, msg) = if let Some(m) = rolled_back {
            (true, "RolledBack", m)
        } else if let Some(m) = halted {
            (true, "RolloutHalted", m)
        } else if status.initialized && lead.is_none() {
            (true, "NoLeader", "no member reports a leader".to_string())
        } else if status.initialized && ready < obs.pods.len() {
            (
                true,
                "MembersNotReady",
                format!("{ready} of {} pods ready", obs.pods.len()),
            )
        } else {
            (false, "Healthy", String::new())
        };
        set_condition(
            status,
            condition::DEGRADED,
            degraded,
            reason,
            &msg,
            cluster,
            now,
        );
    }
    let (rejected, reason, msg) = match &status.rejected_config {
        Some(r) => (
            true,
            "EnvelopeViolation",
            format!("{}: {}", r.hash, r.rule_ids.join(", ")),
        ),
        None => (false, "Accepted", String::new()),
    };
    set_condition(
        status,
        condition::CONFIG_REJECTED,
        rejected,
        reason,
        &msg,
        cluster,
        now,
    );
}

pub(super) async fn patch_status<A: ClusterAdmin>(
    cluster: &AegisCluster,
    ns: &str,
    ctx: &Context<A>,
    status: &AegisClusterStatus,
) -> Result<(), Error> {
    let api: Api<AegisCluster> = Api::namespaced(ctx.client.clone(), ns);
    let patch = json!({
        "apiVersion": "aegis.dev/v1alpha1",
        "kind": "AegisCluster",
        "status": status,
    });
    api.patch_status(
        &cluster.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
