//! Command line of `aegis-bench`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::backend::Target;

#[derive(Debug, Parser)]
#[command(
    name = "aegis-bench",
    version,
    about = "Closed-loop load and failover benchmark for AEGIS and etcd (loopback clusters)"
)]
pub struct Cli {
    /// System under test (not read by timeline, compare, pairs).
    #[arg(long, value_enum, default_value = "aegis", global = true)]
    pub target: Target,
    /// Client endpoints (host:port), comma separated, node 1 first (load rows, failover,
    /// wait-leader).
    #[arg(long, value_delimiter = ',', global = true, env = "BENCH_ENDPOINTS")]
    pub endpoints: Vec<String>,
    /// Print the result as JSON instead of text (not wait-leader, compare, pairs).
    #[arg(long, global = true)]
    pub json: bool,
    /// Also write the JSON result to this file (not wait-leader, compare, pairs).
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses a command line, and rejects a global option given to a subcommand that would
    /// ignore it: a `--json` that prints text, or a `--target` that changes nothing, would let
    /// a script believe it measured or wrote something it did not.
    pub fn parse_checked<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut cmd = Cli::command();
        let matches = cmd.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let (name, sub) = matches
            .subcommand()
            .ok_or_else(|| cmd.error(ErrorKind::MissingSubcommand, "give a subcommand"))?;
        for id in cli.command.unread_globals() {
            let given = |m: &clap::ArgMatches| m.value_source(id) == Some(ValueSource::CommandLine);
            if given(&matches) || given(sub) {
                return Err(cmd.error(
                    ErrorKind::ArgumentConflict,
                    format!("`{name}` does not read --{id}"),
                ));
            }
        }
        Ok(cli)
    }
}

/// Which members the load goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum To {
    /// Only the current leader (found with a status call before the run).
    Leader,
    /// Connections round-robin over every endpoint.
    All,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// gRPC connections the clients share (client i uses connection i % conns).
    #[arg(long, default_value_t = 1)]
    pub conns: usize,
    /// Stop after this many requests.
    #[arg(long)]
    pub total: Option<u64>,
    /// Stop after this many seconds (a run stops at whichever bound comes first).
    #[arg(long)]
    pub duration: Option<f64>,
    #[arg(long, value_enum, default_value = "leader")]
    pub to: To,
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Puts and txns pick keys uniformly from this many.
    #[arg(long, default_value_t = 10_000)]
    pub key_space: u64,
    /// Distinct lock names for `lock` (default: one per client, no contention).
    #[arg(long)]
    pub lock_names: Option<u64>,
    /// TTL of the session (AEGIS) or lease (etcd) each client holds for `lock`/`keepalive`;
    /// longer than a run, since `lock` does not keep it alive.
    #[arg(long, default_value_t = 120_000)]
    pub session_ttl_ms: u64,
    #[arg(long, default_value_t = 10_000)]
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    /// Linearizable.
    L,
    /// Serializable.
    S,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Durable puts.
    Put(LoadArgs),
    /// Gets of one key.
    Get {
        #[command(flatten)]
        load: LoadArgs,
        #[arg(long, value_enum, default_value = "l")]
        consistency: Consistency,
    },
    /// One-compare one-put transactions.
    Txn(LoadArgs),
    /// Lock acquire + release pairs, each client with its own session/lease.
    Lock(LoadArgs),
    /// Session (lease) keep-alives.
    Keepalive(LoadArgs),
    /// Watch delivery latency: --clients watchers, --total puts at --put-rate.
    Watch {
        #[command(flatten)]
        load: LoadArgs,
        #[arg(long, default_value_t = 100)]
        put_rate: u64,
    },
    /// kill -9 the leader, time the new leader and the first acknowledged write; repeat.
    Failover {
        /// Cluster directory written by scripts/aegis-cluster.sh or scripts/etcd-cluster.sh.
        #[arg(long)]
        cluster_dir: PathBuf,
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        #[arg(long, default_value_t = 10_000)]
        round_timeout_ms: u64,
        #[arg(long, default_value_t = 1_000)]
        settle_ms: u64,
        #[arg(long, default_value_t = 10)]
        write_interval_ms: u64,
        #[arg(long, default_value_t = 256)]
        value_size: usize,
        /// AEGIS only: metrics addresses (host:port, node 1 first) to read leadership from
        /// instead of Admin.Status.
        #[arg(long, value_delimiter = ',')]
        metrics_endpoints: Vec<String>,
    },
    /// Where one-client puts spend their time, from the marks of an AEGIS
    /// cluster built with the `timeline` feature (scripts/put-timeline.sh).
    Timeline {
        /// The directory AEGIS_TIMELINE named.
        #[arg(long)]
        dir: PathBuf,
        /// Puts to skip at the start (warm-up).
        #[arg(long, default_value_t = 100)]
        skip: usize,
    },
    /// Resident memory of each node of a cluster directory.
    Mem {
        #[arg(long)]
        cluster_dir: PathBuf,
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Free text stored with the result (e.g. "idle").
        #[arg(long, default_value = "idle")]
        label: String,
    },
    /// Waits until one member reports itself leader; prints its endpoint.
    WaitLeader {
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
    /// Markdown side-by-side tables from two result directories.
    Compare {
        /// Reference results (etcd).
        #[arg(long)]
        base: PathBuf,
        /// Results compared against the reference (AEGIS).
        #[arg(long)]
        cand: PathBuf,
        #[arg(long, default_value = "etcd")]
        base_name: String,
        #[arg(long, default_value = "aegis")]
        cand_name: String,
        /// After the tables, fail when the comparison is not whole: a row one side lacks, a
        /// load row with errors or without an answered request, a failover round without a
        /// new leader or a write, a memory row without a node.
        #[arg(long)]
        strict: bool,
        /// Rows that must be there on both sides (comma-separated names); implies --strict.
        #[arg(long, value_delimiter = ',')]
        require: Vec<String>,
    },
    /// Markdown table of alternating pairs (`PAIRS=N scripts/bench-compare.sh`): each load
    /// row's ratio in every pair, their median and range.
    Pairs {
        /// One directory per pair, each holding `<base-name>/` and `<cand-name>/`.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "etcd")]
        base_name: String,
        #[arg(long, default_value = "aegis")]
        cand_name: String,
    },
}

