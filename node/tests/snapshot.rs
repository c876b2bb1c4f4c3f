//! Snapshots and log purge: a follower that falls behind the purged log is
//! caught up by a streamed snapshot, and a whole cluster restarted from
//! snapshot + log recovers the same state.

mod support;

use std::time::Duration;

use support::*;

const SMALL_SNAPSHOTS: &[&str] = &[
    "raft:",
    "  snapshot-logs-since-last: 100",
    "  max-logs-kept-after-snapshot: 0",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_purged_log_catches_up_from_a_snapshot() {
    let _g = serial().await;
    let mut c = cluster_with(5, SMALL_SNAPSHOTS).await;
    let leader = leader_of(&c).await as usize;
    let lagger = if leader == 5 { 4 } else { 5 };
    c.kill(lagger).unwrap();

    let client = c.client().unwrap();
    let mut last = 0;
    for i in 0..350 {
        last = client
            .put(format!("s/{}", i % 50), format!("{i}"))
            .await
            .unwrap()
            .revision;
    }
    // The live nodes snapshot and purge their logs past what the lagger has.
    // Admin.Snapshot acts on the node it is sent to.
    let snap = pinned(&c.addrs(leader).unwrap().client)
        .snapshot()
        .await
        .unwrap();
    assert!(snap >= 300, "snapshot index {snap}");
    let status = status_of(&c, leader).await.unwrap();
    assert!(status.snapshot_index >= 300);
    // Its metrics show the build, phase by phase, and the size it holds.
    let metrics = c.addrs(leader).unwrap().metrics.clone();
    for phase in ["copy", "encode", "write"] {
        let series = format!("aegis_snapshot_seconds_count{{phase=\"{phase}\"}}");
        let built = metric(&metrics, &series).await;
        assert!(built.is_some_and(|n| n >= 1.0), "{series}: {built:?}");
    }
    let held = metric(&metrics, "aegis_snapshot_bytes").await;
    assert!(held.is_some_and(|b| b > 0.0), "snapshot bytes {held:?}");

    c.start(lagger).unwrap();
    assert!(
        wait_applied(&c, &[lagger], last, Duration::from_secs(30)).await,
        "lagging node caught up through a snapshot"
    );
    let node = pinned(&c.addrs(lagger).unwrap().client);
    let got = node.get("s/49").await.unwrap().kv.unwrap();
    assert_eq!(got.value, b"349");
    let s = status_of(&c, lagger).await.unwrap();
    assert!(
        s.snapshot_index > 0,
        "the lagger installed a snapshot: {s:?}"
    );
    let lagger_metrics = c.addrs(lagger).unwrap().metrics.clone();
    let held = metric(&lagger_metrics, "aegis_snapshot_bytes").await;
    assert!(held.is_some_and(|b| b > 0.0), "installed bytes {held:?}");

    // Same digest as a peer at the same index once writes stop.
    let mut agreed = false;
    for _ in 0..100 {
        let a = status_of(&c, lagger).await.unwrap();
        let b = status_of(&c, leader).await.unwrap();
        if a.digest_index == b.digest_index {
            assert_eq!(a.state_digest, b.state_digest);
            agreed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(agreed, "observed both replicas at one index");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restarted_from_snapshots_and_logs_keeps_its_state() {
    let _g = serial().await;
    let mut c = cluster_with(5, SMALL_SNAPSHOTS).await;
    let client = c.client().unwrap();
    for i in 0..260 {
        client
            .put(format!("r/{}", i % 13), format!("{i}"))
            .await
            .unwrap();
    }
    client.delete("r/0").await.unwrap();
    let before = client.range("r/").await.unwrap();
    for n in 1..=5 {
        c.kill(n).unwrap();
    }
    c.up().await.unwrap();
    let client = c.client().unwrap();
    let after = client.range("r/").await.unwrap();
    let strip = |r: &aegis_client::RangeResult| -> Vec<(Vec<u8>, Vec<u8>, u64)> {
        r.kvs
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone(), kv.mod_revision))
            .collect()
    };
    assert_eq!(strip(&before), strip(&after));
    assert_eq!(after.kvs.len(), 12);
}
