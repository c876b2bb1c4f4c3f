//! Replicas fed the same log agree at every index, across snapshots, and
//! no command sequence — however odd — makes the state machine panic.
mod common;

use std::collections::BTreeMap;

use aegis_state_machine::*;
use sha2::{Digest, Sha256};

/// A tiny deterministic generator (Knuth's MMIX LCG), so the sequence is
/// the same on every run and every platform.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One log entry: a command, or a marker (`Some(new_leader)`).
enum Entry {
    Cmd(Command),
    Marker(bool),
}

const KEYS: &[&str] = &["a", "a/1", "a/2", "b", "b/x", "c", ""];
const LOCKS: &[&str] = &["L1", "L2", "L3", ""];

fn gen_put(r: &mut Lcg, session: u64, index_hint: u64) -> PutOp {
    PutOp {
        key: r.pick(KEYS).as_bytes().to_vec(),
        value: r.below(1_000).to_string().into_bytes(),
        session_id: if r.below(3) == 0 { session } else { 0 },
        prev_kv: r.below(2) == 0,
        guard: (r.below(4) == 0).then(|| FencingGuard {
            lock: r.pick(LOCKS).to_string(),
            token: r.below(index_hint + 1),
        }),
    }
}

fn gen_step(r: &mut Lcg, session: u64, index_hint: u64) -> TxnStep {
    match r.below(3) {
        0 => TxnStep::Put(gen_put(r, session, index_hint)),
        1 => TxnStep::Delete(DeleteOp {
            key: r.pick(KEYS).as_bytes().to_vec(),
            prefix: r.below(2) == 0,
            prev_kv: r.below(2) == 0,
        }),
        _ => TxnStep::Range(RangeOp {
            prefix: r.pick(KEYS).as_bytes().to_vec(),
            limit: r.below(3) as u32,
            keys_only: r.below(2) == 0,
        }),
    }
}

/// Generates the log one entry at a time. It may look at a replica's
/// state (itself a function of the log so far) to aim some commands at
/// real holders and tokens, so the run exercises hand-offs, not only
/// refusals.
struct Gen {
    r: Lcg,
    clock: u64,
    opened: Vec<u64>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            r: Lcg(seed),
            clock: 1_000,
            opened: Vec::new(),
        }
    }

    fn next(&mut self, i: u64, sm: &StateMachine) -> Entry {
        let r = &mut self.r;
        if r.below(40) == 0 {
            return Entry::Marker(r.below(2) == 0);
        }
        // Mostly forward, sometimes a lagging leader, rarely a big jump.
        self.clock = match r.below(30) {
            0 => self.clock.saturating_sub(r.below(3_000)),
            1 => self.clock + r.below(20_000),
            _ => self.clock + r.below(300),
        };
        // Session ids are the indexes of OpenSession entries: mostly pick a
        // recent one (live or not), sometimes any index.
        let session = match (r.below(8), self.opened.len() as u64) {
            (0, _) | (_, 0) => i.saturating_sub(r.below(60)),
            (_, len) => self.opened[(len - 1 - r.below(len.min(12))) as usize],
        };
        let op = match r.below(17) {
            0 => Op::Tick,
            1 | 2 => {
                self.opened.push(i);
                Op::OpenSession {
                    ttl_ms: [0, 300, 1_000, 5_000, 20_000, 60_000, u64::MAX][r.below(7) as usize],
                }
            }
            3 | 4 => Op::KeepAlive {
                session_id: session,
            },
            5 => Op::CloseSession {
                session_id: session,
            },
            6 | 7 => Op::Acquire {
                name: r.pick(LOCKS).to_string(),
                session_id: session,
                wait: r.below(3) != 0,
            },
            8 | 16 => {
                let name = r.pick(LOCKS).to_string();
                let info = sm.lock(&name);
                let (session_id, token) = match r.below(4) {
                    0 => (session, i.saturating_sub(r.below(40))),
                    1 => (info.holder_session, info.token.saturating_sub(r.below(3))),
                    _ => (info.holder_session, info.token),
                };
                Op::Release {
                    name,
                    session_id,
                    token,
                }
            }
            9 => Op::CancelWait {
                name: r.pick(LOCKS).to_string(),
                session_id: session,
            },
            10 | 11 => Op::Put(gen_put(r, session, i)),
            12 => Op::Delete(DeleteOp {
                key: r.pick(KEYS).as_bytes().to_vec(),
                prefix: r.below(2) == 0,
                prev_kv: r.below(2) == 0,
            }),
            13 | 14 => {
                let compare = (0..r.below(3))
                    .map(|_| Compare {
                        key: r.pick(&["a", "b", "L1", "L2"]).as_bytes().to_vec(),
                        target: [
                            CompareTarget::Value,
                            CompareTarget::Version,
                            CompareTarget::ModRevision,
                            CompareTarget::CreateRevision,
                            CompareTarget::LockToken,
                        ][r.below(5) as usize],
                        result: [
                            CompareResult::Equal,
                            CompareResult::NotEqual,
                            CompareResult::Greater,
                            CompareResult::Less,
                        ][r.below(4) as usize],
                        value: r.below(1_000).to_string().into_bytes(),
                        number: r.below(i + 1),
                    })
                    .collect();
                let success = (0..r.below(4)).map(|_| gen_step(r, session, i)).collect();
                let failure = (0..r.below(3)).map(|_| gen_step(r, session, i)).collect();
                Op::Txn(TxnOp {
                    compare,
                    success,
                    failure,
                })
            }
            _ => Op::SetRetention {
                max_versions: r.below(6),
            },
        };
        Entry::Cmd(Command {
            leader_ts_ms: self.clock,
            op,
        })
    }
}

