//! The reconcile pipeline: read → validate (pure) → plan (pure) → build (pure) → apply
//! (server-side apply, one field manager) → act (one membership or rollout step) →
//! status from what was applied and observed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::admin::{ClusterAdmin, NodeEndpoint, NodeStatus};
use crate::build::{self, BuildInputs, DesiredObjects};
use crate::crd::{
    condition, phase, AegisCluster, AegisClusterStatus, Condition, MemberStatus, RejectedConfig,
    RolloutStatus,
};
use crate::membership::{self, MembershipInputs, MembershipStep, PodView};
use crate::metrics::Metrics;
use crate::names::{self, *};
use crate::rotation::{self, Gates, RotationInputs, RotationStep};
use crate::validate::{self, AcceptedConfig, ConfigVerdict};

/// Annotation on the source ConfigMap naming the Git revision it was synced from.
pub const ANNOTATION_GIT_REVISION: &str = "aegis.dev/git-revision";
/// Requeue of a settled cluster: bounds how stale the leader label and status get.
pub const IDLE_REQUEUE_S: u64 = 15;
/// The Git poller owns only the source ConfigMap's data, under its own manager name.
pub const GIT_FIELD_MANAGER: &str = "aegis-operator-git";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Build(#[from] build::BuildError),
    #[error("Raft admin: {0}")]
    Admin(#[from] crate::admin::AdminError),
    #[error("the AegisCluster has no namespace")]
    NoNamespace,
    #[error("config in force {hash} is gone: its ConfigMap {config_map} is missing or invalid")]
    ConfigInForceMissing { hash: String, config_map: String },
}

/// Shared by every reconcile: the API client, the Raft admin, metrics and the clock.
pub struct Context<A> {
    pub client: Client,
    pub admin: A,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Unix seconds; a function so tests control time.
    pub clock: Box<dyn Fn() -> i64 + Send + Sync>,
    /// Where `configSource.git` mirrors live.
    pub git_cache: std::path::PathBuf,
    failures: Mutex<HashMap<String, u32>>,
    /// Unix seconds of the last Git poll, per cluster.
    git_polls: Mutex<HashMap<String, i64>>,
}

impl<A: ClusterAdmin> Context<A> {
    pub fn new(client: Client, admin: A, metrics: Arc<Metrics>) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Context {
            client,
            admin,
            recorder,
            metrics,
            clock: Box::new(|| jiff::Timestamp::now().as_second()),
            git_cache: std::env::temp_dir().join("aegis-git"),
            failures: Mutex::new(HashMap::new()),
            git_polls: Mutex::new(HashMap::new()),
        }
    }

    async fn event(&self, cluster: &AegisCluster, warning: bool, reason: &str, note: String) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        // An event that cannot be written must not fail the reconcile it describes.
        if let Err(e) = self.recorder.publish(&ev, &cluster.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing event failed");
        }
    }
}

/// Requeue delay after `failures` consecutive errors: 5s doubling, capped at 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << failures.min(6).saturating_sub(1));
    Duration::from_secs(secs.min(300))
}

