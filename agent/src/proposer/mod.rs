//! The proposer: anomaly → YAML patch → deep-merged onto the deployed config → safety envelope
//! → one idempotent pull request per evidence. A blocked proposal never reaches GitHub; it is
//! appended to a JSONL audit log with its rule ids.

pub mod merge;
pub mod patch;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::github::{GitHub, GitHubError, PullRef};
use aegis_config::{ClusterConfig, ConfigError};
use serde::Serialize;
use serde_norway::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub kind: AnomalyKind,
    pub branch: String,
    pub title: String,
    pub body: String,
    pub patch_yaml: String,
    pub before_yaml: String,
    pub after_yaml: String,
    pub diff: String,
    pub evidence_sha1: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViolationRecord {
    pub rule: String,
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocked {
    pub kind: AnomalyKind,
    pub branch: String,
    pub evidence_sha1: String,
    pub patch_yaml: String,
    pub rule_ids: Vec<String>,
    pub violations: Vec<ViolationRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    NoAction { reason: String },
    Blocked(Blocked),
    Ready(Proposal),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    NoAction { reason: String },
    Blocked(Blocked),
    DryRun(Proposal),
    Opened { pull: PullRef, branch: String },
    Reused { pull: PullRef, branch: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("the deployed config {path} does not exist on branch {branch}")]
    NoDeployedConfig { path: String, branch: String },
    #[error("cannot append to the audit log {path}: {message}")]
    Audit { path: String, message: String },
}

#[derive(Debug, Clone)]
pub struct ProposerSettings {
    /// Path of the cluster config YAML in the config repository.
    pub config_path: String,
    pub base_branch: String,
    pub audit_log: PathBuf,
}

pub fn branch_name(kind: AnomalyKind, evidence_sha1: &str) -> String {
    format!("aegis-agent/{}/{}", kind.as_str(), evidence_sha1)
}

fn blocked(a: &Anomaly, patch_yaml: String, err: &ConfigError) -> Blocked {
    let sha = a.evidence_sha1();
    Blocked {
        kind: a.kind,
        branch: branch_name(a.kind, &sha),
        evidence_sha1: sha,
        patch_yaml,
        rule_ids: err.rule_ids().into_iter().map(str::to_string).collect(),
        violations: err
            .violations()
            .iter()
            .map(|v| ViolationRecord {
                rule: v.rule.to_string(),
                path: v.path.clone(),
                message: v.message.clone(),
            })
            .collect(),
    }
}

/// The built-in patch for `anomaly`, planned against the deployed config text.
pub fn plan(anomaly: &Anomaly, deployed_yaml: &str) -> Plan {
    let deployed = match ClusterConfig::from_yaml(deployed_yaml) {
        Ok(c) => c,
        Err(e) => return Plan::Blocked(blocked(anomaly, String::new(), &e)),
    };
    let Some(p) = patch::for_anomaly(anomaly, &deployed) else {
        return Plan::NoAction {
            reason: format!("{} calls for no config change", anomaly.kind),
        };
    };
    plan_with_patch(anomaly, deployed_yaml, &p.value, &p.rationale)
}

/// [`plan_with_patch`] for a patch given as text (from a file or a model); text that is not one
/// YAML document is blocked under `schema.yaml`, like any unreadable config.
pub fn plan_with_patch_text(
    anomaly: &Anomaly,
    deployed_yaml: &str,
    patch_text: &str,
    rationale: &[String],
) -> Plan {
    match serde_norway::from_str::<Value>(patch_text) {
        Ok(v) => plan_with_patch(anomaly, deployed_yaml, &v, rationale),
        Err(e) => {
            let err = ConfigError::Rejected(vec![aegis_config::Violation::new(
                aegis_config::rule_ids::SCHEMA_YAML,
                "<patch>",
                format!("the patch is not one valid YAML document: {e}"),
            )]);
            let mut preview = patch_text.to_string();
            preview.truncate(200);
            Plan::Blocked(blocked(anomaly, preview, &err))
        }
    }
}

/// Merges any patch onto the deployed text and runs the whole result through the envelope.
/// Adversarial patches (red-team tests) come in here directly.
pub fn plan_with_patch(
    anomaly: &Anomaly,
    deployed_yaml: &str,
    patch_value: &Value,
    rationale: &[String],
) -> Plan {
    let patch_yaml = serde_norway::to_string(patch_value).unwrap_or_default();
    let base: Value = match serde_norway::from_str(deployed_yaml) {
        Ok(v) => v,
        Err(_) => match ClusterConfig::from_yaml(deployed_yaml) {
            Err(e) => return Plan::Blocked(blocked(anomaly, patch_yaml, &e)),
            Ok(_) => Value::Mapping(Default::default()),
        },
    };
    // An empty deployed document means "all defaults".
    let base = if base.is_null() {
        Value::Mapping(Default::default())
    } else {
        base
    };
    let before = match aegis_config::validate_value(&base) {
        Ok(c) => c,
        Err(e) => return Plan::Blocked(blocked(anomaly, patch_yaml, &e)),
    };
    let merged = merge::deep_merge(&base, patch_value);
    let after = match aegis_config::validate_value(&merged) {
        Ok(c) => c,
        Err(e) => return Plan::Blocked(blocked(anomaly, patch_yaml, &e)),
    };
    if after == before {
        return Plan::NoAction {
            reason: "the patch changes nothing in the deployed config".into(),
        };
    }
    let before_yaml = before.to_yaml();
    let after_yaml = after.to_yaml();
    let diff = merge::line_diff(&before_yaml, &after_yaml);
    let sha = anomaly.evidence_sha1();
    let branch = branch_name(anomaly.kind, &sha);
    let title = format!(
        "aegis-agent: {} ({}) — config change {}",
        anomaly.kind,
        anomaly.severity,
        &sha[..8]
    );
    let body = pr_body(anomaly, &patch_yaml, rationale, &diff, &before, &sha);
    Plan::Ready(Proposal {
        kind: anomaly.kind,
        branch,
        title,
        body,
        patch_yaml,
        before_yaml,
        after_yaml,
        diff,
        evidence_sha1: sha,
    })
}

fn pr_body(
    a: &Anomaly,
    patch_yaml: &str,
    rationale: &[String],
    diff: &str,
    before: &ClusterConfig,
    sha: &str,
) -> String {
    let evidence = serde_json::to_string_pretty(&a.evidence).unwrap_or_default();
    let mut why = String::new();
    for r in rationale {
        why.push_str("- ");
        why.push_str(r);
        why.push('\n');
    }
    format!(
        "Proposed by the AEGIS operations agent. It does not merge anything itself: a human \
reviews this change, and the operator rolls it out one pod at a time with health gates.\n\n\
## Anomaly\n\n`{kind}`, severity `{sev}`, confidence {conf}, suggested action `{action}`.\n\n\
## Evidence\n\n```json\n{evidence}\n```\n\nEvidence sha1: `{sha}` (the branch name; re-running on \
the same evidence reuses this pull request).\n\n## Rationale\n\n{why}\n## Patch\n\n```yaml\n{patch}```\n\n\
## Before / after\n\n```diff\n{diff}```\n\nThe merged config passed the safety envelope \
(`aegis-config`) with no violation.\n\n## Rollback\n\nRevert the merge commit of this pull request \
(`git revert -m 1 <merge-commit>`); the operator rotates the previous config back in the same \
way. Config hash before this change: `{hash}`.\n",
        kind = a.kind,
        sev = a.severity,
        conf = a.confidence,
        action = serde_json::to_value(a.suggested_action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        patch = patch_yaml,
        hash = before.hash(),
    )
}

/// Appends one JSON line for a blocked proposal.
pub fn audit(path: &Path, at_ms: i64, b: &Blocked) -> Result<(), ProposeError> {
    let err = |e: std::io::Error| ProposeError::Audit {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut line = serde_json::to_value(b).unwrap_or_default();
    line["at_ms"] = serde_json::json!(at_ms);
    line["decision"] = serde_json::json!("blocked");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    writeln!(f, "{line}").map_err(err)?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Plans and, unless blocked or `dry_run`, opens (or reuses) the pull request.
///
/// `deployed` is the deployed config text when the caller has it; otherwise it is read from
/// the repository. Order of writes: branch, commit, pull request — a failure part-way leaves at
/// most a branch, which the next run reuses; never a pull request without its commit.
pub async fn propose(
    gh: Option<&GitHub>,
    settings: &ProposerSettings,
    anomaly: &Anomaly,
    deployed: Option<&str>,
    dry_run: bool,
) -> Result<Outcome, ProposeError> {
    let fetched;
    let deployed_text = match deployed {
        Some(t) => t,
        None => {
            let Some(gh) = gh else {
                return Err(ProposeError::NoDeployedConfig {
                    path: settings.config_path.clone(),
                    branch: "(no GitHub client and no --deployed file)".into(),
                });
            };
            fetched = gh
                .get_file(&settings.config_path, &settings.base_branch)
                .await?
                .ok_or_else(|| ProposeError::NoDeployedConfig {
                    path: settings.config_path.clone(),
                    branch: settings.base_branch.clone(),
                })?;
            fetched.text.as_str()
        }
    };
    execute(gh, settings, plan(anomaly, deployed_text), dry_run).await
}

/// Acts on a plan: audit a blocked one (no GitHub request at all), print a dry run, or open
/// (or reuse) the pull request.
pub async fn execute(
    gh: Option<&GitHub>,
    settings: &ProposerSettings,
    plan: Plan,
    dry_run: bool,
) -> Result<Outcome, ProposeError> {
    let proposal = match plan {
        Plan::NoAction { reason } => return Ok(Outcome::NoAction { reason }),
        Plan::Blocked(b) => {
            tracing::warn!(kind = %b.kind, rules = ?b.rule_ids, "proposal blocked by the safety envelope");
            audit(&settings.audit_log, now_ms(), &b)?;
            return Ok(Outcome::Blocked(b));
        }
        Plan::Ready(p) => p,
    };
    match gh {
        Some(gh) if !dry_run => open_pull(gh, settings, &proposal).await,
        _ => Ok(Outcome::DryRun(proposal)),
    }
}

async fn open_pull(
    gh: &GitHub,
    settings: &ProposerSettings,
    p: &Proposal,
) -> Result<Outcome, ProposeError> {
    if let Some(pull) = gh.find_open_pull(&p.branch).await? {
        return Ok(Outcome::Reused {
            pull,
            branch: p.branch.clone(),
        });
    }
    let base_sha = gh.branch_sha(&settings.base_branch).await?.ok_or_else(|| {
        ProposeError::NoDeployedConfig {
            path: settings.config_path.clone(),
            branch: settings.base_branch.clone(),
        }
    })?;
    gh.create_branch(&p.branch, &base_sha).await?;
    // The branch may be left from an interrupted run: commit only if it lacks the change.
    let on_branch = gh.get_file(&settings.config_path, &p.branch).await?;
    let already = on_branch
        .as_ref()
        .and_then(|f| ClusterConfig::from_yaml(&f.text).ok())
        .is_some_and(|c| c.to_yaml() == p.after_yaml);
    if !already {
        gh.put_file(
            &settings.config_path,
            &p.branch,
            &p.after_yaml,
            on_branch.as_ref().map(|f| f.sha.as_str()),
            &p.title,
        )
        .await?;
    }
    match gh
        .create_pull(&p.title, &p.branch, &settings.base_branch, &p.body)
        .await
    {
        Ok(pull) => Ok(Outcome::Opened {
            pull,
            branch: p.branch.clone(),
        }),
        // Lost a race with another run that opened it meanwhile.
        Err(e) if e.status() == Some(422) => match gh.find_open_pull(&p.branch).await? {
            Some(pull) => Ok(Outcome::Reused {
                pull,
                branch: p.branch.clone(),
            }),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}
