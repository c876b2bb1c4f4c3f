//! Keep-alives for many sessions over one stream (`Session.KeepAliveStream`), for a process
//! that holds more sessions than it wants unary calls for; [`crate::Session`] keeps one
//! session alive on its own.

use aegis_proto::v1 as pb;
use pb::session_client::SessionClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::client::{Client, Retry};
use crate::error::{Error, Result};

/// Requests queued ahead of the stream; the node has up to 32 of one stream in flight.
const QUEUED: usize = 32;

/// The answer to one keep-alive of a [`KeepAliveStream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptAlive {
    pub session_id: u64,
    /// The session's ttl; `None` when the session is not found or has expired.
    pub ttl_ms: Option<u64>,
    /// Log index the keep-alive was applied at.
    pub revision: u64,
}

/// One `KeepAliveStream` to one node, from [`Client::keep_alive_stream`]. Answers come in the
/// order of [`send`](Self::send). Failover happens only when the stream is opened: once it
/// ends with an error, open another (keep-alives are safe to repeat). [`split`](Self::split)
/// it to send from one task and read the answers in another.
#[derive(Debug)]
pub struct KeepAliveStream {
    sender: KeepAliveSender,
    replies: KeepAliveReplies,
}

/// The sending half of a [`KeepAliveStream`]; clones send on the same stream.
#[derive(Debug, Clone)]
pub struct KeepAliveSender {
    requests: mpsc::Sender<pb::KeepAliveRequest>,
}

/// The answers of a [`KeepAliveStream`].
pub struct KeepAliveReplies {
    replies: Streaming<pb::KeepAliveResponse>,
}

impl std::fmt::Debug for KeepAliveReplies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeepAliveReplies")
    }
}

impl KeepAliveStream {
    pub(crate) async fn open(client: &Client) -> Result<KeepAliveStream> {
        // Each attempt gets a fresh request stream; the sender of the one that opened is kept.
        let sender = std::sync::Mutex::new(None);
        let replies = client
            .run(Retry::Idempotent, None, |ch, _| {
                let (tx, rx) = mpsc::channel(QUEUED);
                *sender.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
                async move {
                    SessionClient::new(ch)
                        .keep_alive_stream(ReceiverStream::new(rx))
                        .await
                }
            })
            .await?;
        let requests = sender
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .ok_or_else(|| Error::MalformedResponse("keep-alive stream without a sender".into()))?;
        Ok(KeepAliveStream {
            sender: KeepAliveSender { requests },
            replies: KeepAliveReplies { replies },
        })
    }

    /// See [`KeepAliveSender::send`].
    pub async fn send(&self, session_id: u64) -> Result<()> {
        self.sender.send(session_id).await
    }

    /// See [`KeepAliveReplies::next`].
    pub async fn next(&mut self) -> Result<Option<KeptAlive>> {
        self.replies.next().await
    }

    /// The two halves, to send and read from different tasks.
    pub fn split(self) -> (KeepAliveSender, KeepAliveReplies) {
        (self.sender, self.replies)
    }
}

impl KeepAliveSender {
    /// Queues a keep-alive for `session_id`; waits only while 32 are already queued.
    pub async fn send(&self, session_id: u64) -> Result<()> {
        self.requests
            .send(pb::KeepAliveRequest { session_id })
            .await
            .map_err(|_| Error::Unavailable("keep-alive stream ended".into()))
    }
}

impl KeepAliveReplies {
    /// The next answer, in the order the keep-alives were sent; `None` once the node ended the
    /// stream without an error. An error ends the stream: later sends get no answer.
    pub async fn next(&mut self) -> Result<Option<KeptAlive>> {
        match self.replies.message().await {
            Ok(Some(r)) => Ok(Some(KeptAlive {
                session_id: r.session_id,
                ttl_ms: (r.ttl_ms != 0).then_some(r.ttl_ms),
                revision: r.header.map_or(0, |h| h.revision),
            })),
            Ok(None) => Ok(None),
            Err(status) => Err(Error::from_status(&status)),
        }
    }
}

impl Client {
    /// Opens a keep-alive stream to a node (with the client's failover), for keeping many
    /// sessions alive over one stream, as etcd's `LeaseKeepAlive`.
    pub async fn keep_alive_stream(&self) -> Result<KeepAliveStream> {
        KeepAliveStream::open(self).await
    }
}
