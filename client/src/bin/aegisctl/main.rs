//! `aegisctl`: the AEGIS command line.

mod cli;
mod dev;
mod lock_cmd;
mod output;

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use aegis_client::{
    Client, ClientConfig, EventKind, KeyValue, PutOptions, RangeOptions, ReadOptions, TxnOpResult,
};
use anyhow::{Context, Result};
use clap::Parser;
use futures::StreamExt;
use serde::Serialize;

use cli::{Cli, Command, LeaderCmd, MemberCmd, SessionCmd};

/// The write may or may not have been applied.
const EXIT_OUTCOME_UNKNOWN: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AEGIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// 3 when a write's outcome is unknown, so scripts can tell "failed" from "maybe applied".
fn exit_code_for(e: &anyhow::Error) -> u8 {
    let unknown = e
        .chain()
        .any(|c| matches!(c.downcast_ref(), Some(aegis_client::Error::Unknown(_))));
    if unknown {
        EXIT_OUTCOME_UNKNOWN
    } else {
        1
    }
}

fn client_config(cli: &Cli) -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(cli.timeout_ms.max(1)),
        ..ClientConfig::default()
    }
}

/// A lazily connecting client, so commands that only need one live node still work.
fn client(cli: &Cli) -> Result<Client> {
    Client::new_lazy(cli.endpoints.clone(), client_config(cli)).context("bad --endpoints")
}

fn print_json<T: Serialize>(v: &T) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).context("encoding JSON")?
    );
    Ok(())
}

