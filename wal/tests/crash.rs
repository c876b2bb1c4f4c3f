//! Crash test: this binary re-executes itself as a child that appends in a loop and prints
//! every acknowledged index; the parent SIGKILLs it at a random moment, reopens the log and
//! checks that every acknowledged entry is there and intact. Several rounds run on the same
//! directory, so each round also recovers from the previous kill.
//!
//! SIGKILL loses nothing from the page cache, so this checks the write/ack protocol and
//! recovery from writes cut off mid-way, not power loss (which needs the fdatasync the log
//! does before acknowledging, and is not reproducible in a test).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aegis_wal::{Wal, WalOptions};

const CHILD_ENV: &str = "AEGIS_WAL_CRASH_CHILD_DIR";
const SALT: u8 = 0x5c;
const KEEP_BEHIND: u64 = 300;

/// Mostly small entries, with a large one now and then: a large write takes long enough that
/// the kill sometimes lands inside it and leaves a partial frame to recover from.
fn crash_payload(index: u64) -> Vec<u8> {
    let mut p = common::payload(index, SALT);
    if index % 40 == 7 {
        let small = p.clone();
        p = small.iter().cycle().take(1 << 20).copied().collect();
    }
    p
}

fn options() -> WalOptions {
    WalOptions {
        segment_bytes: 16 * 1024,
        sync: true,
        // Less than a segment: kills land in records written over zeros and in ones that
        // grow the file.
        preallocate_bytes: 4 * 1024,
    }
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    // Test runners list tests before running them; answer without starting the crash loop.
    if std::env::args().any(|a| a == "--list") {
        println!("crash_kill9_keeps_every_acknowledged_entry: test");
        return;
    }
    parent();
    println!("test crash_kill9_keeps_every_acknowledged_entry ... ok");
}

/// Appends forever. Protocol on stdout: `ack N` once everything up to N is durable,
/// `meta N` once the metadata value N is durable.
fn child(dir: &Path) {
    let mut wal = Wal::open(dir, options()).unwrap();
    let mut next = wal.last_index().map_or(1, |l| l + 1);
    let stdout = std::io::stdout();
    // Counters rather than a modulo keep the cadence obvious: meta every 10 batches, purge every 25.
    let (mut since_meta, mut since_purge) = (0u32, 0u32);
    loop {
        let n = 1 + next % 8;
        let payloads: Vec<Vec<u8>> = (next..next + n).map(crash_payload).collect();
        let batch: Vec<(u64, &[u8])> = (next..).zip(payloads.iter().map(Vec::as_slice)).collect();
        wal.append(&batch).unwrap();
        next += n;
        let mut out = stdout.lock();
        writeln!(out, "ack {}", next - 1).unwrap();
        out.flush().unwrap();
        since_meta += 1;
        since_purge += 1;
        if since_meta == 10 {
            since_meta = 0;
            wal.put_meta("acked", &(next - 1).to_le_bytes()).unwrap();
            writeln!(out, "meta {}", next - 1).unwrap();
            out.flush().unwrap();
        }
        if since_purge >= 25 && next > KEEP_BEHIND {
            since_purge = 0;
            wal.purge_upto(next - KEEP_BEHIND).unwrap();
        }
    }
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut max_acked = 0u64;
    let mut max_meta = 0u64;
    let mut torn_tails = 0;
    // Kill after different delays so the kill lands at different points of the write cycle.
    for (round, delay_ms) in [150u64, 420, 90, 300, 230].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = 0u64;
            let mut meta = 0u64;
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                // A line cut off by the kill was not a complete acknowledgement.
                let Some(line) = line.strip_suffix('\n') else {
                    break;
                };
                let (kind, n) = line.split_once(' ').unwrap();
                let n: u64 = n.parse().unwrap();
                match kind {
                    "ack" => {
                        if acked == 0 {
                            let _ = tx.send(());
                        }
                        acked = acked.max(n);
                    }
                    "meta" => meta = meta.max(n),
                    other => panic!("unexpected child output {other}"),
                }
            }
            (acked, meta)
        });

        // Wait for the child to be appending, then let it run a little before killing it.
        rx.recv_timeout(Duration::from_secs(60))
            .expect("child acknowledged nothing");
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "child exited on its own after {:?}: {status}",
                started.elapsed()
            );
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        let (acked, meta) = reader.join().unwrap();
        assert!(acked > max_acked, "round {round}: no progress");
        max_acked = acked;
        max_meta = max_meta.max(meta);

        let wal = Wal::open(dir.path(), options()).unwrap();
        if wal.recovery().torn_tail.is_some() {
            torn_tails += 1;
        }
        let last = wal.last_index().unwrap();
        assert!(
            last >= max_acked,
            "round {round}: last {last} < acked {max_acked}"
        );
        let purged = wal.purged_upto().unwrap_or(0);
        assert!(purged < max_acked, "round {round}: purge overtook acks");
        for i in purged + 1..=max_acked {
            assert_eq!(
                wal.get(i),
                Some(crash_payload(i).as_slice()),
                "round {round}: entry {i} lost or damaged"
            );
        }
        let stored_meta = wal
            .get_meta("acked")
            .map(|v| u64::from_le_bytes(v.try_into().unwrap()))
            .unwrap_or(0);
        assert!(
            stored_meta >= max_meta,
            "round {round}: meta {stored_meta} < acknowledged {max_meta}"
        );
        eprintln!(
            "round {round}: acked up to {max_acked}, log {purged}..={last}, torn tail: {:?}",
            wal.recovery().torn_tail.as_ref().map(|t| t.bytes_dropped)
        );
    }
    eprintln!("{torn_tails} of 5 rounds recovered a torn tail");
}
