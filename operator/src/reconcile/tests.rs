//! Reconcile scenarios against a mocked API server (kube's tower-test convention: the
//! client's requests arrive on a `tower_test` handle and the test answers them), with
//! the Raft group behind [`FakeAdmin`].
//!
//! The mock keeps objects by URL path so a scenario can run several reconciles in a row
//! and inspect what was applied, deleted and recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{json, Value};

use super::*;
use crate::crd::{AegisClusterStatus, Condition};
use crate::fake::{FakeAdmin, FakeRaft};
use crate::names;
use crate::validate::ConfigVerdict;

const NS: &str = "ns";
const GOOD: &str = "raft:\n  heartbeat-interval-ms: 50\n";
const NEW_GOOD: &str = "raft:\n  heartbeat-interval-ms: 60\n  election-timeout-min-ms: 300\n  election-timeout-max-ms: 600\n";
const BAD: &str = "raft:\n  heartbeat-interval-ms: 100\n  election-timeout-min-ms: 200\n";

#[derive(Default)]
struct ApiState {
    objects: BTreeMap<String, Value>,
    /// `METHOD path` of every request, in order.
    log: Vec<String>,
    /// `path?query` of every server-side apply, in order.
    applies: Vec<String>,
    events: Vec<Value>,
}

type Shared = Arc<Mutex<ApiState>>;

fn path_of(uri: &http::Uri) -> String {
    uri.path().to_string()
}

fn not_found(path: &str) -> Response<Body> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{path} not found"), "reason": "NotFound", "code": 404
    });
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Body::from(serde_json::to_vec(&status).unwrap()))
        .unwrap()
}

fn ok(v: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    a.remove(k);
                } else {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

async fn handle(state: Shared, req: Request<Body>) -> Response<Body> {
    let method = req.method().to_string();
    let path = path_of(req.uri());
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    let mut st = state.lock().unwrap();
    st.log.push(format!("{method} {path}"));
    match method.as_str() {
        "GET" if path.ends_with("/pods") || path.ends_with("/configmaps") => {
            let prefix = format!("{path}/");
            let items: Vec<Value> = st
                .objects
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(_, v)| v.clone())
                .collect();
            let kind = if path.ends_with("/pods") {
                "PodList"
            } else {
                "ConfigMapList"
            };
            ok(&json!({"kind": kind, "apiVersion": "v1", "metadata": {}, "items": items}))
        }
        "GET" => match st.objects.get(&path) {
            Some(v) => ok(v),
            None => not_found(&path),
        },
        "POST" if path.ends_with("/events") => {
            st.events.push(body.clone());
            ok(&body)
        }
        "PATCH" if path.contains("/events/") => ok(&body),
        "PATCH" if path.ends_with("/status") => {
            let parent = path.trim_end_matches("/status").to_string();
            let obj = st.objects.entry(parent).or_insert(json!({}));
            obj["status"] = body["status"].clone();
            let obj = obj.clone();
            ok(&obj)
        }
        "PATCH" if content_type.starts_with("application/apply-patch") => {
            st.applies.push(format!("{path}?{query}"));
            st.objects.insert(path, body.clone());
            ok(&body)
        }
        "PATCH" => match st.objects.get_mut(&path) {
            Some(obj) => {
                merge(obj, &body);
                let obj = obj.clone();
                ok(&obj)
            }
            None => not_found(&path),
        },
        "DELETE" => match st.objects.remove(&path) {
            Some(obj) => ok(&obj),
            None => not_found(&path),
        },
        _ => panic!("unexpected request {method} {path}"),
    }
}

/// The mocked API server: answers every request the client makes from `state`.
fn mock_client(state: Shared) -> (Client, tokio::task::JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            send.send_response(handle_one(state.clone(), req).await);
        }
    });
    (Client::new(service, NS), server)
}

async fn handle_one(state: Shared, req: Request<Body>) -> Response<Body> {
    handle(state, req).await
}

