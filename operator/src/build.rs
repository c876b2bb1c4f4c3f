//! Pure construction of every object an `AegisCluster` owns.
//!
//! No I/O and no clock: the same inputs give byte-identical objects, which is what the
//! golden tests pin and what lets server-side apply be a no-op when nothing changed.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Resource, ResourceExt};
use serde_json::{json, Value};

use crate::crd::AegisCluster;
use crate::names::{self, *};
use crate::validate::AcceptedConfig;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the AegisCluster has no {0}")]
    MissingMetadata(&'static str),
    #[error("building {kind}: {source}")]
    Shape {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// What the reconciler decided, beyond the spec, that shapes the objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInputs {
    /// The config in force: the template's volume and hash annotation point at it.
    pub config: AcceptedConfig,
    /// StatefulSet size, which the membership planner moves one member at a time.
    pub statefulset_replicas: i32,
    /// `Some(n)` until the group has formed: pods with id <= n get `--members`.
    pub bootstrap_replicas: Option<i32>,
}

/// Everything the operator applies for one cluster, in apply order.
#[derive(Debug, Clone)]
pub struct DesiredObjects {
    pub config_map: ConfigMap,
    pub headless_service: Service,
    pub client_service: Service,
    pub statefulset: StatefulSet,
    pub pdb: PodDisruptionBudget,
    pub network_policy: Option<NetworkPolicy>,
    pub service_monitor: Option<DynamicObject>,
}

pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

struct Ctx<'a> {
    name: String,
    namespace: String,
    owner: OwnerReference,
    cluster: &'a AegisCluster,
    inputs: &'a BuildInputs,
}

impl Ctx<'_> {
    fn meta(&self, name: &str) -> Value {
        json!({
            "name": name,
            "namespace": self.namespace,
            "labels": common_labels(&self.name),
            "ownerReferences": [self.owner],
        })
    }
}

fn typed<T: serde::de::DeserializeOwned>(kind: &'static str, v: Value) -> Result<T, BuildError> {
    serde_json::from_value(v).map_err(|source| BuildError::Shape { kind, source })
}

pub fn build(cluster: &AegisCluster, inputs: &BuildInputs) -> Result<DesiredObjects, BuildError> {
    let owner = cluster
        .controller_owner_ref(&())
        .ok_or(BuildError::MissingMetadata("name or uid"))?;
    let namespace = cluster
        .namespace()
        .ok_or(BuildError::MissingMetadata("namespace"))?;
    let cx = Ctx {
        name: cluster.name_any(),
        namespace,
        owner,
        cluster,
        inputs,
    };
    Ok(DesiredObjects {
        config_map: config_map(&cx)?,
        headless_service: headless_service(&cx)?,
        client_service: client_service(&cx)?,
        statefulset: statefulset(&cx)?,
        pdb: pdb(&cx)?,
        network_policy: if cluster.spec.network_policy.enabled {
            Some(network_policy(&cx)?)
        } else {
            None
        },
        service_monitor: if cluster.spec.telemetry.service_monitor.enabled {
            Some(service_monitor(&cx)?)
        } else {
            None
        },
    })
}

fn config_map(cx: &Ctx) -> Result<ConfigMap, BuildError> {
    let mut meta = cx.meta(&names::config_map(&cx.name, &cx.inputs.config.short_hash));
    meta["annotations"] = json!({ ANNOTATION_CONFIG_HASH: cx.inputs.config.hash });
    typed(
        "ConfigMap",
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            // Content-addressed, so it never changes under a running pod.
            "immutable": true,
            "data": { CONFIG_FILE: cx.inputs.config.yaml },
        }),
    )
}

