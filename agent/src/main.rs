//! `aegis-agent`: the command line of the operations agent.

use aegis_agent::bench;
use aegis_agent::classifier::{Classifier, RuleClassifier};
use aegis_agent::diagnoser::{
    Diagnoser, DiagnosisRequest, HeuristicDiagnoser, KnowledgeBase, LlmReranker,
};
use aegis_agent::github::{GitHub, RetryPolicy};
use aegis_agent::llm::{LlmClient, LlmConfig};
use aegis_agent::postmortem;
use aegis_agent::proposer::{self, Outcome, ProposerSettings};
use aegis_agent::run::{self as agent_run, Agent, AgentMetrics, RunSettings};
use aegis_agent::telemetry::{PrometheusSource, TelemetryWindow};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "aegis-agent",
    version,
    about = "AEGIS operations agent (advises through GitHub only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum DiagnoserChoice {
    Heuristic,
    /// LLM re-ranking over the heuristic (AEGIS_LLM_* environment); falls back on failure.
    Llm,
}

#[derive(clap::Args)]
struct WindowSource {
    /// A telemetry window JSON file (an incident file works too).
    #[arg(long, conflicts_with = "prometheus")]
    window: Option<PathBuf>,
    /// Prometheus base URL; the window is the last --length ending now.
    #[arg(long, env = "AEGIS_PROMETHEUS_URL")]
    prometheus: Option<String>,
    #[arg(long, default_value = "120", value_name = "SECONDS")]
    length: u64,
    #[arg(long, default_value = "10", value_name = "SECONDS")]
    step: u64,
    /// PromQL label matcher added to every query, e.g. job="aegis".
    #[arg(long, env = "AEGIS_PROMETHEUS_SELECTOR")]
    selector: Option<String>,
}

#[derive(clap::Args)]
struct GitHubArgs {
    /// Config repository, owner/name.
    #[arg(long, env = "AEGIS_CONFIG_REPO")]
    repo: Option<String>,
    /// GitHub API root (a GitHub Enterprise or test URL).
    #[arg(
        long,
        env = "AEGIS_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    github_api: String,
    /// Path of the cluster config in the repository.
    #[arg(long, env = "AEGIS_CONFIG_PATH", default_value = "aegis.yaml")]
    config_path: String,
    #[arg(long, env = "AEGIS_CONFIG_BRANCH", default_value = "main")]
    base: String,
    /// Deployed config from a local file instead of the repository.
    #[arg(long)]
    deployed: Option<PathBuf>,
    /// JSONL log of proposals the safety envelope blocked.
    #[arg(
        long,
        env = "AEGIS_AUDIT_LOG",
        default_value = "aegis-agent-audit.jsonl"
    )]
    audit_log: PathBuf,
    /// Print what would be opened instead of opening it.
    #[arg(long)]
    dry_run: bool,
}

impl GitHubArgs {
    fn client(&self) -> Result<Option<GitHub>> {
        let Some(repo) = &self.repo else {
            return Ok(None);
        };
        let (owner, name) = repo
            .split_once('/')
            .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
            .with_context(|| format!("--repo must be owner/name, got {repo:?}"))?;
        let token = std::env::var(aegis_agent::github::ENV_TOKEN)
            .ok()
            .filter(|t| !t.is_empty());
        Ok(Some(GitHub::new(
            &self.github_api,
            token,
            owner,
            name,
            RetryPolicy::default(),
        )?))
    }

    fn settings(&self) -> ProposerSettings {
        ProposerSettings {
            config_path: self.config_path.clone(),
            base_branch: self.base.clone(),
            audit_log: self.audit_log.clone(),
        }
    }

    fn deployed_text(&self) -> Result<Option<String>> {
        self.deployed
            .as_ref()
            .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
            .transpose()
    }
}

