//! The peer port serves two protocols: gRPC (HTTP/2) for every peer RPC, and
//! the framed append stream (see `framed_append`). A connection's first byte
//! tells them apart, so one port, one Service and one NetworkPolicy rule
//! still cover a node's peers.

use std::io;
use std::time::Duration;

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::framed_append::{HELLO_TIMEOUT, PREFACE};

/// Connections waiting to be taken by either side.
const QUEUED: usize = 64;

/// After a failed accept (out of file descriptors, say), the pause before
/// the next, so the loop does not spin on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections on `listener` (with `TCP_NODELAY`) and sorts them:
/// the first stream holds those for the gRPC server, the receiver those
/// that open an append stream. A connection that sends nothing within the
/// hello timeout is closed. Accepting stops once both sides are dropped.
pub fn sort(
    listener: TcpListener,
) -> (
    impl Stream<Item = io::Result<TcpStream>> + Send + 'static,
    mpsc::Receiver<TcpStream>,
) {
    let (grpc_tx, grpc_rx) = mpsc::channel::<io::Result<TcpStream>>(QUEUED);
    let (framed_tx, framed_rx) = mpsc::channel(QUEUED);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = both_closed(&grpc_tx, &framed_tx) => return,
            };
            let conn = match accepted {
                Ok((conn, _)) => conn,
                Err(e) => {
                    tracing::warn!("accepting a peer connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            if let Err(e) = conn.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY on a peer connection: {e}");
            }
            let (grpc_tx, framed_tx) = (grpc_tx.clone(), framed_tx.clone());
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                match tokio::time::timeout(HELLO_TIMEOUT, conn.peek(&mut first)).await {
                    Ok(Ok(1..)) if first[0] == PREFACE[0] => {
                        let _ = framed_tx.send(conn).await;
                    }
                    Ok(Ok(1..)) => {
                        let _ = grpc_tx.send(Ok(conn)).await;
                    }
                    _ => {}
                }
            });
        }
    });
    (
        tokio_stream::wrappers::ReceiverStream::new(grpc_rx),
        framed_rx,
    )
}

async fn both_closed<A, B>(a: &mpsc::Sender<A>, b: &mpsc::Sender<B>) {
    a.closed().await;
    b.closed().await;
}
