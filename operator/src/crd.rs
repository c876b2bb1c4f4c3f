//! The `AegisCluster` custom resource (`aegis.dev/v1alpha1`).
//!
//! What the schema can say, it says (ranges, patterns, enums); the rules that need
//! more than one field or arithmetic are CEL (`x-kubernetes-validations`), so the API
//! server refuses an invalid spec before the operator ever sees it. `validate` repeats
//! the checks in Rust for objects that bypassed the schema (older CRD, dry runs).

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The desired state of one AEGIS Raft cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "aegis.dev",
    version = "v1alpha1",
    kind = "AegisCluster",
    namespaced,
    status = "AegisClusterStatus",
    shortname = "aegis",
    category = "aegis",
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Leader","type":"string","jsonPath":".status.leaderPod"}"#,
    printcolumn = r#"{"name":"Term","type":"integer","jsonPath":".status.term"}"#,
    printcolumn = r#"{"name":"Config","type":"string","jsonPath":".status.configHash"}"#,
    printcolumn = r#"{"name":"Available","type":"string","jsonPath":".status.conditions[?(@.type==\"Available\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AegisClusterSpec {
    /// Number of Raft voters. Odd, so that a majority survives the loss of (n-1)/2 members.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 9))]
    #[x_kube(validation = Rule::new("self % 2 == 1").message("replicas must be odd (1, 3, 5, 7 or 9)"))]
    pub replicas: i32,

    /// Container image of `aegis-node`.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,

    /// Image pull policy of the node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Data volume of each member. Fixed at creation: a StatefulSet's volume claim template
    /// cannot change, and a new size or class needs each member replaced (docs/OPERATOR.md).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storage cannot be changed after creation; replace members one at a time instead (docs/OPERATOR.md)"))]
    pub storage: StorageSpec,

    /// CPU and memory requests and limits of the node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,

    /// The ConfigMap holding the cluster config YAML (kept in sync from Git by Flux,
    /// Argo CD or `configSource.git`).
    pub config: ConfigReference,

    /// Optional built-in Git poller that writes `config`'s ConfigMap from a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_source: Option<ConfigSource>,

    /// Metrics scraping.
    #[serde(default)]
    pub telemetry: TelemetrySpec,

    /// Chaos experiments: pods are only selectable by the chaos manifests when enabled.
    #[serde(default)]
    pub chaos: ChaosSpec,

    /// Health gates of a config rollout.
    #[serde(default)]
    pub rollout: RolloutSpec,

    /// The NetworkPolicy in front of the nodes.
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
}

pub fn default_replicas() -> i32 {
    5
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Size of each member's data volume, as a Kubernetes quantity.
    #[serde(default = "default_storage_size")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"))]
    pub size: String,
    /// StorageClass of the data volumes; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
        }
    }
}

fn default_storage_size() -> String {
    "1Gi".to_string()
}

/// Requests and limits keyed by resource name (`cpu`, `memory`), values as quantities.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesSpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigReference {
    /// Name of the ConfigMap, in the cluster's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the config YAML inside the ConfigMap.
    #[serde(default = "default_config_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

pub fn default_config_key() -> String {
    "aegis.yaml".to_string()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    /// Repository URL (https:// or file:// for a local mirror).
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('file://') || self.startsWith('ssh://')").message("url must be https://, ssh:// or file://"))]
    pub url: String,
    #[serde(default = "default_branch")]
    #[schemars(length(min = 1, max = 255))]
    pub branch: String,
    /// Path of the config YAML inside the repository.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !self.contains('..')").message("path must be relative and stay inside the repository"))]
    pub path: String,
    /// Poll interval, e.g. `30s`, `5m`, `1h`.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^[1-9][0-9]*(s|m|h)$"))]
    pub interval: String,
}

fn default_branch() -> String {
    "main".to_string()
}

fn default_interval() -> String {
    "1m".to_string()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    #[serde(default)]
    pub service_monitor: ServiceMonitorSpec,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Create a prometheus-operator ServiceMonitor for the nodes' `/metrics`.
    #[serde(default)]
    pub enabled: bool,
    /// Scrape interval.
    #[serde(default = "default_scrape_interval")]
    #[schemars(regex(pattern = r"^[1-9][0-9]*(s|m)$"))]
    pub interval: String,
    /// Extra labels, e.g. the `release` label a Prometheus selects ServiceMonitors by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Default for ServiceMonitorSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: default_scrape_interval(),
            labels: BTreeMap::new(),
        }
    }
}