#[derive(Subcommand)]
enum Command {
    /// Classify one window; prints the Anomaly JSON.
    Classify {
        #[command(flatten)]
        source: WindowSource,
    },
    /// Classify and rank root causes for one window; prints JSON.
    Diagnose {
        #[command(flatten)]
        source: WindowSource,
        #[arg(long, value_enum, default_value = "heuristic")]
        diagnoser: DiagnoserChoice,
        /// Incident corpus used for retrieval.
        #[arg(long, default_value = default_incidents())]
        incidents: PathBuf,
        /// Postmortem knowledge-base records (JSON) also used for retrieval.
        #[arg(long, env = "AEGIS_KNOWLEDGE_DIR")]
        knowledge: Option<PathBuf>,
    },
    /// Classify a window and propose a config pull request for the anomaly.
    Propose {
        #[command(flatten)]
        source: WindowSource,
        #[command(flatten)]
        github: GitHubArgs,
        /// Use this YAML patch instead of the built-in one (it still goes through the envelope).
        #[arg(long)]
        patch: Option<PathBuf>,
    },
    /// Draft a postmortem for a window and open (or reuse) its GitHub issue.
    Postmortem {
        #[command(flatten)]
        source: WindowSource,
        #[command(flatten)]
        github: GitHubArgs,
        /// Incident corpus used for retrieval.
        #[arg(long, default_value = default_incidents())]
        incidents: PathBuf,
        /// Knowledge-base directory: read for retrieval, and this postmortem is added to it.
        #[arg(long, env = "AEGIS_KNOWLEDGE_DIR")]
        knowledge: Option<PathBuf>,
        /// Ask the LLM endpoint (AEGIS_LLM_*) for a narrative on top of the template.
        #[arg(long)]
        narrate: bool,
    },
    /// The loop: window every interval, classify, act on sustained anomalies.
    Run {
        #[arg(long, env = "AEGIS_PROMETHEUS_URL")]
        prometheus: String,
        #[arg(long, env = "AEGIS_PROMETHEUS_SELECTOR")]
        selector: Option<String>,
        #[arg(long, default_value = "30", value_name = "SECONDS")]
        interval: u64,
        #[arg(long, default_value = "120", value_name = "SECONDS")]
        length: u64,
        #[arg(long, default_value = "10", value_name = "SECONDS")]
        step: u64,
        /// Consecutive windows of the same anomaly before acting.
        #[arg(long, default_value = "3")]
        sustain: u32,
        /// Address of the agent's own /metrics.
        #[arg(long, default_value = "0.0.0.0:9464")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        github: GitHubArgs,
        #[arg(long, default_value = default_incidents())]
        incidents: PathBuf,
        #[arg(long, env = "AEGIS_KNOWLEDGE_DIR")]
        knowledge: Option<PathBuf>,
    },
    /// Run ConsensusOps-Bench and print the scorecard.
    Bench {
        /// Directory of seed incidents; variants are derived in code.
        #[arg(long, default_value = default_incidents())]
        incidents: PathBuf,
        #[arg(long, value_enum, default_value = "heuristic")]
        diagnoser: DiagnoserChoice,
        /// Write the full scorecard JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write the expanded corpus (seeds + variants) as one file per incident here.
        #[arg(long)]
        dump_corpus: Option<PathBuf>,
    },
}

fn default_incidents() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/bench/incidents")
}

