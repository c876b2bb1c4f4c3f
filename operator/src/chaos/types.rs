//! Chaos Mesh `chaos-mesh.org/v1alpha1` kinds, restricted to the fields the scenarios use.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which pods an experiment hits: namespaces and label selectors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSelectorSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label_selectors: BTreeMap<String, String>,
}

/// `one`, `all`, `fixed`, `fixed-percent`, `random-max-percent`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SelectorMode {
    #[serde(rename = "one")]
    One,
    #[serde(rename = "all")]
    All,
    #[serde(rename = "fixed")]
    Fixed,
    #[serde(rename = "fixed-percent")]
    FixedPercent,
    #[serde(rename = "random-max-percent")]
    RandomMaxPercent,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    pub mode: SelectorMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub selector: PodSelectorSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DelaySpec {
    pub latency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "chaos-mesh.org",
    version = "v1alpha1",
    kind = "NetworkChaos",
    plural = "networkchaos",
    namespaced
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkChaosSpec {
    /// `partition`, `delay`, `loss`, ...
    pub action: String,
    pub mode: SelectorMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub selector: PodSelectorSpec,
    /// `to`, `from` or `both`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelaySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "chaos-mesh.org",
    version = "v1alpha1",
    kind = "IOChaos",
    plural = "iochaos",
    namespaced
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IOChaosSpec {
    /// `latency`, `fault`, `attrOverride`.
    pub action: String,
    pub mode: SelectorMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub selector: PodSelectorSpec,
    /// Mount point of the volume to inject into (the node's data volume).
    pub volume_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "chaos-mesh.org",
    version = "v1alpha1",
    kind = "TimeChaos",
    plural = "timechaos",
    namespaced
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeChaosSpec {
    pub mode: SelectorMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub selector: PodSelectorSpec,
    /// e.g. `-30s`, `+2m`.
    pub time_offset: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clock_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "chaos-mesh.org",
    version = "v1alpha1",
    kind = "PodChaos",
    plural = "podchaos",
    namespaced
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodChaosSpec {
    /// `pod-kill`, `pod-failure`, `container-kill`.
    pub action: String,
    pub mode: SelectorMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub selector: PodSelectorSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "chaos-mesh.org",
    version = "v1alpha1",
    kind = "Schedule",
    plural = "schedules",
    namespaced
)]
// No deny_unknown_fields: serde cannot combine it with the flattened embedded chaos.
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// Cron or `@every 90s`.
    pub schedule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_limit: Option<i32>,
    /// `Forbid`, `Allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<String>,
    /// The kind scheduled: `NetworkChaos`, `PodChaos`, ...
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(flatten)]
    pub chaos: EmbeddedChaos,
}

/// Exactly one of these is set, matching the enclosing `type`/`templateType`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedChaos {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_chaos: Option<NetworkChaosSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_chaos: Option<IOChaosSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_chaos: Option<TimeChaosSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_chaos: Option<PodChaosSpec>,
}

impl EmbeddedChaos {
    /// The kinds set, so a test can check exactly one matches the declared type.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.network_chaos.is_some() {
            k.push("NetworkChaos");
        }
        if self.io_chaos.is_some() {
            k.push("IOChaos");
        }
        if self.time_chaos.is_some() {
            k.push("TimeChaos");
        }
        if self.pod_chaos.is_some() {
            k.push("PodChaos");
        }
        k
    }

    pub fn selectors(&self) -> Vec<&PodSelectorSpec> {
        let mut s = Vec::new();
        if let Some(c) = &self.network_chaos {
            s.push(&c.selector);
            if let Some(t) = &c.target {
                s.push(&t.selector);
            }
        }
        if let Some(c) = &self.io_chaos {
            s.push(&c.selector);
        }
        if let Some(c) = &self.time_chaos {
            s.push(&c.selector);
        }
        if let Some(c) = &self.pod_chaos {
            s.push(&c.selector);
        }
        s
    }

    pub fn selectors_mut(&mut self) -> Vec<&mut PodSelectorSpec> {
        let mut s = Vec::new();
        if let Some(c) = &mut self.network_chaos {
            s.push(&mut c.selector);
            if let Some(t) = &mut c.target {
                s.push(&mut t.selector);
            }
        }
        if let Some(c) = &mut self.io_chaos {
            s.push(&mut c.selector);
        }
        if let Some(c) = &mut self.time_chaos {
            s.push(&mut c.selector);
        }
        if let Some(c) = &mut self.pod_chaos {
            s.push(&mut c.selector);
        }
        s
    }
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "chaos-mesh.org",
    version = "v1alpha1",
    kind = "Workflow",
    plural = "workflows",
    namespaced
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowSpec {
    pub entry: String,
    pub templates: Vec<WorkflowTemplate>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTemplate {
    pub name: String,
    /// `Serial`, `Parallel`, `Suspend` or a chaos kind.
    pub template_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    #[serde(flatten)]
    pub chaos: EmbeddedChaos,
}
