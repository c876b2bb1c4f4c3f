//! Timestamps of each hand-off of a write, for finding where a put's time
//! goes (`scripts/put-timeline.sh`, `aegis-bench timeline`).
//!
//! `timeline!("event", n)` compiles to nothing unless the `timeline`
//! feature is on. With it, and with `AEGIS_TIMELINE` naming a directory,
//! each event is kept in memory with the wall clock in nanoseconds (one
//! clock for every process on a machine, so the five nodes' events line up)
//! and written every 300 ms to `<dir>/<pid>.tl`, one `ns event n` per line.
//!
//! Events: `put_in` / `put_out` (the KV handler), `propose` / `written`
//! (around openraft's `client_write`), `append` (log write, first index),
//! `fsync_start` / `fsync_end` (the flusher, or a worker syncing a quiet
//! node's lone append), `send` / `reply` (an append to
//! and a reply from follower n), `hold` (an append that only moves the
//! commit index reaches follower n's stream: on the leader, the moment
//! openraft has seen a write commit), `f_recv` / `f_reply` (a follower's
//! receipt of an append and its reply), `apply` / `responded` (the state
//! machine), `c_read` (bytes read from a client connection's socket),
//! `c_wstart` / `c_write` (before and after a write to it: the write wakes
//! the client, and on a VM that wake-up is paid inside the call; see
//! [`client_sockets`]), and the same for the peer port's accepted
//! connections (`p_read`, `p_wstart`, `p_write`: a follower's side of its
//! appends) and for this node's own connections to its peers (`o_read`,
//! `o_wstart`, `o_write`: a leader's side), so the time between a send and
//! its receipt splits into the sockets and the processes around them.
//! With `AEGIS_TIMELINE_TASKS` as well, each runtime task poll is marked
//! ([`mark_task_polls`]).

/// The environment variable naming the output directory.
pub const ENV: &str = "AEGIS_TIMELINE";

#[cfg(feature = "timeline")]
macro_rules! timeline {
    ($event:literal, $n:expr) => {
        $crate::timeline::mark($event, $n as u64)
    };
}

#[cfg(not(feature = "timeline"))]
macro_rules! timeline {
    ($event:literal, $n:expr) => {};
}

#[cfg(feature = "timeline")]
mod record {
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    type Marks = Vec<(u64, &'static str, u64)>;

    static MARKS: Mutex<Marks> = Mutex::new(Vec::new());
    static ON: OnceLock<bool> = OnceLock::new();

    pub fn mark(event: &'static str, n: u64) {
        if !*ON.get_or_init(start) {
            return;
        }
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        if let Ok(mut marks) = MARKS.lock() {
            marks.push((ns, event, n));
        }
    }

    /// Starts the writer when `AEGIS_TIMELINE` is set; false leaves every
    /// mark a no-op.
    fn start() -> bool {
        let Some(dir) = std::env::var_os(super::ENV).map(PathBuf::from) else {
            return false;
        };
        let path = dir.join(format!("{}.tl", std::process::id()));
        let file = match std::fs::File::create(&path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("{}: cannot create {}: {e}", super::ENV, path.display());
                return false;
            }
        };
        std::thread::Builder::new()
            .name("timeline".into())
            .spawn(move || write_every(file, Duration::from_millis(300)))
            .is_ok()
    }

    fn write_every(file: std::fs::File, period: Duration) {
        let mut out = std::io::BufWriter::new(file);
        loop {
            std::thread::sleep(period);
            let marks = MARKS.lock().map(|mut m| std::mem::take(&mut *m));
            for (ns, event, n) in marks.unwrap_or_default() {
                if writeln!(out, "{ns} {event} {n}").is_err() {
                    return;
                }
            }
            if out.flush().is_err() {
                return;
            }
        }
    }
}

#[cfg(feature = "timeline")]
pub use record::mark;

