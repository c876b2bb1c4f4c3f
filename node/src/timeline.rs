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
//! [`client_sockets`]).

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

#[cfg(feature = "timeline")]
pub use socket::client_sockets;

#[cfg(feature = "timeline")]
mod socket {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::{Stream, StreamExt};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;
    use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

    pub fn client_sockets(incoming: TcpIncoming) -> impl Stream<Item = io::Result<Marked>> {
        incoming.map(|accepted| accepted.map(Marked))
    }

    /// A client connection whose reads and writes are marked.
    pub struct Marked(TcpStream);

    fn wrote(polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &polled {
            if *n > 0 {
                timeline!("c_write", *n);
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
                timeline!("c_read", read);
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
            timeline!("c_wstart", 1);
            wrote(Pin::new(&mut self.0).poll_write(cx, buf))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            timeline!("c_wstart", bufs.len());
            wrote(Pin::new(&mut self.0).poll_write_vectored(cx, bufs))
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
