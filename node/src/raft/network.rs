//! Outgoing Raft RPCs to peers over tonic. openraft messages travel as
//! postcard bytes inside the stable `aegis.raft.v1` envelope.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aegis_proto::raft::raft_peer_client::RaftPeerClient;
use aegis_proto::raft::{RaftPayload, SnapshotChunk};
use futures::{Stream, StreamExt};
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{stream_append_sequential, RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tonic::transport::{Channel, Endpoint};

use super::append_stream;
use super::framed_append::{self, Opened};
use super::pace::Pacer;
use super::types::{decode, encode, Member, NodeId, Snapshot, SnapshotData, TypeConfig, Vote};

/// Snapshot bytes per streamed chunk.
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// How long a leader keeps using unary AppendEntries after a peer answered
/// UNIMPLEMENTED to `AppendStream` (a node of an older build, during a
/// rolling upgrade) before it tries the stream again.
const STREAM_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Request metadata carrying the incarnation the sender has recorded for the
/// target (decimal). The target refuses when it is non-zero and not its own.
pub const EXPECTED_INCARNATION: &str = "aegis-expected-incarnation";
/// Start of the FAILED_PRECONDITION message of that refusal.
pub const INCARNATION_MISMATCH: &str = "incarnation mismatch";
/// Header of a forwarded request: the id of the node that forwards it (a
/// read it confirms hurries that node's next append, see `pace`).
pub const ORIGIN_NODE: &str = "aegis-origin-node";

/// Opens a lazily-connected channel: a peer that is down costs nothing until
/// an RPC is attempted, and reconnects on its own when it returns.
pub fn channel(addr: &str, connect_timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    Ok(crate::timeline::peer_channel(
        Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10)),
    ))
}

#[derive(Clone)]
pub struct PeerNetwork {
    pub connect_timeout: Duration,
    /// Shared by every connection this node opens as a leader.
    pub pacer: Arc<Pacer>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerConnection {
        self.pacer.join(target);
        PeerConnection {
            target,
            rpc_timeout: self.connect_timeout,
            expected_incarnation: node.incarnation,
            client: connect(&node.peer_addr, self.connect_timeout),
            addr: node.peer_addr.clone(),
            last_stream: None,
            stream_refused: None,
            framed_refused: None,
            framed_spoken: Arc::new(AtomicBool::new(false)),
            pacer: Arc::clone(&self.pacer),
        }
    }
}

pub struct PeerConnection {
    target: NodeId,
    /// `raft.rpc-timeout-ms`: the least time an RPC is given. openraft's own
    /// deadline for an append is one heartbeat interval, so a link slower
    /// than that would time out every append and its follower would never
    /// catch up (found by the netns delay test, RELIABILITY.md).
    rpc_timeout: Duration,
    /// The target's incarnation as the membership records it; sent with
    /// every RPC so a target whose data was wiped refuses instead of
    /// answering from an empty log.
    expected_incarnation: u64,
    client: Result<RaftPeerClient<Channel>, String>,
    /// The target's peer address, to connect again.
    addr: String,
    /// The last `AppendStream` session; whether it stalled.
    last_stream: Option<Arc<append_stream::Session>>,
    /// When the target last answered UNIMPLEMENTED to `AppendStream`.
    stream_refused: Option<Instant>,
    /// When the target last did not speak the framed append stream.
    framed_refused: Option<Instant>,
    /// The target answered a hello, and no later stream found it silent:
    /// streams to it send their appends without waiting for the answer.
    framed_spoken: Arc<AtomicBool>,
    pacer: Arc<Pacer>,
}

fn connect(addr: &str, timeout: Duration) -> Result<RaftPeerClient<Channel>, String> {
    channel(addr, timeout)
        .map(RaftPeerClient::new)
        .map_err(|e| e.to_string())
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        self.pacer.leave(self.target);
    }
}

/// Adds the expected incarnation to an outgoing request (nothing for 0).
fn expect_incarnation<T>(request: &mut tonic::Request<T>, incarnation: u64) {
    if incarnation == 0 {
        return;
    }
    if let Ok(v) = incarnation.to_string().parse() {
        request.metadata_mut().insert(EXPECTED_INCARNATION, v);
    }
}

