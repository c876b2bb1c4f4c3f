//! Apply and act: server-side apply of the built objects, the one chosen side effect,
//! pruning of unused config ConfigMaps and the pod labels.

use std::fmt::Debug;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use super::observe::{endpoint, pod_view, Observed};
use super::{Act, Context, Error, Notes};
use crate::admin::{ClusterAdmin, NodeStatus};
use crate::build::{self, DesiredObjects};
use crate::crd::{AegisCluster, AegisClusterStatus, RolloutStatus};
use crate::membership::MembershipStep;
use crate::names::{self, *};

pub(super) async fn apply_all<A: ClusterAdmin>(
    objs: &DesiredObjects,
    ns: &str,
    ctx: &Context<A>,
) -> Result<(), Error> {
    let c = &ctx.client;
    apply_one(&Api::namespaced(c.clone(), ns), &objs.config_map).await?;
    let svc: Api<Service> = Api::namespaced(c.clone(), ns);
    apply_one(&svc, &objs.headless_service).await?;
    apply_one(&svc, &objs.client_service).await?;
    apply_one(&Api::namespaced(c.clone(), ns), &objs.statefulset).await?;
    apply_one(&Api::namespaced(c.clone(), ns), &objs.pdb).await?;
    if let Some(np) = &objs.network_policy {
        apply_one(&Api::namespaced(c.clone(), ns), np).await?;
    }
    if let Some(sm) = &objs.service_monitor {
        let api: Api<DynamicObject> =
            Api::namespaced_with(c.clone(), ns, &build::service_monitor_resource());
        apply_one(&api, sm).await?;
    }
    ctx.metrics.applies.inc();
    Ok(())
}

/// Server-side applies `obj` under the operator's field manager, taking over fields
/// another manager set.
async fn apply_one<K>(api: &Api<K>, obj: &K) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&obj.name_any(), &pp, &Patch::Apply(obj)).await?;
    Ok(())
}

pub(super) async fn execute<A: ClusterAdmin>(
    name: &str,
    ns: &str,
    ctx: &Context<A>,
    act: Act,
    lead: Option<&NodeStatus>,
    status: &mut AegisClusterStatus,
    notes: &mut Notes,
) -> Result<(), Error> {
    let leader_ep = lead.map(|l| endpoint(name, ns, l.node_id));
    status.membership_change = None;
    match act {
        Act::None => {}
        Act::DeletePod(pod) => {
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
            pods.delete(&pod, &DeleteParams::default()).await?;
            ctx.metrics
                .rollout_steps
                .with_label_values(&["restart"])
                .inc();
            notes.push((
                false,
                "RolloutRestart",
                format!("restarted {pod} on the new config"),
            ));
        }
        Act::TransferLeader { from, to } => {
            if let Some(ep) = &leader_ep {
                ctx.admin.transfer_leader(ep, to).await?;
                ctx.metrics
                    .rollout_steps
                    .with_label_values(&["transfer"])
                    .inc();
                notes.push((
                    false,
                    "LeaderTransferred",
                    format!("leadership moved from node {from} to node {to} before its restart"),
                ));
            }
        }
        Act::Membership(step) => {
            let (kind, note) = match &step {
                MembershipStep::Bootstrap { replicas } => (
                    "bootstrap",
                    format!("bootstrapping a {replicas}-member Raft group"),
                ),
                MembershipStep::ResizeStatefulSet { replicas } => {
                    ("resize", format!("StatefulSet resized to {replicas}"))
                }
                MembershipStep::AddLearner(m) => {
                    if let Some(ep) = &leader_ep {
                        ctx.admin.add_learner(ep, m).await?;
                    }
                    ("add_learner", format!("node {} added as a learner", m.id))
                }
                MembershipStep::Promote { id } => {
                    if let Some(ep) = &leader_ep {
                        ctx.admin.promote(ep, *id).await?;
                    }
                    (
                        "promote",
                        format!("node {id} caught up and promoted to voter"),
                    )
                }
                MembershipStep::RemoveMember { id, reason } => {
                    if let Some(ep) = &leader_ep {
                        ctx.admin.remove_member(ep, *id).await?;
                    }
                    (
                        "remove",
                        format!("node {id} removed from the Raft group ({reason:?})"),
                    )
                }
                MembershipStep::TransferLeader { from, to } => {
                    if let Some(ep) = &leader_ep {
                        ctx.admin.transfer_leader(ep, *to).await?;
                    }
                    (
                        "transfer",
                        format!(
                            "leadership moved from node {from} to node {to} before its removal"
                        ),
                    )
                }
                MembershipStep::Wait(why) => {
                    status.membership_change = Some(why.clone());
                    return Ok(());
                }
                MembershipStep::AwaitBootstrap => {
                    status.membership_change =
                        Some("waiting for the initial members to elect a leader".into());
                    return Ok(());
                }
                MembershipStep::MarkInitialized | MembershipStep::Stable => return Ok(()),
            };
            ctx.metrics
                .membership_changes
                .with_label_values(&[kind])
                .inc();
            status.membership_change = Some(note.clone());
            notes.push((false, "Membership", note));
        }
    }
    Ok(())
}

