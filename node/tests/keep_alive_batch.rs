//! Keep-alives many to a log entry, with real processes: the leader batches
//! them once every member says it decodes the batch, each keep-alive still
//! gets its own session's answer, a member that is down does not stop it,
//! a follower forwards them to the leader many to a request, and a member of
//! an older build (a fake
//! peer that answers `Identity` without the `commands` field) keeps them one
//! to an entry until it leaves.

mod support;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aegis_proto::raft::raft_peer_server::{RaftPeer, RaftPeerServer};
use aegis_proto::raft::{IdentityRequest, IdentityResponse, RaftPayload, SnapshotChunk};
use aegis_proto::v1 as pb;
use futures::Stream;
use pb::session_client::SessionClient;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use support::*;

/// Keep-alives sent back to back on one stream per burst.
const BURST: usize = 64;

/// One burst of keep-alives for `ids` (cycled) on a fresh stream: each
/// reply's (session, ttl), in order, and how many entries carried them.
async fn burst(sessions: &mut SessionClient<Channel>, ids: &[u64]) -> (Vec<(u64, u64)>, usize) {
    let requests: Vec<_> = ids
        .iter()
        .cycle()
        .take(BURST)
        .map(|&session_id| pb::KeepAliveRequest { session_id })
        .collect();
    let mut replies = sessions
        .keep_alive_stream(futures::stream::iter(requests))
        .await
        .expect("stream opens")
        .into_inner();
    let mut got = Vec::new();
    let mut revisions = std::collections::BTreeSet::new();
    for _ in 0..BURST {
        let r = tokio::time::timeout(Duration::from_secs(10), replies.message())
            .await
            .expect("a reply within 10 s")
            .expect("no refusal")
            .expect("stream open");
        revisions.insert(r.header.expect("header").revision);
        got.push((r.session_id, r.ttl_ms));
    }
    (got, revisions.len())
}