fn default_scrape_interval() -> String {
    "15s".to_string()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChaosSpec {
    /// Label the pods `aegis.dev/chaos=enabled`, the selector every chaos manifest uses.
    #[serde(default)]
    pub enabled: bool,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Highest follower lag (log entries) at which a member counts as caught up. A healthy
    /// follower under heavy writes is behind by what is in flight to it, and a follower outside
    /// the fastest quorum by up to one more full append (`raft.max-payload-entries`).
    #[serde(default = "default_max_lag")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub max_lag: i64,
    /// How long a gate may stay failed before the rollout halts and rolls back.
    #[serde(default = "default_gate_timeout")]
    #[schemars(range(min = 0, max = 3600))]
    pub gate_timeout_seconds: i64,
    /// Leader changes beyond the planned transfers that count as an election storm.
    #[serde(default = "default_max_unplanned_leader_changes")]
    #[schemars(range(min = 0, max = 100))]
    pub max_unplanned_leader_changes: i64,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            max_lag: default_max_lag(),
            gate_timeout_seconds: default_gate_timeout(),
            max_unplanned_leader_changes: default_max_unplanned_leader_changes(),
        }
    }
}

fn default_max_lag() -> i64 {
    1_000
}

fn default_gate_timeout() -> i64 {
    120
}

fn default_max_unplanned_leader_changes() -> i64 {
    2
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Namespaces (by label selector) whose pods may reach the client port; the
    /// cluster's own namespace always may.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_namespace_labels: BTreeMap<String, String>,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        Self {
            enabled: true,
            client_namespace_labels: BTreeMap::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// What the operator observed and did, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AegisClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Raft id of the leader, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    /// Hash of the config in force (the one the StatefulSet template carries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Git revision the config in force came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_git_revision: Option<String>,
    /// Hash of the last config every member ran healthily: the rollback target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good_config_hash: Option<String>,
    /// The last config the envelope refused, with the rule ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_config: Option<RejectedConfig>,
    /// The config rollout under way or last finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
    /// True once the initial members formed a group; the bootstrap member list is
    /// never handed to a pod again after that.
    #[serde(default)]
    pub initialized: bool,
    /// The membership change in flight, if any (one at a time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_change: Option<String>,
    #[serde(default)]
    pub ready_replicas: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the last change of `status`.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub id: u64,
    pub pod: String,
    /// `leader`, `follower`, `candidate`, `learner` or `unknown`.
    pub role: String,
    pub voter: bool,
    /// Log entries behind the leader; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedConfig {
    pub hash: String,
    pub rule_ids: Vec<String>,
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// `Rolling`, `RollingBack`, `Complete`, `RolledBack`, `Halted`.
    pub phase: String,
    pub target_hash: String,
    /// The image an image-only rollout rolls to; a halted one is not retried
    /// until `spec.image` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
    /// Term when the rollout started: the baseline of the election-storm gate.
    pub start_term: u64,
    /// Leadership transfers the rollout made itself.
    #[serde(default)]
    pub planned_transfers: u64,
    /// Unix seconds since which a gate has been failing, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_failing_since: Option<i64>,
    #[serde(default)]
    pub message: String,
}

impl RolloutStatus {
    /// Pods are still being moved, forward or back.
    pub fn is_active(&self) -> bool {
        self.phase == phase::ROLLING || self.phase == phase::ROLLING_BACK
    }
}

/// Condition types.
pub mod condition {
    pub const AVAILABLE: &str = "Available";
    pub const PROGRESSING: &str = "Progressing";
    pub const DEGRADED: &str = "Degraded";
    pub const CONFIG_REJECTED: &str = "ConfigRejected";
}

/// Rollout phases.
pub mod phase {
    pub const ROLLING: &str = "Rolling";
    pub const ROLLING_BACK: &str = "RollingBack";
    pub const COMPLETE: &str = "Complete";
    pub const ROLLED_BACK: &str = "RolledBack";
    /// An image-only rollout stopped by a failed gate: the image is the
    /// user's field, so it is not rolled back (see docs/OPERATOR.md).
    pub const HALTED: &str = "Halted";
}

#[cfg(test)]
mod tests {
    use super::RolloutSpec;

    /// A healthy follower under heavy writes is behind by up to two appends in flight
    /// (ADR-0012) and, outside the fastest quorum, one full append not yet sent (ADR-0014).
    /// A default below that makes a rollout during heavy writes wait out its gate on a healthy
    /// cluster.
    #[test]
    fn default_max_lag_admits_a_paced_follower_under_load() {
        let per_append = aegis_config::ClusterConfig::default()
            .raft
            .max_payload_entries;
        assert!(
            RolloutSpec::default().max_lag >= 3 * per_append,
            "maxLag {} < 3 appends of {per_append}",
            RolloutSpec::default().max_lag
        );
    }
}
