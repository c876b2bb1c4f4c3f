//! Writes the AegisCluster CRD to `crds/` and the Helm chart (or checks them with `--check`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Generate the AegisCluster CRD YAML")]
struct Args {
    /// Workspace root the output paths are relative to.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Fail instead of writing when a file is stale.
    #[arg(long)]
    check: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let yaml = aegis_operator::crdgen::crd_yaml().context("serialising the CRD")?;
    let mut stale = Vec::new();
    for rel in aegis_operator::crdgen::OUTPUTS {
        let path = args.root.join(rel);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == yaml {
            continue;
        }
        if args.check {
            stale.push(path.display().to_string());
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, &yaml).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if !stale.is_empty() {
        bail!("stale CRD, run crdgen: {}", stale.join(", "));
    }
    Ok(())
}