/// Runs `n` generated entries on `sm` and returns the log it applied.
fn run(sm: &mut StateMachine, seed: u64, n: u64) -> Vec<Entry> {
    let mut g = Gen::new(seed);
    let first = sm.applied_index() + 1;
    (first..first + n)
        .map(|index| {
            let e = g.next(index, sm);
            step(sm, index, &e);
            e
        })
        .collect()
}

fn step(sm: &mut StateMachine, index: u64, entry: &Entry) -> Option<Applied> {
    match entry {
        Entry::Cmd(cmd) => Some(sm.apply(index, cmd)),
        Entry::Marker(new_leader) => {
            sm.apply_marker(index, *new_leader);
            None
        }
    }
}

#[test]
fn replicas_agree_at_every_index_and_across_a_snapshot() {
    let mut g = Gen::new(0x5eed);
    let mut a = StateMachine::new();
    let mut b = StateMachine::new();
    let mut restored: Option<StateMachine> = None;
    let mut last_token: BTreeMap<String, u64> = BTreeMap::new();
    let (mut grants, mut expirations, mut ok, mut events) = (0, 0, 0, 0);
    let mut last_now = 0;
    for index in 1..=2_000u64 {
        let entry = &g.next(index, &a);
        let ra = step(&mut a, index, entry);
        let rb = step(&mut b, index, entry);
        assert_eq!(ra, rb, "replies differ at {index}");
        if let Some(c) = restored.as_mut() {
            assert_eq!(
                step(c, index, entry),
                ra,
                "restored replica differs at {index}"
            );
            assert_eq!(c.digest(), a.digest(), "restored digest differs at {index}");
        }
        assert_eq!(a.digest(), b.digest(), "digests differ at {index}");
        assert_eq!(a.applied_index(), index);
        assert!(a.now_ms() >= last_now, "time went backwards at {index}");
        last_now = a.now_ms();
        if let Some(applied) = ra {
            ok += usize::from(applied.result.is_ok());
            expirations += applied.expired_sessions.len();
            events += applied.events.len();
            for e in &applied.events {
                assert_eq!(e.kv.mod_revision, index);
            }
            for g in &applied.grants {
                grants += 1;
                assert_eq!(g.token, index);
                let prev = last_token.insert(g.name.clone(), g.token).unwrap_or(0);
                assert!(
                    g.token > prev,
                    "lock {} token {} after {}",
                    g.name,
                    g.token,
                    prev
                );
                assert_eq!(a.lock(&g.name).token, a.lock(&g.name).token.max(g.token));
            }
        }
        if index == 1_000 {
            let snap = a.to_snapshot().unwrap();
            let c = StateMachine::from_snapshot(&snap).unwrap();
            assert_eq!(c, a);
            assert_eq!(c.digest(), a.digest());
            restored = Some(c);
        }
    }
    // The sequence must actually exercise the machine.
    eprintln!("ok {ok}, grants {grants}, expirations {expirations}, events {events}");
    assert!(ok > 700, "only {ok} commands succeeded");
    assert!(grants > 30, "only {grants} grants");
    assert!(expirations > 20, "only {expirations} expirations");
    assert!(events > 150, "only {events} events");
    assert!(a.stats().sessions > 0);
}