struct Scenario {
    state: Shared,
    admin: FakeAdmin,
    ctx: Arc<Context<FakeAdmin>>,
    server: tokio::task::JoinHandle<()>,
    now: Arc<Mutex<i64>>,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn cluster(replicas: i32, status: Option<AegisClusterStatus>) -> AegisCluster {
    let mut c: AegisCluster = serde_json::from_value(json!({
        "apiVersion": "aegis.dev/v1alpha1",
        "kind": "AegisCluster",
        "metadata": {"name": "demo", "namespace": NS, "uid": "uid-1", "generation": 1},
        "spec": {
            "replicas": replicas,
            "image": "aegis-node:dev",
            "config": {"name": "aegis-config"},
            "chaos": {"enabled": true},
            "rollout": {"gateTimeoutSeconds": 0}
        }
    }))
    .unwrap();
    c.status = status;
    c
}

fn hash_of(text: &str) -> String {
    match validate::validate_config(text) {
        ConfigVerdict::Accepted(c) => c.hash,
        other => panic!("{other:?}"),
    }
}

fn cm_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/configmaps/{name}")
}
const CLUSTER: &str = "/apis/aegis.dev/v1alpha1/namespaces/ns/aegisclusters/demo";
const STS: &str = "/apis/apps/v1/namespaces/ns/statefulsets/demo";
fn pod_path(o: u32) -> String {
    format!("/api/v1/namespaces/{NS}/pods/demo-{o}")
}

impl Scenario {
    fn new(raft: FakeRaft) -> Self {
        let state: Shared = Arc::default();
        let (client, server) = mock_client(state.clone());
        let admin = FakeAdmin::new(raft);
        let now = Arc::new(Mutex::new(1_000_000));
        let mut ctx = Context::new(client, admin.clone(), Arc::new(Metrics::new().unwrap()));
        let clock = now.clone();
        ctx.clock = Box::new(move || *clock.lock().unwrap());
        Scenario {
            state,
            admin,
            ctx: Arc::new(ctx),
            server,
            now,
        }
    }

    fn put(&self, path: &str, v: Value) {
        self.state
            .lock()
            .unwrap()
            .objects
            .insert(path.to_string(), v);
    }

    fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    fn source(&self, text: &str) {
        self.put(
            &cm_path("aegis-config"),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "aegis-config", "namespace": NS,
                                "annotations": {"aegis.dev/git-revision": "abc123"}},
                   "data": {"aegis.yaml": text}}),
        );
    }

    /// The rendered ConfigMap and StatefulSet of a cluster already running `text` on `n` pods.
    fn running(&self, n: u32, text: &str) {
        let c = match validate::validate_config(text) {
            ConfigVerdict::Accepted(c) => c,
            other => panic!("{other:?}"),
        };
        self.put(
            &cm_path(&names::config_map("demo", &c.short_hash)),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": names::config_map("demo", &c.short_hash), "namespace": NS},
                   "data": {"aegis.yaml": c.yaml}}),
        );
        self.put(
            STS,
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                              "metadata": {"name": "demo", "namespace": NS},
                              "spec": {"replicas": n}}),
        );
        for o in 0..n {
            self.pod(o, &c.hash);
        }
    }

    fn pod(&self, o: u32, hash: &str) {
        self.put(
            &pod_path(o),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": format!("demo-{o}"), "namespace": NS,
                                "labels": names::selector_labels("demo"),
                                "annotations": {ANNOTATION_CONFIG_HASH: hash}},
                   "spec": {"containers": [{"name": "aegis-node", "image": "aegis-node:dev"}]},
                   "status": {"phase": "Running",
                              "conditions": [{"type": "Ready", "status": "True"}]}}),
        );
    }

    async fn reconcile(&self, c: &AegisCluster) -> AegisClusterStatus {
        self.put(CLUSTER, serde_json::to_value(c).unwrap());
        reconcile(Arc::new(c.clone()), self.ctx.clone())
            .await
            .unwrap();
        let stored = self.get(CLUSTER).expect("status was patched");
        serde_json::from_value(stored["status"].clone()).unwrap()
    }

    /// Reconciles `c` as it stands after the previous pass wrote `status`.
    async fn reconcile_from(
        &self,
        c: &AegisCluster,
        status: AegisClusterStatus,
    ) -> AegisClusterStatus {
        self.reconcile(&AegisCluster {
            status: Some(status),
            ..c.clone()
        })
        .await
    }

    fn log(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }

    fn reasons(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|e| e["reason"].as_str().unwrap().to_string())
            .collect()
    }
}