fn show_kv(kv: &KeyValue) -> String {
    format!(
        "{} = {} (version {}, mod_revision {}{})",
        kv.key_str(),
        kv.value_str(),
        kv.version,
        kv.mod_revision,
        if kv.session_id != 0 {
            format!(", session {}", kv.session_id)
        } else {
            String::new()
        }
    )
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let json = cli.json;
    match &cli.command {
        Command::Put {
            key,
            value,
            session,
            guard,
            prev_kv,
        } => {
            let o = PutOptions {
                session: *session,
                prev_kv: *prev_kv,
                guard: guard.clone(),
            };
            let r = client(&cli)?
                .put_with(key.as_bytes(), value.as_bytes(), &o)
                .await
                .context("put")?;
            if json {
                print_json(&r)?;
            } else {
                println!("OK revision {}", r.revision);
                if let Some(p) = &r.prev_kv {
                    println!("previous: {}", show_kv(p));
                }
            }
        }
        Command::Get {
            key,
            rev,
            serializable,
        } => {
            let r = client(&cli)?
                .get_with(
                    key.as_bytes(),
                    ReadOptions {
                        revision: rev.unwrap_or(0),
                        serializable: *serializable,
                    },
                )
                .await
                .context("get")?;
            if json {
                print_json(&r)?;
            }
            match &r.kv {
                Some(kv) if !json => println!("{}", kv.value_str()),
                Some(_) => {}
                None => {
                    if !json {
                        eprintln!("{key}: not found (revision {})", r.revision);
                    }
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Command::Range {
            prefix,
            limit,
            rev,
            serializable,
            keys_only,
        } => {
            let r = client(&cli)?
                .range_with(
                    prefix.as_bytes(),
                    RangeOptions {
                        limit: *limit,
                        revision: rev.unwrap_or(0),
                        serializable: *serializable,
                        keys_only: *keys_only,
                    },
                )
                .await
                .context("range")?;
            if json {
                print_json(&r)?;
            } else {
                for kv in &r.kvs {
                    if *keys_only {
                        println!("{}", kv.key_str());
                    } else {
                        println!("{}\t{}", kv.key_str(), kv.value_str());
                    }
                }
                if r.more {
                    eprintln!("(more keys; {} in total)", r.count);
                }
            }
        }
        Command::Del { key, prefix } => {
            let c = client(&cli)?;
            let r = if *prefix {
                c.delete_prefix(key.as_bytes()).await
            } else {
                c.delete(key.as_bytes()).await
            }
            .context("delete")?;
            if json {
                print_json(&r)?;
            } else {
                println!("deleted {} (revision {})", r.deleted, r.revision);
            }
        }
        Command::Txn => {
            let mut script = String::new();
            std::io::stdin()
                .read_to_string(&mut script)
                .context("reading the txn script from stdin")?;
            let txn = aegis_client::txn_script::parse(&script)?;
            let r = client(&cli)?.txn(&txn).await.context("txn")?;
            if json {
                print_json(&r)?;
            } else {
                println!(
                    "{} (revision {})",
                    if r.succeeded { "SUCCEEDED" } else { "FAILED" },
                    r.revision
                );
                for op in &r.responses {
                    match op {
                        TxnOpResult::Put(p) => match &p.prev_kv {
                            Some(prev) => println!("put OK, previous: {}", show_kv(prev)),
                            None => println!("put OK"),
                        },
                        TxnOpResult::Delete(d) => println!("deleted {}", d.deleted),
                        TxnOpResult::Range(g) => {
                            for kv in &g.kvs {
                                println!("{}\t{}", kv.key_str(), kv.value_str());
                            }
                        }
                    }
                }
            }
        }
        Command::Watch { key, prefix, rev } => {
            // Registered before the first event so an early Ctrl-C still ends the loop cleanly.
            let mut sigint =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                    .context("installing the SIGINT handler")?;
            let c = client(&cli)?;
            let mut stream = c
                .watch(key.as_bytes(), *prefix, rev.unwrap_or(0))
                .await
                .context("watch")?;
            let mut stdout = std::io::stdout();
            loop {
                let item = tokio::select! {
                    _ = sigint.recv() => break,
                    item = stream.next() => item,
                };
                let Some(item) = item else { break };
                let ev = item.context("watch")?;
                if json {
                    writeln!(stdout, "{}", serde_json::to_string(&ev)?)?;
                } else {
                    for e in &ev.events {
                        match e.kind {
                            EventKind::Put => writeln!(
                                stdout,
                                "{} PUT {} {}",
                                ev.revision,
                                e.kv.key_str(),
                                e.kv.value_str()
                            )?,
                            EventKind::Delete => {
                                writeln!(stdout, "{} DELETE {}", ev.revision, e.kv.key_str())?
                            }
                        }
                    }
                }
                stdout.flush()?;
            }
        }
        Command::Session(cmd) => session(&cli, cmd).await?,
        Command::Lock {
            name,
            ttl,
            no_wait,
            command,
        } => {
            return lock_cmd::run(client(&cli)?, name, *ttl, *no_wait, command, json).await;
        }
        Command::Inspect { name } => {
            let l = client(&cli)?.lock_inspect(name).await.context("inspect")?;
            if json {
                print_json(&l)?;
            } else if l.holder_session == 0 {
                println!("{}: free (last token {})", l.name, l.token);
            } else {
                println!(
                    "{}: held by session {} with token {}; waiters {:?}",
                    l.name, l.holder_session, l.token, l.waiters
                );
            }
        }
        Command::Status => {
            let rows = output::status_rows(client(&cli)?.status_all().await);
            let any_ok = rows.iter().any(|r| r.status.is_some());
            if json {
                print_json(&rows)?;
            } else {
                println!("{}", output::status_table(&rows));
            }
            if !any_ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Member(cmd) => member(&cli, cmd).await?,
        Command::Leader(LeaderCmd::Transfer { id }) => {
            client(&cli)?
                .transfer_leader(*id)
                .await
                .context("leader transfer")?;
            if json {
                print_json(&serde_json::json!({ "transferred_to": id }))?;
            } else {
                println!("leadership transfer to node {id} requested");
            }
        }
        Command::Snapshot => {
            let c = client(&cli)?;
            let idx = c.snapshot().await.context("snapshot")?;
            if json {
                print_json(&serde_json::json!({
                    "endpoint": c.current_endpoint(),
                    "snapshot_index": idx
                }))?;
            } else {
                println!("snapshot at index {idx} on {}", c.current_endpoint());
            }
        }
        Command::Dev(args) => return dev::run(args, json).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn session(cli: &Cli, cmd: &SessionCmd) -> Result<()> {
    let c = client(cli)?;
    match cmd {
        SessionCmd::Open { ttl } => {
            let (id, ttl) = c.session_open(*ttl).await.context("session open")?;
            if cli.json {
                print_json(&serde_json::json!({ "session_id": id, "ttl_ms": ttl }))?;
            } else {
                println!("{id}");
            }
        }
        SessionCmd::Keepalive { id } => {
            let ttl = c.session_keep_alive(*id).await.context("keep-alive")?;
            if cli.json {
                print_json(&serde_json::json!({ "session_id": id, "ttl_ms": ttl }))?;
            } else {
                println!("session {id} kept alive (ttl {ttl} ms)");
            }
        }
        SessionCmd::Close { id } => {
            c.session_close(*id).await.context("session close")?;
            if cli.json {
                print_json(&serde_json::json!({ "session_id": id, "closed": true }))?;
            } else {
                println!("session {id} closed");
            }
        }
        SessionCmd::Get { id } => {
            let s = c.session_get(*id).await.context("session get")?;
            if cli.json {
                print_json(&s)?;
            } else {
                println!(
                    "session {}: ttl {} ms, deadline {} ms",
                    s.session_id, s.ttl_ms, s.deadline_ms
                );
                println!("locks: {}", s.locks.join(", "));
                let keys: Vec<String> = s
                    .keys
                    .iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect();
                println!("keys: {}", keys.join(", "));
            }
        }
    }
    Ok(())
}

async fn member(cli: &Cli, cmd: &MemberCmd) -> Result<()> {
    let c = client(cli)?;
    let members = match cmd {
        MemberCmd::List => c.member_list().await.context("member list")?,
        MemberCmd::AddLearner { id, peer, client } => {
            c.member_add_learner(*id, peer, client)
                .await
                .context("add learner")?
                .members
        }
        MemberCmd::Promote { id } => c.member_promote(*id).await.context("promote")?.members,
        MemberCmd::Remove { id } => c.member_remove(*id).await.context("remove")?.members,
    };
    if cli.json {
        print_json(&members)?;
    } else {
        println!("{}", output::member_table(&members));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_outcome_has_its_own_exit_code() {
        let e = anyhow::Error::new(aegis_client::Error::Unknown("reset".into())).context("put");
        assert_eq!(exit_code_for(&e), EXIT_OUTCOME_UNKNOWN);
        let e = anyhow::Error::new(aegis_client::Error::NoLeader).context("put");
        assert_eq!(exit_code_for(&e), 1);
        assert_eq!(exit_code_for(&anyhow::anyhow!("plain")), 1);
    }

    #[test]
    fn kv_line_shows_session_binding() {
        let kv = KeyValue {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            create_revision: 1,
            mod_revision: 2,
            version: 2,
            session_id: 9,
        };
        assert_eq!(show_kv(&kv), "k = v (version 2, mod_revision 2, session 9)");
    }
}
