//! `aegisctl dev`: a local cluster of aegis-node processes on loopback.

use std::path::PathBuf;
use std::process::ExitCode;

use aegis_client::devcluster::{resolve_node_bin, BasePorts, DevCluster, NODE_BIN_NAME};
use aegis_client::{Client, ClientConfig};
use anyhow::{Context, Result};

use crate::cli::{DevArgs, DevCmd};
use crate::output::table;

pub async fn run(args: &DevArgs, json: bool) -> Result<ExitCode> {
    // Only starting a node needs the binary; signalling adopted nodes goes by pid file.
    let needs_bin = matches!(args.command, DevCmd::Up | DevCmd::Start { .. });
    let bin = if needs_bin {
        resolve_node_bin(args.node_bin.clone())?
    } else {
        args.node_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from(NODE_BIN_NAME))
    };
    let mut node_args = Vec::new();
    if let Some(cfg) = &args.config {
        let abs = std::path::absolute(cfg).with_context(|| format!("{}", cfg.display()))?;
        node_args = vec!["--config".to_string(), abs.display().to_string()];
    }
    let base = BasePorts::default();
    let shift = |p: u16| {
        p.checked_add(args.port_offset)
            .context("--port-offset too large")
    };
    let ports = BasePorts {
        client: shift(base.client)?,
        peer: shift(base.peer)?,
        metrics: shift(base.metrics)?,
    };
    let mut c = DevCluster::new(&args.data_dir, bin, args.nodes, ports)?.with_node_args(node_args);
    match &args.command {
        DevCmd::Up => {
            let leader = c.up().await?;
            let endpoints = c.client_endpoints().join(",");
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "leader": leader,
                        "endpoints": c.client_endpoints(),
                        "metrics": c.metrics_addrs(),
                        "dir": c.dir(),
                    })
                );
            } else {
                println!(
                    "{} nodes up under {}; leader is node {leader}",
                    c.size(),
                    c.dir().display()
                );
                println!("endpoints: {endpoints}");
            }
        }
        DevCmd::Down { purge } => {
            c.down()?;
            if *purge {
                // Only the node directories this tool creates, never the whole --data-dir.
                for n in 1..=c.size() {
                    let d = c.node_dir(n);
                    if d.exists() {
                        std::fs::remove_dir_all(&d)
                            .with_context(|| format!("removing {}", d.display()))?;
                    }
                }
            }
            println!(
                "{} nodes down{}",
                c.size(),
                if *purge { ", data removed" } else { "" }
            );
        }
        DevCmd::Status => {
            let procs = c.status();
            let client = Client::new_lazy(c.client_endpoints(), ClientConfig::default())?;
            let mut rows = Vec::new();
            let mut out = Vec::new();
            for p in &procs {
                let raft = match p.pid {
                    Some(_) if p.state == aegis_client::devcluster::ProcState::Running => {
                        client.status_of(&p.addrs.client).await.ok()
                    }
                    _ => None,
                };
                rows.push(vec![
                    p.id.to_string(),
                    p.pid.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
                    format!("{:?}", p.state).to_lowercase(),
                    p.addrs.client.clone(),
                    raft.as_ref()
                        .map(|s| s.role.clone())
                        .unwrap_or_else(|| "-".into()),
                    raft.as_ref()
                        .map(|s| s.term.to_string())
                        .unwrap_or_else(|| "-".into()),
                    raft.as_ref()
                        .map(|s| s.applied_index.to_string())
                        .unwrap_or_else(|| "-".into()),
                    p.log.display().to_string(),
                ]);
                out.push(serde_json::json!({ "process": p, "raft": raft }));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "{}",
                    table(
                        &["NODE", "PID", "STATE", "CLIENT", "ROLE", "TERM", "APPLIED", "LOG"],
                        &rows
                    )
                );
            }
        }
        DevCmd::Kill { n } => {
            c.kill(*n)?;
            println!("node {n} killed");
        }
        DevCmd::Start { n } => {
            c.start(*n)?;
            println!("node {n} started");
        }
        DevCmd::Stop { n } => {
            c.stop(*n)?;
            println!("node {n} stopped (SIGSTOP)");
        }
        DevCmd::Cont { n } => {
            c.cont(*n)?;
            println!("node {n} continued (SIGCONT)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