fn cond<'a>(s: &'a AegisClusterStatus, t: &str) -> &'a Condition {
    s.conditions.iter().find(|c| c.type_ == t).unwrap()
}

fn env_names(sts: &Value) -> Vec<String> {
    sts["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn create_bootstraps_once_then_marks_initialized_and_labels_the_leader() {
    let mut raft = FakeRaft::formed("demo", 5);
    for id in 1..=5 {
        raft.stop(id);
    }
    let s = Scenario::new(raft);
    s.source(GOOD);
    let c = cluster(5, None);
    let status = s.reconcile(&c).await;

    let log = s.log();
    let applied: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("PATCH") && !l.contains("/pods/"))
        .collect();
    let short = &hash_of(GOOD)[..12];
    assert_eq!(
        applied,
        vec![
            &format!("PATCH /api/v1/namespaces/ns/configmaps/demo-config-{short}"),
            &"PATCH /api/v1/namespaces/ns/services/demo-peer".to_string(),
            &"PATCH /api/v1/namespaces/ns/services/demo-client".to_string(),
            &"PATCH /apis/apps/v1/namespaces/ns/statefulsets/demo".to_string(),
            &"PATCH /apis/policy/v1/namespaces/ns/poddisruptionbudgets/demo".to_string(),
            &"PATCH /apis/networking.k8s.io/v1/namespaces/ns/networkpolicies/demo".to_string(),
            &"PATCH /apis/aegis.dev/v1alpha1/namespaces/ns/aegisclusters/demo/status".to_string(),
        ]
    );
    // Every object is applied under the operator's field manager, taking over fields that
    // another manager set.
    let applies = s.state.lock().unwrap().applies.clone();
    assert_eq!(applies.len(), 6, "{applies:?}");
    for a in &applies {
        let (_, query) = a.split_once('?').unwrap_or((a, ""));
        let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        params.sort_unstable();
        assert_eq!(params, ["fieldManager=aegis-operator", "force=true"], "{a}");
    }
    let sts = s.get(STS).unwrap();
    assert_eq!(sts["spec"]["replicas"], json!(5));
    assert!(env_names(&sts).contains(&"AEGIS_INITIAL_MEMBERS".to_string()));
    assert_eq!(sts["metadata"]["ownerReferences"][0]["uid"], json!("uid-1"));
    assert!(!status.initialized);
    assert_eq!(status.config_hash.as_deref(), Some(hash_of(GOOD).as_str()));
    assert_eq!(status.config_git_revision.as_deref(), Some("abc123"));
    assert_eq!(cond(&status, "Progressing").status, "True");
    assert_eq!(cond(&status, "Available").status, "False");
    assert!(s.reasons().contains(&"Membership".to_string()));

    // The pods come up and elect node 1.
    for o in 0..5 {
        s.pod(o, &hash_of(GOOD));
    }
    *s.admin.0.lock().unwrap() = FakeRaft::formed("demo", 5);
    let c = cluster(5, Some(status));
    let status = s.reconcile(&c).await;
    assert!(status.initialized);
    assert_eq!(status.leader, Some(1));
    assert_eq!(status.leader_pod.as_deref(), Some("demo-0"));
    assert_eq!(status.members.len(), 5);
    assert_eq!(cond(&status, "Available").status, "True");
    let sts = s.get(STS).unwrap();
    assert!(!env_names(&sts).contains(&"AEGIS_INITIAL_MEMBERS".to_string()));
    let leader = s.get(&pod_path(0)).unwrap();
    assert_eq!(leader["metadata"]["labels"][LABEL_ROLE], json!("leader"));
    assert_eq!(leader["metadata"]["labels"][LABEL_CHAOS], json!("enabled"));
    let follower = s.get(&pod_path(3)).unwrap();
    assert_eq!(
        follower["metadata"]["labels"][LABEL_ROLE],
        json!("follower")
    );
    assert!(s.reasons().contains(&"Initialized".to_string()));
    // No membership call was needed to bootstrap.
    assert!(s.admin.with(|r| r.calls.is_empty()));
}

