//! Finds or builds the `aegis-node` executable the harness runs.
//!
//! `cargo test` does not build other packages' binaries, so the harness
//! runs `cargo build -p aegis-node` itself (a no-op when up to date) and
//! copies the result aside per feature set, since builds with and without
//! `failpoints` write the same output path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Which build of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Default,
    Failpoints,
}

impl Variant {
    fn env(self) -> &'static str {
        match self {
            Variant::Default => "AEGIS_NODE_BIN",
            Variant::Failpoints => "AEGIS_NODE_BIN_FAILPOINTS",
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::Failpoints => "failpoints",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeBinError {
    #[error("{var} names {path}, which is not a file")]
    BadEnv { var: &'static str, path: String },
    #[error("running cargo: {0}")]
    Cargo(String),
    #[error("cargo build of aegis-node failed:\n{0}")]
    BuildFailed(String),
    #[error("cargo reported no aegis-node executable")]
    NoExecutable,
    #[error("copying the node binary: {0}")]
    Copy(std::io::Error),
}

static BUILD: Mutex<()> = Mutex::new(());

/// The workspace root: this crate's parent directory.
fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The node binary for `variant`: from `AEGIS_NODE_BIN` /
/// `AEGIS_NODE_BIN_FAILPOINTS` when set, else built with cargo.
pub fn ensure(variant: Variant) -> Result<PathBuf, NodeBinError> {
    if let Ok(p) = std::env::var(variant.env()) {
        let path = PathBuf::from(&p);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(NodeBinError::BadEnv {
                var: variant.env(),
                path: p,
            })
        };
    }
    let _g = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root()).args([
        "build",
        "-p",
        "aegis-node",
        "--bin",
        "aegis-node",
        "--message-format=json-render-diagnostics",
    ]);
    if variant == Variant::Failpoints {
        cmd.args(["--features", "failpoints"]);
    }
    let out = cmd
        .output()
        .map_err(|e| NodeBinError::Cargo(e.to_string()))?;
    if !out.status.success() {
        return Err(NodeBinError::BuildFailed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "aegis-node")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or(NodeBinError::NoExecutable)?;
    let dir = exe
        .parent()
        .map(|p| p.join("chaos-bin"))
        .unwrap_or_else(|| PathBuf::from("chaos-bin"));
    std::fs::create_dir_all(&dir).map_err(NodeBinError::Copy)?;
    let dest = dir.join(format!("aegis-node-{}", variant.suffix()));
    // Copy to a temporary name and rename, so a node already running from
    // `dest` keeps its old image.
    let tmp = dir.join(format!(
        ".aegis-node-{}.{}",
        variant.suffix(),
        std::process::id()
    ));
    std::fs::copy(&exe, &tmp).map_err(NodeBinError::Copy)?;
    std::fs::rename(&tmp, &dest).map_err(NodeBinError::Copy)?;
    Ok(dest)
}
