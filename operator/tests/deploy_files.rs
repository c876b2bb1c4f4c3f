//! Checks of the deployment files that need no Docker engine or API server: the
//! Dockerfiles are multi-stage and end non-root, the kind config and the CI workflow
//! parse, and the e2e script is valid bash that runs every step of the recipe.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn dockerfiles_are_multi_stage_and_run_as_non_root() {
    for (file, bin) in [
        ("images/node.Dockerfile", "aegis-node"),
        ("images/operator.Dockerfile", "aegis-operator"),
        ("images/agent.Dockerfile", "aegis-agent"),
    ] {
        let text = read(file);
        let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert!(froms.len() >= 2, "{file}: not multi-stage");
        assert!(
            froms[0].contains(" AS build"),
            "{file}: first stage is not the build"
        );
        let last_from = text.rfind("\nFROM ").unwrap();
        let runtime = &text[last_from..];
        let user = runtime
            .lines()
            .filter_map(|l| l.strip_prefix("USER "))
            .next_back()
            .unwrap_or_else(|| panic!("{file}: runtime stage sets no USER"));
        assert!(
            !user.starts_with("root") && !user.starts_with("0"),
            "{file}: USER {user}"
        );
        assert!(
            text.contains(&format!("--bin {bin}")),
            "{file}: does not build {bin}"
        );
        assert!(
            runtime.contains("COPY --from=build"),
            "{file}: runtime does not copy the binary"
        );
    }
}

#[test]
fn kind_config_and_workflow_parse() {
    let kind: serde_norway::Value = serde_norway::from_str(&read("kind-config.yaml")).unwrap();
    assert_eq!(kind["kind"].as_str(), Some("Cluster"));
    assert_eq!(kind["apiVersion"].as_str(), Some("kind.x-k8s.io/v1alpha4"));
    let workers = kind["nodes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|n| n["role"].as_str() == Some("worker"))
        .count();
    assert!(workers >= 3, "anti-affinity needs workers to spread over");

    let wf: serde_norway::Value =
        serde_norway::from_str(&read(".github/workflows/kind-e2e.yml")).unwrap();
    let steps = wf["jobs"]["e2e"]["steps"].as_sequence().unwrap();
    assert!(steps.iter().any(|s| s["run"]
        .as_str()
        .is_some_and(|r| r.contains("scripts/kind-e2e.sh"))));
}

#[test]
fn e2e_script_is_valid_bash_and_covers_the_recipe() {
    let path = root().join("scripts/kind-e2e.sh");
    let ok = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "bash -n failed");
    let text = read("scripts/kind-e2e.sh");
    for step in [
        "kind create cluster --config kind-config.yaml",
        "kind load docker-image",
        "chaos-mesh/chaos-mesh",
        "kube-prometheus-stack",
        "helm upgrade --install aegis charts/aegis",
        "--for=condition=Available",
        "chaos run",
    ] {
        assert!(text.contains(step), "kind-e2e.sh lacks {step:?}");
    }
}

#[test]
fn agent_template_has_no_kubernetes_rights_no_token_and_no_route_to_node_ports() {
    let agent = read("charts/aegis/templates/agent.yaml");
    assert_eq!(
        agent.matches("automountServiceAccountToken: false").count(),
        2,
        "the token must be off on the ServiceAccount and the pod"
    );
    for forbidden in ["kind: Role", "kind: RoleBinding", "kind: ClusterRole"] {
        assert!(
            !agent.contains(forbidden),
            "agent template grants rights: {forbidden}"
        );
    }
    let rbac = read("charts/aegis/templates/operator-rbac.yaml");
    assert!(
        !rbac.contains("aegis.agent.name"),
        "operator RBAC must not bind the agent"
    );
    assert!(
        agent.contains("secretKeyRef"),
        "GitHub token must come from a Secret"
    );
    let egress = &agent[agent.find("egress:").unwrap()..];
    for port in ["7400", "7500", "7600"] {
        assert!(
            !egress.contains(port),
            "agent egress reaches node port {port}"
        );
    }
    for private in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] {
        assert!(
            egress.contains(private),
            "HTTPS egress does not exclude {private}"
        );
    }
}

#[test]
fn dashboard_is_valid_json_over_the_contract_metrics() {
    let dash: serde_json::Value =
        serde_json::from_str(&read("charts/aegis/dashboards/aegis.json")).unwrap();
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    // DESIGN §4 names the agent and the dashboard read.
    for metric in [
        "aegis_raft_term",
        "aegis_raft_is_leader",
        "aegis_raft_log_lag",
        "aegis_raft_leader_changes_total",
        "aegis_storage_fsync_seconds_bucket",
        "aegis_node_wall_clock_ms",
        "aegis_config_info",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(metric)),
            "no panel shows {metric}"
        );
    }
    let ids: std::collections::BTreeSet<u64> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        dash["panels"].as_array().unwrap().len(),
        "duplicate panel ids"
    );
}
