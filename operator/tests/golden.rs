//! Golden tests of the pure builder: every object rendered for a default and a
//! customised spec. `UPDATE_GOLDEN=1 cargo test -p aegis-operator --test golden` rewrites
//! the files after a deliberate change; review the diff.

use std::path::PathBuf;

use aegis_operator::build::{build, BuildInputs, DesiredObjects};
use aegis_operator::crd::AegisCluster;
use aegis_operator::validate::{validate_config, ConfigVerdict};
use serde_json::json;

fn cluster(spec: serde_json::Value) -> AegisCluster {
    serde_json::from_value(json!({
        "apiVersion": "aegis.dev/v1alpha1",
        "kind": "AegisCluster",
        "metadata": {"name": "demo", "namespace": "aegis", "uid": "0b5c3d1e-7f00-4e21-9a55-5d1c2b7e9a10"},
        "spec": spec,
    }))
    .unwrap()
}

fn inputs(replicas: i32, bootstrap: Option<i32>) -> BuildInputs {
    let config = match validate_config("raft:\n  heartbeat-interval-ms: 50\n") {
        ConfigVerdict::Accepted(c) => c,
        other => panic!("{other:?}"),
    };
    BuildInputs {
        config,
        statefulset_replicas: replicas,
        bootstrap_replicas: bootstrap,
    }
}

fn render(objs: &DesiredObjects) -> String {
    let mut docs = vec![
        serde_norway::to_string(&objs.config_map).unwrap(),
        serde_norway::to_string(&objs.headless_service).unwrap(),
        serde_norway::to_string(&objs.client_service).unwrap(),
        serde_norway::to_string(&objs.statefulset).unwrap(),
        serde_norway::to_string(&objs.pdb).unwrap(),
    ];
    if let Some(np) = &objs.network_policy {
        docs.push(serde_norway::to_string(np).unwrap());
    }
    if let Some(sm) = &objs.service_monitor {
        docs.push(serde_norway::to_string(sm).unwrap());
    }
    docs.join("---\n")
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    pretty_assertions::assert_eq!(expected, actual, "{} differs", path.display());
}

#[test]
fn default_spec_renders_the_golden_objects() {
    let c = cluster(json!({"image": "aegis-node:0.1.0", "config": {"name": "aegis-config"}}));
    let objs = build(&c, &inputs(5, Some(5))).unwrap();
    assert!(objs.service_monitor.is_none());
    assert!(objs.network_policy.is_some());
    check("default.yaml", &render(&objs));
}

#[test]
fn customised_spec_renders_the_golden_objects() {
    let c = cluster(json!({
        "replicas": 3,
        "image": "registry.example/aegis-node:1.2.3",
        "imagePullPolicy": "IfNotPresent",
        "storage": {"size": "20Gi", "storageClassName": "fast-ssd"},
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "config": {"name": "aegis-config", "key": "cluster.yaml"},
        "telemetry": {"serviceMonitor": {"enabled": true, "interval": "30s", "labels": {"release": "kube-prometheus-stack"}}},
        "chaos": {"enabled": true},
        "networkPolicy": {"enabled": true, "clientNamespaceLabels": {"team": "payments"}},
    }));
    let objs = build(&c, &inputs(3, None)).unwrap();
    check("customized.yaml", &render(&objs));
}

#[test]
fn build_is_deterministic_and_needs_an_owner() {
    let c = cluster(json!({"image": "i", "config": {"name": "c"}}));
    let a = render(&build(&c, &inputs(5, Some(5))).unwrap());
    let b = render(&build(&c, &inputs(5, Some(5))).unwrap());
    assert_eq!(a, b);
    let mut orphan = c.clone();
    orphan.metadata.uid = None;
    assert!(build(&orphan, &inputs(5, None)).is_err());
}
