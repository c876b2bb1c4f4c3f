mod common;

use aegis_state_machine::*;
use common::*;

fn grant(name: &str, session_id: u64, token: u64) -> LockGrant {
    LockGrant {
        name: name.into(),
        session_id,
        token,
    }
}

#[test]
fn acquire_on_a_free_lock_returns_the_log_index_as_token() {
    let mut h = Harness::new();
    let s = h.open(10_000);
    h.ok(Op::Tick);
    let a = h.acquire("db", s, false);
    assert_eq!(a.result, Ok(Reply::Acquired { token: 3 }));
    assert_eq!(a.grants, vec![grant("db", s, 3)]);
    let info = h.sm.lock("db");
    assert_eq!((info.holder_session, info.token), (s, 3));
    assert_eq!(h.sm.session(s).unwrap().locks, vec!["db".to_string()]);
}

#[test]
fn acquire_is_idempotent_for_the_holder() {
    let mut h = Harness::new();
    let s = h.open(10_000);
    let t = h.must_acquire("db", s);
    let a = h.acquire("db", s, true);
    assert_eq!(a.result, Ok(Reply::Acquired { token: t }));
    assert!(a.grants.is_empty());
    assert_eq!(h.sm.lock("db").token, t);
}

#[test]
fn never_used_lock_reads_as_free() {
    let h = Harness::new();
    assert_eq!(
        h.sm.lock("nothing"),
        LockInfo {
            name: "nothing".into(),
            holder_session: 0,
            token: 0,
            waiters: vec![]
        }
    );
}

#[test]
fn busy_without_wait_and_fifo_queue_with_wait() {
    let mut h = Harness::new();
    let a = h.open(10_000);
    let b = h.open(10_000);
    let c = h.open(10_000);
    let d = h.open(10_000);
    let t0 = h.must_acquire("L", a);
    assert_eq!(
        h.acquire("L", b, false).result,
        Ok(Reply::Busy { holder_session: a })
    );
    assert!(h.sm.lock("L").waiters.is_empty(), "busy must not queue");
    assert_eq!(
        h.acquire("L", c, true).result,
        Ok(Reply::Queued { position: 1 })
    );
    assert_eq!(
        h.acquire("L", b, true).result,
        Ok(Reply::Queued { position: 2 })
    );
    assert_eq!(
        h.acquire("L", d, true).result,
        Ok(Reply::Queued { position: 3 })
    );
    // Queuing twice keeps the original place.
    assert_eq!(
        h.acquire("L", c, true).result,
        Ok(Reply::Queued { position: 1 })
    );
    assert_eq!(h.sm.lock("L").waiters, vec![c, b, d]);

    // Each release hands the lock to the head of the queue, in order, with
    // the release's index as the new token.
    let mut holder = a;
    let mut token = t0;
    for expected in [c, b, d] {
        let applied = h.release("L", holder, token);
        let g = grant("L", expected, h.index);
        assert_eq!(
            applied.result,
            Ok(Reply::Released {
                next: Some(g.clone())
            })
        );
        assert_eq!(applied.grants, vec![g]);
        assert!(h.index > token, "tokens must strictly increase");
        holder = expected;
        token = h.index;
        assert_eq!(h.sm.lock("L").holder_session, holder);
    }
    let applied = h.release("L", holder, token);
    assert_eq!(applied.result, Ok(Reply::Released { next: None }));
    let info = h.sm.lock("L");
    assert_eq!(info.holder_session, 0);
    assert_eq!(info.token, token, "a free lock remembers its last token");
}

#[test]
fn release_checks_holder_and_token() {
    let mut h = Harness::new();
    let a = h.open(10_000);
    let b = h.open(10_000);
    let t1 = h.must_acquire("L", a);
    assert_eq!(
        h.release("L", b, t1).result,
        Err(SmError::NotLockHolder {
            lock: "L".into(),
            session_id: b
        })
    );
    assert_eq!(
        h.release("L", a, t1 + 100).result,
        Err(SmError::NotLockHolder {
            lock: "L".into(),
            session_id: a
        })
    );
    h.release("L", a, t1).result.unwrap();
    let t2 = h.must_acquire("L", b);
    // The former holder releasing late with its old token.
    assert_eq!(
        h.release("L", a, t1).result,
        Err(SmError::StaleFencingToken {
            lock: "L".into(),
            token: t1,
            current: t2
        })
    );
    assert_eq!(h.sm.lock("L").holder_session, b);
    assert_eq!(
        h.release("never", a, 0).result,
        Err(SmError::NotLockHolder {
            lock: "never".into(),
            session_id: a
        })
    );
}