impl Command {
    /// The global options (by their ids, which are also their long names) this subcommand
    /// does not read.
    fn unread_globals(&self) -> &'static [&'static str] {
        match self {
            Command::Put(_)
            | Command::Get { .. }
            | Command::Txn(_)
            | Command::Lock(_)
            | Command::Keepalive(_)
            | Command::Watch { .. }
            | Command::Failover { .. } => &[],
            Command::Mem { .. } => &["endpoints"],
            Command::WaitLeader { .. } => &["json", "out"],
            Command::Timeline { .. } => &["target", "endpoints"],
            Command::Compare { .. } | Command::Pairs { .. } => {
                &["target", "endpoints", "json", "out"]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_etcd_style_command_line() {
        let c = Cli::try_parse_from([
            "aegis-bench",
            "--target",
            "etcd",
            "--endpoints",
            "127.0.0.1:1,127.0.0.1:2",
            "put",
            "--clients",
            "64",
            "--conns",
            "8",
            "--duration",
            "10",
        ])
        .unwrap();
        assert_eq!(c.target, Target::Etcd);
        assert_eq!(c.endpoints.len(), 2);
        match c.command {
            Command::Put(l) => {
                assert_eq!((l.clients, l.conns, l.duration), (64, 8, Some(10.0)));
                assert_eq!(l.value_size, 256);
                assert_eq!(l.to, To::Leader);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_a_global_option_the_subcommand_does_not_read() {
        for line in [
            &["aegis-bench", "--json", "pairs", "--dir", "d"][..],
            &["aegis-bench", "pairs", "--dir", "d", "--json"],
            &[
                "aegis-bench",
                "compare",
                "--base",
                "b",
                "--cand",
                "c",
                "--out",
                "x.json",
            ],
            &["aegis-bench", "--target", "etcd", "timeline", "--dir", "d"],
            &[
                "aegis-bench",
                "--endpoints",
                "127.0.0.1:1",
                "mem",
                "--cluster-dir",
                "d",
            ],
            &["aegis-bench", "wait-leader", "--json"],
        ] {
            let e = Cli::parse_checked(line).expect_err(&line.join(" "));
            assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{}", line.join(" "));
            assert!(e.to_string().contains("does not read --"), "{e}");
        }
    }

    #[test]
    fn accepts_global_options_where_they_are_read() {
        for line in [
            &[
                "aegis-bench",
                "--target",
                "etcd",
                "--endpoints",
                "a:1",
                "--json",
                "put",
            ][..],
            &["aegis-bench", "put", "--target", "etcd", "--out", "x.json"],
            &["aegis-bench", "--out", "t.json", "timeline", "--dir", "d"],
            &[
                "aegis-bench",
                "--target",
                "etcd",
                "mem",
                "--cluster-dir",
                "d",
            ],
            &["aegis-bench", "--endpoints", "a:1", "wait-leader"],
            &["aegis-bench", "pairs", "--dir", "d"],
        ] {
            assert!(Cli::parse_checked(line).is_ok(), "{}", line.join(" "));
        }
    }

    #[test]
    fn rejects_unknown_target() {
        assert!(Cli::try_parse_from(["aegis-bench", "--target", "zk", "put"]).is_err());
    }
}
