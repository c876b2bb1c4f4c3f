//! `aegisctl lock`: hold a lock for as long as a command runs (or until Ctrl-C).

use std::process::ExitCode;

use aegis_client::{Client, LockGuard};
use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Resolves when the session is reported lost; never when the reporter simply goes away.
async fn until_lost(mut lost: watch::Receiver<Option<String>>) -> String {
    match lost.wait_for(Option::is_some).await {
        Ok(reason) => reason.clone().unwrap_or_default(),
        Err(_) => std::future::pending().await,
    }
}

pub async fn run(
    client: Client,
    name: &str,
    ttl: u64,
    no_wait: bool,
    command: &[String],
    json: bool,
) -> Result<ExitCode> {
    // From here on SIGINT is ours to handle, so the lock is released rather than left to
    // expire; a command we run still receives the terminal's SIGINT itself.
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let session = client.session(ttl).await.context("opening a session")?;
    let guard: LockGuard = if no_wait {
        match session.try_lock(name).await.context("acquire")? {
            Some(g) => g,
            None => {
                eprintln!("{name}: held by another session");
                let _ = session.close().await;
                return Ok(ExitCode::FAILURE);
            }
        }
    } else {
        tokio::select! {
            g = session.lock(name) => g.context("acquire")?,
            _ = sigint.recv() => {
                let _ = session.close().await;
                return Ok(ExitCode::from(130));
            }
        }
    };
    let token = guard.token();
    if json {
        println!(
            "{}",
            serde_json::json!({ "lock": name, "token": token, "session_id": session.id() })
        );
    } else {
        println!("{token}");
    }

    let code = if command.is_empty() {
        tokio::select! {
            _ = sigint.recv() => ExitCode::SUCCESS,
            reason = until_lost(guard.lost()) => {
                eprintln!("lock {name} lost: {reason}");
                ExitCode::FAILURE
            }
        }
    } else {
        let mut child = tokio::process::Command::new(&command[0])
            .args(&command[1..])
            .env("AEGIS_LOCK_NAME", name)
            .env("AEGIS_FENCING_TOKEN", token.to_string())
            .env("AEGIS_SESSION_ID", session.id().to_string())
            .spawn()
            .with_context(|| format!("starting {:?}", command[0]))?;
        let lost = until_lost(guard.lost());
        tokio::pin!(lost);
        loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status.context("waiting for the command")?;
                    break exit_code(status);
                }
                reason = &mut lost => {
                    // The lock is gone: the command must not keep acting as its holder.
                    eprintln!("lock {name} lost ({reason}); terminating the command");
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    break ExitCode::FAILURE;
                }
                // The child got the same SIGINT from the terminal; wait for it to finish.
                _ = sigint.recv() => {}
            }
        }
    };
    if let Err(e) = guard.release().await {
        eprintln!("warning: releasing {name}: {e}");
    }
    if let Err(e) = session.close().await {
        eprintln!("warning: closing the session: {e}");
    }
    Ok(code)
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        (None, Some(sig)) => ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)),
        _ => ExitCode::FAILURE,
    }
}