fn ports() -> Value {
    json!([
        {"name": "client", "port": CLIENT_PORT, "targetPort": "client", "protocol": "TCP"},
        {"name": "peer", "port": PEER_PORT, "targetPort": "peer", "protocol": "TCP"},
        {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
    ])
}

fn headless_service(cx: &Ctx) -> Result<Service, BuildError> {
    typed(
        "Service",
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": cx.meta(&names::headless_service(&cx.name)),
            "spec": {
                "clusterIP": "None",
                // A learner is not Ready until it caught up, but its peers must reach it
                // to catch it up.
                "publishNotReadyAddresses": true,
                "selector": selector_labels(&cx.name),
                "ports": ports(),
            }
        }),
    )
}

fn client_service(cx: &Ctx) -> Result<Service, BuildError> {
    typed(
        "Service",
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": cx.meta(&names::client_service(&cx.name)),
            "spec": {
                "type": "ClusterIP",
                "selector": selector_labels(&cx.name),
                "ports": [{"name": "client", "port": CLIENT_PORT, "targetPort": "client", "protocol": "TCP"}],
            }
        }),
    )
}

/// The container's shell line: node id and addresses come from the pod's ordinal, and
/// `--members` is passed only while bootstrapping and only to the initial members.
fn node_command() -> String {
    [
        "set -eu",
        "ordinal=\"${POD_NAME##*-}\"",
        "id=$((ordinal + 1))",
        "host=\"${POD_NAME}.${PEER_SERVICE}.${POD_NAMESPACE}.svc\"",
        "set -- --id \"$id\" --data-dir /var/lib/aegis --peer-addr \"$host:7500\" --client-addr \"$host:7400\" --metrics-addr 0.0.0.0:7600 --config /etc/aegis/aegis.yaml",
        "if [ -n \"${AEGIS_INITIAL_MEMBERS:-}\" ] && [ \"$id\" -le \"${AEGIS_INITIAL_SIZE:-0}\" ]; then set -- \"$@\" --members \"$AEGIS_INITIAL_MEMBERS\"; fi",
        "exec aegis-node \"$@\"",
    ]
    .join("\n")
}

fn resources(cx: &Ctx) -> Value {
    match &cx.cluster.spec.resources {
        Some(r) => {
            let mut v = json!({});
            if !r.requests.is_empty() {
                v["requests"] = json!(r.requests);
            }
            if !r.limits.is_empty() {
                v["limits"] = json!(r.limits);
            }
            v
        }
        None => json!({"requests": {"cpu": "100m", "memory": "128Mi"}}),
    }
}

pub fn pod_labels(cx_name: &str, chaos: bool) -> BTreeMap<String, String> {
    let mut labels = common_labels(cx_name);
    if chaos {
        labels.insert(LABEL_CHAOS.to_string(), CHAOS_ENABLED.to_string());
    }
    labels
}