fn initialized(hash: &str) -> AegisClusterStatus {
    AegisClusterStatus {
        initialized: true,
        config_hash: Some(hash.to_string()),
        last_good_config_hash: Some(hash.to_string()),
        ..Default::default()
    }
}

#[tokio::test]
async fn scale_out_grows_the_statefulset_then_adds_a_learner_then_promotes() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    s.source(GOOD);
    s.running(3, GOOD);
    let c = cluster(5, Some(initialized(&hash_of(GOOD))));

    s.reconcile(&c).await;
    assert_eq!(s.get(STS).unwrap()["spec"]["replicas"], json!(4));

    // The StatefulSet controller starts demo-3, empty.
    s.pod(3, &hash_of(GOOD));
    s.admin.with(|r| r.start_empty(4));
    s.reconcile(&c).await;
    assert_eq!(s.admin.with(|r| r.calls.clone()), vec!["add_learner 4"]);

    s.admin.with(|r| r.catch_up_all());
    let status = s.reconcile(&c).await;
    assert_eq!(
        s.admin.with(|r| r.calls.clone()),
        vec!["add_learner 4", "promote 4"]
    );
    assert_eq!(
        status.membership_change.as_deref(),
        Some("node 4 caught up and promoted to voter")
    );
    assert_eq!(cond(&status, "Progressing").status, "True");
    // Next: the fifth member.
    s.reconcile(&c).await;
    assert_eq!(s.get(STS).unwrap()["spec"]["replicas"], json!(5));
}

#[tokio::test]
async fn scale_in_removes_from_raft_before_the_statefulset_shrinks() {
    let s = Scenario::new(FakeRaft::formed("demo", 5));
    s.source(GOOD);
    s.running(5, GOOD);
    let c = cluster(3, Some(initialized(&hash_of(GOOD))));

    s.reconcile(&c).await;
    assert_eq!(s.admin.with(|r| r.calls.clone()), vec!["remove 5"]);
    assert_eq!(s.get(STS).unwrap()["spec"]["replicas"], json!(5));
    s.reconcile(&c).await;
    assert_eq!(
        s.admin.with(|r| r.calls.clone()),
        vec!["remove 5", "remove 4"]
    );
    assert_eq!(s.get(STS).unwrap()["spec"]["replicas"], json!(5));
    s.reconcile(&c).await;
    assert_eq!(s.get(STS).unwrap()["spec"]["replicas"], json!(3));
    assert_eq!(s.admin.with(|r| r.voters()), vec![1, 2, 3]);
}

#[tokio::test]
async fn accepted_config_change_starts_a_rollout_restarting_a_follower_first() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    s.source(NEW_GOOD);
    s.running(3, GOOD);
    let c = cluster(3, Some(initialized(&hash_of(GOOD))));
    let status = s.reconcile(&c).await;

    let new = hash_of(NEW_GOOD);
    assert!(s
        .get(&cm_path(&names::config_map("demo", &new[..12])))
        .is_some());
    let sts = s.get(STS).unwrap();
    assert_eq!(
        sts["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CONFIG_HASH],
        json!(new)
    );
    assert!(s
        .log()
        .contains(&"DELETE /api/v1/namespaces/ns/pods/demo-2".to_string()));
    assert!(s.get(&pod_path(2)).is_none());
    let rollout = status.rollout.clone().unwrap();
    assert_eq!(rollout.phase, "Rolling");
    assert_eq!(
        rollout.previous_hash.as_deref(),
        Some(hash_of(GOOD).as_str())
    );
    assert_eq!(status.config_hash.as_deref(), Some(new.as_str()));
    assert_eq!(cond(&status, "ConfigRejected").status, "False");
    let progressing = cond(&status, "Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", "RollingConfig")
    );
    assert_eq!(progressing.message, rollout.message);
    assert_eq!(
        s.reasons(),
        vec!["RolloutStarted", "Applied", "RolloutRestart"]
    );

    // Every pod restarted on the new config: the rollout completes and it becomes the good one.
    for o in 0..3 {
        s.pod(o, &new);
    }
    let status = s.reconcile_from(&c, status).await;
    assert_eq!(status.rollout.as_ref().unwrap().phase, "Complete");
    assert_eq!(status.last_good_config_hash.as_deref(), Some(new.as_str()));
    let progressing = cond(&status, "Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("False", "Stable")
    );
}

