//! Membership through the Admin API with real processes: a new node joins
//! as a learner, catches up, is promoted to voter, and is removed again;
//! leadership moves on request.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

struct Extra(Child);

impl Drop for Extra {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_as_learner_is_promoted_then_removed() {
    let _g = serial().await;
    let c = cluster(5).await;
    let client = c.client().unwrap();
    for i in 0..50 {
        client.put(format!("m/{i}"), "v").await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let (peer, api, metrics) = (free_addr(), free_addr(), free_addr());
    // No --members: an empty node waits to be added.
    let _six = Extra(
        Command::new(node_bin())
            .args([
                "--id",
                "6",
                "--peer-addr",
                &peer,
                "--client-addr",
                &api,
                "--metrics-addr",
                &metrics,
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let added = client.member_add_learner(6, &peer, &api).await.unwrap();
    let six = added
        .members
        .iter()
        .find(|m| m.id == 6)
        .expect("6 is a member");
    assert!(!six.voter, "joins as a learner");

    // The learner catches up from the leader.
    let target = client.status().await.unwrap().commit_index;
    let learner = pinned(&api);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = learner.status().await {
            if s.applied_index >= target {
                assert_eq!(s.role, "learner");
                break;
            }
        }
        assert!(Instant::now() < deadline, "learner caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let promoted = client.member_promote(6).await.unwrap();
    assert_eq!(promoted.members.iter().filter(|m| m.voter).count(), 6);
    // It serves reads as a voter.
    assert_eq!(learner.get("m/49").await.unwrap().kv.unwrap().value, b"v");

    // Leadership moves where it is asked to.
    client.transfer_leader(6).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = learner.status().await {
            if s.role == "leader" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "node 6 became leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.put("after-transfer", "ok").await.unwrap();

    // Removing the leader itself hands leadership to the others.
    let removed = client.member_remove(6).await.unwrap();
    assert!(
        removed.members.iter().all(|m| m.id != 6),
        "{:?}",
        removed.members
    );
    let leader = wait_new_leader(&c, 6, Duration::from_secs(20))
        .await
        .expect("leader among 1-5");
    assert!(leader <= 5);
    let s = status_of(&c, leader as usize).await.unwrap();
    assert_eq!(s.members.len(), 5);
    client.put("after-removal", "ok").await.unwrap();

    // Refusals: removing a non-member, promoting an unknown node.
    assert!(client.member_remove(42).await.is_err());
    assert!(client.transfer_leader(42).await.is_err());
}
