//! Names, labels and ports shared by the builders, the reconciler and the chaos
//! manifests. The chaos manifests select pods by these labels, so they are a contract.

use std::collections::BTreeMap;

pub const CLIENT_PORT: i32 = 7400;
pub const PEER_PORT: i32 = 7500;
pub const METRICS_PORT: i32 = 7600;

pub const FIELD_MANAGER: &str = "aegis-operator";

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The AegisCluster a pod belongs to.
pub const LABEL_CLUSTER: &str = "aegis.dev/cluster";
/// `leader` on the current leader's pod, `follower` on the others.
pub const LABEL_ROLE: &str = "aegis.dev/role";
/// `enabled` when `spec.chaos.enabled`: the only pods chaos experiments may select.
pub const LABEL_CHAOS: &str = "aegis.dev/chaos";

pub const ANNOTATION_CONFIG_HASH: &str = "aegis.dev/config-hash";
pub const ROLE_LEADER: &str = "leader";
pub const ROLE_FOLLOWER: &str = "follower";
pub const CHAOS_ENABLED: &str = "enabled";

/// Mount path of the rendered config inside the node container.
pub const CONFIG_MOUNT: &str = "/etc/aegis";
pub const CONFIG_FILE: &str = "aegis.yaml";
pub const DATA_MOUNT: &str = "/var/lib/aegis";
pub const DATA_VOLUME: &str = "data";

pub fn headless_service(cluster: &str) -> String {
    format!("{cluster}-peer")
}

pub fn client_service(cluster: &str) -> String {
    format!("{cluster}-client")
}

pub fn statefulset(cluster: &str) -> String {
    cluster.to_string()
}

pub fn pdb(cluster: &str) -> String {
    cluster.to_string()
}

pub fn network_policy(cluster: &str) -> String {
    cluster.to_string()
}

pub fn service_monitor(cluster: &str) -> String {
    cluster.to_string()
}

/// The rendered config is content-addressed: one immutable ConfigMap per hash, so a
/// rollback only has to point the template back at an older name.
pub fn config_map(cluster: &str, short_hash: &str) -> String {
    format!("{cluster}-config-{short_hash}")
}

/// Pod `ordinal` of the StatefulSet; node id = ordinal + 1.
pub fn pod(cluster: &str, ordinal: u32) -> String {
    format!("{}-{ordinal}", statefulset(cluster))
}

pub fn node_id(ordinal: u32) -> u64 {
    u64::from(ordinal) + 1
}

/// The ordinal of a pod name of this cluster's StatefulSet.
pub fn ordinal_of(cluster: &str, pod_name: &str) -> Option<u32> {
    let rest = pod_name
        .strip_prefix(&statefulset(cluster))?
        .strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// Stable DNS name of a member through the headless Service.
pub fn pod_host(cluster: &str, namespace: &str, ordinal: u32) -> String {
    format!(
        "{}.{}.{namespace}.svc",
        pod(cluster, ordinal),
        headless_service(cluster)
    )
}

pub fn peer_addr(cluster: &str, namespace: &str, ordinal: u32) -> String {
    format!("{}:{PEER_PORT}", pod_host(cluster, namespace, ordinal))
}

pub fn client_addr(cluster: &str, namespace: &str, ordinal: u32) -> String {
    format!("{}:{CLIENT_PORT}", pod_host(cluster, namespace, ordinal))
}

/// `--members` of a new cluster of `replicas` voters.
pub fn initial_members(cluster: &str, namespace: &str, replicas: u32) -> String {
    (0..replicas)
        .map(|o| {
            format!(
                "{}={}/{}",
                node_id(o),
                peer_addr(cluster, namespace, o),
                client_addr(cluster, namespace, o)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels that select this cluster's pods (immutable: the StatefulSet selector).
pub fn selector_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_string(), "aegis".to_string()),
        (LABEL_INSTANCE.to_string(), cluster.to_string()),
        (LABEL_CLUSTER.to_string(), cluster.to_string()),
    ])
}

/// Labels on every object the operator owns.
pub fn common_labels(cluster: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(cluster);
    labels.insert(LABEL_COMPONENT.to_string(), "node".to_string());
    labels.insert(LABEL_MANAGED_BY.to_string(), FIELD_MANAGER.to_string());
    labels
}

pub fn selector_string(cluster: &str) -> String {
    selector_labels(cluster)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinal_parses_only_this_clusters_pods() {
        assert_eq!(ordinal_of("demo", "demo-0"), Some(0));
        assert_eq!(ordinal_of("demo", "demo-12"), Some(12));
        assert_eq!(ordinal_of("demo", "demo-x"), None);
        assert_eq!(ordinal_of("demo", "demo-"), None);
        assert_eq!(ordinal_of("demo", "demo-prod-1"), None);
        assert_eq!(ordinal_of("demo", "other-1"), None);
    }

    #[test]
    fn initial_members_lists_every_voter_with_stable_dns() {
        let members = initial_members("demo", "ns", 3);
        assert_eq!(
            members,
            "1=demo-0.demo-peer.ns.svc:7500/demo-0.demo-peer.ns.svc:7400,\
             2=demo-1.demo-peer.ns.svc:7500/demo-1.demo-peer.ns.svc:7400,\
             3=demo-2.demo-peer.ns.svc:7500/demo-2.demo-peer.ns.svc:7400"
        );
    }
}
