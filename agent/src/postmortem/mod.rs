//! The postmortem drafter: four read-only tools over past telemetry, a deterministic Markdown
//! template (optional LLM narration on top), one GitHub issue per incident title, and a record
//! in the knowledge base so later diagnoses can retrieve it.

pub mod tools;

use crate::anomaly::{Anomaly, SuggestedAction};
use crate::diagnoser::retrieval::{features, KnowledgeBase, KnowledgeEntry};
use crate::diagnoser::Diagnosis;
use crate::github::{GitHub, GitHubError, IssueRef};
use crate::llm::LlmClient;
use crate::signals::Signals;
use crate::telemetry::TelemetryWindow;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Label of every postmortem issue; the idempotency lookup is scoped to it.
pub const ISSUE_LABEL: &str = "aegis-postmortem";

/// Metric pairs whose correlation the drafter reports: each pair is a causal link an on-call
/// engineer would check first.
pub const CORRELATED_PAIRS: &[(&str, &str)] = &[
    ("aegis_storage_fsync_seconds_p99", "aegis_raft_log_lag"),
    ("aegis_raft_log_lag", "aegis_raft_leader_changes_total"),
    (
        "aegis_raft_leader_changes_total",
        "aegis_raft_proposals_failed_total",
    ),
    (
        "aegis_lease_expirations_total",
        "aegis_lease_renewals_total",
    ),
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Draft {
    pub title: String,
    pub body: String,
    /// How the narrative was produced: "template", or "llm:<model>" when narration succeeded.
    pub narration: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IssueOutcome {
    Created(IssueRef),
    Reused(IssueRef),
    DryRun { title: String },
}

/// `YYYY-MM-DDTHH:MM:SSZ` from Unix milliseconds (proleptic Gregorian, UTC).
pub fn iso_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (era-based), valid for the whole i64 day range we can meet.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The issue title: the same incident (kind and window start) always gets the same title.
pub fn title(anomaly: &Anomaly, window: &TelemetryWindow) -> String {
    format!(
        "Postmortem: {} ({}) starting {}",
        anomaly.kind,
        anomaly.severity,
        iso_utc(window.start_ms)
    )
}

fn action_items(anomaly: &Anomaly, diagnosis: &Diagnosis) -> Vec<String> {
    let mut items = Vec::new();
    match anomaly.suggested_action {
        SuggestedAction::RelaxReplicationTimeouts => items.push(
            "Review the agent's pull request raising the RPC timeout and log retention for the lagging follower.".to_string(),
        ),
        SuggestedAction::WidenElectionTimeouts => items.push(
            "Review the agent's pull request widening the election timeouts.".to_string(),
        ),
        SuggestedAction::RaiseLeaseSkewGrace => items.push(
            "Fix time synchronisation on the skewed node; review the pull request raising lease skew grace.".to_string(),
        ),
        SuggestedAction::RaiseLeaseMinTtl => items.push(
            "Find why keep-alives stall (client, proxy, leader load); review the pull request raising the minimum TTL.".to_string(),
        ),
        SuggestedAction::InvestigatePartition => items.push(
            "Inspect the network between replicas (NetworkPolicy, CNI, node links) before merging any timeout change.".to_string(),
        ),
        SuggestedAction::NoAction => {}
    }
    if let Some(top) = diagnosis.hypotheses.first() {
        let check = match top.cause {
            crate::anomaly::RootCause::SlowFollowerDisk => "Check the lagging follower's volume (IOPS limits, noisy neighbours); consider moving the pod.",
            crate::anomaly::RootCause::NetworkPartition => "Confirm the partition from node-level network telemetry and its end time.",
            crate::anomaly::RootCause::ClockDrift => "Check NTP/chrony on the skewed node.",
            crate::anomaly::RootCause::ElectionStorm => "Look for flapping links or CPU starvation delaying heartbeats.",
            crate::anomaly::RootCause::LeaseStarvation => "Check client keep-alive intervals against session TTLs.",
            crate::anomaly::RootCause::Healthy => "Confirm nothing is wrong and tune the rule that fired if it misfired.",
        };
        items.push(check.to_string());
    }
    items.push(
        "Confirm or correct the top-ranked root cause on this issue, so retrieval learns from it."
            .into(),
    );
    items
}

/// The deterministic template: summary, timeline, term history, ranked hypotheses, similar
/// incidents, correlations, action items.
pub fn draft(
    anomaly: &Anomaly,
    window: &TelemetryWindow,
    diagnosis: &Diagnosis,
    kb: &KnowledgeBase,
    exclude_family: Option<&str>,
) -> Draft {
    let mut b = String::new();
    let top = diagnosis.hypotheses.first();
    let _ = writeln!(b, "## Summary\n");
    let _ = writeln!(
        b,
        "Between {} and {} the classifier reported **{}** (severity {}, confidence {}). \
The most likely root cause is **{}**{}. This draft was produced from telemetry only; \
nothing was changed on the cluster.\n",
        iso_utc(window.start_ms),
        iso_utc(window.end_ms),
        anomaly.kind,
        anomaly.severity,
        anomaly.confidence,
        top.map(|h| h.cause.as_str()).unwrap_or("unknown"),
        top.map(|h| format!(" (confidence {})", h.confidence))
            .unwrap_or_default(),
    );
    let _ = writeln!(
        b,
        "Evidence:\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(&anomaly.evidence).unwrap_or_default()
    );

    let _ = writeln!(b, "## Timeline\n");
    let _ = writeln!(b, "| time (UTC) | source | what |\n| --- | --- | --- |");
    for e in tools::get_timeline(window) {
        let _ = writeln!(b, "| {} | {} | {} |", iso_utc(e.at_ms), e.source, e.text);
    }

    let _ = writeln!(b, "\n## Raft term history\n");
    let history = tools::get_raft_term_history(window);
    if history.is_empty() {
        let _ = writeln!(b, "No term changed in the window.");
    } else {
        let _ = writeln!(b, "| time (UTC) | node | term |\n| --- | --- | --- |");
        for h in history {
            let _ = writeln!(
                b,
                "| {} | {} | {} → {} |",
                iso_utc(h.at_ms),
                h.node,
                h.from,
                h.to
            );
        }
    }

    let _ = writeln!(b, "\n## Ranked root-cause hypotheses\n");
    let _ = writeln!(b, "Method: `{}`.\n", diagnosis.method);
    let _ = writeln!(
        b,
        "| rank | cause | confidence | why |\n| --- | --- | --- | --- |"
    );
    for (i, h) in diagnosis.hypotheses.iter().enumerate() {
        let _ = writeln!(
            b,
            "| {} | {} | {} | {} |",
            i + 1,
            h.cause,
            h.confidence,
            h.rationale
        );
    }

    let _ = writeln!(b, "\n## Similar past incidents\n");
    let similar = tools::find_similar_past_incident(kb, window, 3, exclude_family);
    if similar.is_empty() {
        let _ = writeln!(b, "None in the knowledge base.");
    }
    for n in similar {
        let _ = writeln!(
            b,
            "- `{}` ({}, similarity {:.3}): {}",
            n.id, n.root_cause, n.similarity, n.summary
        );
    }

    let _ = writeln!(b, "\n## Correlations\n");
    for (x, y) in CORRELATED_PAIRS {
        let c = tools::correlate_metric(window, x, y);
        let _ = writeln!(
            b,
            "- `{x}` vs `{y}`: {} over {} samples",
            c.coefficient
                .map(|v| format!("{v:+.3}"))
                .unwrap_or_else(|| "n/a".into()),
            c.samples
        );
    }

    let _ = writeln!(b, "\n## Action items\n");
    for item in action_items(anomaly, diagnosis) {
        let _ = writeln!(b, "- [ ] {item}");
    }
    Draft {
        title: title(anomaly, window),
        body: b,
        narration: "template".into(),
    }
}

pub const NARRATION_PROMPT: &str = "You write the narrative paragraph of an incident postmortem \
for a Raft coordination service. Use only facts in the draft; do not invent times, numbers or \
causes. Three to six sentences, plain prose.";

/// Adds an LLM-written narrative on top of the template. Any failure keeps the template as is,
/// with a note of why.
pub async fn narrate(client: &LlmClient, mut d: Draft) -> Draft {
    match client.chat(NARRATION_PROMPT, &d.body).await {
        Ok(reply) if !reply.content.trim().is_empty() => {
            d.body = format!(
                "## Narrative\n\n{}\n\n_Narrated by `{}` in {} ms ({} + {} tokens, ${:.5}); the sections below are the deterministic draft._\n\n{}",
                reply.content.trim(),
                client.model(),
                reply.latency_ms,
                reply.prompt_tokens,
                reply.completion_tokens,
                reply.cost_usd,
                d.body
            );
            d.narration = format!("llm:{}", client.model());
            d
        }
        Ok(_) => {
            tracing::warn!("LLM narration was empty; keeping the template");
            d
        }
        Err(e) => {
            tracing::warn!(error = %e, "LLM narration failed; keeping the template");
            d
        }
    }
}

/// One issue per title: an open issue with the same title (and label) is reused.
pub async fn publish(
    gh: Option<&GitHub>,
    d: &Draft,
    dry_run: bool,
) -> Result<IssueOutcome, GitHubError> {
    let Some(gh) = gh.filter(|_| !dry_run) else {
        return Ok(IssueOutcome::DryRun {
            title: d.title.clone(),
        });
    };
    if let Some(existing) = gh.find_open_issue(&d.title, ISSUE_LABEL).await? {
        return Ok(IssueOutcome::Reused(existing));
    }
    Ok(IssueOutcome::Created(
        gh.create_issue(&d.title, &d.body, ISSUE_LABEL).await?,
    ))
}

/// Writes the incident into the knowledge base directory (`<dir>/<slug>.json`), labelled with
/// the top-ranked cause, so the next diagnosis can retrieve it.
pub fn record(
    dir: &Path,
    d: &Draft,
    window: &TelemetryWindow,
    diagnosis: &Diagnosis,
) -> std::io::Result<Option<std::path::PathBuf>> {
    let Some(top) = diagnosis.hypotheses.first() else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir)?;
    let slug: String = d
        .title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let entry = KnowledgeEntry {
        id: slug.clone(),
        family: slug.clone(),
        root_cause: top.cause,
        features: features(&Signals::from_window(window)),
        summary: d.title.clone(),
    };
    let path = dir.join(format!("{slug}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&entry).unwrap_or_default(),
    )?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::iso_utc;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(1_780_000_000_000), "2026-05-28T20:26:40Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(-1000), "1969-12-31T23:59:59Z");
    }
}
