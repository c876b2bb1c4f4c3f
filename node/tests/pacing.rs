//! Followers outside the fastest quorum get appends in batches (ADR-0014).
//! Under a write rate above one full append per interval they must still
//! keep up, or they fall ever further behind while the load lasts.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// One entry per append and the longest interval: paced to one append per
/// interval, a spare follower would take in at most 20 entries a second.
const SLOW_SPARES: &[&str] = &["raft:", "  spare-batch-ms: 50", "  max-payload-entries: 1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spare_followers_keep_up_with_writes_faster_than_one_append_per_interval() {
    let _g = serial().await;
    let c = cluster_with(5, SLOW_SPARES).await;
    let leader = leader_of(&c).await as usize;
    let client = c.client().unwrap();

    let writers: Vec<_> = (0..16)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    client
                        .put(format!("pace/{w}"), format!("{i}"))
                        .await
                        .expect("put");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let written = Instant::now();
    let last = status_of(&c, leader)
        .await
        .expect("leader status")
        .applied_index;
    assert!(last >= 400, "400 puts applied on the leader, got {last}");

    // Paced to one entry per 50 ms, the two spare followers would need 20 s
    // or more to take in the ~400 entries; caught up as they go, they are at
    // most a few entries behind when the writes stop.
    let all: Vec<usize> = (1..=5).collect();
    assert!(
        wait_applied(&c, &all, last, Duration::from_secs(5)).await,
        "every replica applied {last} within 5 s of the last write"
    );
    eprintln!(
        "all replicas caught up {:?} after the last write",
        written.elapsed()
    );
}
