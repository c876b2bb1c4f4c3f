//! Linearizable reads served from the leader's lease stay linearizable while
//! leadership is handed over (the target of a transfer may win without
//! waiting out the old leader's lease).

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{cluster, leader_of, pinned, serial};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_every_acknowledged_write_across_leadership_transfers() {
    let _serial = serial().await;
    let c = cluster(3).await;
    let writer = c.client().unwrap();
    writer.put("r/x", "0").await.unwrap();
    // The highest value whose put was acknowledged.
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let w = {
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut next = 1u64;
            while !stop.load(Ordering::SeqCst) {
                if writer.put("r/x", next.to_string()).await.is_ok() {
                    acked.fetch_max(next, Ordering::SeqCst);
                    next += 1;
                }
            }
            next
        })
    };
    let mut readers = Vec::new();
    for n in 1..=c.size() {
        let reader = pinned(&c.addrs(n).unwrap().client);
        let (acked, stop) = (acked.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut checked = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let floor = acked.load(Ordering::SeqCst);
                let Ok(r) = reader.get("r/x").await else {
                    continue;
                };
                let seen: u64 =
                    r.kv.map(|kv| String::from_utf8_lossy(&kv.value).parse().unwrap_or(0))
                        .unwrap_or(0);
                assert!(
                    seen >= floor,
                    "node {n} read {seen} after {floor} was acknowledged"
                );
                checked += 1;
            }
            checked
        }));
    }

    let admin = c.client().unwrap();
    let mut transfers = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while transfers < 6 {
        assert!(
            Instant::now() < deadline,
            "only {transfers} transfers in 60 s"
        );
        let from = leader_of(&c).await;
        let to = from % 3 + 1;
        if admin.transfer_leader(to).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let moved = Instant::now() + Duration::from_secs(10);
        while leader_of(&c).await != to && Instant::now() < moved {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        transfers += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let writes = w.await.unwrap();
    let mut reads = 0;
    for r in readers {
        reads += r.await.expect("a reader saw a stale value");
    }
    assert!(
        writes > 20 && reads > 60,
        "too little load: {writes} writes, {reads} reads"
    );
}