#[tokio::test]
async fn rejected_config_sets_the_condition_with_rule_ids_and_rolls_nothing() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    s.source(BAD);
    s.running(3, GOOD);
    let c = cluster(3, Some(initialized(&hash_of(GOOD))));
    let status = s.reconcile(&c).await;

    let rejected = status.rejected_config.clone().unwrap();
    assert!(rejected
        .rule_ids
        .contains(&"raft.election-min-ge-3x-heartbeat".to_string()));
    let cr = cond(&status, "ConfigRejected");
    assert_eq!(cr.status, "True");
    assert!(cr.message.contains("raft.election-min-ge-3x-heartbeat"));
    assert_eq!(status.config_hash.as_deref(), Some(hash_of(GOOD).as_str()));
    assert!(status.rollout.is_none());
    let log = s.log();
    assert!(!log.iter().any(|l| l.starts_with("DELETE")), "{log:?}");
    let sts = s.get(STS).unwrap();
    assert_eq!(
        sts["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CONFIG_HASH],
        json!(hash_of(GOOD))
    );
    assert!(s.reasons().contains(&"ConfigRejected".to_string()));

    // The same rejected text is reported once, not on every pass.
    let before = s.reasons().len();
    s.reconcile_from(&c, status).await;
    let after: Vec<String> = s.reasons()[before..].to_vec();
    assert!(!after.contains(&"ConfigRejected".to_string()), "{after:?}");
}

#[tokio::test]
async fn failed_gate_halts_the_rollout_and_rolls_back_to_the_last_good_config() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    s.source(NEW_GOOD);
    s.running(3, GOOD);
    let c = cluster(3, Some(initialized(&hash_of(GOOD))));
    let status = s.reconcile(&c).await;
    assert_eq!(status.rollout.as_ref().unwrap().phase, "Rolling");

    // demo-2 came back on the new config, and the group lost its leader.
    let new = hash_of(NEW_GOOD);
    s.pod(2, &new);
    s.admin.with(|r| r.leader = None);
    *s.now.lock().unwrap() += 30;
    let status = s.reconcile_from(&c, status).await;

    let rollout = status.rollout.clone().unwrap();
    assert_eq!(rollout.phase, "RollingBack");
    assert!(rollout.message.contains("no leader"), "{}", rollout.message);
    let progressing = cond(&status, "Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", "RollingBack")
    );
    assert_eq!(status.config_hash.as_deref(), Some(hash_of(GOOD).as_str()));
    let sts = s.get(STS).unwrap();
    assert_eq!(
        sts["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CONFIG_HASH],
        json!(hash_of(GOOD))
    );
    // The pod already on the bad config is restarted back.
    assert!(s
        .log()
        .contains(&"DELETE /api/v1/namespaces/ns/pods/demo-2".to_string()));
    assert_eq!(cond(&status, "Degraded").status, "True");
    assert_eq!(cond(&status, "Degraded").reason, "RolledBack");
    assert!(s.reasons().contains(&"RolloutHalted".to_string()));

    // Back on the good config everywhere: RolledBack, and the bad config is not retried.
    s.pod(2, &hash_of(GOOD));
    s.admin.with(|r| r.leader = Some(1));
    let status = s.reconcile_from(&c, status).await;
    assert_eq!(status.rollout.as_ref().unwrap().phase, "RolledBack");
    assert!(s.reasons().contains(&"RolledBack".to_string()));
    let status = s.reconcile_from(&c, status).await;
    assert_eq!(status.rollout.as_ref().unwrap().phase, "RolledBack");
    assert_eq!(status.config_hash.as_deref(), Some(hash_of(GOOD).as_str()));
    assert!(!s.log().iter().any(|l| l.starts_with("DELETE")));
}

