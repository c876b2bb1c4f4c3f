//! A TCP forwarder that holds every chunk of bytes for a fixed time before
//! passing it on, in both directions and in order: link latency made in
//! user space, for kernels without the netem qdisc. The namespace harness
//! steers one node's peer connections through it with DNAT rules.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// What went through the proxy, to show that a delay step was in effect.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: AtomicU64,
    pub bytes: AtomicU64,
}

/// Listeners and connections; everything stops (connections close) on
/// [`DelayProxy::stop`] or drop.
pub struct DelayProxy {
    delay: Duration,
    stats: Arc<ProxyStats>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl DelayProxy {
    /// `delay` is added to each direction (so a round trip gains twice it).
    pub fn new(delay: Duration) -> Self {
        DelayProxy {
            delay,
            stats: Arc::new(ProxyStats::default()),
            tasks: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }

    /// Listens on `listen` (port 0 picks one) and forwards every accepted
    /// connection to `target`; returns the bound address.
    pub async fn forward(
        &self,
        listen: SocketAddr,
        target: SocketAddr,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(listen).await?;
        let bound = listener.local_addr()?;
        let (delay, stats, tasks) = (self.delay, self.stats.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                stats.connections.fetch_add(1, Ordering::Relaxed);
                let stats = stats.clone();
                let conn = tokio::spawn(async move {
                    // A refused or failed upstream simply closes the inbound side.
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        relay(inbound, outbound, delay, stats).await;
                    }
                });
                lock(&tasks).push(conn.abort_handle());
            }
        });
        lock(&self.tasks).push(accept.abort_handle());
        Ok(bound)
    }

    /// Closes the listeners and every forwarded connection.
    pub fn stop(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock(m: &Mutex<Vec<AbortHandle>>) -> std::sync::MutexGuard<'_, Vec<AbortHandle>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn relay(a: TcpStream, b: TcpStream, delay: Duration, stats: Arc<ProxyStats>) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    tokio::join!(
        pump(ar, bw, delay, stats.clone()),
        pump(br, aw, delay, stats)
    );
}

/// Reads chunks as they come and writes each one `delay` after it was read.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    stats: Arc<ProxyStats>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_each_direction_for_the_delay() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let proxy = DelayProxy::new(Duration::from_millis(150));
        let addr = proxy
            .forward("127.0.0.1:0".parse().unwrap(), echo_addr)
            .await
            .unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let t0 = std::time::Instant::now();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        let rtt = t0.elapsed();
        assert_eq!(&buf, b"ping");
        assert!(rtt >= Duration::from_millis(300), "round trip {rtt:?}");
        assert!(rtt < Duration::from_secs(3), "round trip {rtt:?}");
        assert_eq!(proxy.stats().connections.load(Ordering::Relaxed), 1);
        assert_eq!(proxy.stats().bytes.load(Ordering::Relaxed), 8);
        proxy.stop();
        // Stopped: the connection is closed.
        let n = c.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0);
    }
}
