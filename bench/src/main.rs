use std::time::Duration;

use anyhow::Context;

use aegis_bench::backend::{wait_for_leader, Op, OpSpec, Target};
use aegis_bench::cli::{Cli, Command, Consistency, LoadArgs, To};
use aegis_bench::compare::{self, MemReport};
use aegis_bench::failover::{self, FailoverSpec};
use aegis_bench::keys;
use aegis_bench::pairs;
use aegis_bench::procs::Cluster;
use aegis_bench::runner::{self, LoadSpec};
use aegis_bench::timeline;
use aegis_bench::watch::{self, WatchSpec};

/// How long a load run looks for the leader before it gives up: longer than
/// a few elections at the default timing (250..500 ms each).
const LEADER_PATIENCE: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_checked(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(cli))
}

fn emit<T: serde::Serialize>(cli: &Cli, value: &T, text: String) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(value).context("encoding the result")?;
    if let Some(path) = &cli.out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if cli.json {
        println!("{json}");
    } else {
        print!("{text}");
    }
    Ok(())
}

/// The endpoints a load run uses: all of them, or only the leader's.
async fn load_endpoints(
    target: Target,
    endpoints: &[String],
    to: To,
) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        !endpoints.is_empty(),
        "give --endpoints (or BENCH_ENDPOINTS)"
    );
    match to {
        To::All => Ok(endpoints.to_vec()),
        To::Leader => {
            let l = wait_for_leader(target, endpoints, Duration::from_secs(2), LEADER_PATIENCE)
                .await
                .with_context(|| {
                    format!(
                        "no member reported itself leader within {LEADER_PATIENCE:?} \
                         (use --to all to skip the lookup)"
                    )
                })?;
            Ok(vec![endpoints[l].clone()])
        }
    }
}

async fn load(cli: &Cli, args: &LoadArgs, op: Op) -> anyhow::Result<()> {
    let duration = args
        .duration
        .map(|d| {
            anyhow::ensure!(
                d.is_finite() && d > 0.0,
                "--duration must be a positive number of seconds"
            );
            Ok(Duration::from_secs_f64(d.min(1e6)))
        })
        .transpose()?;
    let spec = LoadSpec::new(args.clients, args.conns, args.total, duration)?;
    anyhow::ensure!(args.key_space >= 1, "--key-space must be >= 1");
    anyhow::ensure!(
        args.value_size <= 16 << 20,
        "--value-size must be <= 16 MiB"
    );
    let endpoints = load_endpoints(cli.target, &cli.endpoints, args.to).await?;
    let op_spec = OpSpec {
        op,
        value: std::sync::Arc::new(keys::value(args.value_size)),
        key_size: args.key_size,
        key_space: args.key_space,
        lock_names: args.lock_names.unwrap_or(args.clients as u64).max(1),
        session_ttl: Duration::from_millis(args.session_ttl_ms),
        request_timeout: Duration::from_millis(args.request_timeout_ms.max(1)),
    };
    let report = runner::run(cli.target, &endpoints, &spec, &op_spec, args.value_size).await?;
    emit(cli, &report, report.to_text())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Put(a) => load(&cli, a, Op::Put).await,
        Command::Get {
            load: a,
            consistency,
        } => {
            let op = match consistency {
                Consistency::L => Op::GetLinearizable,
                Consistency::S => Op::GetSerializable,
            };
            load(&cli, a, op).await
        }
        Command::Txn(a) => load(&cli, a, Op::Txn).await,
        Command::Lock(a) => load(&cli, a, Op::Lock).await,
        Command::Keepalive(a) => load(&cli, a, Op::KeepAlive).await,
        Command::Watch { load: a, put_rate } => {
            anyhow::ensure!(
                a.conns >= 1 && a.conns <= a.clients.max(1),
                "--conns must be 1..=clients"
            );
            let endpoints = load_endpoints(cli.target, &cli.endpoints, a.to).await?;
            let spec = WatchSpec {
                watchers: a.clients,
                conns: a.conns,
                puts: a.total.unwrap_or(1000),
                put_rate: *put_rate,
                value: keys::value(a.value_size),
                timeout: Duration::from_millis(a.request_timeout_ms.max(1)),
            };
            let report = watch::run(cli.target, &endpoints, &spec).await?;
            emit(&cli, &report, report.to_text())
        }
        Command::Failover {
            cluster_dir,
            rounds,
            round_timeout_ms,
            settle_ms,
            write_interval_ms,
            value_size,
            metrics_endpoints,
        } => {
            anyhow::ensure!(!cli.endpoints.is_empty(), "give --endpoints (node 1 first)");
            anyhow::ensure!(
                metrics_endpoints.is_empty() || metrics_endpoints.len() == cli.endpoints.len(),
                "--metrics-endpoints must list one address per endpoint"
            );
            let spec = FailoverSpec {
                rounds: *rounds,
                endpoints: cli.endpoints.clone(),
                round_timeout: Duration::from_millis((*round_timeout_ms).clamp(100, 60_000)),
                settle: Duration::from_millis((*settle_ms).min(60_000)),
                write_interval: Duration::from_millis((*write_interval_ms).clamp(1, 1_000)),
                value: keys::value(*value_size),
                metrics: metrics_endpoints.clone(),
            };
            let mut cluster = Cluster::new(cluster_dir);
            let report = failover::run(cli.target, &mut cluster, &spec).await?;
            emit(&cli, &report, report.to_text())
        }
        Command::Timeline { dir, skip } => {
            let marks = timeline::read_dir(dir)?;
            let report = timeline::analyse(marks, *skip, dir)?;
            emit(&cli, &report, report.to_text())
        }
        Command::Mem {
            cluster_dir,
            nodes,
            label,
        } => {
            let cluster = Cluster::new(cluster_dir);
            let mut rss = Vec::new();
            for n in 1..=*nodes {
                rss.push((n, cluster.rss_kib(n)?));
            }
            let report = MemReport::new(cli.target.name(), label, rss);
            emit(&cli, &report, report.to_text())
        }
        Command::WaitLeader { timeout_secs } => {
            anyhow::ensure!(!cli.endpoints.is_empty(), "give --endpoints");
            let limit = Duration::from_secs((*timeout_secs).min(600));
            let l = wait_for_leader(
                cli.target,
                &cli.endpoints,
                Duration::from_millis(500),
                limit,
            )
            .await
            .with_context(|| format!("no leader within {limit:?}"))?;
            println!("{}", cli.endpoints[l]);
            Ok(())
        }
        Command::Compare {
            base,
            cand,
            base_name,
            cand_name,
            strict,
            require,
        } => {
            let b = compare::load_dir(base)?;
            let c = compare::load_dir(cand)?;
            print!("{}", compare::markdown(&b, &c, base_name, cand_name));
            if *strict || !require.is_empty() {
                let gaps = compare::gaps(&b, &c, base_name, cand_name, require);
                anyhow::ensure!(
                    gaps.is_empty(),
                    "the comparison is not whole:\n  {}",
                    gaps.join("\n  ")
                );
            }
            Ok(())
        }
        Command::Pairs {
            dir,
            base_name,
            cand_name,
        } => {
            let pairs = pairs::load_pairs(dir, base_name, cand_name)?;
            print!("{}", pairs::markdown(&pairs, base_name, cand_name));
            Ok(())
        }
    }
}
