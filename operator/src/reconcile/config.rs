//! Which config is in force and where it comes from: the decision from the source
//! verdict, the Git poller that fills the source ConfigMap, and reading a rendered
//! config back.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use super::{Context, Error, Notes, ANNOTATION_GIT_REVISION, GIT_FIELD_MANAGER};
use crate::admin::ClusterAdmin;
use crate::crd::{phase, AegisCluster, AegisClusterStatus, RejectedConfig, RolloutStatus};
use crate::names::{self, *};
use crate::validate::{self, AcceptedConfig, ConfigVerdict};

/// The config the template should carry, and what changed about the rollout.
pub(super) struct ConfigDecision {
    /// Full hash of the config the template points at (None: nothing valid to run).
    pub(super) template_hash: Option<String>,
    /// The accepted source config, when the template uses it (saves a read).
    pub(super) accepted: Option<AcceptedConfig>,
}

pub(super) fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Pure: decides from the source verdict and the status what config is in force, and
/// starts a rollout when the source carries a new valid config and membership is idle.
pub(super) fn decide_config(
    verdict: Option<&ConfigVerdict>,
    git_revision: Option<String>,
    status: &mut AegisClusterStatus,
    membership_busy: bool,
    leader_term: u64,
    notes: &mut Notes,
) -> ConfigDecision {
    let in_force = status.config_hash.clone();
    match verdict {
        None => ConfigDecision {
            template_hash: in_force,
            accepted: None,
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
            }
        }
        Some(ConfigVerdict::Accepted(cfg)) => {
            status.rejected_config = None;
            let decision = |hash: Option<String>| ConfigDecision {
                accepted: (hash.as_deref() == Some(cfg.hash.as_str())).then(|| cfg.clone()),
                template_hash: hash,
            };
            let Some(current) = in_force else {
                // A new cluster: the first valid config is the good one.
                status.config_hash = Some(cfg.hash.clone());
                status.last_good_config_hash = Some(cfg.hash.clone());
                status.config_git_revision = git_revision;
                return decision(Some(cfg.hash.clone()));
            };
            if current == cfg.hash {
                return decision(Some(current));
            }
            let known_bad = status.rollout.as_ref().is_some_and(|r| {
                r.target_hash == cfg.hash
                    && (r.phase == phase::ROLLING_BACK || r.phase == phase::ROLLED_BACK)
            });
            let rolling = status
                .rollout
                .as_ref()
                .is_some_and(RolloutStatus::is_active);
            if known_bad || rolling || membership_busy {
                return decision(Some(current));
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
            status.config_git_revision = git_revision;
            decision(Some(cfg.hash.clone()))
        }
    }
}

/// Polls `spec.configSource.git` when due and writes the file into the source ConfigMap
/// with its revision. A failed poll is an Event, not a failed reconcile: the ConfigMap
/// already there stays in force. Returns the poll interval in seconds.
pub(super) async fn sync_git<A: ClusterAdmin>(
    cluster: &AegisCluster,
    ns: &str,
    ctx: &Context<A>,
    now: i64,
    notes: &mut Notes,
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

pub(super) async fn config_in_force<A: ClusterAdmin>(
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