#[test]
fn backoff_doubles_and_caps() {
    assert_eq!(backoff(1), Duration::from_secs(5));
    assert_eq!(backoff(2), Duration::from_secs(10));
    assert_eq!(backoff(4), Duration::from_secs(40));
    assert_eq!(backoff(50), Duration::from_secs(160));
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[tokio::test]
async fn git_source_writes_the_configmap_with_its_revision_and_the_status_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("config-repo");
    std::fs::create_dir_all(repo.join("clusters/demo")).unwrap();
    git(&repo, &["init", "--quiet", "-b", "main"]);
    std::fs::write(repo.join("clusters/demo/aegis.yaml"), GOOD).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "--quiet", "-m", "initial config"]);
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    let head = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let mut raft = FakeRaft::formed("demo", 3);
    for id in 1..=3 {
        raft.stop(id);
    }
    let mut s = Scenario::new(raft);
    // The mirror goes under this test's temp dir.
    Arc::get_mut(&mut s.ctx).unwrap().git_cache = tmp.path().join("cache");
    let mut c = cluster(3, None);
    c.spec.config_source = Some(crate::crd::ConfigSource {
        git: Some(crate::crd::GitSource {
            url: format!("file://{}", repo.display()),
            branch: "main".into(),
            path: "clusters/demo/aegis.yaml".into(),
            interval: "30s".into(),
        }),
    });
    let status = s.reconcile(&c).await;

    let cm = s
        .get(&cm_path("aegis-config"))
        .expect("poller wrote the source ConfigMap");
    assert_eq!(cm["data"]["aegis.yaml"], json!(GOOD));
    assert_eq!(
        cm["metadata"]["annotations"]["aegis.dev/git-revision"],
        json!(head)
    );
    assert_eq!(status.config_git_revision.as_deref(), Some(head.as_str()));
    assert_eq!(status.config_hash.as_deref(), Some(hash_of(GOOD).as_str()));

    // Within the interval the repository is not polled again.
    s.log();
    s.reconcile_from(&c, status).await;
    assert!(!s
        .log()
        .contains(&"PATCH /api/v1/namespaces/ns/configmaps/aegis-config".to_string()));
}

#[tokio::test]
async fn image_change_rolls_pods_through_the_same_gated_restarts() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    s.source(GOOD);
    s.running(3, GOOD);
    let mut c = cluster(3, Some(initialized(&hash_of(GOOD))));
    c.spec.image = "aegis-node:next".into();
    let status = s.reconcile(&c).await;
    assert_eq!(status.rollout.as_ref().unwrap().phase, "Rolling");
    let sts = s.get(STS).unwrap();
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("aegis-node:next")
    );
    assert!(s
        .log()
        .contains(&"DELETE /api/v1/namespaces/ns/pods/demo-2".to_string()));
}

#[tokio::test]
async fn failed_gate_stops_an_image_rollout_without_pushing_the_image_further() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    s.source(GOOD);
    s.running(3, GOOD);
    let mut c = cluster(3, Some(initialized(&hash_of(GOOD))));
    c.spec.image = "aegis-node:next".into();
    let status = s.reconcile(&c).await;
    assert_eq!(status.rollout.as_ref().unwrap().phase, "Rolling");
    assert!(s
        .log()
        .contains(&"DELETE /api/v1/namespaces/ns/pods/demo-2".to_string()));

    // The group loses its leader while the first pod restarts: the gate fails.
    s.admin.with(|r| r.leader = None);
    *s.now.lock().unwrap() += 30;
    let status = s.reconcile_from(&c, status).await;
    let rollout = status.rollout.clone().unwrap();
    assert_eq!(rollout.phase, "Halted");
    assert!(rollout.message.contains("no leader"), "{}", rollout.message);
    assert_eq!(cond(&status, "Degraded").reason, "RolloutHalted");
    assert!(s.reasons().contains(&"RolloutHalted".to_string()));
    assert!(
        !s.log().iter().any(|l| l.starts_with("DELETE")),
        "no pod is restarted onto the new image after the halt"
    );

    // Still halted on the next pass, even with the leader back: the same image is not retried.
    s.admin.with(|r| r.leader = Some(1));
    let status = s.reconcile_from(&c, status).await;
    assert_eq!(status.rollout.as_ref().unwrap().phase, "Halted");
    assert!(!s.log().iter().any(|l| l.starts_with("DELETE")));

    // Reverting spec.image (every pod here still runs it) clears the degradation.
    c.spec.image = "aegis-node:dev".into();
    let status = s.reconcile_from(&c, status).await;
    assert_ne!(cond(&status, "Degraded").reason, "RolloutHalted");
}

