//! The SDK against a real cluster of `aegis-node` processes started by `DevCluster::ephemeral`.

mod support;

use std::time::{Duration, Instant};

use aegis_client::{
    Client, Compare, CompareOp, Error, EventKind, InvalidArgument, PutOptions, Txn, TxnOp,
    TxnOpResult,
};
use futures::StreamExt;

async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_round_trip_and_typed_errors() {
    let cluster = support::cluster(3, vec![]).await;
    let c = Client::connect(cluster.client_endpoints()).await.unwrap();

    let p1 = c.put("app/a", "1").await.unwrap();
    assert!(p1.revision > 0);
    let p2 = c
        .put_with("app/a", "2", &PutOptions::default().prev_kv())
        .await
        .unwrap();
    assert!(p2.revision > p1.revision);
    assert_eq!(p2.prev_kv.as_ref().unwrap().value, b"1");

    let g = c.get("app/a").await.unwrap();
    let kv = g.kv.unwrap();
    assert_eq!(kv.value, b"2");
    assert_eq!(kv.version, 2);
    assert_eq!(kv.mod_revision, p2.revision);
    assert_eq!(kv.create_revision, p1.revision);

    // History: the key as of the first put.
    let old = c.get_at("app/a", p1.revision).await.unwrap();
    assert_eq!(old.kv.unwrap().value, b"1");
    assert!(c.get("app/missing").await.unwrap().kv.is_none());

    c.put("app/b", "x").await.unwrap();
    c.put("other", "y").await.unwrap();
    let r = c.range("app/").await.unwrap();
    let keys: Vec<_> = r.kvs.iter().map(|kv| kv.key_str().into_owned()).collect();
    assert_eq!(keys, vec!["app/a", "app/b"]);

    // A txn that only succeeds when app/a is still at the version we read.
    let t = Txn::new()
        .when(Compare::version("app/a", CompareOp::Equal, 2))
        .and_then(TxnOp::put("app/a", "3"))
        .or_else(TxnOp::range("app/a", 1));
    let tr = c.txn(&t).await.unwrap();
    assert!(tr.succeeded);
    let tr = c.txn(&t).await.unwrap();
    assert!(!tr.succeeded, "version moved on, so the compare must fail");
    match &tr.responses[0] {
        TxnOpResult::Range(g) => assert_eq!(g.kvs[0].value, b"3"),
        other => panic!("{other:?}"),
    }

    let d = c.delete_prefix("app/").await.unwrap();
    assert_eq!(d.deleted, 2);
    assert!(c.get("app/a").await.unwrap().kv.is_none());

    // The error contract arrives typed.
    assert_eq!(
        c.put("", "v").await.unwrap_err(),
        Error::InvalidArgument(InvalidArgument::KeyEmpty)
    );
    assert_eq!(
        c.session_open(1).await.unwrap_err(),
        Error::InvalidArgument(InvalidArgument::TtlBelowMinimum)
    );
    assert_eq!(
        c.session_keep_alive(999_999).await.unwrap_err(),
        Error::SessionNotFound
    );

    let st = c.status().await.unwrap();
    assert_eq!(st.members.len(), 3);
    assert!(st.applied_index >= d.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_keep_alive_outlives_ttl_and_unkept_session_expires() {
    let cluster = support::cluster(3, vec![]).await;
    let c = Client::connect(cluster.client_endpoints()).await.unwrap();
    let ttl = 3000;

    let kept = c.session(ttl).await.unwrap();
    let (bare, _) = c.session_open(ttl).await.unwrap();
    c.put_with("eph/kept", "1", &PutOptions::default().session(kept.id()))
        .await
        .unwrap();
    c.put_with("eph/bare", "1", &PutOptions::default().session(bare))
        .await
        .unwrap();

    // The session without keep-alives goes away with its key...
    let expired = wait_until(Duration::from_secs(20), || async {
        matches!(
            c.session_get(bare).await,
            Err(Error::SessionNotFound | Error::SessionExpired)
        )
    })
    .await;
    assert!(expired, "a session without keep-alives must expire");
    assert!(c.get("eph/bare").await.unwrap().kv.is_none());

    // ...while the kept one, now well past its ttl, is alive with its key.
    tokio::time::sleep(Duration::from_millis(ttl)).await;
    assert!(!kept.is_lost());
    assert_eq!(
        c.session_get(kept.id()).await.unwrap().session_id,
        kept.id()
    );
    assert!(c.get("eph/kept").await.unwrap().kv.is_some());

    // Closing deletes the bound key.
    let id = kept.id();
    kept.close().await.unwrap();
    assert!(c.get("eph/kept").await.unwrap().kv.is_none());
    assert!(c.session_get(id).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keep_alive_stream_keeps_sessions_past_their_ttl() {
    let cluster = support::cluster(3, vec![]).await;
    let c = Client::connect(cluster.client_endpoints()).await.unwrap();
    let ttl = 3000;
    let (a, _) = c.session_open(ttl).await.unwrap();
    let (b, _) = c.session_open(ttl).await.unwrap();
    let mut stream = c.keep_alive_stream().await.unwrap();

    // Answers in the order sent; a session that never existed is answered as gone.
    let unknown = a.max(b) + 1_000_000;
    for id in [a, unknown, b] {
        stream.send(id).await.unwrap();
    }
    let mut answers = Vec::new();
    for _ in 0..3 {
        let k = stream.next().await.unwrap().expect("stream open");
        assert!(k.revision > 0);
        answers.push((k.session_id, k.ttl_ms));
    }
    assert_eq!(
        answers,
        vec![(a, Some(ttl)), (unknown, None), (b, Some(ttl))]
    );

    // Kept alive by the stream alone for twice their ttl, sent from one task and read in
    // another.
    let (sender, mut replies) = stream.split();
    let sending = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_millis(2 * ttl);
        let mut sent = 0;
        while Instant::now() < until {
            sender.send(a).await.unwrap();
            sender.send(b).await.unwrap();
            sent += 2;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        sent
    });
    // Dropping the sender ends the requests; the node answers what it has and ends the stream.
    let mut read = 0;
    while let Some(k) = replies.next().await.unwrap() {
        let id = if read % 2 == 0 { a } else { b };
        assert_eq!((k.session_id, k.ttl_ms), (id, Some(ttl)));
        read += 1;
    }
    assert_eq!(read, sending.await.unwrap());
    for id in [a, b] {
        assert_eq!(c.session_get(id).await.unwrap().session_id, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_guard_token_fencing_and_release_on_drop() {
    let cluster = support::cluster(3, vec![]).await;
    let c = Client::connect(cluster.client_endpoints()).await.unwrap();
    let a = c.session(5000).await.unwrap();
    let b = c.session(5000).await.unwrap();

    let ga = a.lock("deploy").await.unwrap();
    let t1 = ga.token();
    assert!(t1 > 0);
    assert!(b.try_lock("deploy").await.unwrap().is_none());
    let info = c.lock_inspect("deploy").await.unwrap();
    assert_eq!((info.holder_session, info.token), (a.id(), t1));

    // Acquire is idempotent for the holder: same token again.
    assert_eq!(c.lock_acquire("deploy", a.id()).await.unwrap().token, t1);

    // The holder's guarded write goes through.
    c.put_with("cfg", "from-a", &PutOptions::default().guard("deploy", t1))
        .await
        .unwrap();

    drop(ga);
    let mut gb = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gb.is_none() && Instant::now() < deadline {
        gb = b.try_lock("deploy").await.unwrap();
        if gb.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(gb.is_some(), "dropping the guard must release the lock");
    let gb = gb.unwrap();
    assert!(
        gb.token() > t1,
        "fencing tokens grow: {} then {}",
        t1,
        gb.token()
    );

    // A delayed write from the old holder is fenced off.
    assert_eq!(
        c.put_with("cfg", "late", &PutOptions::default().guard("deploy", t1))
            .await
            .unwrap_err(),
        Error::StaleFencingToken
    );
    assert_eq!(c.get("cfg").await.unwrap().kv.unwrap().value, b"from-a");

    let t2 = gb.token();
    gb.release().await.unwrap();
    let info = c.lock_inspect("deploy").await.unwrap();
    assert_eq!(info.holder_session, 0);
    assert_eq!(
        c.lock_release("deploy", b.id(), t2).await.unwrap_err(),
        Error::LockNotHeld
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_on_another_node_without_gap_or_duplicate() {
    let mut cluster = support::cluster(3, vec![]).await;
    let endpoints = cluster.client_endpoints();
    let watcher = Client::connect(endpoints.clone()).await.unwrap();
    let writer = Client::connect(endpoints.clone()).await.unwrap();

    let mut w = watcher.watch("w/", true, 0).await.unwrap();
    writer.put("w/0", "0").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.events[0].kv.key, b"w/0");

    // Kill the node the watch is connected to.
    let connected = watcher.current_endpoint();
    let victim = endpoints
        .iter()
        .position(|e| connected.ends_with(e.as_str()))
        .unwrap()
        + 1;
    cluster.kill(victim).unwrap();

    let survivors: Vec<String> = endpoints
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != victim)
        .map(|(_, e)| e.clone())
        .collect();
    let writer = Client::connect(survivors).await.unwrap();
    let mut written = vec![first.revision];
    for i in 1..=5 {
        written.push(
            writer
                .put(format!("w/{i}"), i.to_string())
                .await
                .unwrap()
                .revision,
        );
    }
    writer.delete("w/0").await.unwrap();

    let mut seen = vec![first.clone()];
    while seen.len() < 7 {
        let ev = tokio::time::timeout(Duration::from_secs(30), w.next())
            .await
            .expect("watch stalled after the node was killed")
            .expect("watch ended")
            .expect("watch error");
        seen.push(ev);
    }
    let revs: Vec<u64> = seen.iter().map(|e| e.revision).collect();
    assert!(revs.windows(2).all(|p| p[0] < p[1]), "{revs:?}");
    assert_eq!(&revs[..6], &written[..], "no gap, no duplicate");
    let keys: Vec<String> = seen[..6]
        .iter()
        .map(|e| e.events[0].kv.key_str().into_owned())
        .collect();
    assert_eq!(keys, vec!["w/0", "w/1", "w/2", "w/3", "w/4", "w/5"]);
    assert_eq!(seen[6].events[0].kind, EventKind::Delete);
    assert!(
        !watcher.current_endpoint().ends_with(&endpoints[victim - 1]),
        "the watch moved to another node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_the_past_replays_history() {
    let cluster = support::cluster(3, vec![]).await;
    let c = Client::connect(cluster.client_endpoints()).await.unwrap();
    let r1 = c.put("h", "1").await.unwrap().revision;
    let r2 = c.put("h", "2").await.unwrap().revision;
    let mut w = c.watch("h", false, r1).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push((ev.revision, ev.events[0].kv.value.clone()));
    }
    assert_eq!(got, vec![(r1, b"1".to_vec()), (r2, b"2".to_vec())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_revision_is_a_typed_item_then_the_end() {
    let cluster = support::cluster(3, vec![]).await;
    let c = Client::connect(cluster.client_endpoints()).await.unwrap();
    // Each node keeps a bounded event history (10 000 events); push past it with
    // transactions of 100 puts each.
    let mut first_rev = 0;
    let mut last_rev = 0;
    for batch in 0..101 {
        let mut t = Txn::new();
        for i in 0..100 {
            t = t.and_then(TxnOp::put(format!("c/{i}"), batch.to_string()));
        }
        let r = c.txn(&t).await.unwrap();
        assert!(r.succeeded);
        if batch == 0 {
            first_rev = r.revision;
        }
        last_rev = r.revision;
    }
    // Any replica may serve the watch; one that has not applied the later batches yet still
    // holds the early events, so wait until every replica has dropped them.
    let all_applied = wait_until(Duration::from_secs(20), || async {
        c.status_all()
            .await
            .iter()
            .all(|(_, s)| s.as_ref().is_ok_and(|s| s.applied_index >= last_rev))
    })
    .await;
    assert!(all_applied);
    let mut w = c.watch("c/", true, first_rev).await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap()
        .expect("one item");
    match item {
        Err(Error::Compacted {
            requested,
            compact_revision,
        }) => {
            assert_eq!(requested, Some(first_rev));
            assert!(compact_revision >= first_rev);
        }
        other => panic!("expected a compacted error, got {other:?}"),
    }
    assert!(w.next().await.is_none(), "the stream ends after the error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_over_after_the_leader_is_killed() {
    let mut cluster = support::cluster(3, vec![]).await;
    let endpoints = cluster.client_endpoints();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap() as usize;
    // Start the client on the leader so its open connection is the one that dies.
    let mut ordered = vec![endpoints[leader - 1].clone()];
    ordered.extend(
        endpoints
            .iter()
            .filter(|e| **e != endpoints[leader - 1])
            .cloned(),
    );
    let c = Client::connect(ordered).await.unwrap();
    c.put("k", "before").await.unwrap();

    cluster.kill(leader).unwrap();
    // The dead connection is noticed, so the next write is known not to have been sent and
    // may move on (through "no leader" during the election) instead of reporting Unknown.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = c.put("k", "after").await.unwrap();
    assert!(r.revision > 0);
    assert!(!c.current_endpoint().ends_with(&endpoints[leader - 1]));
    assert_eq!(c.get("k").await.unwrap().kv.unwrap().value, b"after");
    let st = c.status().await.unwrap();
    assert_ne!(st.leader_id, leader as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_node_reads_fail_over_but_writes_report_unknown() {
    let mut cluster = support::cluster(3, vec![]).await;
    let endpoints = cluster.client_endpoints();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap() as usize;
    // Freeze a follower and point the client at it first.
    let frozen = (1..=3).find(|n| *n != leader).unwrap();
    let mut ordered = vec![endpoints[frozen - 1].clone()];
    ordered.extend(
        endpoints
            .iter()
            .filter(|e| **e != endpoints[frozen - 1])
            .cloned(),
    );
    let config = aegis_client::ClientConfig {
        request_timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_millis(800),
        ..Default::default()
    };
    let c = Client::connect_with(ordered, config).await.unwrap();
    c.put("k", "v").await.unwrap();
    cluster.stop(frozen).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The request reached a socket that never answers: its fate is unknown, so no retry.
    let err = c.put("k", "w").await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    // The client moved on; a read (idempotent) succeeds elsewhere.
    assert_eq!(c.get("k").await.unwrap().kv.unwrap().value, b"v");
    cluster.cont(frozen).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_loss_is_reported_and_keep_alive_survives_a_leader_kill() {
    let mut cluster = support::cluster(3, vec![]).await;
    let c = Client::connect(cluster.client_endpoints()).await.unwrap();

    // Loss: the session is closed behind the handle's back; the next keep-alive finds out.
    let doomed = c.session(3000).await.unwrap();
    let guard = doomed.lock("l").await.unwrap();
    let mut lost = guard.lost();
    c.session_close(doomed.id()).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), lost.wait_for(Option::is_some))
        .await
        .expect("loss reported within a keep-alive period or two")
        .unwrap()
        .clone()
        .unwrap();
    assert!(reason.contains("session"), "{reason}");
    assert!(doomed.is_lost());
    assert!(matches!(doomed.lock("m").await, Err(Error::SessionLost(_))));
    drop(guard);

    // Survival: the leader dies, the keep-alives move to the new one within the ttl.
    let kept = c.session(3000).await.unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap() as usize;
    cluster.kill(leader).unwrap();
    tokio::time::sleep(Duration::from_millis(7000)).await;
    assert!(!kept.is_lost(), "{:?}", kept.lost().borrow().clone());
    assert_eq!(
        c.session_get(kept.id()).await.unwrap().session_id,
        kept.id()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_leaves_a_frozen_node() {
    // The watch's reconnect attempts, shown if the test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("aegis_client=debug")
        .with_test_writer()
        .try_init();
    let mut cluster = support::cluster(3, vec![]).await;
    let endpoints = cluster.client_endpoints();
    let watcher = Client::connect(endpoints.clone()).await.unwrap();
    let mut w = watcher.watch("f/", true, 0).await.unwrap();

    // SIGSTOP keeps the socket open but silent: only HTTP/2 keep-alive can notice.
    let connected = watcher.current_endpoint();
    let frozen = endpoints
        .iter()
        .position(|e| connected.ends_with(e.as_str()))
        .unwrap()
        + 1;
    cluster.stop(frozen).unwrap();
    let survivors: Vec<String> = endpoints
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != frozen)
        .map(|(_, e)| e.clone())
        .collect();
    let writer = Client::connect(survivors).await.unwrap();
    // When the frozen node is the leader, a write forwarded to it before the
    // survivors elect another one ends "outcome unknown": write again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let rev = loop {
        match writer.put("f/x", "1").await {
            Ok(p) => break p.revision,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "no write landed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    // An earlier attempt may have landed too, at a lower revision.
    loop {
        let Ok(ev) = tokio::time::timeout(Duration::from_secs(30), w.next()).await else {
            // What each survivor holds, and their logs, to tell a lost event from a hung watch.
            for (i, e) in endpoints.iter().enumerate() {
                if i + 1 == frozen {
                    continue;
                }
                let one = Client::connect(vec![e.clone()]).await.unwrap();
                let opts = aegis_client::ReadOptions {
                    serializable: true,
                    ..Default::default()
                };
                eprintln!(
                    "node {}: f/x = {:?}",
                    i + 1,
                    one.get_with("f/x", opts).await
                );
                let log = std::fs::read_to_string(cluster.log_path(i + 1)).unwrap_or_default();
                eprintln!("---- node {} log ----\n{log}", i + 1);
            }
            panic!("the watch must leave the frozen node (write at revision {rev})");
        };
        let ev = ev.unwrap().unwrap();
        assert_eq!(ev.events[0].kv.key, b"f/x");
        if ev.revision >= rev {
            assert_eq!(ev.revision, rev);
            break;
        }
    }
    cluster.cont(frozen).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_leadership_and_snapshot_admin_calls() {
    let mut cluster = support::cluster(3, vec![]).await;
    let c = Client::connect(cluster.client_endpoints()).await.unwrap();
    for i in 0..20 {
        c.put(format!("m/{i}"), "x").await.unwrap();
    }

    // A fourth node joins as a learner, catches up, becomes a voter, then leaves.
    let n = cluster.add_node().unwrap();
    let addrs = cluster.addrs(n).unwrap().clone();
    let r = c
        .member_add_learner(n as u64, &addrs.peer, &addrs.client)
        .await
        .unwrap();
    let learner = r.members.iter().find(|m| m.id == n as u64).unwrap();
    assert!(!learner.voter);
    assert_eq!(learner.client_addr, addrs.client);
    let target = c.status().await.unwrap().commit_index;
    let caught_up = wait_until(Duration::from_secs(20), || async {
        c.status_of(&addrs.client)
            .await
            .is_ok_and(|s| s.applied_index >= target)
    })
    .await;
    assert!(caught_up, "the learner must replicate the log");
    let r = c.member_promote(n as u64).await.unwrap();
    assert!(r.members.iter().any(|m| m.id == n as u64 && m.voter));
    assert_eq!(c.member_list().await.unwrap().len(), 4);
    let r = c.member_remove(n as u64).await.unwrap();
    assert!(r.members.iter().all(|m| m.id != n as u64));
    assert_eq!(r.members.len(), 3);

    // Leadership moves where it is sent.
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let to = (1..=3).find(|id| *id != leader).unwrap();
    c.transfer_leader(to).await.unwrap();
    let moved = wait_until(Duration::from_secs(20), || async {
        c.status().await.is_ok_and(|s| s.leader_id == to)
    })
    .await;
    assert!(moved, "leadership must move to node {to}");

    let idx = c.snapshot().await.unwrap();
    assert!(idx > 0);
}