/// Peer replies carry `Result<T, String>`: an error string is a failure
/// of the remote Raft core, not of the network.
pub(super) fn unpack<T: DeserializeOwned>(payload: RaftPayload) -> Result<T, RPCError<TypeConfig>> {
    let r: Result<T, String> =
        decode(&payload.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
    r.map_err(|msg| RPCError::Network(NetworkError::from_string(msg)))
}

impl PeerConnection {
    fn client(&self) -> Result<RaftPeerClient<Channel>, RPCError<TypeConfig>> {
        self.client
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::from_string(e)))
    }

    async fn call<Req, Resp, F, Fut>(
        &self,
        req: &Req,
        option: &RPCOption,
        f: F,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(RaftPeerClient<Channel>, tonic::Request<RaftPayload>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftPayload>, tonic::Status>>,
    {
        let data = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut request = tonic::Request::new(RaftPayload { data });
        request.set_timeout(option.hard_ttl().max(self.rpc_timeout));
        expect_incarnation(&mut request, self.expected_incarnation);
        let resp = f(self.client()?, request)
            .await
            .map_err(|s| status_error(self.target, s))?;
        unpack(resp.into_inner())
    }
}

pub(super) fn status_error(target: NodeId, s: tonic::Status) -> RPCError<TypeConfig> {
    let msg = format!("peer {target}: {}: {}", s.code(), s.message());
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            RPCError::Unreachable(Unreachable::from_string(msg))
        }
        // The node at the target's address is not the member we admitted (its
        // data was wiped): to Raft it is as good as down. Unreachable makes
        // the replication back off; nothing it said reaches the Raft core.
        tonic::Code::FailedPrecondition if is_incarnation_mismatch(&s) => {
            RPCError::Unreachable(Unreachable::from_string(msg))
        }
        _ => RPCError::Network(NetworkError::from_string(msg)),
    }
}

pub fn is_incarnation_mismatch(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::FailedPrecondition && s.message().starts_with(INCARNATION_MISMATCH)
}

type Replies<'s> = BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>;

impl PeerConnection {
    /// Replaces the connection with a new one. A TCP connection that lost
    /// packets while a partition lasted can stay silent for seconds after it
    /// heals, its retransmissions backed off; the HTTP/2 keep-alive would
    /// only notice after ~30 s. A fresh connection starts without that
    /// backlog. Only replication that timed out at `raft.rpc-timeout-ms`
    /// (1 s by default) gets here, so a slow but live peer reconnects at
    /// most once a timeout.
    fn reconnect(&mut self, why: &str) {
        tracing::info!(
            peer = self.target,
            "{why} within the RPC timeout; connecting again"
        );
        self.client = connect(&self.addr, self.rpc_timeout);
        self.last_stream = None;
    }

    /// Opens an `AppendStream` to the target (see `append_stream`).
    async fn open_append_stream<S>(
        &mut self,
        input: S,
        option: RPCOption,
    ) -> Result<Replies<'static>, RPCError<TypeConfig>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        // openraft waits out its backoff after a failed session inside the
        // request stream. Taking the first append before dialling lets that
        // wait happen: a peer that cannot be connected to (a partition) was
        // otherwise dialled again at once, thousands of times a second.
        let mut input = input.peekable();
        if Pin::new(&mut input).peek().await.is_none() {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let timeout = option.hard_ttl().max(self.rpc_timeout);
        if self.last_stream.as_ref().is_some_and(|s| s.stalled()) {
            self.reconnect("an append went unanswered");
        }
        let session = append_stream::Session::new(self.target, timeout, Arc::clone(&self.pacer));
        self.last_stream = Some(Arc::clone(&session));
        if self
            .framed_refused
            .is_some_and(|t| t.elapsed() < STREAM_RETRY_AFTER)
        {
            return self.open_grpc_append_stream(input, session, timeout).await;
        }
        let spoken = self.framed_spoken.load(Ordering::Relaxed);
        let opening = framed_append::open(&self.addr, self.expected_incarnation, !spoken);
        let failed = match tokio::time::timeout(timeout, opening).await {
            Ok(Ok(Opened::Accepted(rd, wr))) => {
                self.framed_spoken.store(true, Ordering::Relaxed);
                return Ok(framed_session(input, session, rd, wr, None));
            }
            Ok(Ok(Opened::Sent(rd, wr))) => {
                let answer = Some(Arc::clone(&self.framed_spoken));
                return Ok(framed_session(input, session, rd, wr, answer));
            }
            Ok(Ok(Opened::Refused(status))) => {
                self.framed_spoken.store(true, Ordering::Relaxed);
                status_error(self.target, status)
            }
            Ok(Ok(Opened::NotSpoken(why))) => {
                tracing::info!(
                    peer = self.target,
                    "peer does not speak the framed append stream ({why}), an older \
                     build; replicating over its HTTP/2 stream for {STREAM_RETRY_AFTER:?}"
                );
                self.framed_refused = Some(Instant::now());
                return self.open_grpc_append_stream(input, session, timeout).await;
            }
            Ok(Err(e)) => RPCError::Unreachable(Unreachable::from_string(format!(
                "peer {}: opening an append stream: {e}",
                self.target
            ))),
            Err(_) => RPCError::Unreachable(Unreachable::from_string(format!(
                "peer {}: append stream not answered within {timeout:?}",
                self.target
            ))),
        };
        session.close();
        self.pacer.failed(self.target);
        Err(failed)
    }

