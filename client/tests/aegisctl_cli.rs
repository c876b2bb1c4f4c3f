//! `aegisctl` as a user runs it, against real nodes.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn aegisctl(endpoints: &[String], args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aegisctl"));
    cmd.arg("--endpoints")
        .arg(endpoints.join(","))
        .args(args)
        .env_remove("AEGIS_ENDPOINTS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_txn_lock_and_status_commands() {
    let cluster = support::cluster(3, vec![]).await;
    let eps = cluster.client_endpoints();

    assert!(ok(aegisctl(&eps, &["put", "cfg/mode", "blue"], None)).starts_with("OK revision "));
    assert_eq!(ok(aegisctl(&eps, &["get", "cfg/mode"], None)), "blue\n");
    let missing = aegisctl(&eps, &["get", "cfg/nope"], None);
    assert_eq!(missing.status.code(), Some(1));

    let json: serde_json::Value =
        serde_json::from_str(&ok(aegisctl(&eps, &["--json", "get", "cfg/mode"], None))).unwrap();
    assert_eq!(json["kv"]["value"], "blue");
    assert_eq!(json["kv"]["version"], 1);

    let script =
        "value(\"cfg/mode\") = \"blue\"\nsuccess:\nput cfg/mode green\nfailure:\nrange cfg/\n";
    assert!(ok(aegisctl(&eps, &["txn"], Some(script))).starts_with("SUCCEEDED"));
    // The compare no longer holds, so the failure branch reads the key.
    let out = ok(aegisctl(&eps, &["txn"], Some(script)));
    assert!(out.starts_with("FAILED"), "{out}");
    assert!(out.contains("cfg/mode\tgreen"), "{out}");
    let bad = aegisctl(&eps, &["txn"], Some("bogus line\n"));
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 1"));

    assert_eq!(
        ok(aegisctl(&eps, &["range", "cfg/"], None)),
        "cfg/mode\tgreen\n"
    );
    assert!(ok(aegisctl(&eps, &["del", "--prefix", "cfg/"], None)).starts_with("deleted 1"));

    // The lock is held while the command runs, which sees the token; its exit code is ours.
    let out = aegisctl(
        &eps,
        &[
            "lock",
            "job",
            "--ttl",
            "5000",
            "--",
            "sh",
            "-c",
            "echo seen=$AEGIS_FENCING_TOKEN:$AEGIS_LOCK_NAME; exit 7",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let mut lines = text.lines();
    let token: u64 = lines.next().unwrap().parse().unwrap();
    assert!(token > 0);
    assert_eq!(lines.next().unwrap(), format!("seen={token}:job"));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(aegisctl(&eps, &["--json", "inspect", "job"], None))).unwrap();
    assert_eq!(inspect["holder_session"], 0, "released after the command");
    assert_eq!(inspect["token"], token);

    let status: serde_json::Value =
        serde_json::from_str(&ok(aegisctl(&eps, &["--json", "status"], None))).unwrap();
    let rows = status.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let leaders = rows.iter().filter(|r| r["role"] == "leader").count();
    assert_eq!(leaders, 1, "{status:#}");
    let table = ok(aegisctl(&eps, &["status"], None));
    assert!(table.starts_with("ENDPOINT"), "{table}");
    assert_eq!(table.lines().count(), 4);

    let members = ok(aegisctl(&eps, &["member", "list"], None));
    assert_eq!(members.lines().filter(|l| l.contains("voter")).count(), 3);

    let sid = ok(aegisctl(&eps, &["session", "open", "--ttl", "5000"], None));
    let sid = sid.trim();
    ok(aegisctl(&eps, &["session", "keepalive", sid], None));
    ok(aegisctl(&eps, &["session", "close", sid], None));
    let gone = aegisctl(&eps, &["session", "get", sid], None);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("session"));
}

type DevFn<'a> = dyn Fn(&[&str]) -> (bool, String, Output) + 'a;

/// Picks a port offset where every dev port of a `nodes`-node cluster is free right now.
/// A port offset whose ports are free now and lie below Linux's ephemeral range
/// (32768..): a node killed and started again must find its ports unclaimed, and
/// any outgoing connection on the machine may take a freed ephemeral port.
fn free_offset(nodes: u16) -> u16 {
    let base = 1000 + (std::process::id() % 2300) as u16 * 10;
    for offset in (base..32768 - 7700).chain(1000..base).step_by(10) {
        let all_free = [7400u16, 7500, 7600].iter().all(|b| {
            (1..=nodes).all(|n| std::net::TcpListener::bind(("127.0.0.1", b + offset + n)).is_ok())
        });
        if all_free {
            return offset;
        }
    }
    panic!("no free port range");
}