/// Deletes rendered config ConfigMaps that are neither in force, the last good one, nor
/// part of the rollout record, once no rollout is under way.
pub(super) async fn prune_configs<A: ClusterAdmin>(
    name: &str,
    ns: &str,
    ctx: &Context<A>,
    status: &AegisClusterStatus,
) -> Result<(), Error> {
    let rolling = status
        .rollout
        .as_ref()
        .is_some_and(RolloutStatus::is_active);
    if rolling || !status.initialized {
        return Ok(());
    }
    let mut keep: Vec<&str> = Vec::new();
    keep.extend(status.config_hash.as_deref());
    keep.extend(status.last_good_config_hash.as_deref());
    if let Some(r) = &status.rollout {
        keep.push(&r.target_hash);
        keep.extend(r.previous_hash.as_deref());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let prefix = format!("{name}-config-");
    let list = api
        .list(&ListParams::default().labels(&selector_string(name)))
        .await?;
    for cm in list.items {
        let cm_name = cm.name_any();
        let Some(hash) = cm.annotations().get(ANNOTATION_CONFIG_HASH) else {
            continue;
        };
        if !cm_name.starts_with(&prefix) || keep.contains(&hash.as_str()) {
            continue;
        }
        tracing::info!(config_map = %cm_name, "pruning a config no longer in use");
        api.delete(&cm_name, &DeleteParams::default()).await?;
    }
    Ok(())
}

/// `aegis.dev/role` (so chaos can target the leader) and `aegis.dev/chaos` on each pod.
pub(super) async fn label_pods<A: ClusterAdmin>(
    cluster: &AegisCluster,
    name: &str,
    ns: &str,
    ctx: &Context<A>,
    obs: &Observed,
    lead: Option<&NodeStatus>,
) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&selector_string(name)))
        .await?;
    for pod in list.items {
        let Some(view) = pod_view(name, &pod) else {
            continue;
        };
        if view.terminating || !obs.pods.contains_key(&view.ordinal) {
            continue;
        }
        let role = if lead.map(|l| l.node_id) == Some(names::node_id(view.ordinal)) {
            ROLE_LEADER
        } else {
            ROLE_FOLLOWER
        };
        let chaos = cluster.spec.chaos.enabled.then_some(CHAOS_ENABLED);
        let labels = pod.labels();
        if labels.get(LABEL_ROLE).map(String::as_str) == Some(role)
            && labels.get(LABEL_CHAOS).map(String::as_str) == chaos
        {
            continue;
        }
        let patch = json!({"metadata": {"labels": {LABEL_ROLE: role, LABEL_CHAOS: chaos}}});
        pods.patch(&view.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(())
}