#[test]
fn different_logs_give_different_digests() {
    let mut a = StateMachine::new();
    let mut b = StateMachine::new();
    let cmd = |ttl_ms| Command {
        leader_ts_ms: 5,
        op: Op::OpenSession { ttl_ms },
    };
    a.apply(1, &cmd(1_000));
    b.apply(1, &cmd(1_001));
    assert_ne!(a.digest(), b.digest());
    assert_eq!(a.digest().len(), 64);
}

#[test]
fn digest_is_sha256_of_the_snapshot_body() {
    let mut sm = StateMachine::new();
    run(&mut sm, 7, 200);
    let snap = sm.to_snapshot().unwrap();
    assert_eq!(snap[0], SNAPSHOT_FORMAT);
    assert_eq!(sm.digest(), hex::encode(Sha256::digest(&snap[1..])));
}

fn busy_machine() -> StateMachine {
    let mut sm = StateMachine::new();
    run(&mut sm, 99, 800);
    sm
}

#[test]
fn snapshot_of_garbage_or_truncated_bytes_is_an_error() {
    let sm = busy_machine();
    let snap = sm.to_snapshot().unwrap();
    eprintln!("snapshot of the busy machine: {} bytes", snap.len());
    assert!(snap.len() > 100);
    assert_eq!(StateMachine::from_snapshot(&[]), Err(SnapshotError::Empty));
    assert_eq!(
        StateMachine::from_snapshot(&[9, 1, 2, 3]),
        Err(SnapshotError::UnsupportedVersion(9))
    );
    for len in 1..snap.len() {
        assert!(
            StateMachine::from_snapshot(&snap[..len]).is_err(),
            "truncated to {len} bytes was accepted"
        );
    }
    let mut long = snap.clone();
    long.push(0);
    assert_eq!(
        StateMachine::from_snapshot(&long),
        Err(SnapshotError::TrailingBytes(1))
    );
    let mut r = Lcg(42);
    for _ in 0..200 {
        let mut junk: Vec<u8> = (0..r.below(300)).map(|_| r.below(256) as u8).collect();
        if let Some(first) = junk.first_mut() {
            *first = SNAPSHOT_FORMAT;
        }
        // Must return, never panic; a decode that happens to succeed must
        // have passed the consistency checks.
        let _ = StateMachine::from_snapshot(&junk);
    }
}

#[test]
fn snapshot_corruption_never_panics_and_survivors_keep_working() {
    let sm = busy_machine();
    let snap = sm.to_snapshot().unwrap();
    let mut r = Lcg(1234);
    let mut rejected = 0;
    for trial in 0..400 {
        let mut bad = snap.clone();
        let pos = 1 + r.below(bad.len() as u64 - 1) as usize;
        bad[pos] ^= 1 << r.below(8);
        match StateMachine::from_snapshot(&bad) {
            Err(_) => rejected += 1,
            Ok(mut m) => {
                // A flipped value byte can decode to a consistent state;
                // it must still apply commands without panicking.
                run(&mut m, trial, 30);
            }
        }
    }
    assert!(rejected > 0);
}
