//! Shared setup for tests that run real `aegis-node` processes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use aegis_client::devcluster::{resolve_node_bin, DevCluster};

/// The node binary: AEGIS_NODE_BIN, else the one in this target dir, built on demand.
pub fn node_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("AEGIS_NODE_BIN") {
            return PathBuf::from(p);
        }
        if let Ok(p) = resolve_node_bin(None) {
            return p;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "aegis-node", "--bin", "aegis-node"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build for aegis-node");
        assert!(status.success(), "building aegis-node failed");
        resolve_node_bin(None).expect("aegis-node after building it")
    })
    .clone()
}

/// A started ephemeral cluster; dropped, it kills its nodes.
pub async fn cluster(nodes: usize, node_args: Vec<String>) -> DevCluster {
    let mut c = DevCluster::ephemeral(node_bin(), nodes)
        .unwrap()
        .with_node_args(node_args)
        .with_up_timeout(Duration::from_secs(60));
    if let Err(e) = c.up().await {
        for n in 1..=nodes {
            let log = std::fs::read_to_string(c.log_path(n)).unwrap_or_default();
            eprintln!("---- node {n} log ----\n{log}");
        }
        panic!("cluster did not come up: {e}");
    }
    c
}