/// With `AEGIS_TIMELINE_TASKS` also set, every poll of a runtime task is
/// marked too: `task:<crate>/<file>:<line>` (where the task was spawned)
/// with n = 1 when the poll starts and 0 when it ends, so `aegis-bench
/// timeline` can say which tasks a node's worker ran per put and for how
/// long. Off by default: two marks per poll slow every hand-off a little.
#[cfg(all(feature = "timeline", tokio_unstable))]
pub fn mark_task_polls(builder: &mut tokio::runtime::Builder) {
    if std::env::var_os(TASKS_ENV).is_none() || std::env::var_os(ENV).is_none() {
        return;
    }
    builder.on_before_task_poll(|t| record::mark(tasks::name(t.spawned_at()), 1));
    builder.on_after_task_poll(|t| record::mark(tasks::name(t.spawned_at()), 0));
}

/// The environment variable that turns task-poll marks on.
pub const TASKS_ENV: &str = "AEGIS_TIMELINE_TASKS";

/// The mark name of tasks spawned at `file`:`line` (a task-poll mark's
/// event): `…/openraft-0.10.0/src/core/tick.rs`, 76 →
/// `task:openraft/core/tick.rs:76`.
pub fn task_site(file: &str, line: u32) -> String {
    let (krate, path) = match file.rsplit_once("/src/") {
        Some((dir, path)) => {
            let dir = dir.rsplit('/').next().unwrap_or(dir);
            // A registry crate's directory ends in its version: the
            // name is what comes before the first `-` and a digit.
            let krate = dir
                .match_indices('-')
                .find(|(i, _)| dir[i + 1..].starts_with(|c: char| c.is_ascii_digit()))
                .map_or(dir, |(i, _)| &dir[..i]);
            (krate, path)
        }
        None => ("", file),
    };
    // A mark is `ns event n` on one line: no whitespace in the event.
    format!("task:{krate}/{path}:{line}").replace(char::is_whitespace, "_")
}

#[cfg(all(feature = "timeline", tokio_unstable))]
mod tasks {
    use std::collections::HashMap;
    use std::panic::Location;
    use std::sync::Mutex;

    type Names = HashMap<(&'static str, u32), &'static str>;

    static NAMES: Mutex<Option<Names>> = Mutex::new(None);

    /// The mark's event name for tasks spawned at `at`, made once per spawn
    /// site (a few dozen in a node) and kept for the process's life.
    pub fn name(at: &'static Location<'static>) -> &'static str {
        let Ok(mut names) = NAMES.lock() else {
            return "task:?";
        };
        names
            .get_or_insert_with(HashMap::new)
            .entry((at.file(), at.line()))
            .or_insert_with(|| Box::leak(super::task_site(at.file(), at.line()).into_boxed_str()))
    }
}

/// The client port's accepted connections. With the `timeline` feature each
/// socket read and write is marked, so the time between one put's answer and
/// the next put splits into this node's part (handler to socket, socket to
/// handler) and the client's; without it, the connections as they are.
#[cfg(not(feature = "timeline"))]
pub fn client_sockets(
    incoming: tonic::transport::server::TcpIncoming,
) -> tonic::transport::server::TcpIncoming {
    incoming
}

/// The peer port's accepted gRPC connections, marked as [`client_sockets`]
/// marks the client port's (`p_read`, `p_wstart`, `p_write`).
#[cfg(not(feature = "timeline"))]
pub fn peer_sockets<S>(incoming: S) -> S {
    incoming
}

/// An accepted append stream's connection, marked as [`peer_sockets`] marks
/// the gRPC ones.
#[cfg(not(feature = "timeline"))]
pub fn peer_stream(conn: tokio::net::TcpStream) -> tokio::net::TcpStream {
    conn
}

/// An append stream this node opened, marked as [`peer_channel`]'s
/// connections are.
#[cfg(not(feature = "timeline"))]
pub fn outbound_stream(conn: tokio::net::TcpStream) -> tokio::net::TcpStream {
    conn
}

/// A lazily-connected channel to a peer. With the `timeline` feature the
/// connection's reads and writes are marked (`o_read`, `o_wstart`,
/// `o_write`: this node's outbound peer connections, so a leader's sends and
/// its followers' replies show at its socket).
#[cfg(not(feature = "timeline"))]
pub fn peer_channel(endpoint: tonic::transport::Endpoint) -> tonic::transport::Channel {
    endpoint.connect_lazy()
}

