//! The proposer against a local fake of the GitHub REST API (wiremock): exact requests,
//! idempotency, retries, and no request at all when the envelope blocks.

use aegis_agent::anomaly::{Anomaly, AnomalyKind, Severity, SuggestedAction};
use aegis_agent::github::{GitHub, RetryPolicy};
use aegis_agent::proposer::{self, Outcome, ProposerSettings};
use base64::Engine as _;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use std::time::Duration;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OWNER: &str = "acme";
const REPO: &str = "aegis-config";
const FILE: &str = "cluster/aegis.yaml";
const DEPLOYED: &str =
    "raft:\n  heartbeat-interval-ms: 50\n  rpc-timeout-ms: 1000\nlease:\n  min-ttl-ms: 3000\n";

fn anomaly() -> Anomaly {
    let mut evidence = aegis_agent::anomaly::Evidence::new();
    evidence.insert("follower".into(), json!("aegis-3"));
    evidence.insert("sustained_lag_entries".into(), json!(11000.0));
    Anomaly {
        kind: AnomalyKind::SlowFollower,
        severity: Severity::Warning,
        confidence: 0.76,
        evidence,
        suggested_action: SuggestedAction::RelaxReplicationTimeouts,
    }
}

fn expected_branch(a: &Anomaly) -> String {
    // Computed independently of the crate: sha1 over the sorted-key evidence JSON.
    let canonical = serde_json::to_string(&a.evidence).unwrap();
    let digest = Sha1::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("aegis-agent/slow_follower/{hex}")
}

fn b64(s: &str) -> String {
    // GitHub wraps base64 content at 60 columns; the client must cope.
    let raw = base64::engine::general_purpose::STANDARD.encode(s);
    raw.as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn settings(dir: &tempfile::TempDir) -> ProposerSettings {
    ProposerSettings {
        config_path: FILE.into(),
        base_branch: "main".into(),
        audit_log: dir.path().join("audit/blocked.jsonl"),
    }
}

fn client(server: &MockServer) -> GitHub {
    GitHub::new(
        &server.uri(),
        Some("test-token".into()),
        OWNER,
        REPO,
        RetryPolicy {
            attempts: 3,
            base_backoff: Duration::from_millis(5),
        },
    )
    .unwrap()
}

fn repo_path(tail: &str) -> String {
    format!("/repos/{OWNER}/{REPO}/{tail}")
}

async fn mount_contents(server: &MockServer, git_ref: &str, text: &str, sha: &str) {
    Mock::given(method("GET"))
        .and(path(repo_path(&format!("contents/{FILE}"))))
        .and(query_param("ref", git_ref))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "file", "encoding": "base64", "sha": sha, "path": FILE, "content": b64(text)
        })))
        .mount(server)
        .await;
}

async fn requests(server: &MockServer) -> Vec<(String, String, Option<Value>)> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let q = r.url.query().map(|q| format!("?{q}")).unwrap_or_default();
            let body = serde_json::from_slice(&r.body).ok();
            (r.method.to_string(), format!("{}{}", r.url.path(), q), body)
        })
        .collect()
}

async fn mount_happy_path(server: &MockServer, branch: &str) {
    mount_contents(server, "main", DEPLOYED, "blob-main").await;
    mount_contents(server, branch, DEPLOYED, "blob-main").await;
    // First lookup: no open PR; any later lookup: the PR opened by the first run.
    Mock::given(method("GET"))
        .and(path(repo_path("pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(repo_path("pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"number": 42, "html_url": "https://github.example/acme/aegis-config/pull/42"}
        ])))
        .with_priority(2)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(repo_path("git/ref/heads/main")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ref": "refs/heads/main", "object": {"sha": "c0ffee00", "type": "commit"}
        })))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(repo_path("git/refs")))
        .and(body_partial_json(
            json!({"ref": format!("refs/heads/{branch}"), "sha": "c0ffee00"}),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"ref": format!("refs/heads/{branch}")})),
        )
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path(repo_path(&format!("contents/{FILE}"))))
        .and(body_partial_json(
            json!({"branch": branch, "sha": "blob-main"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"commit": {"sha": "d00d"}})))
        .mount(server)
        .await;
}

async fn mount_create_pull(server: &MockServer, branch: &str) {
    Mock::given(method("POST"))
        .and(path(repo_path("pulls")))
        .and(body_partial_json(json!({"head": branch, "base": "main"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "number": 42, "html_url": "https://github.example/acme/aegis-config/pull/42"
        })))
        .mount(server)
        .await;
}

