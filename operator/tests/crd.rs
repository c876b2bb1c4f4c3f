//! The CRD in git is crdgen's output, and the API server's CEL rules refuse invalid specs.

use std::path::Path;

use aegis_operator::crd::AegisCluster;
use kube::core::cel::Validator;
use kube::CustomResourceExt;
use serde_json::{json, Value};

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn crd_files_in_git_equal_crdgen_output() {
    let expected = aegis_operator::crdgen::crd_yaml().unwrap();
    for rel in aegis_operator::crdgen::OUTPUTS {
        let path = workspace_root().join(rel);
        let current = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} missing ({e}); run crdgen", path.display()));
        assert!(
            current == expected,
            "{} is stale: run `cargo run -p aegis-operator --bin crdgen`",
            path.display()
        );
    }
}

fn schema() -> Value {
    let crd = AegisCluster::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

fn object(spec: Value) -> Value {
    json!({
        "apiVersion": "aegis.dev/v1alpha1",
        "kind": "AegisCluster",
        "metadata": {"name": "demo", "namespace": "ns"},
        "spec": spec,
    })
}

fn cel_errors(spec: Value) -> Vec<String> {
    match Validator::new().validate(&schema(), &object(spec), None) {
        Ok(()) => Vec::new(),
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn valid_spec_passes_cel() {
    let errs = cel_errors(json!({
        "replicas": 5, "image": "aegis-node:dev", "config": {"name": "cfg"},
        "configSource": {"git": {"url": "https://example.org/cfg.git", "path": "clusters/demo/aegis.yaml"}}
    }));
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn storage_is_fixed_after_creation_by_cel() {
    let spec = |size: &str| json!({"replicas": 3, "image": "i", "config": {"name": "cfg"}, "storage": {"size": size}});
    let v = Validator::new();
    let changed = v.validate(&schema(), &object(spec("2Gi")), Some(&object(spec("1Gi"))));
    let err = changed
        .expect_err("a storage change is refused")
        .to_string();
    assert!(err.contains("storage cannot be changed"), "{err}");
    let same = v.validate(&schema(), &object(spec("1Gi")), Some(&object(spec("1Gi"))));
    assert!(same.is_ok(), "{same:?}");
}

#[test]
fn even_replicas_are_refused_by_cel() {
    let errs = cel_errors(json!({"replicas": 4, "image": "i", "config": {"name": "cfg"}}));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("replicas must be odd"), "{errs:?}");
}

#[test]
fn git_path_escaping_the_repository_is_refused_by_cel() {
    let errs = cel_errors(json!({
        "image": "i", "config": {"name": "cfg"},
        "configSource": {"git": {"url": "http://plain.example", "path": "../../etc"}}
    }));
    let all = errs.join("\n");
    assert!(all.contains("path must be relative"), "{all}");
    assert!(all.contains("url must be https://"), "{all}");
}

#[test]
fn schema_bounds_and_required_fields_are_declared() {
    let s = schema();
    let spec = &s["properties"]["spec"];
    let replicas = &spec["properties"]["replicas"];
    assert_eq!(replicas["default"], json!(5));
    assert_eq!(replicas["minimum"].as_f64(), Some(1.0));
    assert_eq!(replicas["maximum"].as_f64(), Some(9.0));
    let required: Vec<&str> = spec["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, vec!["config", "image"]);
    assert!(spec["properties"]["storage"]["properties"]["size"]["pattern"].is_string());
    let status = &s["properties"]["status"]["properties"];
    for field in [
        "conditions",
        "leader",
        "term",
        "members",
        "configHash",
        "configGitRevision",
        "observedGeneration",
    ] {
        assert!(status.get(field).is_some(), "status.{field} missing");
    }
}