#[tokio::test]
async fn member_whose_volume_was_lost_is_removed_re_added_and_promoted() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    s.source(GOOD);
    s.running(3, GOOD);
    s.admin.with(|r| r.lose_volume(3));
    let c = cluster(3, Some(initialized(&hash_of(GOOD))));
    s.reconcile(&c).await;
    assert_eq!(s.admin.with(|r| r.calls.clone()), vec!["remove 3"]);
    s.reconcile(&c).await;
    assert_eq!(
        s.admin.with(|r| r.calls.clone()),
        vec!["remove 3", "add_learner 3"]
    );
    s.admin.with(|r| r.catch_up_all());
    let status = s.reconcile(&c).await;
    assert_eq!(
        s.admin.with(|r| r.calls.clone()),
        vec!["remove 3", "add_learner 3", "promote 3"]
    );
    assert_eq!(s.admin.with(|r| r.voters()), vec![1, 2, 3]);
    // The StatefulSet never changed size during the repair.
    assert_eq!(s.get(STS).unwrap()["spec"]["replicas"], json!(3));
    assert!(status.membership_change.unwrap().contains("promoted"));
}

#[tokio::test]
async fn invalid_spec_is_degraded_and_applies_nothing() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    s.source(GOOD);
    let mut c = cluster(3, None);
    c.spec.replicas = 4;
    let status = s.reconcile(&c).await;
    let d = cond(&status, "Degraded");
    assert_eq!(
        (d.status.as_str(), d.reason.as_str()),
        ("True", "SpecInvalid")
    );
    assert!(d.message.contains("spec.replicas: must be odd"));
    let log = s.log();
    assert!(
        !log.iter()
            .any(|l| l.contains("statefulsets") && l.starts_with("PATCH")),
        "{log:?}"
    );
    assert!(s.reasons().contains(&"SpecInvalid".to_string()));
}

#[tokio::test]
async fn missing_source_configmap_on_a_new_cluster_creates_nothing() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    let c = cluster(3, None);
    let status = s.reconcile(&c).await;
    let d = cond(&status, "Degraded");
    assert_eq!(
        (d.status.as_str(), d.reason.as_str()),
        ("True", "ConfigMissing")
    );
    assert!(s.get(STS).is_none());
}

#[tokio::test]
async fn rendered_configs_no_longer_in_use_are_pruned_once_no_rollout_runs() {
    let s = Scenario::new(FakeRaft::formed("demo", 3));
    s.source(GOOD);
    s.running(3, GOOD);
    let stale = names::config_map("demo", "deadbeef0000");
    s.put(
        &cm_path(&stale),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": stale, "namespace": NS, "labels": names::common_labels("demo"),
                            "annotations": {ANNOTATION_CONFIG_HASH: "deadbeef0000aaaa"}},
               "data": {"aegis.yaml": "{}"}}),
    );
    let c = cluster(3, Some(initialized(&hash_of(GOOD))));
    s.reconcile(&c).await;
    assert!(s.get(&cm_path(&stale)).is_none(), "stale config kept");
    let current = names::config_map("demo", &hash_of(GOOD)[..12]);
    assert!(
        s.get(&cm_path(&current)).is_some(),
        "config in force pruned"
    );
    // The user's source ConfigMap is never touched.
    assert!(s.get(&cm_path("aegis-config")).is_some());
}
