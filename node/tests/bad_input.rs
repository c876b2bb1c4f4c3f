//! Bad input gets a stable error and loses nothing (issue: data plane, item 10).

mod support;

use std::time::Duration;

use aegis_client::{Compare, CompareOp, Error, InvalidArgument, PutOptions, Txn, TxnOp};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_stable_errors_and_lose_nothing() {
    let _g = serial().await;
    let mut c = cluster_with(
        5,
        &[
            "kv:",
            "  max-versions: 2",
            "  max-value-bytes: 1024",
            "  max-request-bytes: 4096",
            "  max-txn-ops: 8",
        ],
    )
    .await;
    let client = c.client().unwrap();
    client.put("keep", "me").await.unwrap();

    // Empty key.
    let e = client.put("", "v").await.unwrap_err();
    assert_eq!(e, Error::InvalidArgument(InvalidArgument::KeyEmpty));
    // Value over the limit.
    let e = client.put("big", vec![b'x'; 1025]).await.unwrap_err();
    assert_eq!(e, Error::InvalidArgument(InvalidArgument::ValueTooLarge));
    // A request over the limit even though each value fits.
    let mut txn = Txn::new();
    for i in 0..5 {
        txn = txn.and_then(TxnOp::put(format!("t{i}"), vec![b'y'; 1000]));
    }
    let e = client.txn(&txn).await.unwrap_err();
    assert_eq!(e, Error::InvalidArgument(InvalidArgument::RequestTooLarge));
    // Too many txn ops.
    let mut txn = Txn::new();
    for i in 0..9 {
        txn = txn.when(Compare::version(format!("c{i}"), CompareOp::Equal, 0));
    }
    let e = client.txn(&txn).await.unwrap_err();
    assert_eq!(e, Error::InvalidArgument(InvalidArgument::TooManyTxnOps));
    // Unknown session.
    let e = client.session_keep_alive(987_654_321).await.unwrap_err();
    assert_eq!(e, Error::SessionNotFound);
    let e = client
        .put_with("bound", "v", &PutOptions::default().session(987_654_321))
        .await
        .unwrap_err();
    assert_eq!(e, Error::SessionNotFound);
    // TTL below the minimum.
    let e = client.session_open(10).await.unwrap_err();
    assert_eq!(e, Error::InvalidArgument(InvalidArgument::TtlBelowMinimum));
    // Release by a session that does not hold the lock.
    let (s, _) = client.session_open(5000).await.unwrap();
    let e = client.lock_release("nobody-holds", s, 1).await.unwrap_err();
    assert_eq!(e, Error::LockNotHeld);
    // A compacted revision (retention 2 versions per key). The leader replicates its
    // retention setting on one of its first ticks, which a loaded machine may delay: write
    // versions until the oldest of a round is compacted.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let first = client.put("hist", "1").await.unwrap().revision;
        for v in 2..=4 {
            client.put("hist", v.to_string()).await.unwrap();
        }
        match client.get_at("hist", first).await {
            Err(Error::Compacted {
                compact_revision, ..
            }) => {
                assert!(compact_revision >= first);
                break;
            }
            other => assert!(
                std::time::Instant::now() < deadline,
                "expected compacted, got {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A future revision.
    assert_eq!(
        client.get_at("hist", u64::MAX / 2).await.unwrap_err(),
        Error::FutureRevision
    );

    // A write while no quorum exists: "no leader", not a hang and not a lie.
    let leader = leader_of(&c).await as usize;
    let others: Vec<usize> = (1..=5).filter(|n| *n != leader).take(3).collect();
    for n in &others {
        c.kill(*n).unwrap();
    }
    let lonely = pinned(&c.addrs(leader).unwrap().client);
    let e = tokio::time::timeout(Duration::from_secs(30), lonely.put("during-outage", "x"))
        .await
        .expect("a minority answers within its deadline")
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NoLeader | Error::Unknown(_) | Error::DeadlineExceeded(_)
        ),
        "minority write refused: {e:?}"
    );
    for n in &others {
        c.start(*n).unwrap();
    }
    c.wait_for_leader(Duration::from_secs(20)).await.unwrap();

    // Nothing that was acknowledged was lost; nothing refused was applied.
    let client = c.client().unwrap();
    assert_eq!(client.get("keep").await.unwrap().kv.unwrap().value, b"me");
    assert_eq!(client.get("hist").await.unwrap().kv.unwrap().value, b"4");
    for k in ["", "big", "t0", "bound"] {
        if !k.is_empty() {
            assert!(
                client.get(k).await.unwrap().kv.is_none(),
                "{k} was not written"
            );
        }
    }
}

#[tokio::test]
async fn a_node_refuses_to_start_on_a_config_that_fails_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        "raft:\n  heartbeat-interval-ms: 200\n  election-timeout-min-ms: 300\nlease:\n  skew-grace-ms: -1\n",
    )
    .unwrap();
    let out = std::process::Command::new(node_bin())
        .args([
            "--id",
            "1",
            "--peer-addr",
            "127.0.0.1:0",
            "--client-addr",
            "127.0.0.1:0",
        ])
        .args(["--metrics-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for rule in [
        "raft.election-min-ge-3x-heartbeat",
        "lease.skew-grace-nonneg",
    ] {
        assert!(err.contains(rule), "names {rule}: {err}");
    }
}

