//! Node incarnations (docs/adr/0009-node-incarnation.md): a voter whose data
//! directory is wiped comes back as a different incarnation; the leader's
//! RPCs to it are refused, so it neither acknowledges nor votes, the leader
//! carries on, and after remove + add-learner + promote it catches up.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn log_of(c: &aegis_client::devcluster::DevCluster, n: usize) -> String {
    std::fs::read_to_string(c.log_path(n)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_is_refused_then_removed_re_added_and_caught_up() {
    let _g = serial().await;
    let mut c = cluster(3).await;
    let client = c.client().unwrap();
    for i in 0..20 {
        client.put(format!("w/{i}"), "v").await.unwrap();
    }
    let leader = leader_of(&c).await as usize;
    let victim = (1..=3).find(|n| *n != leader).unwrap();

    // Every founder recorded the same, non-zero incarnations, each the
    // member's own.
    let mut own = BTreeMap::new();
    for n in 1..=3 {
        let s = status_of(&c, n).await.unwrap();
        assert_ne!(s.incarnation, 0);
        own.insert(s.node_id, s.incarnation);
    }
    for n in 1..=3 {
        let s = status_of(&c, n).await.unwrap();
        let recorded: BTreeMap<u64, u64> =
            s.members.iter().map(|m| (m.id, m.incarnation)).collect();
        assert_eq!(recorded, own, "node {n}'s view of the incarnations");
    }
    let old = own[&(victim as u64)];

    // The volume is lost; the pod comes back with the same command line (the
    // devcluster passes --members to founders), so it must not found a group
    // of its own either.
    c.kill(victim).unwrap();
    std::fs::remove_dir_all(c.data_dir(victim)).unwrap();
    c.start(victim).unwrap();
    let wiped = pinned(&c.addrs(victim).unwrap().client);
    let deadline = Instant::now() + Duration::from_secs(20);
    let new = loop {
        if let Ok(s) = wiped.status().await {
            break s.incarnation;
        }
        assert!(Instant::now() < deadline, "wiped node answers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(new, old);

    // The leader keeps serving writes while its RPCs to the wiped node are
    // refused: no panic, no election, and the node is not refilled.
    let term = status_of(&c, leader).await.unwrap().term;
    for i in 0..30 {
        client.put(format!("during/{i}"), "v").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = status_of(&c, leader).await.unwrap();
    assert_eq!((s.role.as_str(), s.term), ("leader", term));
    let w = wiped.status().await.unwrap();
    assert!(w.members.is_empty(), "the wiped node was refilled: {w:?}");
    assert_eq!(w.applied_index, 0);
    assert!(
        log_of(&c, victim).contains("refusing Raft RPCs: incarnation mismatch"),
        "the wiped node saw no RPC for its old incarnation"
    );
    assert!(
        log_of(&c, victim).contains("already belongs to a group"),
        "the wiped founder did not recognise the existing group"
    );
    for n in 1..=3 {
        assert!(!log_of(&c, n).contains("panicked"), "node {n} panicked");
    }

    // Repair: out of the group, back in as a learner (the leader records the
    // new incarnation), caught up, promoted.
    let a = c.addrs(victim).unwrap().clone();
    let removed = client.member_remove(victim as u64).await.unwrap();
    assert!(removed.members.iter().all(|m| m.id != victim as u64));
    let added = client
        .member_add_learner(victim as u64, &a.peer, &a.client)
        .await
        .unwrap();
    let m = added
        .members
        .iter()
        .find(|m| m.id == victim as u64)
        .expect("re-added");
    assert_eq!((m.voter, m.incarnation), (false, new));
    let target = client.status().await.unwrap().commit_index;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = wiped.status().await {
            if s.applied_index >= target {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the re-added node caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let promoted = client.member_promote(victim as u64).await.unwrap();
    assert_eq!(promoted.members.iter().filter(|m| m.voter).count(), 3);
    assert_eq!(
        wiped.get("during/29").await.unwrap().kv.unwrap().value,
        b"v"
    );
    assert_eq!(wiped.get("w/0").await.unwrap().kv.unwrap().value, b"v");
    client.put("after", "ok").await.unwrap();
    for n in 1..=3 {
        assert!(!log_of(&c, n).contains("panicked"), "node {n} panicked");
    }
}

/// `--members` naming an address where another node answers: the founder
/// stops with an error instead of initialising a group that lists a node
/// that is not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_founder_refuses_a_member_list_with_the_wrong_node_at_an_address() {
    let _g = serial().await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = [free_addr(), free_addr(), free_addr()];
    let b = [free_addr(), free_addr(), free_addr()];
    let spawn = |id: &str, addrs: &[String; 3], dir: &std::path::Path, members: Option<&str>| {
        let mut cmd = Command::new(node_bin());
        cmd.args(["--id", id, "--peer-addr", &addrs[0]])
            .args(["--client-addr", &addrs[1], "--metrics-addr", &addrs[2]])
            .arg("--data-dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(m) = members {
            cmd.args(["--members", m]);
        }
        cmd.spawn().unwrap()
    };
    // Node 3 listens where the list puts node 2.
    let mut other = spawn("3", &b, dirs[1].path(), None);
    let members = format!("1={}/{},2={}/{}", a[0], a[1], b[0], b[1]);
    let mut founder = spawn("1", &a, dirs[0].path(), Some(&members));
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        if let Some(st) = founder.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = founder.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = other.kill();
    let _ = other.wait();
    let out = founder.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let exited = exited.unwrap_or_else(|| panic!("the founder kept running: {err}"));
    assert!(!exited.success());
    assert!(
        err.contains("founding member 2 at") && err.contains("answers as node 3"),
        "{err}"
    );
}
