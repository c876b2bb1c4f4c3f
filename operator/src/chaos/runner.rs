//! Applies a scenario's manifests through typed APIs, holds, removes them, and appends
//! `{at, phase, scenario}` JSON lines to the events log.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::types::*;
use super::Scenario;

const FIELD_MANAGER: &str = "aegis-chaos";

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} document {index}: {message}")]
    Parse {
        path: String,
        index: usize,
        message: String,
    },
    #[error("writing the events log {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// One typed Chaos Mesh object from a manifest.
#[derive(Debug, Clone)]
// A manifest holds a handful of these; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum ChaosObject {
    Network(NetworkChaos),
    Io(IOChaos),
    Time(TimeChaos),
    Pod(PodChaos),
    Schedule(Schedule),
    Workflow(Workflow),
}

impl ChaosObject {
    pub fn name(&self) -> String {
        match self {
            ChaosObject::Network(o) => o.name_any(),
            ChaosObject::Io(o) => o.name_any(),
            ChaosObject::Time(o) => o.name_any(),
            ChaosObject::Pod(o) => o.name_any(),
            ChaosObject::Schedule(o) => o.name_any(),
            ChaosObject::Workflow(o) => o.name_any(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ChaosObject::Network(_) => "NetworkChaos",
            ChaosObject::Io(_) => "IOChaos",
            ChaosObject::Time(_) => "TimeChaos",
            ChaosObject::Pod(_) => "PodChaos",
            ChaosObject::Schedule(_) => "Schedule",
            ChaosObject::Workflow(_) => "Workflow",
        }
    }

    /// Every pod selector in the object (targets included).
    pub fn selectors(&self) -> Vec<&PodSelectorSpec> {
        match self {
            ChaosObject::Network(o) => {
                let mut s = vec![&o.spec.selector];
                if let Some(t) = &o.spec.target {
                    s.push(&t.selector);
                }
                s
            }
            ChaosObject::Io(o) => vec![&o.spec.selector],
            ChaosObject::Time(o) => vec![&o.spec.selector],
            ChaosObject::Pod(o) => vec![&o.spec.selector],
            ChaosObject::Schedule(o) => o.spec.chaos.selectors(),
            ChaosObject::Workflow(o) => o
                .spec
                .templates
                .iter()
                .flat_map(|t| t.chaos.selectors())
                .collect(),
        }
    }

    /// Moves the object and every selector to `namespace`, where the cluster runs.
    pub fn retarget(&mut self, namespace: &str) {
        let ns = vec![namespace.to_string()];
        let set = |sels: Vec<&mut PodSelectorSpec>| {
            for s in sels {
                s.namespaces = ns.clone();
            }
        };
        match self {
            ChaosObject::Network(o) => {
                o.metadata.namespace = Some(namespace.into());
                o.spec.selector.namespaces = ns.clone();
                if let Some(t) = &mut o.spec.target {
                    t.selector.namespaces = ns.clone();
                }
            }
            ChaosObject::Io(o) => {
                o.metadata.namespace = Some(namespace.into());
                o.spec.selector.namespaces = ns.clone();
            }
            ChaosObject::Time(o) => {
                o.metadata.namespace = Some(namespace.into());
                o.spec.selector.namespaces = ns.clone();
            }
            ChaosObject::Pod(o) => {
                o.metadata.namespace = Some(namespace.into());
                o.spec.selector.namespaces = ns.clone();
            }
            ChaosObject::Schedule(o) => {
                o.metadata.namespace = Some(namespace.into());
                set(o.spec.chaos.selectors_mut());
            }
            ChaosObject::Workflow(o) => {
                o.metadata.namespace = Some(namespace.into());
                for t in &mut o.spec.templates {
                    set(t.chaos.selectors_mut());
                }
            }
        }
    }
}

fn typed<T: DeserializeOwned>(doc: serde_norway::Value) -> Result<T, String> {
    serde_norway::from_value(doc).map_err(|e| e.to_string())
}

/// Parses a multi-document manifest into typed objects; any unknown kind, missing
/// name or unknown field is an error.
pub fn parse_manifest(path: &str, text: &str) -> Result<Vec<ChaosObject>, ChaosError> {
    let mut out = Vec::new();
    for (index, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let err = |message: String| ChaosError::Parse {
            path: path.to_string(),
            index,
            message,
        };
        let doc = serde_norway::Value::deserialize(de).map_err(|e| err(e.to_string()))?;
        if doc.is_null() {
            continue;
        }
        let api_version = doc.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
        if api_version != "chaos-mesh.org/v1alpha1" {
            return Err(err(format!(
                "apiVersion {api_version:?} is not chaos-mesh.org/v1alpha1"
            )));
        }
        let kind = doc
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let obj = match kind.as_str() {
            "NetworkChaos" => ChaosObject::Network(typed(doc).map_err(err)?),
            "IOChaos" => ChaosObject::Io(typed(doc).map_err(err)?),
            "TimeChaos" => ChaosObject::Time(typed(doc).map_err(err)?),
            "PodChaos" => ChaosObject::Pod(typed(doc).map_err(err)?),
            "Schedule" => ChaosObject::Schedule(typed(doc).map_err(err)?),
            "Workflow" => ChaosObject::Workflow(typed(doc).map_err(err)?),
            other => return Err(err(format!("unsupported kind {other:?}"))),
        };
        if obj.name().is_empty() {
            return Err(err("metadata.name is required".into()));
        }
        out.push(obj);
    }
    if out.is_empty() {
        return Err(ChaosError::Parse {
            path: path.to_string(),
            index: 0,
            message: "no chaos object in the manifest".into(),
        });
    }
    Ok(out)
}

use serde::Deserialize as _;

pub fn load(dir: &Path, scenario: Scenario) -> Result<Vec<ChaosObject>, ChaosError> {
    let path = dir.join(scenario.file_name());
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ChaosError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_manifest(&shown, &text)
}

/// Appends one `{at, phase, scenario}` line (RFC 3339 UTC `at`).
pub fn log_event(log: &Path, phase: &str, scenario: Scenario) -> Result<(), ChaosError> {
    let err = |source| ChaosError::Log {
        path: log.display().to_string(),
        source,
    };
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let line = serde_json::json!({
        "at": jiff::Timestamp::now().to_string(),
        "phase": phase,
        "scenario": scenario.name(),
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(err)?;
    writeln!(f, "{line}").map_err(err)
}

async fn apply_one<K>(client: &Client, ns: &str, obj: &K) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.patch(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await?;
    Ok(())
}

async fn delete_one<K>(client: &Client, ns: &str, name: &str) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn apply(client: &Client, ns: &str, o: &ChaosObject) -> Result<(), kube::Error> {
    match o {
        ChaosObject::Network(x) => apply_one(client, ns, x).await,
        ChaosObject::Io(x) => apply_one(client, ns, x).await,
        ChaosObject::Time(x) => apply_one(client, ns, x).await,
        ChaosObject::Pod(x) => apply_one(client, ns, x).await,
        ChaosObject::Schedule(x) => apply_one(client, ns, x).await,
        ChaosObject::Workflow(x) => apply_one(client, ns, x).await,
    }
}

async fn delete(client: &Client, ns: &str, o: &ChaosObject) -> Result<(), kube::Error> {
    let n = o.name();
    match o {
        ChaosObject::Network(_) => delete_one::<NetworkChaos>(client, ns, &n).await,
        ChaosObject::Io(_) => delete_one::<IOChaos>(client, ns, &n).await,
        ChaosObject::Time(_) => delete_one::<TimeChaos>(client, ns, &n).await,
        ChaosObject::Pod(_) => delete_one::<PodChaos>(client, ns, &n).await,
        ChaosObject::Schedule(_) => delete_one::<Schedule>(client, ns, &n).await,
        ChaosObject::Workflow(_) => delete_one::<Workflow>(client, ns, &n).await,
    }
}

pub async fn run(
    client: Client,
    namespace: &str,
    dir: &Path,
    events_log: &Path,
    scenario: Scenario,
    cleanup: bool,
) -> Result<(), ChaosError> {
    run_with_hold(
        client,
        namespace,
        dir,
        events_log,
        scenario,
        scenario.hold(),
        cleanup,
    )
    .await
}

/// [`run`] with an explicit hold (tests use zero).
pub async fn run_with_hold(
    client: Client,
    namespace: &str,
    dir: &Path,
    events_log: &Path,
    scenario: Scenario,
    hold: Duration,
    cleanup: bool,
) -> Result<(), ChaosError> {
    let mut objects = load(dir, scenario)?;
    for o in &mut objects {
        o.retarget(namespace);
    }
    log_event(events_log, "start", scenario)?;
    let mut result = Ok(());
    for o in &objects {
        tracing::info!(kind = o.kind(), name = %o.name(), "applying chaos");
        if let Err(e) = apply(&client, namespace, o).await {
            result = Err(ChaosError::from(e));
            break;
        }
    }
    if result.is_ok() {
        tokio::time::sleep(hold).await;
    }
    if cleanup {
        for o in objects.iter().rev() {
            if let Err(e) = delete(&client, namespace, o).await {
                tracing::warn!(kind = o.kind(), name = %o.name(), error = %e, "removing chaos failed");
                if result.is_ok() {
                    result = Err(e.into());
                }
            }
        }
    }
    // The end line is written even after a failure, so every start has its end.
    log_event(events_log, "end", scenario)?;
    result
}
