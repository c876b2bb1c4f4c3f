use std::num::NonZeroUsize;

use clap::Parser;

/// jemalloc, not the system allocator: under load a leader allocates in bursts (a batch
/// of calls decoded, answered and freed together) that overflow glibc's small per-thread
/// cache into its locked, coalescing paths (docs/adr/0017-node-allocator.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let args = aegis_node::cli::Args::parse();
    match runtime(
        args.worker_threads,
        std::time::Duration::from_micros(args.leader_spin_us),
    ) {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("aegis-node: cannot start the async runtime: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The multi-threaded runtime with its LIFO slot off (ADR-0013). With the slot, each
/// task a handler wakes runs next on the same worker: a finished response wakes its
/// connection task, which writes that one response alone, and a proposal wakes the Raft
/// core, which takes that one proposal alone. Without it, the responses of one applied
/// batch leave in one write and concurrent proposals enter one log batch.
/// `disable_lifo_slot` is a tokio_unstable API; `.cargo/config.toml` sets the cfg.
/// Without `--worker-threads`, tokio starts one worker per CPU the process may use.
/// With a non-zero `leader_spin`, a leader's worker keeps its CPU that long
/// before it sleeps while it waits on one to four writes (ADR-0021).
fn runtime(
    workers: Option<NonZeroUsize>,
    leader_spin: std::time::Duration,
) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n.get());
    }
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    #[cfg(all(tokio_unstable, feature = "timeline"))]
    aegis_node::timeline::mark_task_polls(&mut builder);
    let spin = aegis_node::leader_spin::before_build(&mut builder, leader_spin);
    let rt = builder.build()?;
    if let Some(setup) = spin {
        if !aegis_node::leader_spin::after_build(setup) {
            eprintln!(
                "aegis-node: the runtime's epoll instance was not found; \
                 the leader sleeps at once (--leader-spin-us 0)"
            );
        }
    }
    Ok(rt)
}

async fn run(args: aegis_node::cli::Args) -> std::process::ExitCode {
    // openraft warns once for every write whose client stopped waiting for
    // the answer (a timeout, a cancelled request): under overload, when an
    // operator reads the log, that is a line per request and nothing to act
    // on. The write itself is unaffected; the client sees its own timeout.
    let default_filter = "info,openraft=warn,openraft::raft::responder=error";
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AEGIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    #[cfg(not(tokio_unstable))]
    tracing::warn!(
        "built without --cfg tokio_unstable (RUSTFLAGS overrides .cargo/config.toml): \
         the runtime's LIFO slot stays on and writes batch less (ADR-0013)"
    );
    // Fault injection sites (only with the `failpoints` feature).
    if let Err(e) = aegis_node::failpoint::setup() {
        eprintln!("aegis-node: {e}");
        return std::process::ExitCode::from(2);
    }
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match aegis_node::server::run(args, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aegis-node: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// Fails when `.cargo/config.toml` stops applying (deleted, or replaced by RUSTFLAGS in
    /// the test environment): the node would silently run with the LIFO slot on.
    #[test]
    // The constant is the point: it is what the build configuration decided.
    #[allow(clippy::assertions_on_constants)]
    fn the_node_is_built_with_tokio_unstable() {
        assert!(
            cfg!(tokio_unstable),
            "aegis-node was built without --cfg tokio_unstable; see docs/adr/0013"
        );
    }
}
