//! ADR-001 as a property of the build: the agent's dependency graph (every kind of dependency,
//! transitively) contains the config crate and none of the data plane.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Crates that would give the agent a way into the data path.
const FORBIDDEN: &[&str] = &[
    "aegis-node",
    "aegis-client",
    "aegis-proto",
    "aegis-state-machine",
    "aegis-wal",
    "openraft",
    "tonic",
];

/// Names of every package reachable from `root` in `cargo metadata` output.
fn reachable(metadata: &Value, root: &str) -> BTreeSet<String> {
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, Vec<&str>> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["pkg"].as_str().unwrap())
                .collect();
            (n["id"].as_str().unwrap(), deps)
        })
        .collect();
    let start = names
        .iter()
        .find(|(_, n)| **n == root)
        .map(|(id, _)| *id)
        .expect("root package in metadata");
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        stack.extend(nodes.get(id).into_iter().flatten());
    }
    seen.iter()
        .filter(|id| **id != start)
        .map(|id| names[id].to_string())
        .collect()
}

fn violations(deps: &BTreeSet<String>) -> Vec<String> {
    FORBIDDEN
        .iter()
        .filter(|f| deps.contains(**f))
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn the_agent_does_not_depend_on_the_data_plane() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let deps = reachable(&metadata, "aegis-agent");
    assert!(
        deps.contains("aegis-config"),
        "the agent must check proposals with aegis-config"
    );
    assert_eq!(violations(&deps), Vec::<String>::new(), "ADR-001 broken");
}

#[test]
fn the_check_catches_a_transitive_data_plane_dependency() {
    // agent -> helper -> aegis-client: must be flagged.
    let metadata = serde_json::json!({
        "packages": [
            {"id": "a", "name": "aegis-agent"},
            {"id": "h", "name": "helper"},
            {"id": "c", "name": "aegis-client"},
            {"id": "k", "name": "aegis-config"}
        ],
        "resolve": {"nodes": [
            {"id": "a", "deps": [{"pkg": "h"}, {"pkg": "k"}]},
            {"id": "h", "deps": [{"pkg": "c"}]},
            {"id": "c", "deps": []},
            {"id": "k", "deps": []}
        ]}
    });
    let deps = reachable(&metadata, "aegis-agent");
    assert_eq!(violations(&deps), vec!["aegis-client".to_string()]);
}