pub fn error_policy<A: ClusterAdmin>(
    cluster: Arc<AegisCluster>,
    error: &Error,
    ctx: Arc<Context<A>>,
) -> Action {
    let key = format!(
        "{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    );
    let n = {
        let mut f = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    tracing::warn!(cluster = %cluster.name_any(), %error, failures = n, "reconcile failed");
    Action::requeue(backoff(n))
}

/// What was read from the API server and the Raft group.
struct Observed {
    source: Option<ConfigMap>,
    statefulset_replicas: Option<u32>,
    pods: BTreeMap<u32, PodView>,
    nodes: BTreeMap<u64, NodeStatus>,
}

fn pod_view(cluster: &str, pod: &Pod) -> Option<PodView> {
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

fn endpoint(cluster: &str, ns: &str, id: u64) -> NodeEndpoint {
    let ordinal = u32::try_from(id.saturating_sub(1)).unwrap_or(u32::MAX);
    NodeEndpoint {
        id,
        client_addr: names::client_addr(cluster, ns, ordinal),
    }
}

async fn observe<A: ClusterAdmin>(
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

/// The config the template should carry, and what changed about the rollout.
struct ConfigDecision {
    /// Full hash of the config the template points at (None: nothing valid to run).
    template_hash: Option<String>,
    /// The accepted source config, when the template uses it (saves a read).
    accepted: Option<AcceptedConfig>,
    git_revision: Option<String>,
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Pure: decides from the source verdict and the status what config is in force, and
/// starts a rollout when the source carries a new valid config and membership is idle.
fn decide_config(
    verdict: Option<&ConfigVerdict>,
    git_revision: Option<String>,
    status: &mut AegisClusterStatus,
    membership_busy: bool,
    leader_term: u64,
    notes: &mut Vec<(bool, &'static str, String)>,
) -> ConfigDecision {
    let in_force = status.config_hash.clone();
    match verdict {
        None => ConfigDecision {
            template_hash: in_force,
            accepted: None,
            git_revision: None,
        },
        Some(ConfigVerdict::Rejected {
            hash,
            rule_ids,
            message,
        }) => {
            if status.rejected_config.as_ref().map(|r| &r.hash) != Some(hash) {
                notes.push((
                    true,
                    "ConfigRejected",
                    format!(
                        "config {hash} refused by the envelope: {}",
                        rule_ids.join(", ")
                    ),
                ));
            }
            status.rejected_config = Some(RejectedConfig {
                hash: hash.clone(),
                rule_ids: rule_ids.clone(),
                message: message.clone(),
            });
            ConfigDecision {
                template_hash: in_force,
                accepted: None,
                git_revision: None,
            }
        }
        Some(ConfigVerdict::Accepted(cfg)) => {
            status.rejected_config = None;
            let decision = |hash: Option<String>, rev: Option<String>| ConfigDecision {
                accepted: (hash.as_deref() == Some(cfg.hash.as_str())).then(|| cfg.clone()),
                template_hash: hash,
                git_revision: rev,
            };
            let Some(current) = in_force else {
                // A new cluster: the first valid config is the good one.
                status.config_hash = Some(cfg.hash.clone());
                status.last_good_config_hash = Some(cfg.hash.clone());
                status.config_git_revision = git_revision.clone();
                return decision(Some(cfg.hash.clone()), git_revision);
            };
            if current == cfg.hash {
                return decision(Some(current), git_revision);
            }
            let known_bad = status.rollout.as_ref().is_some_and(|r| {
                r.target_hash == cfg.hash
                    && (r.phase == phase::ROLLING_BACK || r.phase == phase::ROLLED_BACK)
            });
            let rolling = status
                .rollout
                .as_ref()
                .is_some_and(|r| r.phase == phase::ROLLING || r.phase == phase::ROLLING_BACK);
            if known_bad || rolling || membership_busy {
                return decision(Some(current), None);
            }
            notes.push((
                false,
                "RolloutStarted",
                format!(
                    "rolling config {} out, replacing {}",
                    short(&cfg.hash),
                    short(&current)
                ),
            ));
            status.rollout = Some(RolloutStatus {
                phase: phase::ROLLING.into(),
                target_hash: cfg.hash.clone(),
                previous_hash: Some(current),
                image: None,
                start_term: leader_term,
                planned_transfers: 0,
                gate_failing_since: None,
                message: String::new(),
            });
            status.config_hash = Some(cfg.hash.clone());
            status.config_git_revision = git_revision.clone();
            decision(Some(cfg.hash.clone()), git_revision)
        }
    }
}

/// The side effect chosen for this pass (at most one Raft or pod change).
enum Act {
    None,
    Membership(MembershipStep),
    DeletePod(String),
    TransferLeader { from: u64, to: u64 },
}

pub async fn reconcile<A: ClusterAdmin>(
    cluster: Arc<AegisCluster>,
    ctx: Arc<Context<A>>,
) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile_duration.start_timer();
    let result = reconcile_inner(&cluster, &ctx).await;
    timer.observe_duration();
    let label = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics
        .reconciliations
        .with_label_values(&[label])
        .inc();
    if result.is_ok() {
        let key = format!(
            "{}/{}",
            cluster.namespace().unwrap_or_default(),
            cluster.name_any()
        );
        ctx.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    } else if let Err(e) = &result {
        ctx.event(&cluster, true, "ReconcileFailed", e.to_string())
            .await;
    }
    result
}

async fn reconcile_inner<A: ClusterAdmin>(
    cluster: &AegisCluster,
    ctx: &Context<A>,
) -> Result<Action, Error> {
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    let name = cluster.name_any();
    let mut status = cluster.status.clone().unwrap_or_default();
    let mut notes: Vec<(bool, &'static str, String)> = Vec::new();
    let now = (ctx.clock)();

    // read (after refreshing the source ConfigMap from Git, when the poller is on)
    let git_interval = sync_git(cluster, &ns, ctx, now, &mut notes).await?;
    let obs = observe(cluster, &ns, ctx).await?;

    // validate (pure)
    let spec_violations = validate::validate_spec(&cluster.spec);
    if !spec_violations.is_empty() {
        let msg = spec_violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        set_condition(
            &mut status,
            condition::DEGRADED,
            true,
            "SpecInvalid",
            &msg,
            cluster,
            now,
        );
        ctx.event(cluster, true, "SpecInvalid", msg).await;
        patch_status(cluster, &ns, ctx, &status).await?;
        return Ok(Action::requeue(Duration::from_secs(300)));
    }
    let source_text = obs
        .source
        .as_ref()
        .and_then(|cm| cm.data.as_ref())
        .and_then(|d| d.get(&cluster.spec.config.key));
    let verdict = source_text.map(|t| validate::validate_config(t));
    let git_revision = obs
        .source
        .as_ref()
        .and_then(|cm| cm.annotations().get(ANNOTATION_GIT_REVISION).cloned());

    // plan (pure): membership first, then config, then rotation
    let desired = u32::try_from(cluster.spec.replicas).unwrap_or(1);
    let max_lag = u64::try_from(cluster.spec.rollout.max_lag).unwrap_or(0);
    let step = membership::plan(&MembershipInputs {
        cluster: &name,
        namespace: &ns,
        desired,
        statefulset_replicas: obs.statefulset_replicas,
        initialized: status.initialized,
        pods: &obs.pods,
        nodes: &obs.nodes,
        max_lag,
    });
    let lead = membership::leader(&obs.nodes).cloned();
    let decision = decide_config(
        verdict.as_ref(),
        git_revision,
        &mut status,
        step.in_progress(),
        lead.as_ref().map_or(0, |l| l.term),
        &mut notes,
    );
    start_rollout_for_outdated_pods(cluster, &obs, &step, lead.as_ref(), &mut status, &mut notes);
    let gates = Gates {
        max_lag,
        gate_timeout_s: cluster.spec.rollout.gate_timeout_seconds,
        max_unplanned_leader_changes: u64::try_from(
            cluster.spec.rollout.max_unplanned_leader_changes,
        )
        .unwrap_or(0),
    };
    let mut act = match &step {
        MembershipStep::Stable => Act::None,
        MembershipStep::MarkInitialized => {
            status.initialized = true;
            notes.push((
                false,
                "Initialized",
                format!(
                    "Raft group of {} formed",
                    obs.statefulset_replicas.unwrap_or(0)
                ),
            ));
            Act::None
        }
        other => Act::Membership(other.clone()),
    };
    // A rollout under way keeps evaluating its gates while membership only waits (a lost
    // leader must be able to halt it).
    let waiting = matches!(step, MembershipStep::Wait(_));
    if (matches!(act, Act::None) || waiting) && status.initialized {
        let rollout_act = plan_rollout(
            cluster,
            &obs,
            lead.as_ref(),
            &gates,
            now,
            &mut status,
            &mut notes,
        );
        if !matches!(rollout_act, Act::None) {
            act = rollout_act;
        }
    }

    // build (pure)
    let Some(template_hash) = status
        .config_hash
        .clone()
        .or(decision.template_hash.clone())
    else {
        let reason = if verdict.is_some() {
            "ConfigRejected"
        } else {
            "ConfigMissing"
        };
        let msg = format!(
            "no valid config in ConfigMap {}/{} key {}",
            ns, cluster.spec.config.name, cluster.spec.config.key
        );
        set_condition(
            &mut status,
            condition::DEGRADED,
            true,
            reason,
            &msg,
            cluster,
            now,
        );
        finish_conditions(cluster, &obs, lead.as_ref(), &step, &mut status, now);
        for (warning, reason, note) in notes {
            ctx.event(cluster, warning, reason, note).await;
        }
        patch_status(cluster, &ns, ctx, &status).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let config = match decision.accepted.filter(|c| c.hash == template_hash) {
        Some(c) => c,
        None => config_in_force(&name, &ns, &template_hash, ctx).await?,
    };
    let _ = decision.git_revision;
    let statefulset_replicas = match &step {
        MembershipStep::Bootstrap { replicas } | MembershipStep::ResizeStatefulSet { replicas } => {
            *replicas
        }
        _ => obs.statefulset_replicas.unwrap_or(desired),
    };
    let inputs = BuildInputs {
        config,
        statefulset_replicas: i32::try_from(statefulset_replicas).unwrap_or(i32::MAX),
        bootstrap_replicas: (!status.initialized)
            .then(|| i32::try_from(obs.statefulset_replicas.unwrap_or(desired)).unwrap_or(1)),
    };
    let desired_objects = build::build(cluster, &inputs)?;

    // apply
    apply_all(&desired_objects, &ns, ctx).await?;
    if cluster.status.as_ref().and_then(|s| s.observed_generation) != cluster.metadata.generation {
        notes.push((
            false,
            "Applied",
            format!(
                "applied objects for generation {}",
                cluster.metadata.generation.unwrap_or(0)
            ),
        ));
    }

    // act
    execute(
        cluster,
        &name,
        &ns,
        ctx,
        act,
        lead.as_ref(),
        &mut status,
        &mut notes,
    )
    .await?;
    label_pods(cluster, &name, &ns, ctx, &obs, lead.as_ref()).await?;

    prune_configs(&name, &ns, ctx, &status).await?;

    // status from what was applied and observed
    status.observed_generation = cluster.metadata.generation;
    finish_conditions(cluster, &obs, lead.as_ref(), &step, &mut status, now);
    for (warning, reason, note) in notes {
        ctx.event(cluster, warning, reason, note).await;
    }
    patch_status(cluster, &ns, ctx, &status).await?;

    let busy = step.in_progress()
        || status
            .rollout
            .as_ref()
            .is_some_and(|r| r.phase == phase::ROLLING || r.phase == phase::ROLLING_BACK);
    // Leadership moves without any Kubernetes event, so the leader label is refreshed
    // by polling.
    let idle = git_interval.map_or(IDLE_REQUEUE_S, |g| g.min(IDLE_REQUEUE_S));
    Ok(Action::requeue(Duration::from_secs(if busy {
        5
    } else {
        idle
    })))
}

/// Polls `spec.configSource.git` when due and writes the file into the source ConfigMap
/// with its revision. A failed poll is an Event, not a failed reconcile: the ConfigMap
/// already there stays in force. Returns the poll interval in seconds.
async fn sync_git<A: ClusterAdmin>(
    cluster: &AegisCluster,
    ns: &str,
    ctx: &Context<A>,
    now: i64,
    notes: &mut Vec<(bool, &'static str, String)>,
) -> Result<Option<u64>, Error> {
    let Some(git) = cluster
        .spec
        .config_source
        .as_ref()
        .and_then(|s| s.git.clone())
    else {
        return Ok(None);
    };
    // Never hand git a URL, branch or path the spec validation would refuse.
    if !validate::validate_spec(&cluster.spec).is_empty() {
        return Ok(None);
    }
    let Some(interval) = validate::parse_interval(&git.interval) else {
        return Ok(None);
    };
    let key = format!("{ns}/{}", cluster.name_any());
    {
        let polls = ctx.git_polls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = polls.get(&key) {
            if now.saturating_sub(*last) < i64::try_from(interval).unwrap_or(i64::MAX) {
                return Ok(Some(interval));
            }
        }
    }
    let cache = ctx.git_cache.clone();
    let (url, branch, path) = (git.url.clone(), git.branch.clone(), git.path.clone());
    let fetched =
        tokio::task::spawn_blocking(move || crate::gitsource::fetch(&cache, &url, &branch, &path))
            .await;
    ctx.git_polls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, now);
    match fetched {
        Ok(Ok(f)) => {
            let cm = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": cluster.spec.config.name,
                    "namespace": ns,
                    "annotations": {
                        ANNOTATION_GIT_REVISION: f.revision,
                        "aegis.dev/git-source": format!("{}#{}:{}", git.url, git.branch, git.path),
                    },
                },
                "data": {cluster.spec.config.key.clone(): f.content},
            });
            let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
            api.patch(
                &cluster.spec.config.name,
                &PatchParams::apply(GIT_FIELD_MANAGER).force(),
                &Patch::Apply(&cm),
            )
            .await?;
        }
        Ok(Err(e)) => notes.push((true, "GitSyncFailed", e.to_string())),
        Err(e) => notes.push((true, "GitSyncFailed", format!("poller task: {e}"))),
    }
    Ok(Some(interval))
}

/// Pure: pods that differ from the template for another reason than a new config (an
/// image change) are rolled by the same machinery, with the config in force as target.
fn start_rollout_for_outdated_pods(
    cluster: &AegisCluster,
    obs: &Observed,
    step: &MembershipStep,
    lead: Option<&NodeStatus>,
    status: &mut AegisClusterStatus,
    notes: &mut Vec<(bool, &'static str, String)>,
) {
    let active = status
        .rollout
        .as_ref()
        .is_some_and(|r| r.phase == phase::ROLLING || r.phase == phase::ROLLING_BACK);
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
fn plan_rollout(
    cluster: &AegisCluster,
    obs: &Observed,
    lead: Option<&NodeStatus>,
    gates: &Gates,
    now: i64,
    status: &mut AegisClusterStatus,
    notes: &mut Vec<(bool, &'static str, String)>,
) -> Act {
    let Some(target) = status.config_hash.clone() else {
        return Act::None;
    };
    let Some(rollout) = status.rollout.as_mut() else {
        return Act::None;
    };
    if rollout.phase != phase::ROLLING && rollout.phase != phase::ROLLING_BACK {
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

async fn config_in_force<A: ClusterAdmin>(
    name: &str,
    ns: &str,
    hash: &str,
    ctx: &Context<A>,
) -> Result<AcceptedConfig, Error> {
    let cm_name = names::config_map(name, short(hash));
    let missing = || Error::ConfigInForceMissing {
        hash: hash.to_string(),
        config_map: cm_name.clone(),
    };
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let cm = cms.get_opt(&cm_name).await?.ok_or_else(missing)?;
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_FILE))
        .ok_or_else(missing)?;
    match validate::validate_config(text) {
        ConfigVerdict::Accepted(c) if c.hash == hash => Ok(c),
        _ => Err(missing()),
    }
}

async fn apply_all<A: ClusterAdmin>(
    objs: &DesiredObjects,
    ns: &str,
    ctx: &Context<A>,
) -> Result<(), Error> {
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let c = &ctx.client;
    let cm: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    cm.patch(
        &objs.config_map.name_any(),
        &pp,
        &Patch::Apply(&objs.config_map),
    )
    .await?;
    let svc: Api<Service> = Api::namespaced(c.clone(), ns);
    svc.patch(
        &objs.headless_service.name_any(),
        &pp,
        &Patch::Apply(&objs.headless_service),
    )
    .await?;
    svc.patch(
        &objs.client_service.name_any(),
        &pp,
        &Patch::Apply(&objs.client_service),
    )
    .await?;
    let sts: Api<StatefulSet> = Api::namespaced(c.clone(), ns);
    sts.patch(
        &objs.statefulset.name_any(),
        &pp,
        &Patch::Apply(&objs.statefulset),
    )
    .await?;
    let pdb: Api<PodDisruptionBudget> = Api::namespaced(c.clone(), ns);
    pdb.patch(&objs.pdb.name_any(), &pp, &Patch::Apply(&objs.pdb))
        .await?;
    if let Some(np) = &objs.network_policy {
        let api: Api<NetworkPolicy> = Api::namespaced(c.clone(), ns);
        api.patch(&np.name_any(), &pp, &Patch::Apply(np)).await?;
    }
    if let Some(sm) = &objs.service_monitor {
        let api: Api<DynamicObject> =
            Api::namespaced_with(c.clone(), ns, &build::service_monitor_resource());
        api.patch(&sm.name_any(), &pp, &Patch::Apply(sm)).await?;
    }
    ctx.metrics.applies.inc();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn execute<A: ClusterAdmin>(
    cluster: &AegisCluster,
    name: &str,
    ns: &str,
    ctx: &Context<A>,
    act: Act,
    lead: Option<&NodeStatus>,
    status: &mut AegisClusterStatus,
    notes: &mut Vec<(bool, &'static str, String)>,
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
    let _ = cluster;
    Ok(())
}

/// Deletes rendered config ConfigMaps that are neither in force, the last good one, nor
/// part of the rollout record, once no rollout is under way.
async fn prune_configs<A: ClusterAdmin>(
    name: &str,
    ns: &str,
    ctx: &Context<A>,
    status: &AegisClusterStatus,
) -> Result<(), Error> {
    let rolling = status
        .rollout
        .as_ref()
        .is_some_and(|r| r.phase == phase::ROLLING || r.phase == phase::ROLLING_BACK);
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
async fn label_pods<A: ClusterAdmin>(
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

fn set_condition(
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

fn finish_conditions(
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
    let rollout_active = status
        .rollout
        .as_ref()
        .is_some_and(|r| r.phase == phase::ROLLING || r.phase == phase::ROLLING_BACK);
    let (progressing, reason, msg) = if rollout_active {
        let r = status
            .rollout
            .as_ref()
            .map(|r| (r.phase.clone(), r.message.clone()));
        let (p, m) = r.unwrap_or_default();
        (
            true,
            if p == phase::ROLLING {
                "RollingConfig"
            } else {
                "RollingBack"
            },
            m,
        )
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
    match status.rejected_config.clone() {
        Some(r) => set_condition(
            status,
            condition::CONFIG_REJECTED,
            true,
            "EnvelopeViolation",
            &format!("{}: {}", r.hash, r.rule_ids.join(", ")),
            cluster,
            now,
        ),
        None => set_condition(
            status,
            condition::CONFIG_REJECTED,
            false,
            "Accepted",
            "",
            cluster,
            now,
        ),
    }
}

async fn patch_status<A: ClusterAdmin>(
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

#[cfg(test)]
mod tests;
