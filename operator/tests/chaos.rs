//! Every chaos manifest parses into the typed Chaos Mesh structs and selects only pods
//! the operator labels; the runner applies through typed APIs and logs start/end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_operator::build::pod_labels;
use aegis_operator::chaos::runner::{self, ChaosObject};
use aegis_operator::chaos::Scenario;
use aegis_operator::names::{LABEL_ROLE, ROLE_FOLLOWER, ROLE_LEADER};
use http::{Request, Response};
use kube::client::Body;
use kube::Client;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("chaos-manifests")
}

/// Labels the operator puts on a pod of a chaos-enabled cluster, by role.
fn operator_pod_labels(role: &str) -> BTreeMap<String, String> {
    let mut l = pod_labels("any-cluster", true);
    l.insert(LABEL_ROLE.into(), role.into());
    l
}

#[test]
fn every_scenario_has_a_manifest_that_parses_into_typed_structs() {
    let expected_kinds: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("partition-leader", vec!["NetworkChaos"]),
        ("slow-follower", vec!["NetworkChaos", "IOChaos"]),
        ("clock-skew", vec!["TimeChaos"]),
        ("kill-and-restore", vec!["PodChaos"]),
        ("flapping-network", vec!["Schedule"]),
        ("critical-cascade", vec!["Workflow"]),
    ]);
    for s in Scenario::ALL {
        let objs = runner::load(&dir(), s).unwrap();
        let kinds: Vec<&str> = objs.iter().map(ChaosObject::kind).collect();
        assert_eq!(kinds, expected_kinds[s.name()], "{}", s.name());
    }
    let files = std::fs::read_dir(dir()).unwrap().count();
    assert_eq!(files, Scenario::ALL.len(), "a manifest without a scenario");
}

#[test]
fn every_selector_matches_only_pods_the_operator_labels() {
    let leader = operator_pod_labels(ROLE_LEADER);
    let follower = operator_pod_labels(ROLE_FOLLOWER);
    let mut not_opted_in = operator_pod_labels(ROLE_LEADER);
    not_opted_in.remove("aegis.dev/chaos");
    for s in Scenario::ALL {
        for obj in runner::load(&dir(), s).unwrap() {
            let sels = obj.selectors();
            assert!(!sels.is_empty(), "{} has no selector", obj.name());
            for sel in sels {
                let matches = |pod: &BTreeMap<String, String>| {
                    sel.label_selectors
                        .iter()
                        .all(|(k, v)| pod.get(k) == Some(v))
                };
                assert!(
                    matches(&leader) || matches(&follower),
                    "{}: {:?} selects no operator-labelled pod",
                    obj.name(),
                    sel.label_selectors
                );
                assert!(
                    !matches(&not_opted_in),
                    "{} would hit a cluster without chaos enabled",
                    obj.name()
                );
            }
        }
    }
}

#[test]
fn leader_scenarios_target_the_leader_label() {
    for s in [Scenario::PartitionLeader, Scenario::KillAndRestore] {
        let objs = runner::load(&dir(), s).unwrap();
        let first = objs[0].selectors()[0];
        assert_eq!(
            first.label_selectors.get(LABEL_ROLE).map(String::as_str),
            Some(ROLE_LEADER)
        );
    }
}

#[test]
fn unknown_fields_and_kinds_are_refused() {
    let typo = "apiVersion: chaos-mesh.org/v1alpha1\nkind: PodChaos\nmetadata: {name: x}\nspec:\n  action: pod-kill\n  mode: one\n  selectr: {}\n";
    assert!(runner::parse_manifest("t", typo).is_err());
    let kind =
        "apiVersion: chaos-mesh.org/v1alpha1\nkind: StressChaos\nmetadata: {name: x}\nspec: {}\n";
    let e = runner::parse_manifest("t", kind).unwrap_err().to_string();
    assert!(e.contains("unsupported kind"), "{e}");
    let mode = "apiVersion: chaos-mesh.org/v1alpha1\nkind: PodChaos\nmetadata: {name: x}\nspec:\n  action: pod-kill\n  mode: some\n  selector: {}\n";
    assert!(runner::parse_manifest("t", mode).is_err());
}

#[tokio::test]
async fn runner_applies_typed_objects_then_deletes_them_and_logs_start_and_end() {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen: Arc<Mutex<Vec<(String, String, serde_json::Value)>>> = Arc::default();
    let seen2 = seen.clone();
    let server = tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let method = req.method().to_string();
            let path = req.uri().path().to_string();
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let body: serde_json::Value = if bytes.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            };
            seen2
                .lock()
                .unwrap()
                .push((method.clone(), path, body.clone()));
            let reply = if method == "DELETE" {
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
            } else {
                body
            };
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&reply).unwrap(),
            )));
        }
    });
    let client = Client::new(svc, "default");
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("events.jsonl");
    runner::run_with_hold(
        client,
        "prod",
        &dir(),
        &log,
        Scenario::SlowFollower,
        Duration::ZERO,
        true,
    )
    .await
    .unwrap();
    server.abort();

    let seen = seen.lock().unwrap();
    let calls: Vec<String> = seen.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    assert_eq!(
        calls,
        vec![
            "PATCH /apis/chaos-mesh.org/v1alpha1/namespaces/prod/networkchaos/aegis-slow-follower-network",
            "PATCH /apis/chaos-mesh.org/v1alpha1/namespaces/prod/iochaos/aegis-slow-follower-disk",
            "DELETE /apis/chaos-mesh.org/v1alpha1/namespaces/prod/iochaos/aegis-slow-follower-disk",
            "DELETE /apis/chaos-mesh.org/v1alpha1/namespaces/prod/networkchaos/aegis-slow-follower-network",
        ]
    );
    // Retargeted to the cluster's namespace.
    assert_eq!(
        seen[0].2["spec"]["selector"]["namespaces"],
        serde_json::json!(["prod"])
    );
    assert_eq!(
        seen[1].2["spec"]["volumePath"],
        serde_json::json!("/var/lib/aegis")
    );

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["phase"], "start");
    assert_eq!(lines[1]["phase"], "end");
    assert_eq!(lines[0]["scenario"], "slow-follower");
    let at: jiff::Timestamp = lines[0]["at"].as_str().unwrap().parse().unwrap();
    assert!(at.as_second() > 1_600_000_000);
}