/// Sends bursts until one lands in fewer than half as many entries as it
/// has keep-alives (batched) or `within` passes; returns the last count.
async fn entries_once_batched(
    sessions: &mut SessionClient<Channel>,
    ids: &[u64],
    within: Duration,
) -> usize {
    let until = Instant::now() + within;
    loop {
        let (_, entries) = burst(sessions, ids).await;
        if entries < BURST / 2 || Instant::now() >= until {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alives_share_entries_and_each_gets_its_own_answer() {
    let _g = serial().await;
    let mut c = cluster(3).await;
    let client = c.client().unwrap();
    let leader = leader_of(&c).await as usize;
    let endpoint = format!("http://{}", c.addrs(leader).unwrap().client);
    let mut sessions = SessionClient::connect(endpoint).await.unwrap();

    let mut ids = Vec::new();
    for ttl in [30_000, 40_000, 50_000, 60_000, 70_000] {
        ids.push(client.session_open(ttl).await.unwrap().0);
    }
    let never_opened = ids.iter().max().unwrap() + 1_000_000;
    ids.push(never_opened);

    let entries = entries_once_batched(&mut sessions, &ids, Duration::from_secs(20)).await;
    assert!(
        entries < BURST / 2,
        "{BURST} keep-alives took {entries} entries: not batched"
    );

    // Batched, each keep-alive is answered for its own session, in order.
    let before = client.session_get(ids[4]).await.unwrap().deadline_ms;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (got, entries) = burst(&mut sessions, &ids).await;
    let want: Vec<(u64, u64)> = ids
        .iter()
        .cycle()
        .take(BURST)
        .map(|&id| {
            let ttl = match id {
                id if id == never_opened => 0,
                id => 30_000 + 10_000 * ids.iter().position(|&x| x == id).unwrap() as u64,
            };
            (id, ttl)
        })
        .collect();
    assert_eq!(got, want);
    assert!(entries < BURST, "{entries} entries for {BURST} keep-alives");
    // And the deadline moved on replicated time.
    let after = client.session_get(ids[4]).await.unwrap().deadline_ms;
    assert!(after > before, "deadline {before} -> {after}");

    // A member that is down counts as what it last said: still batched.
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    c.kill(follower).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (got, entries) = burst(&mut sessions, &ids).await;
    assert_eq!(got, want);
    assert!(
        entries < BURST / 2,
        "{entries} entries with node {follower} down"
    );
}

/// The leader's count of requests forwarded to it, from its metrics page.
async fn forwarded_to(metrics_addr: &str) -> u64 {
    metric(metrics_addr, "aegis_raft_forwarded_requests_total")
        .await
        .expect("the counter on the metrics page") as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_keep_alives_many_to_a_request() {
    let _g = serial().await;
    let c = cluster(3).await;
    let client = c.client().unwrap();
    let leader = leader_of(&c).await as usize;
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    let endpoint = format!("http://{}", c.addrs(follower).unwrap().client);
    let mut sessions = SessionClient::connect(endpoint).await.unwrap();
    let metrics = c.addrs(leader).unwrap().metrics.clone();
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(client.session_open(30_000).await.unwrap().0);
    }
    let never_opened = ids.iter().max().unwrap() + 1_000_000;
    ids.push(never_opened);

    // Once the follower has heard that the leader takes batches, a burst
    // costs the leader far fewer forwarded requests than keep-alives.
    let until = Instant::now() + Duration::from_secs(20);
    let (got, forwards) = loop {
        let before = forwarded_to(&metrics).await;
        let (got, _) = burst(&mut sessions, &ids).await;
        let forwards = forwarded_to(&metrics).await - before;
        if forwards < BURST as u64 / 2 || Instant::now() >= until {
            break (got, forwards);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        forwards < BURST as u64 / 2,
        "{BURST} keep-alives took {forwards} forwarded requests"
    );
    let want: Vec<(u64, u64)> = ids
        .iter()
        .cycle()
        .take(BURST)
        .map(|&id| (id, if id == never_opened { 0 } else { 30_000 }))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_an_older_build_keeps_keep_alives_one_to_an_entry() {
    let _g = serial().await;
    let c = cluster(3).await;
    let client = c.client().unwrap();
    let leader = leader_of(&c).await as usize;
    let endpoint = format!("http://{}", c.addrs(leader).unwrap().client);
    let mut sessions = SessionClient::connect(endpoint).await.unwrap();
    let ids = [client.session_open(10_000).await.unwrap().0];

    let entries = entries_once_batched(&mut sessions, &ids, Duration::from_secs(20)).await;
    assert!(entries < BURST / 2, "batched first ({entries} entries)");

    // While the group batches, a node of an earlier build is not let in.
    let older = Arc::new(AtomicU32::new(0));
    let (peer, server) = serve(OlderPeer {
        node_id: 9,
        commands: Arc::clone(&older),
    })
    .await;
    let refused = client
        .member_add_learner(9, &peer.to_string(), &free_addr())
        .await
        .expect_err("an earlier build is refused");
    assert!(
        refused
            .to_string()
            .contains("node 9 cannot be added: it runs an earlier build"),
        "{refused}"
    );

    // One that decodes batches is; if it then answers as an earlier build
    // (rolled back), within two gate rounds every keep-alive has an entry
    // of its own.
    older.store(1, Ordering::SeqCst);
    let added = client
        .member_add_learner(9, &peer.to_string(), &free_addr())
        .await
        .unwrap();
    assert!(added.members.iter().any(|m| m.id == 9 && !m.voter));
    older.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    for _ in 0..3 {
        let (got, entries) = burst(&mut sessions, &ids).await;
        assert!(got.iter().all(|&(_, ttl)| ttl == 10_000));
        assert_eq!(entries, BURST, "one entry per keep-alive");
    }

    // Once it has left, they share entries again.
    client.member_remove(9).await.unwrap();
    let entries = entries_once_batched(&mut sessions, &ids, Duration::from_secs(20)).await;
    assert!(entries < BURST / 2, "batched again ({entries} entries)");
    server.abort();
}

/// Serves `peer` on a free loopback port.
async fn serve(peer: OlderPeer) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let addr: SocketAddr = free_addr().parse().unwrap();
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(RaftPeerServer::new(peer))
            .serve(addr)
            .await;
    });
    // Answering before the leader asks.
    let until = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < until, "fake peer listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (addr, server)
}

/// A peer that says who it is and which commands it decodes, and takes
/// part in nothing else: answering 0, the proto default, it is a build
/// before `IdentityResponse.commands`.
struct OlderPeer {
    node_id: u64,
    commands: Arc<AtomicU32>,
}

type Replies = Pin<Box<dyn Stream<Item = Result<RaftPayload, Status>> + Send>>;

fn refused<T>() -> Result<T, Status> {
    Err(Status::unavailable("an older peer that takes no part"))
}

#[tonic::async_trait]
impl RaftPeer for OlderPeer {
    async fn append_entries(
        &self,
        _: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        refused()
    }
    type AppendStreamStream = Replies;
    async fn append_stream(
        &self,
        _: Request<Streaming<RaftPayload>>,
    ) -> Result<Response<Replies>, Status> {
        refused()
    }
    async fn vote(&self, _: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        refused()
    }
    async fn pre_vote(&self, _: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        refused()
    }
    async fn transfer_leader(
        &self,
        _: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        refused()
    }
    async fn install_snapshot(
        &self,
        _: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftPayload>, Status> {
        refused()
    }
    async fn forward(&self, _: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        refused()
    }
    async fn identity(
        &self,
        _: Request<IdentityRequest>,
    ) -> Result<Response<IdentityResponse>, Status> {
        Ok(Response::new(IdentityResponse {
            node_id: self.node_id,
            incarnation: 0x5eed,
            initialized: true,
            commands: self.commands.load(Ordering::SeqCst),
        }))
    }
}
