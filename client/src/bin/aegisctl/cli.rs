//! Command-line definition of `aegisctl`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Client addresses of the default `aegisctl dev` cluster (node N on 127.0.0.1:740N).
pub const DEV_ENDPOINTS: &str =
    "127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403,127.0.0.1:7404,127.0.0.1:7405";

#[derive(Debug, Parser)]
#[command(
    name = "aegisctl",
    version,
    about = "Command line for AEGIS: KV, sessions, locks, watches, cluster admin and a local dev cluster",
    after_help = "Exit codes: 0 success, 1 error, 2 usage error, 3 outcome unknown (the write may or may not have been applied; read back to find out)."
)]
pub struct Cli {
    /// Comma-separated client endpoints (HOST:PORT). Defaults to the dev cluster's five nodes.
    #[arg(
        long,
        env = "AEGIS_ENDPOINTS",
        value_delimiter = ',',
        global = true,
        default_value = DEV_ENDPOINTS
    )]
    pub endpoints: Vec<String>,

    /// Print structured output as JSON.
    #[arg(long, global = true)]
    pub json: bool,

    /// Deadline of one request attempt, in milliseconds.
    #[arg(long, global = true, default_value_t = 5000)]
    pub timeout_ms: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a key.
    Put {
        key: String,
        value: String,
        /// Bind the key to a session: it is deleted when the session expires.
        #[arg(long)]
        session: Option<u64>,
        /// Fencing guard LOCK:TOKEN: fail if TOKEN is older than the lock's current token.
        #[arg(long, value_parser = parse_guard_arg)]
        guard: Option<(String, u64)>,
        /// Print the previous version of the key.
        #[arg(long)]
        prev_kv: bool,
    },
    /// Read a key (exit code 1 when it does not exist).
    Get {
        key: String,
        /// Read as of this revision.
        #[arg(long)]
        rev: Option<u64>,
        /// Allow a possibly stale read from any node.
        #[arg(long)]
        serializable: bool,
    },
    /// List keys under a prefix.
    Range {
        prefix: String,
        #[arg(long, default_value_t = 0)]
        limit: u32,
        #[arg(long)]
        rev: Option<u64>,
        #[arg(long)]
        serializable: bool,
        #[arg(long)]
        keys_only: bool,
    },
    /// Delete a key, or every key under a prefix.
    Del {
        key: String,
        #[arg(long)]
        prefix: bool,
    },
    /// Run a transaction read from stdin (see `aegisctl txn --help` for the syntax).
    #[command(long_about = TXN_HELP)]
    Txn,
    /// Print events for a key or prefix until interrupted.
    Watch {
        key: String,
        #[arg(long)]
        prefix: bool,
        /// Start revision (default: from now).
        #[arg(long)]
        rev: Option<u64>,
    },
    /// Session (lease) operations.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Acquire a lock, print its fencing token and hold it: until Ctrl-C, or while COMMAND runs
    /// (with AEGIS_LOCK_NAME and AEGIS_FENCING_TOKEN set); then release it. With a command,
    /// exits with the command's exit code.
    Lock {
        name: String,
        /// Session ttl in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        ttl: u64,
        /// Give up instead of waiting when another session holds the lock (exit code 1).
        #[arg(long)]
        no_wait: bool,
        /// Command to run while holding the lock.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Show who holds a lock and who waits.
    Inspect { name: String },
    /// Status of every endpoint: id, role, term, leader, commit, applied, lag, digest.
    Status,
    /// Cluster membership.
    #[command(subcommand)]
    Member(MemberCmd),
    /// Leadership.
    #[command(subcommand)]
    Leader(LeaderCmd),
    /// Ask a node to build a snapshot now.
    Snapshot,
    /// Run a local cluster of aegis-node processes.
    Dev(DevArgs),
}

#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// Open a session and print its id (no background keep-alive: send them yourself).
    Open {
        #[arg(long)]
        ttl: u64,
    },
    /// Send one keep-alive.
    Keepalive { id: u64 },
    /// Close a session, releasing its locks and deleting its keys.
    Close { id: u64 },
    /// Show a session.
    Get { id: u64 },
}

#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    /// List members.
    List,
    /// Add a node as a non-voting learner.
    AddLearner {
        id: u64,
        /// Peer (Raft) address HOST:PORT.
        peer: String,
        /// Client address HOST:PORT.
        client: String,
    },
    /// Make a learner a voter.
    Promote { id: u64 },
    /// Remove a member.
    Remove { id: u64 },
}

#[derive(Debug, Subcommand)]
pub enum LeaderCmd {
    /// Hand leadership to node ID.
    Transfer { id: u64 },
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Cluster directory (node-N/{data,node.log,pid}).
    #[arg(long, env = "AEGIS_DEV_DIR", default_value = ".aegis/dev")]
    pub data_dir: PathBuf,
    /// The aegis-node binary (default: next to aegisctl, else on PATH).
    #[arg(long, env = "AEGIS_NODE_BIN")]
    pub node_bin: Option<PathBuf>,
    /// Number of nodes (ports 740N/750N/760N for node N).
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Added to every default port (client 7400+N, peer 7500+N, metrics 7600+N), to run
    /// beside another dev cluster. Use the same value in every command for that cluster.
    #[arg(long, default_value_t = 0)]
    pub port_offset: u16,
    /// Extra config file passed to every node as --config.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: DevCmd,
}