#[tokio::test]
async fn opens_one_pull_request_then_reuses_it() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = anomaly();
    let branch = expected_branch(&a);
    mount_happy_path(&server, &branch).await;
    mount_create_pull(&server, &branch).await;
    let gh = client(&server);

    let first = proposer::propose(Some(&gh), &settings(&dir), &a, None, false)
        .await
        .unwrap();
    match &first {
        Outcome::Opened { pull, branch: b } => {
            assert_eq!(pull.number, 42);
            assert_eq!(b, &branch);
        }
        other => panic!("expected Opened, got {other:?}"),
    }
    let reqs = requests(&server).await;
    let lines: Vec<String> = reqs.iter().map(|r| format!("{} {}", r.0, r.1)).collect();
    let head = format!("{OWNER}%3A{}", branch.replace('/', "%2F"));
    assert_eq!(
        lines,
        vec![
            format!("GET /repos/acme/aegis-config/contents/{FILE}?ref=main"),
            format!("GET /repos/acme/aegis-config/pulls?head={head}&state=open"),
            "GET /repos/acme/aegis-config/git/ref/heads/main".to_string(),
            "POST /repos/acme/aegis-config/git/refs".to_string(),
            format!(
                "GET /repos/acme/aegis-config/contents/{FILE}?ref={}",
                branch.replace('/', "%2F")
            ),
            format!("PUT /repos/acme/aegis-config/contents/{FILE}"),
            "POST /repos/acme/aegis-config/pulls".to_string(),
        ]
    );
    // The commit carries the merged, canonical config.
    let put = reqs[5].2.as_ref().unwrap();
    let content = put["content"].as_str().unwrap();
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(content)
            .unwrap(),
    )
    .unwrap();
    let cfg = aegis_config::ClusterConfig::from_yaml(&text).unwrap();
    assert_eq!(cfg.raft.rpc_timeout_ms, 2000);
    assert_eq!(cfg.raft.max_logs_kept_after_snapshot, 17000);
    assert_eq!(cfg.raft.heartbeat_interval_ms, 50);
    // The PR body carries evidence, rationale, diff and rollback.
    let pr = reqs[6].2.as_ref().unwrap();
    let body = pr["body"].as_str().unwrap();
    for needle in [
        "## Evidence",
        "\"follower\": \"aegis-3\"",
        "## Rationale",
        "raft.rpc-timeout-ms 1000 → 2000",
        "- ",
        "+ ",
        "## Rollback",
        "git revert",
    ] {
        assert!(body.contains(needle), "PR body lacks {needle:?}:\n{body}");
    }

    // Second run on the same evidence: finds the open PR, writes nothing.
    let second = proposer::propose(Some(&gh), &settings(&dir), &a, None, false)
        .await
        .unwrap();
    assert!(matches!(second, Outcome::Reused { ref pull, .. } if pull.number == 42));
    let after = requests(&server).await;
    let new: Vec<String> = after[reqs.len()..]
        .iter()
        .map(|r| format!("{} {}", r.0, r.1))
        .collect();
    assert_eq!(
        new,
        vec![
            format!("GET /repos/acme/aegis-config/contents/{FILE}?ref=main"),
            format!("GET /repos/acme/aegis-config/pulls?head={head}&state=open"),
        ]
    );
}

#[tokio::test]
async fn blocked_proposal_reads_the_config_but_writes_nothing_and_is_audited() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Election timeouts already near their bound: widening them breaks the envelope.
    let deployed = "raft:\n  election-timeout-min-ms: 45000\n  election-timeout-max-ms: 50000\n";
    mount_contents(&server, "main", deployed, "blob-x").await;
    let gh = client(&server);
    let mut a = anomaly();
    a.kind = AnomalyKind::ElectionChurn;
    a.suggested_action = SuggestedAction::WidenElectionTimeouts;
    let out = proposer::propose(Some(&gh), &settings(&dir), &a, None, false)
        .await
        .unwrap();
    let Outcome::Blocked(b) = out else {
        panic!("expected Blocked, got {out:?}")
    };
    assert!(b
        .rule_ids
        .contains(&"bounds.raft.election-timeout-min-ms".to_string()));
    assert!(b
        .rule_ids
        .contains(&"bounds.raft.election-timeout-max-ms".to_string()));
    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 1, "only the config read: {reqs:?}");
    assert_eq!(reqs[0].0, "GET");
    let log = std::fs::read_to_string(dir.path().join("audit/blocked.jsonl")).unwrap();
    let line: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(line["decision"], "blocked");
    assert_eq!(line["kind"], "election_churn");
    assert!(line["rule_ids"]
        .as_array()
        .unwrap()
        .contains(&json!("bounds.raft.election-timeout-max-ms")));
}

