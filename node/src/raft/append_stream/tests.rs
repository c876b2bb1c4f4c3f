use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use aegis_proto::raft::raft_peer_server::{RaftPeer, RaftPeerServer};
use aegis_proto::raft::{AppendReply, IdentityRequest, IdentityResponse, SnapshotChunk};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{AppendEntriesResponse, StreamAppendError};
use openraft::testing::{blank_ent, log_id};
use openraft::RaftNetworkV2;
use tonic::{Request, Response, Status, Streaming};

use super::*;
use crate::raft::framed_append;
use crate::raft::network::PeerNetwork;
use crate::raft::types::{decode, Member, Vote};

/// A peer of our own making, for what a real node will not do: be an
/// older build without the framed stream or without `AppendStream` at all,
/// or never answer. It serves the framed stream and gRPC on one port, as a
/// node does, and answers appends the same way on both.
#[derive(Clone, Default)]
struct FakePeer {
    /// Serves gRPC only, as a node before the framed stream.
    http2_only: bool,
    /// Serves neither stream (implies `http2_only`).
    no_stream: bool,
    silent: bool,
    /// Answers every streamed append with a higher vote.
    refuse: bool,
    streamed: Arc<AtomicUsize>,
    unary: Arc<AtomicUsize>,
    /// A silent peer's request stream ended (the leader closed its half).
    ended: Arc<AtomicBool>,
    /// Framed streams opened.
    framed: Arc<AtomicUsize>,
    /// Holds its answer to each hello this long, and counts in `pipelined`
    /// the streams whose first append came in meanwhile.
    hold_answer: Option<Duration>,
    pipelined: Arc<AtomicUsize>,
    /// Hangs up on this framed stream (counted from 1) without answering its hello.
    hang_up_on: Option<usize>,
}