/// A peer stream that carries something other than an append is refused
/// with INVALID_ARGUMENT; the follower keeps replicating the real leader's
/// writes (a leaked or mixed-up connection cannot wedge it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_append_on_the_peer_stream_is_refused_and_loses_nothing() {
    use aegis_proto::raft::raft_peer_client::RaftPeerClient;
    use aegis_proto::raft::RaftPayload;

    let _g = serial().await;
    let c = cluster(3).await;
    let client = c.client().unwrap();
    client.put("keep", "me").await.unwrap();
    let leader = leader_of(&c).await as usize;
    let follower = (1..=3).find(|n| *n != leader).unwrap();

    let addr = format!("http://{}", c.addrs(follower).unwrap().peer);
    let mut peer = RaftPeerClient::connect(addr).await.unwrap();
    let garbage = RaftPayload {
        data: vec![0xff; 7],
    };
    let mut replies = peer
        .append_stream(tokio_stream::iter(vec![garbage]))
        .await
        .unwrap()
        .into_inner();
    let refused = tokio::time::timeout(Duration::from_secs(10), replies.message())
        .await
        .expect("the follower answers")
        .expect_err("garbage is not an append");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().starts_with("undecodable peer message"),
        "{refused:?}"
    );

    // The follower still takes the leader's appends: a write lands on it.
    client.put("after", "v").await.unwrap();
    let index = status_of(&c, leader).await.unwrap().applied_index;
    assert!(
        wait_applied(&c, &[follower], index, Duration::from_secs(10)).await,
        "the follower stopped applying after the refused stream"
    );
    assert_eq!(client.get("keep").await.unwrap().kv.unwrap().value, b"me");
}

/// The framed append stream (docs/adr/0024-framed-append-stream.md), spoken
/// by hand as raft.proto describes it: a wrong preface is hung up on, a
/// wrong incarnation and an undecodable or oversized append are refused with
/// their codes, and the follower keeps replicating the real leader's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_framed_append_stream_refuses_what_it_cannot_take_and_loses_nothing() {
    use aegis_proto::raft::{AppendHello, AppendReply, RaftPayload};
    use prost::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const PREFACE: &[u8] = b"\0AEGIS append stream v1\n";

    fn frame(m: &impl Message) -> Vec<u8> {
        let body = m.encode_to_vec();
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }
    async fn reply(conn: &mut TcpStream) -> Option<AppendReply> {
        let mut len = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut len))
            .await
            .expect("the follower answers")
            .ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        conn.read_exact(&mut body).await.ok()?;
        Some(AppendReply::decode(body.as_slice()).expect("a reply"))
    }
    async fn closed(conn: &mut TcpStream) -> bool {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest));
        matches!(read.await, Ok(Ok(0)) | Ok(Err(_)))
    }
    fn assert_refused(r: &AppendReply, code: tonic::Code, why: &str) {
        assert_eq!(r.refused_code, code as i32, "{r:?}");
        assert!(r.refused.starts_with(why), "{r:?}");
    }
    /// Sends the preface, a hello and `behind` (a leader sends its appends
    /// right behind the hello to a peer that answered one before).
    async fn opened(
        addr: &str,
        expected_incarnation: u64,
        behind: &[u8],
    ) -> (TcpStream, AppendReply) {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(&AppendHello {
            expected_incarnation,
        }));
        hello.extend_from_slice(behind);
        conn.write_all(&hello).await.unwrap();
        let answer = reply(&mut conn).await.expect("a handshake answer");
        (conn, answer)
    }
    /// Sends `behind` right after a hello the follower accepts; it must be
    /// refused as INVALID_ARGUMENT with a message starting with `why`.
    async fn refused_after_hello(addr: &str, behind: &[u8], why: &str) -> TcpStream {
        let (mut conn, answer) = opened(addr, 0, behind).await;
        assert_eq!(answer, AppendReply::default(), "accepted");
        let refused = reply(&mut conn).await.expect("a refusal");
        assert_refused(&refused, tonic::Code::InvalidArgument, why);
        conn
    }

    let _g = serial().await;
    let c = cluster(3).await;
    let client = c.client().unwrap();
    client.put("keep", "me").await.unwrap();
    let leader = leader_of(&c).await as usize;
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    let addr = c.addrs(follower).unwrap().peer.clone();

    let mut wrong = TcpStream::connect(&addr).await.unwrap();
    wrong
        .write_all(b"\0not an append stream at all\n")
        .await
        .unwrap();
    assert!(closed(&mut wrong).await, "a wrong preface is hung up on");

    // Appends it will not read follow the hello: the refusal still arrives.
    let unread = frame(&RaftPayload {
        data: vec![7; 1 << 20],
    });
    let (mut other, answer) = opened(&addr, 0x0bad_cafe, &unread).await;
    assert_refused(
        &answer,
        tonic::Code::FailedPrecondition,
        "incarnation mismatch",
    );
    assert!(closed(&mut other).await);

    let undecodable = frame(&RaftPayload {
        data: vec![0xff; 7],
    });
    let mut garbage = refused_after_hello(&addr, &undecodable, "undecodable peer message").await;
    assert!(closed(&mut garbage).await);

    let too_long = u32::MAX.to_be_bytes();
    refused_after_hello(&addr, &too_long, "a frame of 4294967295 bytes, over the").await;

    client.put("after", "v").await.unwrap();
    let index = status_of(&c, leader).await.unwrap().applied_index;
    assert!(
        wait_applied(&c, &[follower], index, Duration::from_secs(10)).await,
        "the follower stopped applying after the refused streams"
    );
    assert_eq!(client.get("keep").await.unwrap().kv.unwrap().value, b"me");
}
