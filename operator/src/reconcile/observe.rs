//! Observing the cluster: what the API server and the Raft group report, read once per
//! reconcile.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams};
use kube::ResourceExt;

use super::{Context, Error};
use crate::admin::{ClusterAdmin, NodeEndpoint, NodeStatus};
use crate::crd::AegisCluster;
use crate::membership::PodView;
use crate::names::{self, *};

/// What was read from the API server and the Raft group.
pub(super) struct Observed {
    pub(super) source: Option<ConfigMap>,
    pub(super) statefulset_replicas: Option<u32>,
    pub(super) pods: BTreeMap<u32, PodView>,
    pub(super) nodes: BTreeMap<u64, NodeStatus>,
}

pub(super) fn pod_view(cluster: &str, pod: &Pod) -> Option<PodView> {
    let name = pod.metadata.name.clone()?;
    let ordinal = names::ordinal_of(cluster, &name)?;
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let image = pod.spec.as_ref().and_then(|s| {
        s.containers
            .iter()
            .find(|c| c.name == "aegis-node")
            .and_then(|c| c.image.clone())
    });
    Some(PodView {
        ordinal,
        name,
        running: status.and_then(|s| s.phase.as_deref()) == Some("Running"),
        ready,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        config_hash: pod.annotations().get(ANNOTATION_CONFIG_HASH).cloned(),
        image,
    })
}

pub(super) fn endpoint(cluster: &str, ns: &str, id: u64) -> NodeEndpoint {
    let ordinal = u32::try_from(id.saturating_sub(1)).unwrap_or(u32::MAX);
    NodeEndpoint {
        id,
        client_addr: names::client_addr(cluster, ns, ordinal),
    }
}

pub(super) async fn observe<A: ClusterAdmin>(
    cluster: &AegisCluster,
    ns: &str,
    ctx: &Context<A>,
) -> Result<Observed, Error> {
    let name = cluster.name_any();
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let source = cms.get_opt(&cluster.spec.config.name).await?;
    let sts: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    let statefulset_replicas = sts
        .get_opt(&names::statefulset(&name))
        .await?
        .map(|s| s.spec.and_then(|s| s.replicas).unwrap_or(1))
        .map(|r| u32::try_from(r).unwrap_or(0));
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let pods = pods_api
        .list(&ListParams::default().labels(&selector_string(&name)))
        .await?
        .items
        .iter()
        .filter_map(|p| pod_view(&name, p))
        .map(|p| (p.ordinal, p))
        .collect::<BTreeMap<_, _>>();
    let mut nodes = BTreeMap::new();
    for p in pods.values().filter(|p| p.running && !p.terminating) {
        let id = names::node_id(p.ordinal);
        match ctx.admin.status(&endpoint(&name, ns, id)).await {
            Ok(s) => {
                nodes.insert(id, s);
            }
            Err(e) => tracing::debug!(node = id, error = %e, "status unavailable"),
        }
    }
    Ok(Observed {
        source,
        statefulset_replicas,
        pods,
        nodes,
    })
}