async fn load_window(src: &WindowSource) -> Result<TelemetryWindow> {
    if let Some(path) = &src.window {
        return Ok(TelemetryWindow::from_file(path)?);
    }
    let Some(url) = &src.prometheus else {
        anyhow::bail!("give a telemetry source: --window FILE or --prometheus URL");
    };
    let source =
        PrometheusSource::new(url, Duration::from_secs(10))?.with_selector(src.selector.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("system clock is before 1970")?
        .as_millis() as i64;
    Ok(source
        .window(
            now,
            Duration::from_secs(src.length),
            Duration::from_secs(src.step),
        )
        .await?)
}

fn make_diagnoser(choice: DiagnoserChoice, kb: KnowledgeBase) -> Result<Box<dyn Diagnoser>> {
    let heuristic = HeuristicDiagnoser::new(Arc::new(kb));
    Ok(match choice {
        DiagnoserChoice::Heuristic => Box::new(heuristic),
        DiagnoserChoice::Llm => {
            let client = match LlmConfig::from_env() {
                Some(cfg) => Some(LlmClient::new(cfg)?),
                None => {
                    eprintln!(
                        "note: AEGIS_LLM_BASE_URL / AEGIS_LLM_MODEL not set; the LLM diagnoser falls back to the heuristic"
                    );
                    None
                }
            };
            Box::new(LlmReranker { heuristic, client })
        }
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Classify { source } => {
            let window = load_window(&source).await?;
            let anomaly = RuleClassifier.classify(&window);
            println!("{}", serde_json::to_string_pretty(&anomaly)?);
        }
        Command::Diagnose {
            source,
            diagnoser,
            incidents,
            knowledge,
        } => {
            let window = load_window(&source).await?;
            let mut kb = KnowledgeBase::from_incidents(&bench::corpus(&incidents)?);
            if let Some(dir) = &knowledge {
                kb.add_postmortems(dir)?;
            }
            let d = make_diagnoser(diagnoser, kb)?;
            let anomaly = RuleClassifier.classify(&window);
            let diagnosis = d
                .diagnose(DiagnosisRequest {
                    anomaly: &anomaly,
                    window: &window,
                    exclude_family: None,
                })
                .await;
            let out = serde_json::json!({"anomaly": anomaly, "diagnosis": diagnosis});
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Propose {
            source,
            github,
            patch,
        } => {
            let window = load_window(&source).await?;
            let anomaly = RuleClassifier.classify(&window);
            let gh = github.client()?;
            let deployed = github.deployed_text()?;
            let settings = github.settings();
            let outcome = match &patch {
                None => {
                    proposer::propose(
                        gh.as_ref(),
                        &settings,
                        &anomaly,
                        deployed.as_deref(),
                        github.dry_run,
                    )
                    .await?
                }
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    let base = match deployed {
                        Some(d) => d,
                        None => {
                            let gh = gh.as_ref().context(
                                "--patch needs --deployed or --repo to read the deployed config",
                            )?;
                            gh.get_file(&settings.config_path, &settings.base_branch)
                                .await?
                                .with_context(|| {
                                    format!(
                                        "{} not found on {}",
                                        settings.config_path, settings.base_branch
                                    )
                                })?
                                .text
                        }
                    };
                    let plan = proposer::plan_with_patch_text(
                        &anomaly,
                        &base,
                        &text,
                        &[format!("patch from {}", p.display())],
                    );
                    proposer::execute(gh.as_ref(), &settings, plan, github.dry_run).await?
                }
            };
            match &outcome {
                Outcome::DryRun(p) => {
                    println!("branch: {}\ntitle: {}\n\n{}", p.branch, p.title, p.body);
                }
                other => println!("{}", serde_json::to_string_pretty(other)?),
            }
            if let Outcome::Blocked(b) = &outcome {
                anyhow::bail!(
                    "proposal blocked by the safety envelope: {}",
                    b.rule_ids.join(", ")
                );
            }
        }
        Command::Postmortem {
            source,
            github,
            incidents,
            knowledge,
            narrate,
        } => {
            let window = load_window(&source).await?;
            let anomaly = RuleClassifier.classify(&window);
            let mut kb = KnowledgeBase::from_incidents(&bench::corpus(&incidents)?);
            if let Some(dir) = &knowledge {
                kb.add_postmortems(dir)?;
            }
            let heuristic = HeuristicDiagnoser::new(Arc::new(kb.clone()));
            let diagnosis = heuristic.diagnose_sync(&DiagnosisRequest {
                anomaly: &anomaly,
                window: &window,
                exclude_family: None,
            });
            let mut draft = postmortem::draft(&anomaly, &window, &diagnosis, &kb, None);
            if narrate {
                match LlmConfig::from_env() {
                    Some(cfg) => draft = postmortem::narrate(&LlmClient::new(cfg)?, draft).await,
                    None => eprintln!("note: --narrate without AEGIS_LLM_BASE_URL / AEGIS_LLM_MODEL; template only"),
                }
            }
            if let Some(dir) = &knowledge {
                postmortem::record(dir, &draft, &window, &diagnosis).with_context(|| {
                    format!("writing the knowledge record in {}", dir.display())
                })?;
            }
            let gh = github.client()?;
            let outcome = postmortem::publish(gh.as_ref(), &draft, github.dry_run).await?;
            match outcome {
                postmortem::IssueOutcome::DryRun { .. } => {
                    println!("# {}\n\n{}", draft.title, draft.body)
                }
                other => println!("{}", serde_json::to_string_pretty(&other)?),
            }
        }
        Command::Run {
            prometheus,
            selector,
            interval,
            length,
            step,
            sustain,
            listen,
            github,
            incidents,
            knowledge,
        } => {
            if github.repo.is_none() && github.deployed.is_none() {
                anyhow::bail!(
                    "run needs the deployed config: give --repo owner/name (read from GitHub) or --deployed FILE"
                );
            }
            let source = PrometheusSource::new(&prometheus, Duration::from_secs(10))?
                .with_selector(selector);
            let mut kb = KnowledgeBase::from_incidents(&bench::corpus(&incidents)?);
            if let Some(dir) = &knowledge {
                kb.add_postmortems(dir)?;
            }
            let llm = LlmConfig::from_env().map(LlmClient::new).transpose()?;
            let metrics = AgentMetrics::new()?;
            let listener = agent_run::bind_metrics(listen)
                .await
                .with_context(|| format!("binding the metrics listener on {listen}"))?;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let mut rx = stop_rx.clone();
            let server = tokio::spawn(agent_run::serve_metrics(
                listener,
                metrics.clone(),
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                },
            ));
            let settings = RunSettings {
                interval: Duration::from_secs(interval),
                window_length: Duration::from_secs(length),
                step: Duration::from_secs(step),
                sustain_windows: sustain,
                dry_run: github.dry_run,
                proposer: github.settings(),
                deployed: github.deployed_text()?,
                knowledge_dir: knowledge.clone(),
            };
            let agent = Agent::new(source, github.client()?, llm, kb, settings, metrics);
            agent.run(shutdown_signal()).await;
            let _ = stop_tx.send(true);
            server.await.context("metrics server task")??;
        }
        Command::Bench {
            incidents,
            diagnoser,
            json,
            dump_corpus,
        } => {
            let corpus = bench::corpus(&incidents)
                .with_context(|| format!("loading incidents from {}", incidents.display()))?;
            if let Some(dir) = &dump_corpus {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                for i in &corpus {
                    let path = dir.join(format!("{}.json", i.id));
                    std::fs::write(&path, serde_json::to_string_pretty(i)?)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            let d = make_diagnoser(diagnoser, KnowledgeBase::from_incidents(&corpus))?;
            let card = bench::run(&corpus, None, Some(d.as_ref())).await;
            print!("{}", card.table());
            if let Some(path) = &json {
                std::fs::write(path, serde_json::to_string_pretty(&card)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends on pod deletion).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