#[derive(Debug, Subcommand)]
pub enum DevCmd {
    /// Start every node that is not running and wait for a leader.
    Up,
    /// Stop every node (data is kept unless --purge).
    Down {
        #[arg(long)]
        purge: bool,
    },
    /// Processes and their Raft status.
    Status,
    /// SIGKILL node N.
    Kill { n: usize },
    /// Start node N.
    Start { n: usize },
    /// SIGSTOP node N (freeze it).
    Stop { n: usize },
    /// SIGCONT node N.
    Cont { n: usize },
}

fn parse_guard_arg(s: &str) -> Result<(String, u64), String> {
    aegis_client::txn_script::parse_guard(s)
}

pub const TXN_HELP: &str = r#"Run a transaction read from stdin.

Compares come first, one per line, as TARGET("KEY") OP VALUE; all must hold for the
`success:` ops to run, otherwise the `failure:` ops run.

  value("config/mode") = "blue"
  version("config/new") = 0          # 0: the key does not exist
  mod("config/mode") < 120
  create("config/mode") != 0
  lock("deploy") = 57                # current fencing token of lock "deploy"
  success:
  put "config/mode" "green"
  put config/owner me --session 42   # bind to a session
  put config/x y --guard deploy:57   # fencing guard
  del "config/old"
  del --prefix "tmp/"
  range "config/" 10                 # limit is optional
  failure:
  range "config/mode"

Targets: value|val, version|ver, mod|mod_revision, create|create_revision,
lock|lock_token. Operators: = (or ==), !=, >, <. Keys and values are a bare word or
a double-quoted string with \" and \\ escapes. `#` starts a comment."#;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("aegisctl").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn default_endpoints_are_the_dev_cluster() {
        // Only meaningful when the environment does not override it.
        if std::env::var_os("AEGIS_ENDPOINTS").is_some() {
            return;
        }
        let c = parse(&["status"]).unwrap();
        assert_eq!(c.endpoints.len(), 5);
        assert_eq!(c.endpoints[0], "127.0.0.1:7401");
    }

    #[test]
    fn endpoints_split_on_commas_anywhere() {
        let c = parse(&["get", "k", "--endpoints", "a:1,b:2", "--json"]).unwrap();
        assert_eq!(c.endpoints, vec!["a:1", "b:2"]);
        assert!(c.json);
    }

    #[test]
    fn put_with_guard_and_session() {
        let c = parse(&[
            "put",
            "k",
            "v",
            "--session",
            "7",
            "--guard",
            "deploy:42",
            "--prev-kv",
        ])
        .unwrap();
        match c.command {
            Command::Put {
                key,
                value,
                session,
                guard,
                prev_kv,
            } => {
                assert_eq!((key.as_str(), value.as_str()), ("k", "v"));
                assert_eq!(session, Some(7));
                assert_eq!(guard, Some(("deploy".into(), 42)));
                assert!(prev_kv);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["put", "k", "v", "--guard", "nocolon"]).is_err());
        assert!(parse(&["put", "k"]).is_err());
    }

    #[test]
    fn lock_with_trailing_command() {
        let c = parse(&["lock", "L", "--ttl", "5000", "--", "sh", "-c", "echo $X"]).unwrap();
        match c.command {
            Command::Lock {
                name, ttl, command, ..
            } => {
                assert_eq!(name, "L");
                assert_eq!(ttl, 5000);
                assert_eq!(command, vec!["sh", "-c", "echo $X"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn session_member_leader_dev() {
        assert!(matches!(
            parse(&["session", "open", "--ttl", "3000"])
                .unwrap()
                .command,
            Command::Session(SessionCmd::Open { ttl: 3000 })
        ));
        assert!(parse(&["session", "open"]).is_err());
        assert!(matches!(
            parse(&["member", "add-learner", "6", "h:1", "h:2"])
                .unwrap()
                .command,
            Command::Member(MemberCmd::AddLearner { id: 6, .. })
        ));
        assert!(matches!(
            parse(&["leader", "transfer", "3"]).unwrap().command,
            Command::Leader(LeaderCmd::Transfer { id: 3 })
        ));
        match parse(&["dev", "--nodes", "3", "kill", "2"])
            .unwrap()
            .command
        {
            Command::Dev(d) => {
                assert_eq!(d.nodes, 3);
                assert!(matches!(d.command, DevCmd::Kill { n: 2 }));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["dev", "kill", "x"]).is_err());
    }

    #[test]
    fn get_and_range_flags() {
        match parse(&["get", "k", "--rev", "9", "--serializable"])
            .unwrap()
            .command
        {
            Command::Get {
                rev, serializable, ..
            } => {
                assert_eq!(rev, Some(9));
                assert!(serializable);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["get", "k", "--rev", "-1"]).is_err());
        match parse(&["range", "p/", "--limit", "3"]).unwrap().command {
            Command::Range { limit, .. } => assert_eq!(limit, 3),
            other => panic!("{other:?}"),
        }
    }
}