#[test]
fn acquire_needs_a_live_session_and_a_name() {
    let mut h = Harness::new();
    assert_eq!(
        h.acquire("L", 42, false).result,
        Err(SmError::SessionNotFound { session_id: 42 })
    );
    let s = h.open(100);
    h.advance(100);
    assert_eq!(
        h.acquire("L", s, false).result,
        Err(SmError::SessionExpired { session_id: s })
    );
    let s2 = h.open(100);
    assert_eq!(
        h.acquire("", s2, false).result,
        Err(SmError::Invalid("lock name is empty".into()))
    );
    assert_eq!(h.sm.lock("L").holder_session, 0);
}

#[test]
fn cancel_wait_leaves_the_queue() {
    let mut h = Harness::new();
    let a = h.open(10_000);
    let b = h.open(10_000);
    let c = h.open(10_000);
    let t = h.must_acquire("L", a);
    h.acquire("L", b, true);
    h.acquire("L", c, true);
    let r = h.ok(Op::CancelWait {
        name: "L".into(),
        session_id: b,
    });
    assert_eq!(r, Reply::WaitCancelled);
    assert_eq!(h.sm.lock("L").waiters, vec![c]);
    let applied = h.release("L", a, t);
    assert_eq!(applied.grants, vec![grant("L", c, h.index)]);
    assert_eq!(
        h.err(Op::CancelWait {
            name: "L".into(),
            session_id: c
        }),
        SmError::Invalid("session already holds the lock; release it instead".into())
    );
}

#[test]
fn expiry_of_the_holder_grants_the_next_waiter_a_larger_token() {
    let mut h = Harness::new();
    let a = h.open(1_000);
    let b = h.open(60_000);
    let t1 = h.must_acquire("L", a);
    h.put_bound("eph", a);
    assert_eq!(
        h.acquire("L", b, true).result,
        Ok(Reply::Queued { position: 1 })
    );
    h.advance(1_000);
    let applied = h.apply(Op::Tick);
    assert_eq!(applied.expired_sessions, vec![a]);
    assert_eq!(applied.grants, vec![grant("L", b, h.index)]);
    assert!(h.index > t1);
    let info = h.sm.lock("L");
    assert_eq!((info.holder_session, info.token), (b, h.index));
    assert!(info.waiters.is_empty());
    assert_eq!(h.sm.session(b).unwrap().locks, vec!["L".to_string()]);
    // The expiry also deleted the key bound to the session.
    assert_eq!(applied.events.len(), 1);
    assert_eq!(applied.events[0].kind, EventKind::Delete);
    assert_eq!(h.sm.get(b"eph", 0), Ok(None));
}

#[test]
fn expiry_of_a_waiter_removes_it_from_every_queue() {
    let mut h = Harness::new();
    let holder = h.open(60_000);
    let w1 = h.open(1_000);
    let w2 = h.open(60_000);
    let t = h.must_acquire("L", holder);
    h.must_acquire("M", holder);
    h.acquire("L", w1, true);
    h.acquire("M", w1, true);
    h.acquire("L", w2, true);
    h.advance(1_000);
    let applied = h.apply(Op::Tick);
    assert_eq!(applied.expired_sessions, vec![w1]);
    assert!(applied.grants.is_empty());
    assert_eq!(h.sm.lock("L").waiters, vec![w2]);
    assert!(h.sm.lock("M").waiters.is_empty());
    let applied = h.release("L", holder, t);
    assert_eq!(applied.grants, vec![grant("L", w2, h.index)]);
}

#[test]
fn holder_and_first_waiter_expiring_together_skip_to_a_live_waiter() {
    let mut h = Harness::new();
    let a = h.open(1_000);
    let b = h.open(1_000);
    let c = h.open(60_000);
    h.must_acquire("L", a);
    h.acquire("L", b, true);
    h.acquire("L", c, true);
    h.advance(1_000);
    let applied = h.apply(Op::Tick);
    assert_eq!(applied.expired_sessions, vec![a, b]);
    // Exactly one grant at this index: the lock never passes through b.
    assert_eq!(applied.grants, vec![grant("L", c, h.index)]);
}