#[cfg(feature = "timeline")]
pub use socket::{client_sockets, outbound_stream, peer_channel, peer_sockets, peer_stream};

#[cfg(feature = "timeline")]
mod socket {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::{Stream, StreamExt};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;
    use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

    /// The event names of one kind of connection's marks.
    struct Names {
        read: &'static str,
        wstart: &'static str,
        write: &'static str,
    }

    const CLIENT: Names = Names {
        read: "c_read",
        wstart: "c_wstart",
        write: "c_write",
    };
    const PEER: Names = Names {
        read: "p_read",
        wstart: "p_wstart",
        write: "p_write",
    };
    const OUTBOUND: Names = Names {
        read: "o_read",
        wstart: "o_wstart",
        write: "o_write",
    };

    /// tonic's own connector hands out no socket to wrap, so this one dials
    /// (with `TCP_NODELAY`, as the endpoint asks) and wraps what it dialled.
    pub fn peer_channel(endpoint: tonic::transport::Endpoint) -> tonic::transport::Channel {
        let connector = tower::service_fn(|uri: tonic::codegen::http::Uri| async move {
            let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
            let stream = TcpStream::connect(authority).await?;
            stream.set_nodelay(true)?;
            Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(Marked(stream, &OUTBOUND)))
        });
        endpoint.connect_with_connector_lazy(connector)
    }

    pub fn client_sockets(incoming: TcpIncoming) -> impl Stream<Item = io::Result<Marked>> {
        incoming.map(|accepted| accepted.map(|s| Marked(s, &CLIENT)))
    }

    pub fn peer_sockets(
        incoming: impl Stream<Item = io::Result<TcpStream>>,
    ) -> impl Stream<Item = io::Result<Marked>> {
        incoming.map(|accepted| accepted.map(|s| Marked(s, &PEER)))
    }

    pub fn peer_stream(conn: TcpStream) -> Marked {
        Marked(conn, &PEER)
    }

    pub fn outbound_stream(conn: TcpStream) -> Marked {
        Marked(conn, &OUTBOUND)
    }

    /// A connection whose reads and writes are marked.
    pub struct Marked(TcpStream, &'static Names);

    fn wrote(names: &Names, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &polled {
            if *n > 0 {
                super::mark(names.write, *n as u64);
            }
        }
        polled
    }

    impl AsyncRead for Marked {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let before = buf.filled().len();
            let polled = Pin::new(&mut self.0).poll_read(cx, buf);
            let read = buf.filled().len().saturating_sub(before);
            if read > 0 {
                super::mark(self.1.read, read as u64);
            }
            polled
        }
    }

    impl AsyncWrite for Marked {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            super::mark(self.1.wstart, 1);
            let names = self.1;
            wrote(names, Pin::new(&mut self.0).poll_write(cx, buf))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            super::mark(self.1.wstart, bufs.len() as u64);
            let names = self.1;
            wrote(names, Pin::new(&mut self.0).poll_write_vectored(cx, bufs))
        }

        fn is_write_vectored(&self) -> bool {
            self.0.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl Connected for Marked {
        type ConnectInfo = TcpConnectInfo;

        fn connect_info(&self) -> TcpConnectInfo {
            self.0.connect_info()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn task_sites_name_the_crate_without_its_version() {
        assert_eq!(
            super::task_site(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/openraft-0.10.0-alpha.37/src/core/tick.rs",
                76
            ),
            "task:openraft/core/tick.rs:76"
        );
        assert_eq!(
            super::task_site("/r/hyper-util-0.1.19/src/rt/tokio.rs", 127),
            "task:hyper-util/rt/tokio.rs:127"
        );
        assert_eq!(
            super::task_site("/work/main/node/src/server.rs", 139),
            "task:node/server.rs:139"
        );
        assert_eq!(
            super::task_site("node/src/raft/log_store.rs", 241),
            "task:node/raft/log_store.rs:241"
        );
        assert_eq!(super::task_site("lib.rs", 1), "task:/lib.rs:1");
        assert_eq!(
            super::task_site("/a b/my crate/src/x y.rs", 2),
            "task:my_crate/x_y.rs:2"
        );
    }
}
