//! The reconcile pipeline: read → validate (pure) → plan (pure) → build (pure) → apply
//! (server-side apply, one field manager) → act (one membership or rollout step) →
//! status from what was applied and observed.
//!
//! This module drives the pipeline; its steps live in `observe` (read), `config` (which
//! config is in force, Git sync), `rollout` (rollout planning), `apply` (apply and act)
//! and `status` (conditions and the status patch).

mod apply;
mod config;
mod observe;
mod rollout;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};

use self::apply::{apply_all, execute, label_pods, prune_configs};
use self::config::{config_in_force, decide_config, sync_git};
use self::observe::observe;
use self::rollout::{plan_rollout, start_rollout_for_outdated_pods};
use self::status::{finish_conditions, patch_status, set_condition};
use crate::admin::ClusterAdmin;
use crate::build::{self, BuildInputs};
use crate::crd::{condition, AegisCluster, RolloutStatus};
use crate::membership::{self, MembershipInputs, MembershipStep};
use crate::metrics::Metrics;
use crate::names::*;
use crate::rotation::Gates;
use crate::validate;

/// Annotation on the source ConfigMap naming the Git revision it was synced from.
pub const ANNOTATION_GIT_REVISION: &str = "aegis.dev/git-revision";
/// Requeue of a settled cluster: bounds how stale the leader label and status get.
pub const IDLE_REQUEUE_S: u64 = 15;
/// The Git poller owns only the source ConfigMap's data, under its own manager name.
pub const GIT_FIELD_MANAGER: &str = "aegis-operator-git";

/// Events a reconcile publishes once its decisions are made: (warning, reason, note).
type Notes = Vec<(bool, &'static str, String)>;

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
    let mut notes = Notes::new();
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
    execute(&name, &ns, ctx, act, lead.as_ref(), &mut status, &mut notes).await?;
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
            .is_some_and(RolloutStatus::is_active);
    // Leadership moves without any Kubernetes event, so the leader label is refreshed
    // by polling.
    let idle = git_interval.map_or(IDLE_REQUEUE_S, |g| g.min(IDLE_REQUEUE_S));
    Ok(Action::requeue(Duration::from_secs(if busy {
        5
    } else {
        idle
    })))
}

#[cfg(test)]
mod tests;