#[test]
fn closing_a_session_releases_its_locks_to_waiters() {
    let mut h = Harness::new();
    let a = h.open(60_000);
    let b = h.open(60_000);
    let t = h.must_acquire("L", a);
    h.acquire("L", b, true);
    let applied = h.apply(Op::CloseSession { session_id: a });
    assert_eq!(applied.result, Ok(Reply::SessionClosed));
    assert!(applied.expired_sessions.is_empty());
    assert_eq!(applied.grants, vec![grant("L", b, h.index)]);
    assert!(h.index > t);
}

#[test]
fn a_session_closed_in_the_entry_that_expires_its_lock_holder_is_skipped() {
    let mut h = Harness::new();
    let a = h.open(1_000);
    let b = h.open(60_000);
    let c = h.open(60_000);
    h.must_acquire("L", a);
    h.acquire("L", b, true);
    h.acquire("L", c, true);
    h.advance(1_000);
    // a expires in the same entry that closes b: c gets the lock once.
    let applied = h.apply(Op::CloseSession { session_id: b });
    assert_eq!(applied.result, Ok(Reply::SessionClosed));
    assert_eq!(applied.expired_sessions, vec![a]);
    assert_eq!(applied.grants, vec![grant("L", c, h.index)]);
    assert_eq!(h.sm.lock("L").holder_session, c);
}

/// Tokens of one lock over a long chain of acquire / release / expiry /
/// close hand-offs strictly increase, and equal the granting entry's index.
#[test]
fn fencing_tokens_strictly_increase_over_a_chain_of_handoffs() {
    let mut h = Harness::new();
    let mut last = 0u64;
    let mut handoffs = 0;
    let mut sessions = Vec::new();
    for round in 0..30u64 {
        let s = h.open(500 + round * 10);
        sessions.push(s);
        let applied = h.acquire("chain", s, true);
        for g in &applied.grants {
            assert_eq!(g.token, h.index);
        }
        let mut grants = applied.grants.clone();
        match round % 3 {
            0 => {
                // Let time pass: sessions expire and hand the lock on.
                h.advance(600);
                grants.extend(h.apply(Op::Tick).grants);
            }
            1 => {
                let info = h.sm.lock("chain");
                if info.holder_session != 0 {
                    grants.extend(h.release("chain", info.holder_session, info.token).grants);
                }
            }
            _ => {
                let info = h.sm.lock("chain");
                if info.holder_session != 0 {
                    grants.extend(
                        h.apply(Op::CloseSession {
                            session_id: info.holder_session,
                        })
                        .grants,
                    );
                }
            }
        }
        for g in grants {
            handoffs += 1;
            assert!(g.token > last, "token {} after {}", g.token, last);
            last = g.token;
        }
        assert_eq!(h.sm.lock("chain").token, last);
    }
    assert!(handoffs >= 20, "only {handoffs} grants");
}

trait PutBound {
    fn put_bound(&mut self, key: &str, session: u64);
}

impl PutBound for Harness {
    fn put_bound(&mut self, key: &str, session: u64) {
        let r = self.ok(Op::Put(put_full(key, "v", session, None)));
        assert_eq!(r, Reply::Put { prev_kv: None });
    }
}

#[test]
fn release_of_a_token_granted_in_the_same_entry_is_refused() {
    let mut h = Harness::new();
    let a = h.open(1_000);
    let b = h.open(60_000);
    let c = h.open(60_000);
    h.must_acquire("L", a);
    h.acquire("L", b, true);
    h.acquire("L", c, true);
    h.advance(1_000);
    // The entry that expires a (and grants b the token equal to its own
    // index) also carries a guessed release of that token.
    let next = h.index + 1;
    let applied = h.release("L", b, next);
    assert_eq!(applied.grants, vec![grant("L", b, next)]);
    assert_eq!(
        applied.result,
        Err(SmError::Invalid(
            "lock was granted at this index; release it later".into()
        ))
    );
    let info = h.sm.lock("L");
    assert_eq!(
        (info.holder_session, info.token, info.waiters),
        (b, next, vec![c])
    );
}