#[tokio::test]
async fn blocked_with_a_local_deployed_config_sends_no_request_at_all() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gh = client(&server);
    let mut a = anomaly();
    a.kind = AnomalyKind::ElectionChurn;
    a.suggested_action = SuggestedAction::WidenElectionTimeouts;
    let deployed = "raft:\n  election-timeout-min-ms: 45000\n  election-timeout-max-ms: 50000\n";
    let out = proposer::propose(Some(&gh), &settings(&dir), &a, Some(deployed), false)
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Blocked(_)));
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn dry_run_prints_the_pull_request_and_writes_nothing() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    mount_contents(&server, "main", DEPLOYED, "blob-main").await;
    let gh = client(&server);
    let a = anomaly();
    let out = proposer::propose(Some(&gh), &settings(&dir), &a, None, true)
        .await
        .unwrap();
    let Outcome::DryRun(p) = out else {
        panic!("expected DryRun")
    };
    assert_eq!(p.branch, expected_branch(&a));
    assert!(p.diff.contains("+   rpc-timeout-ms: 2000") || p.diff.contains("rpc-timeout-ms: 2000"));
    let reqs = requests(&server).await;
    assert!(reqs.iter().all(|r| r.0 == "GET"), "{reqs:?}");
}

#[tokio::test]
async fn rate_limited_pull_creation_is_retried_with_backoff() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = anomaly();
    let branch = expected_branch(&a);
    mount_happy_path(&server, &branch).await;
    Mock::given(method("POST"))
        .and(path(repo_path("pulls")))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .set_body_json(json!({"message": "API rate limit exceeded for installation"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_create_pull(&server, &branch).await;
    let out = proposer::propose(Some(&client(&server)), &settings(&dir), &a, None, false)
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Opened { .. }), "{out:?}");
    let posts = requests(&server)
        .await
        .into_iter()
        .filter(|r| r.0 == "POST" && r.1.ends_with("/pulls"))
        .count();
    assert_eq!(posts, 2);
}

#[tokio::test]
async fn a_failing_branch_creation_gives_up_without_opening_a_pull_request() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = anomaly();
    mount_contents(&server, "main", DEPLOYED, "blob-main").await;
    Mock::given(method("GET"))
        .and(path(repo_path("pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(repo_path("git/ref/heads/main")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": {"sha": "c0ffee00"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(repo_path("git/refs")))
        .respond_with(ResponseTemplate::new(502).set_body_json(json!({"message": "Bad gateway"})))
        .mount(&server)
        .await;
    let err = proposer::propose(Some(&client(&server)), &settings(&dir), &a, None, false)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("after 3 attempts"), "{msg}");
    let reqs = requests(&server).await;
    assert_eq!(
        reqs.iter().filter(|r| r.1.ends_with("/git/refs")).count(),
        3
    );
    assert!(!reqs.iter().any(|r| r.0 == "PUT"));
    assert!(!reqs
        .iter()
        .any(|r| r.0 == "POST" && r.1.ends_with("/pulls")));
}

#[tokio::test]
async fn an_interrupted_run_reuses_its_branch_and_commit() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = anomaly();
    let branch = expected_branch(&a);
    // The branch exists and already holds the change from a run that died before the PR.
    let plan = match proposer::plan(&a, DEPLOYED) {
        proposer::Plan::Ready(p) => p,
        other => panic!("{other:?}"),
    };
    mount_contents(&server, "main", DEPLOYED, "blob-main").await;
    mount_contents(&server, &branch, &plan.after_yaml, "blob-new").await;
    Mock::given(method("GET"))
        .and(path(repo_path("pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(repo_path("git/ref/heads/main")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": {"sha": "c0ffee00"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(repo_path("git/refs")))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"message": "Reference already exists"})),
        )
        .mount(&server)
        .await;
    mount_create_pull(&server, &branch).await;
    let out = proposer::propose(Some(&client(&server)), &settings(&dir), &a, None, false)
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Opened { .. }), "{out:?}");
    let reqs = requests(&server).await;
    assert!(
        !reqs.iter().any(|r| r.0 == "PUT"),
        "no second commit: {reqs:?}"
    );
}

#[tokio::test]
async fn github_errors_are_clear_not_panics() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .mount(&server)
        .await;
    let err = proposer::propose(
        Some(&client(&server)),
        &settings(&dir),
        &anomaly(),
        None,
        false,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("401") && msg.contains("Bad credentials"),
        "{msg}"
    );

    // Nothing listening at all.
    let gh = GitHub::new(
        "http://127.0.0.1:9",
        None,
        OWNER,
        REPO,
        RetryPolicy {
            attempts: 2,
            base_backoff: Duration::from_millis(1),
        },
    )
    .unwrap();
    let err = proposer::propose(Some(&gh), &settings(&dir), &anomaly(), None, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("after 2 attempts"), "{err}");
}
