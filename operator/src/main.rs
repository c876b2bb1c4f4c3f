//! `aegis-operator run` reconciles AegisClusters; `aegis-operator chaos run SCENARIO`
//! applies one Chaos Mesh scenario and records it in the events log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use aegis_operator::admin::grpc::GrpcClusterAdmin;
use aegis_operator::chaos::{self, runner};
use aegis_operator::crd::AegisCluster;
use aegis_operator::metrics::{self, Metrics};
use aegis_operator::reconcile::{error_policy, reconcile, Context};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};

#[derive(Parser)]
#[command(
    name = "aegis-operator",
    version,
    about = "Runs AEGIS Raft clusters on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reconcile every AegisCluster (in one namespace, or all).
    Run {
        #[arg(long, env = "AEGIS_WATCH_NAMESPACE")]
        namespace: Option<String>,
        #[arg(long, env = "AEGIS_METRICS_ADDR", default_value = "0.0.0.0:8080")]
        metrics_addr: SocketAddr,
    },
    /// Chaos Mesh scenarios (DESIGN §6).
    Chaos {
        #[command(subcommand)]
        command: ChaosCommand,
    },
}

#[derive(Subcommand)]
enum ChaosCommand {
    /// List the scenarios.
    List,
    /// Apply a scenario's manifests, wait for its duration, delete them.
    Run {
        scenario: String,
        #[arg(long, default_value = "default")]
        namespace: String,
        #[arg(long, default_value = "chaos-manifests")]
        manifests: PathBuf,
        /// JSON lines `{at, phase, scenario}` are appended here.
        #[arg(long, default_value = ".aegis/chaos-events.jsonl")]
        events_log: PathBuf,
        /// Leave the experiment in place instead of deleting it after its duration.
        #[arg(long)]
        keep: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Run {
            namespace,
            metrics_addr,
        } => run(namespace, metrics_addr).await,
        Command::Chaos { command } => match command {
            ChaosCommand::List => {
                for s in chaos::Scenario::ALL {
                    println!("{}", s.name());
                }
                Ok(())
            }
            ChaosCommand::Run {
                scenario,
                namespace,
                manifests,
                events_log,
                keep,
            } => {
                let scenario = chaos::Scenario::parse(&scenario)
                    .with_context(|| format!("unknown scenario {scenario:?}"))?;
                let client = Client::try_default()
                    .await
                    .context("connecting to Kubernetes")?;
                runner::run(client, &namespace, &manifests, &events_log, scenario, !keep)
                    .await
                    .with_context(|| format!("running chaos scenario {}", scenario.name()))
            }
        },
    }
}

async fn run(namespace: Option<String>, metrics_addr: SocketAddr) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let server = tokio::spawn(metrics::serve(metrics_addr, metrics.clone()));
    let (clusters, sts, svcs, cms): (
        Api<AegisCluster>,
        Api<StatefulSet>,
        Api<Service>,
        Api<ConfigMap>,
    ) = match &namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let ctx = Arc::new(Context::new(client, GrpcClusterAdmin::default(), metrics));
    let controller = Controller::new(clusters.clone(), watcher::Config::default());
    let store = controller.store();
    tracing::info!(namespace = ?namespace, %metrics_addr, "aegis-operator starting");
    controller
        .owns(sts, watcher::Config::default())
        .owns(svcs, watcher::Config::default())
        // The source ConfigMap is not owned (Git owns it): map it to the clusters naming it.
        .watches(cms, watcher::Config::default(), move |cm| {
            let ns = cm.metadata.namespace.clone();
            let name = cm.metadata.name.clone();
            store
                .state()
                .into_iter()
                .filter(|c| {
                    c.metadata.namespace == ns && Some(&c.spec.config.name) == name.as_ref()
                })
                .map(|c| kube::runtime::reflector::ObjectRef::from_obj(&*c))
                .collect::<Vec<_>>()
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reconcile loop");
            }
        })
        .await;
    server.abort();
    Ok(())
}
