//! A voter with a newer log steps in when a candidate with an older one asks for its pre-vote
//! (`node/src/raft/step_in.rs`). The tests play that candidate over the peer port: a node
//! that refuses it starts a pre-vote round of its own, which elects it once the leader is
//! gone and changes nothing while the leader is alive.

mod support;

use std::time::{Duration, Instant};

use aegis_node::raft::peer_wire;
use aegis_proto::raft::raft_peer_client::RaftPeerClient;
use aegis_proto::raft::RaftPayload;
use support::*;

/// Elections slow enough that a node's own timer cannot explain what the tests see: a
/// follower campaigns 4.5–6 s after it last heard from the leader (ADR-0010's mapping: the
/// lease is 3 s).
const SLOW_ELECTIONS: &[&str] = &[
    "raft:",
    "  heartbeat-interval-ms: 100",
    "  election-timeout-min-ms: 4500",
    "  election-timeout-max-ms: 6000",
];
const LEASE: Duration = Duration::from_secs(3);

/// Sends node `n` a pre-vote from `candidate` for `term` with an empty log; returns whether
/// it was granted.
async fn stale_pre_vote(
    c: &aegis_client::devcluster::DevCluster,
    n: usize,
    term: u64,
    candidate: u64,
) -> bool {
    let peer = format!("http://{}", c.addrs(n).unwrap().peer);
    let mut client = RaftPeerClient::connect(peer).await.expect("peer port");
    let data = peer_wire::vote_request(term, candidate, None).unwrap();
    let reply = client
        .pre_vote(RaftPayload { data })
        .await
        .expect("pre-vote answered")
        .into_inner();
    peer_wire::vote_granted(&reply.data).expect("a vote answer")
}

async fn step_ins(c: &aegis_client::devcluster::DevCluster, n: usize) -> f64 {
    metric(&c.addrs(n).unwrap().metrics, "aegis_raft_step_ins_total")
        .await
        .unwrap_or(-1.0)
}

async fn put_some(c: &aegis_client::devcluster::DevCluster) {
    let client = c.client().unwrap();
    for i in 0..5 {
        client.put(format!("step-in/{i}"), "v").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stale_candidate_changes_nothing_while_the_leader_lives() {
    let _g = serial().await;
    let c = cluster_with(3, SLOW_ELECTIONS).await;
    put_some(&c).await;
    let leader = leader_of(&c).await as usize;
    let term = status_of(&c, leader).await.unwrap().term;
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    let other = (1..=3).find(|n| *n != leader && *n != follower).unwrap();

    assert!(!stale_pre_vote(&c, follower, term + 1, other as u64).await);
    // The follower stepped in (its turn is at most two ranks, 40 ms); openraft refused the
    // round locally, since the follower's lease from the live leader lasts.
    let deadline = Instant::now() + Duration::from_secs(2);
    while step_ins(&c, follower).await < 1.0 {
        assert!(Instant::now() < deadline, "the follower stepped in");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 1..=3 {
        let s = status_of(&c, n).await.unwrap();
        assert_eq!((s.term, s.leader_id), (term, leader as u64), "node {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stale_candidate_brings_the_election_forward_once_the_leader_is_gone() {
    let _g = serial().await;
    let mut c = cluster_with(3, SLOW_ELECTIONS).await;
    put_some(&c).await;
    let leader = leader_of(&c).await as usize;
    let term = status_of(&c, leader).await.unwrap().term;
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    let other = (1..=3).find(|n| *n != leader && *n != follower).unwrap();

    c.kill(leader).unwrap();
    let killed = Instant::now();
    // Past every follower's lease, well before any follower's own timer (4.5 s at the
    // earliest after it last heard from the leader).
    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    assert!(!stale_pre_vote(&c, follower, term + 1, other as u64).await);
    let new = wait_new_leader(&c, leader as u64, Duration::from_secs(1))
        .await
        .expect("a leader within a second of the refusal");
    assert!(
        killed.elapsed() < Duration::from_millis(4400),
        "elected by the step-in, not a timer"
    );
    assert_eq!(new, follower as u64, "the voter that refused stepped in");
    assert_eq!(step_ins(&c, follower).await, 1.0);
    assert_eq!(step_ins(&c, other).await, 0.0);
}