fn statefulset(cx: &Ctx) -> Result<StatefulSet, BuildError> {
    let spec = &cx.cluster.spec;
    let mut env = vec![
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": "PEER_SERVICE", "value": names::headless_service(&cx.name)}),
    ];
    if let Some(n) = cx.inputs.bootstrap_replicas {
        let members = initial_members(&cx.name, &cx.namespace, u32::try_from(n).unwrap_or(0));
        env.push(json!({"name": "AEGIS_INITIAL_MEMBERS", "value": members}));
        env.push(json!({"name": "AEGIS_INITIAL_SIZE", "value": n.to_string()}));
    }
    let mut pvc_spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.storage.size}},
    });
    if let Some(sc) = &spec.storage.storage_class_name {
        pvc_spec["storageClassName"] = json!(sc);
    }
    let mut container = json!({
        "name": "aegis-node",
        "image": spec.image,
        "command": ["/bin/sh", "-c", node_command()],
        "env": env,
        "ports": [
            {"name": "client", "containerPort": CLIENT_PORT, "protocol": "TCP"},
            {"name": "peer", "containerPort": PEER_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        // Ready = caught up with the leader; a pod that is not is out of the client Service.
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "metrics"},
            "periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 6, "timeoutSeconds": 2,
        },
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "periodSeconds": 2, "failureThreshold": 60, "timeoutSeconds": 2,
        },
        "resources": resources(cx),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": DATA_MOUNT},
            {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": true},
        ],
    });
    if let Some(p) = spec.image_pull_policy {
        container["imagePullPolicy"] = json!(p.as_str());
    }
    typed(
        "StatefulSet",
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": cx.meta(&names::statefulset(&cx.name)),
            "spec": {
                "replicas": cx.inputs.statefulset_replicas,
                "serviceName": names::headless_service(&cx.name),
                // All initial members must start together to elect a first leader.
                "podManagementPolicy": "Parallel",
                // The operator restarts pods itself, one at a time, leader last.
                "updateStrategy": {"type": "OnDelete"},
                // A member removed by scale-in must not come back with a stale log.
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"},
                "selector": {"matchLabels": selector_labels(&cx.name)},
                "template": {
                    "metadata": {
                        "labels": pod_labels(&cx.name, spec.chaos.enabled),
                        "annotations": {ANNOTATION_CONFIG_HASH: cx.inputs.config.hash},
                    },
                    "spec": {
                        "terminationGracePeriodSeconds": 30,
                        "automountServiceAccountToken": false,
                        "enableServiceLinks": false,
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "fsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                            "weight": 100,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": selector_labels(&cx.name)},
                            },
                        }]}},
                        "containers": [container],
                        "volumes": [{
                            "name": "config",
                            "configMap": {"name": names::config_map(&cx.name, &cx.inputs.config.short_hash)},
                        }],
                    },
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": DATA_VOLUME, "labels": selector_labels(&cx.name)},
                    "spec": pvc_spec,
                }],
            }
        }),
    )
}

fn pdb(cx: &Ctx) -> Result<PodDisruptionBudget, BuildError> {
    typed(
        "PodDisruptionBudget",
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": cx.meta(&names::pdb(&cx.name)),
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": selector_labels(&cx.name)},
            }
        }),
    )
}

fn network_policy(cx: &Ctx) -> Result<NetworkPolicy, BuildError> {
    let own_pods = json!({"podSelector": {"matchLabels": selector_labels(&cx.name)}});
    let mut client_from = vec![
        own_pods.clone(),
        json!({"podSelector": {"matchLabels": {"aegis.dev/client": "true"}}}),
        // The operator drives the Admin service on the client port.
        json!({
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {LABEL_NAME: "aegis-operator"}},
        }),
    ];
    let extra = &cx.cluster.spec.network_policy.client_namespace_labels;
    if !extra.is_empty() {
        client_from.push(json!({
            "namespaceSelector": {"matchLabels": extra},
            "podSelector": {"matchLabels": {"aegis.dev/client": "true"}},
        }));
    }
    typed(
        "NetworkPolicy",
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": cx.meta(&names::network_policy(&cx.name)),
            "spec": {
                "podSelector": {"matchLabels": selector_labels(&cx.name)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [own_pods], "ports": [{"protocol": "TCP", "port": PEER_PORT}]},
                    {"from": client_from, "ports": [{"protocol": "TCP", "port": CLIENT_PORT}]},
                    // Scrapes (and kubelet probes, which NetworkPolicy does not filter).
                    {"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": METRICS_PORT}]},
                ],
            }
        }),
    )
}

fn service_monitor(cx: &Ctx) -> Result<DynamicObject, BuildError> {
    let sm = &cx.cluster.spec.telemetry.service_monitor;
    let mut meta = cx.meta(&names::service_monitor(&cx.name));
    for (k, v) in &sm.labels {
        meta["labels"][k] = json!(v);
    }
    typed(
        "ServiceMonitor",
        json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": meta,
            "spec": {
                "selector": {"matchLabels": common_labels(&cx.name)},
                "namespaceSelector": {"matchNames": [cx.namespace]},
                "endpoints": [{"port": "metrics", "path": "/metrics", "interval": sm.interval}],
            }
        }),
    )
}