    /// Opens the HTTP/2 `AppendStream`, for a peer without the framed one.
    async fn open_grpc_append_stream<S>(
        &mut self,
        input: S,
        session: Arc<append_stream::Session>,
        timeout: Duration,
    ) -> Result<Replies<'static>, RPCError<TypeConfig>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        let mut client = self.client()?;
        let mut request = tonic::Request::new(append_stream::requests(input, Arc::clone(&session)));
        expect_incarnation(&mut request, self.expected_incarnation);
        let opened = match tokio::time::timeout(timeout, client.append_stream(request)).await {
            Ok(opened) => opened,
            Err(_) => {
                session.close();
                self.pacer.failed(self.target);
                self.reconnect("AppendStream was not answered");
                return Err(RPCError::Unreachable(Unreachable::from_string(format!(
                    "peer {}: AppendStream not answered within {timeout:?}",
                    self.target
                ))));
            }
        };
        match opened {
            Ok(resp) => Ok(Box::pin(append_stream::replies(resp.into_inner(), session))),
            Err(s) => {
                session.close();
                self.pacer.failed(self.target);
                if s.code() == tonic::Code::Unimplemented {
                    tracing::info!(
                        peer = self.target,
                        "peer has no AppendStream (an older build); replicating with \
                         AppendEntries calls for {STREAM_RETRY_AFTER:?}"
                    );
                    self.stream_refused = Some(Instant::now());
                }
                Err(status_error(self.target, s))
            }
        }
    }
}

/// A framed append stream's two halves at work: a task writes the appends,
/// openraft reads the replies.
fn framed_session<S, C>(
    input: S,
    session: Arc<append_stream::Session>,
    rd: ReadHalf<C>,
    wr: WriteHalf<C>,
    answer: Option<Arc<AtomicBool>>,
) -> Replies<'static>
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let requests = append_stream::requests(input, Arc::clone(&session));
    tokio::spawn(framed_append::send_requests(wr, requests));
    let replies = framed_append::replies_from(rd, answer);
    Box::pin(append_stream::replies(replies, session))
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotData;

    /// Replication over `AppendStream`; heartbeats, and everything to a peer
    /// that recently refused the stream, call by call.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<Replies<'s>, RPCError<TypeConfig>>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        // A heartbeat is a stream of exactly one append: one call carries it
        // with fewer frames than opening a stream for it.
        let single = input.size_hint() == (1, Some(1));
        let refused = self
            .stream_refused
            .is_some_and(|t| t.elapsed() < STREAM_RETRY_AFTER);
        if single || refused {
            return stream_append_sequential(self, input, option);
        }
        Box::pin(async move { self.open_append_stream(input, option).await })
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        failpoint!("network::append_entries::before");
        let reply = self
            .call(&rpc, &option, |mut c, r| async move {
                c.append_entries(r).await
            })
            .await;
        if reply.is_err() {
            self.pacer.failed(self.target);
        }
        reply
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        failpoint!("network::vote::before");
        self.call(&rpc, &option, |mut c, r| async move { c.vote(r).await })
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        failpoint!("network::vote::before");
        self.call(&rpc, &option, |mut c, r| async move { c.pre_vote(r).await })
            .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&req, &option, |mut c, r| async move {
            c.transfer_leader(r).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let header = encode(&(vote, snapshot.meta))
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        let data = snapshot.snapshot;
        let mut chunks: Vec<SnapshotChunk> = data
            .chunks(SNAPSHOT_CHUNK)
            .map(|c| SnapshotChunk {
                header: Vec::new(),
                data: c.to_vec(),
            })
            .collect();
        if chunks.is_empty() {
            chunks.push(SnapshotChunk::default());
        }
        chunks[0].header = header;
        let mut client = self
            .client
            .clone()
            .map_err(|e| StreamingError::Unreachable(Unreachable::from_string(e)))?;
        let mut request = tonic::Request::new(tokio_stream::iter(chunks));
        request.set_timeout(option.hard_ttl().max(Duration::from_secs(30)));
        expect_incarnation(&mut request, self.expected_incarnation);
        let target = self.target;
        let send = async move { client.install_snapshot(request).await };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            resp = send => {
                let resp = resp.map_err(|s| match status_error(target, s) {
                    RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                    other => StreamingError::Network(NetworkError::from_string(other.to_string())),
                })?;
                let r: Result<SnapshotResponse<TypeConfig>, String> = decode(&resp.into_inner().data)
                    .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
                r.map_err(|m| StreamingError::Network(NetworkError::from_string(m)))
            }
        }
    }
}