/// One framed append stream, answered as `append_stream` answers on gRPC.
async fn serve_framed(conn: tokio::net::TcpStream, peer: FakePeer) {
    use tokio::io::AsyncWriteExt;
    let (rd, mut wr) = conn.into_split();
    let mut rd = tokio::io::BufReader::new(rd);
    if framed_append::read_hello(&mut rd).await.is_err() {
        return;
    }
    let nth = peer.framed.fetch_add(1, Ordering::SeqCst) + 1;
    if peer.hang_up_on == Some(nth) {
        return;
    }
    if let Some(hold) = peer.hold_answer {
        use tokio::io::AsyncBufReadExt;
        if let Ok(Ok(bytes)) = tokio::time::timeout(hold, rd.fill_buf()).await {
            if !bytes.is_empty() {
                peer.pipelined.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let mut buf = Vec::new();
    framed_append::put_message(&mut buf, &AppendReply::default()).expect("encodes");
    if wr.write_all(&buf).await.is_err() {
        return;
    }
    while let Ok(Some(p)) = framed_append::read_message::<RaftPayload, _>(&mut rd).await {
        peer.streamed.fetch_add(1, Ordering::SeqCst);
        if peer.silent {
            continue;
        }
        let reply = match answer(&p, peer.refuse) {
            Ok(r) => AppendReply {
                data: r.data,
                ..AppendReply::default()
            },
            Err(status) => framed_append::refusal(&status),
        };
        buf.clear();
        framed_append::put_message(&mut buf, &reply).expect("encodes");
        if wr.write_all(&buf).await.is_err() {
            return;
        }
    }
    peer.ended.store(true, Ordering::SeqCst);
}

fn answer(payload: &RaftPayload, refuse: bool) -> Result<RaftPayload, Status> {
    let req: AppendEntriesRequest<TypeConfig> =
        decode(&payload.data).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let last = req.entries.last().map(|e| e.log_id).or(req.prev_log_id);
    let reply: Result<StreamAppendResult<TypeConfig>, String> = if refuse {
        Ok(Err(StreamAppendError::HigherVote(Vote::new(9, 9))))
    } else {
        Ok(Ok(last))
    };
    let data = encode(&reply).map_err(|e| Status::internal(e.to_string()))?;
    Ok(RaftPayload { data })
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in this fake"))
}

#[tonic::async_trait]
impl RaftPeer for FakePeer {
    type AppendStreamStream = Pin<Box<dyn Stream<Item = Result<RaftPayload, Status>> + Send>>;

    async fn append_stream(
        &self,
        r: Request<Streaming<RaftPayload>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        if self.no_stream {
            return unimplemented();
        }
        let seen = Arc::clone(&self.streamed);
        if self.silent {
            let (mut incoming, ended) = (r.into_inner(), Arc::clone(&self.ended));
            tokio::spawn(async move {
                while let Some(Ok(_)) = incoming.next().await {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                ended.store(true, Ordering::SeqCst);
            });
            return Ok(Response::new(Box::pin(futures::stream::pending())));
        }
        let refuse = self.refuse;
        let replies = r.into_inner().map(move |m| {
            seen.fetch_add(1, Ordering::SeqCst);
            m.and_then(|p| answer(&p, refuse))
        });
        Ok(Response::new(Box::pin(replies)))
    }

    async fn append_entries(
        &self,
        r: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.unary.fetch_add(1, Ordering::SeqCst);
        let _: AppendEntriesRequest<TypeConfig> =
            decode(&r.into_inner().data).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let reply: Result<AppendEntriesResponse<TypeConfig>, String> =
            Ok(AppendEntriesResponse::Success);
        let data = encode(&reply).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(RaftPayload { data }))
    }

    async fn vote(&self, _: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        unimplemented()
    }
    async fn pre_vote(&self, _: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        unimplemented()
    }
    async fn transfer_leader(
        &self,
        _: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        unimplemented()
    }
    async fn install_snapshot(
        &self,
        _: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftPayload>, Status> {
        unimplemented()
    }
    async fn forward(&self, _: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        unimplemented()
    }
    async fn identity(
        &self,
        _: Request<IdentityRequest>,
    ) -> Result<Response<IdentityResponse>, Status> {
        unimplemented()
    }
}

/// Serves `peer` on a loopback port and returns a leader's connection to it.
async fn connect(peer: FakePeer, rpc_timeout: Duration) -> impl RaftNetworkV2<TypeConfig> {
    connect_paced(peer, rpc_timeout, Arc::new(Pacer::new(Duration::ZERO, 256))).await
}

async fn connect_paced(
    peer: FakePeer,
    rpc_timeout: Duration,
    pacer: Arc<Pacer>,
) -> impl RaftNetworkV2<TypeConfig> {
    connect_to(serve(peer).await, rpc_timeout, pacer).await
}

/// Serves `peer` on a loopback port.
async fn serve(peer: FakePeer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder().add_service(RaftPeerServer::new(peer.clone()));
    if peer.http2_only || peer.no_stream {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(server.serve_with_incoming(incoming));
        return addr;
    }
    let (grpc, mut framed) = crate::raft::peer_port::sort(listener);
    tokio::spawn(server.serve_with_incoming(grpc));
    tokio::spawn(async move {
        while let Some(conn) = framed.recv().await {
            tokio::spawn(serve_framed(conn, peer.clone()));
        }
    });
    addr
}

/// A leader's connection to the peer at `addr`, as follower 2.
async fn connect_to(
    addr: SocketAddr,
    rpc_timeout: Duration,
    pacer: Arc<Pacer>,
) -> impl RaftNetworkV2<TypeConfig> {
    let member = Member {
        peer_addr: addr.to_string(),
        ..Member::default()
    };
    let mut factory = PeerNetwork {
        connect_timeout: rpc_timeout,
        pacer,
    };
    factory.new_client(2, &member).await
}

/// Appends of one blank entry each, at indexes 1..=n.
fn appends(n: u64) -> impl Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin {
    let reqs = (1..=n).map(|i| AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: (i > 1).then(|| log_id::<TypeConfig>(1, 1, i - 1)),
        leader_commit: None,
        entries: vec![blank_ent::<TypeConfig>(1, 1, i)],
    });
    futures::stream::iter(reqs.collect::<Vec<_>>())
}

/// Sends `n` appends through `conn` and returns, per reply, the index
/// it acknowledged (or what came back instead).
async fn acks(conn: &mut impl RaftNetworkV2<TypeConfig>, n: u64) -> Vec<Result<u64, String>> {
    matched(send_all(conn, appends(n)).await)
}

/// Streams `input` through `conn` and collects every reply until the stream ends.
async fn send_all<S>(conn: &mut impl RaftNetworkV2<TypeConfig>, input: S) -> Vec<Reply>
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
{
    conn.stream_append(input, RPCOption::new(Duration::from_secs(5)))
        .await
        .expect("the appends go out")
        .collect()
        .await
}

fn acked_up_to(n: u64) -> Vec<Result<u64, String>> {
    (1..=n).map(Ok).collect()
}

/// An append after entry `prev` of blank entries `entries`; with none, it
/// only moves the commit index (to `prev`).
fn append(prev: u64, entries: &[u64]) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: (prev > 0).then(|| log_id::<TypeConfig>(1, 1, prev)),
        leader_commit: (prev > 0).then(|| log_id::<TypeConfig>(1, 1, prev)),
        entries: entries
            .iter()
            .map(|&i| blank_ent::<TypeConfig>(1, 1, i))
            .collect(),
    }
}

/// Per reply, the index it acknowledged (or what came back instead).
fn matched(replies: Vec<Reply>) -> Vec<Result<u64, String>> {
    replies
        .into_iter()
        .map(|r| match r {
            Ok(Ok(Some(l))) => Ok(l.index()),
            other => Err(format!("{other:?}")),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_only_appends_ride_on_the_next_append_and_are_answered_in_order() {
    let peer = FakePeer::default();
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    let input = vec![
        append(0, &[1]),
        append(1, &[]),
        append(1, &[]),
        append(1, &[2, 3]),
        append(3, &[]),
    ];
    let replies = send_all(&mut conn, futures::stream::iter(input)).await;
    assert_eq!(matched(replies), [Ok(1), Ok(1), Ok(1), Ok(3), Ok(3)]);
    // The two commit-only appends after entry 1 went with entries 2..=3;
    // the last one, with nothing after it, went alone.
    assert_eq!(peer.streamed.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_only_append_goes_alone_when_nothing_follows_in_time() {
    let peer = FakePeer::default();
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    let input = futures::stream::iter(vec![append(0, &[1, 2]), append(2, &[])])
        .chain(futures::stream::pending());
    let replies: Vec<Reply> = conn
        .stream_append(input, RPCOption::new(Duration::from_secs(5)))
        .await
        .expect("the appends go out")
        .take(2)
        .collect()
        .await;
    assert_eq!(matched(replies), [Ok(2), Ok(2)]);
    assert_eq!(peer.streamed.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_of_the_carrying_append_is_the_answer_to_the_carried_one() {
    let peer = FakePeer {
        refuse: true,
        ..FakePeer::default()
    };
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    let input = vec![append(4, &[]), append(4, &[5])];
    let replies = send_all(&mut conn, futures::stream::iter(input)).await;
    assert_eq!(
        replies.len(),
        1,
        "the stream ends at the refusal: {replies:?}"
    );
    assert!(
        matches!(&replies[0], Ok(Err(StreamAppendError::HigherVote(v))) if *v == Vote::new(9, 9)),
        "{replies:?}"
    );
    assert_eq!(peer.streamed.load(Ordering::SeqCst), 1);
}

/// A pacer whose followers 3, 4 and 5 answer fast and make the quorum
/// set; a fake peer connected as follower 2 is outside it.
fn fast_quorum_set(batch: Duration) -> Arc<Pacer> {
    quorum_set_answering_in(batch, Duration::from_millis(1))
}

fn quorum_set_answering_in(batch: Duration, latency: Duration) -> Arc<Pacer> {
    let pacer = Arc::new(Pacer::new(batch, 256));
    for id in 3..=5 {
        pacer.join(id);
        pacer.answered(id, latency, None);
    }
    pacer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_to_a_spare_follower_are_spaced_by_the_batch_interval() {
    let batch = Duration::from_millis(300);
    let pacer = fast_quorum_set(batch);
    let peer = FakePeer::default();
    let mut conn = connect_paced(peer.clone(), Duration::from_secs(5), pacer).await;
    let started = Instant::now();
    assert_eq!(acks(&mut conn, 3).await, acked_up_to(3));
    // Three appends: the second and third each waited one interval.
    assert!(
        started.elapsed() >= 2 * batch,
        "three appends took {:?}",
        started.elapsed()
    );
    assert_eq!(peer.streamed.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_follower_behind_by_full_appends_gets_them_back_to_back() {
    let batch = Duration::from_millis(1000);
    // openraft puts at most two entries in an append here, and the
    // members have been sent entries up to 6.
    let pacer = Arc::new(Pacer::new(batch, 2));
    for id in 3..=5 {
        pacer.join(id);
        pacer.answered(id, Duration::from_millis(1), None);
        pacer.sent_entries(id, 6);
    }
    let mut conn = connect_paced(FakePeer::default(), Duration::from_secs(5), pacer).await;
    let input = vec![
        append(0, &[1, 2]),
        append(2, &[3, 4]),
        append(4, &[5]),
        append(5, &[6]),
    ];
    let started = Instant::now();
    let mut replies = conn
        .stream_append(
            futures::stream::iter(input),
            RPCOption::new(Duration::from_secs(5)),
        )
        .await
        .expect("the appends go out");
    let mut answered_at = Vec::new();
    for i in 1..=4 {
        let reply = replies.next().await;
        assert!(matches!(reply, Some(Ok(Ok(_)))), "reply {i}: {reply:?}");
        answered_at.push(started.elapsed());
    }
    // While it was a full append (two entries) or more behind entry 6,
    // each append followed the previous one at once; one entry behind,
    // the last one waited out the interval.
    assert!(answered_at[2] < batch / 2, "answered at {answered_at:?}");
    assert!(answered_at[3] >= batch, "answered at {answered_at:?}");
}

/// A pacer whose quorum set is followers 3 and 4, answering in
/// `latency`, one with an append in flight since `busy_since`, and a
/// connection to a spare follower. The append makes 3 late
/// `3 × latency` after `busy_since`.
async fn spare_follower_behind_a_busy_quorum(
    batch: Duration,
    latency: Duration,
    busy_since: Instant,
) -> (Arc<Pacer>, impl RaftNetworkV2<TypeConfig>) {
    let pacer = quorum_set_answering_in(batch, latency);
    pacer.sent(3, busy_since, None, None);
    let conn = connect_paced(
        FakePeer::default(),
        Duration::from_secs(5),
        Arc::clone(&pacer),
    );
    (pacer, conn.await)
}

/// Sends two appends and returns how long after `started` the second
/// was answered (the stream itself ends only after one more interval).
async fn second_reply_after(
    conn: &mut impl RaftNetworkV2<TypeConfig>,
    started: Instant,
) -> Duration {
    let mut replies = conn
        .stream_append(appends(2), RPCOption::new(Duration::from_secs(5)))
        .await
        .expect("the appends go out");
    for i in 1..=2 {
        let reply = replies.next().await;
        assert!(matches!(reply, Some(Ok(Ok(_)))), "reply {i}: {reply:?}");
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_append_past_its_interval_goes_when_the_quorum_set_answers() {
    let batch = Duration::from_millis(1000);
    let started = Instant::now();
    // Sent at 0.9 s, late at 1.2 s: not yet when it is answered.
    let busy_since = started + Duration::from_millis(900);
    let latency = Duration::from_millis(100);
    let (pacer, mut conn) = spare_follower_behind_a_busy_quorum(batch, latency, busy_since).await;
    let answer_at = batch + Duration::from_millis(100);
    tokio::spawn(async move {
        tokio::time::sleep_until((started + answer_at).into()).await;
        pacer.answered(3, answer_at, None);
    });
    let took = second_reply_after(&mut conn, started).await;
    // Due after one interval, the second append waited for the answer,
    // which came well before the half interval more it may wait.
    assert!(took >= answer_at, "two appends took {took:?}");
    assert!(took < batch * 3 / 2, "two appends took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hurried_spare_follower_gets_its_next_append_without_waiting_its_interval() {
    let batch = Duration::from_millis(1000);
    let pacer = fast_quorum_set(batch);
    let mut conn = connect_paced(
        FakePeer::default(),
        Duration::from_secs(5),
        Arc::clone(&pacer),
    )
    .await;
    let started = Instant::now();
    let hurry_at = Duration::from_millis(100);
    tokio::spawn(async move {
        tokio::time::sleep_until((started + hurry_at).into()).await;
        // A read on follower 2 was confirmed: it waits for its next append.
        pacer.hurry(2, 1);
    });
    let took = second_reply_after(&mut conn, started).await;
    assert!(took >= hurry_at, "two appends took {took:?}");
    assert!(took < batch / 2, "two appends took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_append_waits_at_most_half_an_interval_for_a_busy_quorum_set() {
    let batch = Duration::from_millis(200);
    let started = Instant::now();
    // Sent at 0.2 s, late at 0.35 s: after the longest wait.
    let busy_since = started + batch;
    let latency = Duration::from_millis(50);
    let (_pacer, mut conn) = spare_follower_behind_a_busy_quorum(batch, latency, busy_since).await;
    let took = second_reply_after(&mut conn, started).await;
    assert!(took >= batch * 3 / 2, "two appends took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_member_sends_the_spare_follower_its_next_append_at_once() {
    let batch = Duration::from_millis(2000);
    let started = Instant::now();
    // Members answer in 20 ms: 3's append, unanswered, is late at 60 ms.
    let latency = Duration::from_millis(20);
    let (_pacer, mut conn) = spare_follower_behind_a_busy_quorum(batch, latency, started).await;
    let took = second_reply_after(&mut conn, started).await;
    assert!(took >= latency * 3, "two appends took {took:?}");
    assert!(took < batch / 2, "two appends took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_refuses_connections_leaves_the_quorum_set() {
    let pacer = Arc::new(Pacer::new(Duration::from_millis(5), 256));
    let mut factory = PeerNetwork {
        connect_timeout: Duration::from_secs(2),
        pacer: Arc::clone(&pacer),
    };
    // Nothing listens on this address once the listener is dropped.
    let addr = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let member = Member {
        peer_addr: addr.to_string(),
        ..Member::default()
    };
    // Follower 2 is down; 3, 4 and 5 answer.
    let mut down = factory.new_client(2, &member).await;
    for id in 3..=5 {
        pacer.join(id);
    }
    assert_eq!(pacer.spacing(2, Instant::now()), None, "first in id order");
    for id in 3..=5 {
        pacer.answered(id, Duration::from_millis(1), None);
    }
    let opened = down
        .stream_append(appends(3), RPCOption::new(Duration::from_secs(2)))
        .await;
    assert!(opened.is_err(), "nothing listens at {addr}");
    assert!(
        pacer.spacing(2, Instant::now()).is_some(),
        "the follower that is down is spare"
    );
    assert_eq!(pacer.spacing(3, Instant::now()), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_come_back_in_request_order() {
    let peer = FakePeer::default();
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    assert_eq!(acks(&mut conn, 6).await, acked_up_to(6));
    assert_eq!(peer.streamed.load(Ordering::SeqCst), 6);
    assert_eq!(peer.framed.load(Ordering::SeqCst), 1, "one framed stream");
    assert_eq!(peer.unary.load(Ordering::SeqCst), 0, "no unary call needed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_an_older_build_gets_the_http2_stream() {
    let peer = FakePeer {
        http2_only: true,
        ..FakePeer::default()
    };
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    let started = Instant::now();
    assert_eq!(acks(&mut conn, 6).await, acked_up_to(6));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the HTTP/2 server turned the framed stream down at once ({:?})",
        started.elapsed()
    );
    assert_eq!(acks(&mut conn, 2).await, acked_up_to(2));
    assert_eq!(peer.streamed.load(Ordering::SeqCst), 8);
    assert_eq!(peer.framed.load(Ordering::SeqCst), 0);
    assert_eq!(peer.unary.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_peer_answered_a_hello_appends_follow_the_next_hello_at_once() {
    let peer = FakePeer {
        hold_answer: Some(Duration::from_millis(300)),
        ..FakePeer::default()
    };
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    assert_eq!(acks(&mut conn, 2).await, acked_up_to(2));
    assert_eq!(
        peer.pipelined.load(Ordering::SeqCst),
        0,
        "the first stream waits for the answer: the peer may be an older build"
    );
    assert_eq!(acks(&mut conn, 2).await, acked_up_to(2));
    assert_eq!(acks(&mut conn, 2).await, acked_up_to(2));
    assert_eq!(peer.framed.load(Ordering::SeqCst), 3);
    assert_eq!(peer.pipelined.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_left_unanswered_makes_the_next_stream_wait_for_its_answer() {
    let peer = FakePeer {
        hold_answer: Some(Duration::from_millis(300)),
        hang_up_on: Some(2),
        ..FakePeer::default()
    };
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    assert_eq!(acks(&mut conn, 2).await, acked_up_to(2));
    let hung_up = conn
        .stream_append(appends(2), RPCOption::new(Duration::from_secs(5)))
        .await
        .expect("sent behind the hello")
        .collect::<Vec<_>>()
        .await;
    assert!(
        matches!(hung_up.as_slice(), [Err(RPCError::Unreachable(_))]),
        "{hung_up:?}"
    );
    // The third stream waits for its answer again; the fourth need not.
    assert_eq!(acks(&mut conn, 2).await, acked_up_to(2));
    assert_eq!(peer.pipelined.load(Ordering::SeqCst), 0);
    assert_eq!(acks(&mut conn, 2).await, acked_up_to(2));
    assert_eq!(peer.pipelined.load(Ordering::SeqCst), 1);
    assert_eq!(peer.framed.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_append_is_taken_before_the_peer_is_dialled() {
    // A port nothing listens on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut conn = connect_to(
        addr,
        Duration::from_secs(1),
        Arc::new(Pacer::new(Duration::ZERO, 256)),
    )
    .await;
    let taken = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&taken);
    let input = appends(3).inspect(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let opened = conn
        .stream_append(input, RPCOption::new(Duration::from_secs(1)))
        .await
        .map(|_| ());
    assert!(
        matches!(opened, Err(RPCError::Unreachable(_))),
        "{opened:?}"
    );
    // openraft's request stream is where it waits out its backoff after a
    // failure: a dial that failed before it was polled went round at once.
    assert_eq!(taken.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_on_the_framed_stream_reaches_openraft() {
    let peer = FakePeer {
        refuse: true,
        ..FakePeer::default()
    };
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    let replies = send_all(&mut conn, appends(3)).await;
    assert!(
        matches!(
            replies.first(),
            Some(Ok(Err(StreamAppendError::HigherVote(_))))
        ),
        "{replies:?}"
    );
    assert_eq!(peer.framed.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_follower_gets_the_inflight_limit_then_a_timeout_then_a_closed_stream() {
    let peer = FakePeer {
        silent: true,
        ..FakePeer::default()
    };
    let timeout = Duration::from_millis(400);
    let mut conn = connect(peer.clone(), timeout).await;
    let mut replies = conn
        .stream_append(appends(10), RPCOption::new(timeout))
        .await
        .expect("stream opens");
    let first = tokio::time::timeout(Duration::from_secs(10), replies.next())
        .await
        .expect("the leader gives up on a silent follower");
    assert!(
        matches!(first, Some(Err(RPCError::Unreachable(_)))),
        "{first:?}"
    );
    assert!(
        replies.next().await.is_none(),
        "the stream ends after an error"
    );
    assert_eq!(peer.streamed.load(Ordering::SeqCst), MAX_INFLIGHT_APPENDS);
    // Once openraft drops the replies, the leader ends its half of the
    // stream rather than wait for room no reply will give back.
    drop(replies);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !peer.ended.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the request half was left open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_stream_is_served_call_by_call() {
    let peer = FakePeer {
        no_stream: true,
        ..FakePeer::default()
    };
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    let option = RPCOption::new(Duration::from_secs(5));
    let refused = conn.stream_append(appends(2), option).await.is_err();
    assert!(refused, "the first attempt learns it is unsupported");
    assert_eq!(acks(&mut conn, 3).await, acked_up_to(3));
    assert_eq!(peer.unary.load(Ordering::SeqCst), 3);
    assert_eq!(peer.streamed.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_append_goes_as_one_call() {
    let peer = FakePeer::default();
    let mut conn = connect(peer.clone(), Duration::from_secs(5)).await;
    assert_eq!(acks(&mut conn, 1).await, acked_up_to(1));
    assert_eq!(peer.unary.load(Ordering::SeqCst), 1);
    assert_eq!(peer.streamed.load(Ordering::SeqCst), 0);
}

/// A TCP relay in front of a peer. `freeze` turns every connection open
/// at that moment into a black hole: bytes on it are read and dropped both
/// ways, as on a link whose retransmissions backed off during a partition
/// that has since healed. Connections made later relay as usual.
struct Relay {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Connections numbered below this are frozen.
    frozen_below: Arc<AtomicUsize>,
}

impl Relay {
    async fn start(to: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            accepted: Arc::default(),
            frozen_below: Arc::default(),
        };
        let (accepted, frozen_below) =
            (Arc::clone(&relay.accepted), Arc::clone(&relay.frozen_below));
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let n = accepted.fetch_add(1, Ordering::SeqCst);
                let Ok(outbound) = tokio::net::TcpStream::connect(to).await else {
                    continue;
                };
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                let frozen = move |f: &Arc<AtomicUsize>| n < f.load(Ordering::SeqCst);
                let f = Arc::clone(&frozen_below);
                tokio::spawn(pump(in_read, out_write, move || frozen(&f)));
                let f = Arc::clone(&frozen_below);
                tokio::spawn(pump(out_read, in_write, move || frozen(&f)));
            }
        });
        relay
    }

    fn freeze(&self) {
        self.frozen_below
            .store(self.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: impl Fn() -> bool,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if !frozen() && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A leader's connection to `peer` through a relay.
async fn relayed(peer: FakePeer, rpc_timeout: Duration) -> (Relay, impl RaftNetworkV2<TypeConfig>) {
    let relay = Relay::start(serve(peer).await).await;
    let pacer = Arc::new(Pacer::new(Duration::ZERO, 256));
    let conn = connect_to(relay.addr, rpc_timeout, pacer).await;
    (relay, conn)
}

/// Opens a stream through `relay`, has one append answered, freezes the
/// relay's connections and checks that the next append is given up on.
async fn frozen_mid_stream(
    relay: &Relay,
    conn: &mut impl RaftNetworkV2<TypeConfig>,
    timeout: Duration,
) {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    // Queued first: a stream is opened for an append to send.
    tx.unbounded_send(append(0, &[1])).unwrap();
    let mut replies = conn
        .stream_append(rx, RPCOption::new(timeout))
        .await
        .expect("stream opens");
    let first = replies.next().await.map(|r| matched(vec![r]));
    assert_eq!(first, Some(vec![Ok(1)]));

    relay.freeze();
    tx.unbounded_send(append(1, &[2])).unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), replies.next())
        .await
        .expect("the leader gives up on the frozen connection");
    assert!(
        matches!(second, Some(Err(RPCError::Unreachable(_)))),
        "{second:?}"
    );
    drop(replies);
}

/// A peer of an older build: the HTTP/2 streams share one connection.
fn http2_peer() -> FakePeer {
    FakePeer {
        http2_only: true,
        ..FakePeer::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_unanswered_append_the_next_stream_uses_a_new_connection() {
    let timeout = Duration::from_millis(400);
    let (relay, mut conn) = relayed(http2_peer(), timeout).await;
    frozen_mid_stream(&relay, &mut conn, timeout).await;

    // Without a new connection the next stream would open on the frozen
    // one and time out in turn. (The first of the three: the framed stream
    // the peer turned down.)
    assert_eq!(acks(&mut conn, 3).await, acked_up_to(3));
    assert_eq!(relay.connections(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_unanswered_stream_open_the_next_uses_a_new_connection() {
    let timeout = Duration::from_millis(400);
    let (relay, mut conn) = relayed(http2_peer(), timeout).await;
    assert_eq!(acks(&mut conn, 2).await, acked_up_to(2));

    relay.freeze();
    let opened = conn
        .stream_append(appends(2), RPCOption::new(timeout))
        .await
        .map(|_| ());
    assert!(
        matches!(opened, Err(RPCError::Unreachable(_))),
        "{opened:?}"
    );

    assert_eq!(acks(&mut conn, 3).await, acked_up_to(3));
    assert_eq!(
        relay.connections(),
        3,
        "the turned-down framed one, then two"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framed_stream_has_a_connection_of_its_own() {
    let timeout = Duration::from_millis(400);
    let (relay, mut conn) = relayed(FakePeer::default(), timeout).await;
    frozen_mid_stream(&relay, &mut conn, timeout).await;

    // The next stream dials again: the frozen connection holds nothing up.
    assert_eq!(acks(&mut conn, 3).await, acked_up_to(3));
    assert_eq!(acks(&mut conn, 2).await, acked_up_to(2));
    assert_eq!(relay.connections(), 3);
}