#[test]
fn dev_cluster_is_adopted_across_invocations() {
    let dir = tempfile::tempdir().unwrap();
    let offset = free_offset(3).to_string();
    let bin = support::node_bin();
    let dev = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_aegisctl"))
            .arg("dev")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--node-bin")
            .arg(&bin)
            .args(["--nodes", "3", "--port-offset", &offset])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out,
        )
    };
    let states = |dev: &DevFn| -> Vec<String> {
        let (_, out, _) = dev(&["--json", "status"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n["process"]["state"].as_str().unwrap().to_owned())
            .collect()
    };

    let (up, out, raw) = dev(&["up"]);
    let cleanup = scopeguard(|| {
        let _ = dev(&["down"]);
    });
    assert!(up, "{out}\n{}", String::from_utf8_lossy(&raw.stderr));
    assert!(out.contains("leader is node"), "{out}");
    assert_eq!(states(&dev), vec!["running"; 3]);
    assert!(dir.path().join("node-2/pid").is_file());

    assert!(dev(&["kill", "2"]).0);
    assert_eq!(states(&dev), vec!["running", "down", "running"]);
    assert!(dev(&["stop", "1"]).0);
    let st = states(&dev);
    assert_eq!(st[0], "stopped");
    assert!(dev(&["cont", "1"]).0);
    assert!(dev(&["start", "2"]).0);
    assert_eq!(states(&dev), vec!["running"; 3]);
    // Signalling a node that is not running is an error, not a silent success.
    assert!(dev(&["kill", "2"]).0);
    assert!(!dev(&["kill", "2"]).0);

    drop(cleanup);
    assert_eq!(states(&dev), vec!["down"; 3]);
}

/// Runs `f` on drop, so a failed assertion still stops the nodes.
fn scopeguard<F: FnMut()>(f: F) -> impl Drop {
    struct Guard<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Guard<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    Guard(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_events_and_stops_on_ctrl_c() {
    use std::io::BufRead;
    let cluster = support::cluster(3, vec![]).await;
    let eps = cluster.client_endpoints();
    let rev = |o: String| -> u64 { o.trim().rsplit(' ').next().unwrap().parse().unwrap() };
    let r1 = rev(ok(aegisctl(&eps, &["put", "w/a", "1"], None)));
    let r2 = rev(ok(aegisctl(&eps, &["put", "w/b", "2"], None)));
    ok(aegisctl(&eps, &["del", "w/a"], None));

    let mut child = Command::new(env!("CARGO_BIN_EXE_aegisctl"))
        .args([
            "--endpoints",
            &eps.join(","),
            "watch",
            "w/",
            "--prefix",
            "--rev",
        ])
        .arg(r1.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), format!("{r1} PUT w/a 1"));
    assert_eq!(lines.next().unwrap().unwrap(), format!("{r2} PUT w/b 2"));
    let del = lines.next().unwrap().unwrap();
    assert!(del.ends_with(" DELETE w/a"), "{del}");

    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_without_command_holds_until_ctrl_c() {
    use std::io::BufRead;
    let cluster = support::cluster(3, vec![]).await;
    let eps = cluster.client_endpoints();
    let mut holder = Command::new(env!("CARGO_BIN_EXE_aegisctl"))
        .args([
            "--endpoints",
            &eps.join(","),
            "lock",
            "hold",
            "--ttl",
            "5000",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(holder.stdout.take().unwrap()).lines();
    let token: u64 = lines.next().unwrap().unwrap().parse().unwrap();

    // Held: a non-waiting attempt from elsewhere gives up with exit code 1.
    let busy = aegisctl(&eps, &["lock", "hold", "--no-wait", "--", "true"], None);
    assert_eq!(busy.status.code(), Some(1));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(aegisctl(&eps, &["--json", "inspect", "hold"], None))).unwrap();
    assert_eq!(inspect["token"], token);
    assert_ne!(inspect["holder_session"], 0);

    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(holder.id() as i32, libc::SIGINT) };
    assert!(holder.wait().unwrap().success());
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(aegisctl(&eps, &["--json", "inspect", "hold"], None))).unwrap();
    assert_eq!(inspect["holder_session"], 0, "released on Ctrl-C");
}
