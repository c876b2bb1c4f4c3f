mod common;

use aegis_state_machine::*;
use common::*;

#[test]
fn open_session_uses_the_log_index_as_id_and_replicated_deadline() {
    let mut h = Harness::new();
    h.ok(Op::Tick);
    let id = h.open(5_000);
    assert_eq!(id, 2);
    let info = h.sm.session(id).unwrap();
    assert_eq!(info.ttl_ms, 5_000);
    assert_eq!(info.deadline_ms, h.clock_ms + 5_000);
    assert!(info.locks.is_empty() && info.keys.is_empty());
    assert_eq!(h.sm.stats().sessions, 1);
}

#[test]
fn zero_ttl_is_invalid_and_changes_nothing() {
    let mut h = Harness::new();
    let e = h.err(Op::OpenSession { ttl_ms: 0 });
    assert_eq!(e, SmError::Invalid("ttl_ms must be positive".into()));
    assert_eq!(
        h.sm.session(1),
        Err(SmError::SessionNotFound { session_id: 1 })
    );
    assert_eq!(h.sm.stats().sessions, 0);
}

#[test]
fn session_expires_exactly_at_its_deadline_in_replicated_time() {
    let mut h = Harness::new();
    let id = h.open(1_000);
    h.advance(999);
    let a = h.apply(Op::Tick);
    assert!(a.expired_sessions.is_empty());
    assert!(h.sm.session(id).is_ok());
    h.advance(1);
    let a = h.apply(Op::Tick);
    assert_eq!(a.expired_sessions, vec![id]);
    assert_eq!(
        h.sm.session(id),
        Err(SmError::SessionExpired { session_id: id })
    );
    assert_eq!(h.sm.stats().sessions, 0);
}

#[test]
fn keep_alive_extends_from_now_and_late_keep_alive_sees_expiry_first() {
    let mut h = Harness::new();
    let id = h.open(1_000);
    h.advance(800);
    assert_eq!(
        h.ok(Op::KeepAlive { session_id: id }),
        Reply::KeptAlive {
            session_id: id,
            ttl_ms: 1_000
        }
    );
    assert_eq!(h.sm.session(id).unwrap().deadline_ms, h.clock_ms + 1_000);
    h.advance(999);
    h.ok(Op::Tick);
    assert!(
        h.sm.session(id).is_ok(),
        "keep-alive must have moved the deadline"
    );
    // The keep-alive arrives in the same entry that crosses the deadline:
    // expiry runs first.
    h.advance(1);
    let a = h.apply(Op::KeepAlive { session_id: id });
    assert_eq!(a.expired_sessions, vec![id]);
    assert_eq!(a.result, Err(SmError::SessionExpired { session_id: id }));
}

#[test]
fn unknown_and_closed_sessions_get_distinct_errors() {
    let mut h = Harness::new();
    assert_eq!(
        h.err(Op::KeepAlive { session_id: 77 }),
        SmError::SessionNotFound { session_id: 77 }
    );
    let id = h.open(10_000);
    assert_eq!(
        h.ok(Op::CloseSession { session_id: id }),
        Reply::SessionClosed
    );
    assert_eq!(
        h.err(Op::CloseSession { session_id: id }),
        SmError::SessionExpired { session_id: id }
    );
    assert_eq!(
        h.err(Op::KeepAlive { session_id: id }),
        SmError::SessionExpired { session_id: id }
    );
}

#[test]
fn ended_session_memory_is_bounded_and_forgets_oldest_first() {
    let mut h = Harness::new();
    let first = h.open(1);
    let mut ids = vec![first];
    for _ in 0..ENDED_MEMORY {
        ids.push(h.open(1));
    }
    h.advance(1);
    let a = h.apply(Op::Tick);
    assert_eq!(a.expired_sessions.len(), ENDED_MEMORY + 1);
    // Expired in (deadline, id) order.
    assert_eq!(a.expired_sessions, ids);
    assert_eq!(
        h.sm.session(first),
        Err(SmError::SessionNotFound { session_id: first })
    );
    let second = ids[1];
    assert_eq!(
        h.sm.session(second),
        Err(SmError::SessionExpired { session_id: second })
    );
}

#[test]
fn time_never_goes_backwards_with_a_lagging_leader_clock() {
    let mut h = Harness::new();
    h.apply_at(10_000, Op::Tick);
    assert_eq!(h.sm.now_ms(), 10_000);
    let id = h.open(1_000);
    assert_eq!(h.sm.session(id).unwrap().deadline_ms, 11_000);
    // A new leader whose clock is 5 s behind: time holds at 10 000.
    h.apply_at(5_000, Op::Tick);
    assert_eq!(h.sm.now_ms(), 10_000);
    // A keep-alive stamped by the lagging leader extends from replicated
    // time, not from the leader's stale clock.
    h.apply_at(5_500, Op::KeepAlive { session_id: id });
    assert_eq!(h.sm.session(id).unwrap().deadline_ms, 11_000);
    let a = h.apply_at(10_999, Op::Tick);
    assert!(a.expired_sessions.is_empty());
    let a = h.apply_at(11_000, Op::Tick);
    assert_eq!(a.expired_sessions, vec![id]);
}

#[test]
fn new_leader_refreshes_every_session_before_expiring() {
    let mut h = Harness::new();
    h.clock_ms = 10_000;
    let short = h.open(1_000);
    let long = h.open(60_000);
    // The old leader dies; the election takes 3 s, longer than `short` had.
    h.marker(true);
    let a = h.apply_at(13_000, Op::Tick);
    assert!(
        a.expired_sessions.is_empty(),
        "refresh must run before expiry"
    );
    assert_eq!(h.sm.session(short).unwrap().deadline_ms, 14_000);
    assert_eq!(h.sm.session(long).unwrap().deadline_ms, 73_000);
    // The refresh is consumed by one command.
    let a = h.apply_at(14_000, Op::Tick);
    assert_eq!(a.expired_sessions, vec![short]);
}

#[test]
fn refresh_by_a_lagging_new_leader_never_shortens_a_deadline() {
    let mut h = Harness::new();
    h.clock_ms = 10_000;
    let id = h.open(5_000);
    h.marker(true);
    // The new leader's clock is 4 s behind replicated time.
    let a = h.apply_at(6_000, Op::Tick);
    assert!(a.expired_sessions.is_empty());
    assert_eq!(h.sm.now_ms(), 10_000);
    assert_eq!(h.sm.session(id).unwrap().deadline_ms, 15_000);
}

#[test]
fn without_a_leader_change_a_long_gap_expires_sessions() {
    let mut h = Harness::new();
    h.clock_ms = 10_000;
    let id = h.open(1_000);
    h.marker(false); // a membership entry is not a leader change
    let a = h.apply_at(13_000, Op::Tick);
    assert_eq!(a.expired_sessions, vec![id]);
}

#[test]
fn refused_or_duplicate_indexes_change_nothing() {
    let mut h = Harness::new();
    h.open(1_000);
    let before = h.sm.digest();
    let a = h.sm.apply(
        1,
        &Command {
            leader_ts_ms: 99_999,
            op: Op::OpenSession { ttl_ms: 5 },
        },
    );
    assert!(matches!(a.result, Err(SmError::Invalid(_))));
    assert_eq!(h.sm.digest(), before);
    assert_eq!(h.sm.now_ms(), 1_000);
    let a = h.sm.apply(
        0,
        &Command {
            leader_ts_ms: 0,
            op: Op::Tick,
        },
    );
    assert!(a.result.is_err());
    assert_eq!(h.sm.digest(), before);
}

#[test]
fn stats_count_sessions_locks_waiters_and_keys() {
    let mut h = Harness::new();
    let a = h.open(10_000);
    let b = h.open(10_000);
    let c = h.open(10_000);
    h.must_acquire("x", a);
    h.acquire("x", b, true);
    h.acquire("x", c, true);
    h.must_acquire("y", b);
    h.put("k1", "v");
    h.put("k2", "v");
    h.apply(del_op("k1", false));
    assert_eq!(
        h.sm.stats(),
        Stats {
            sessions: 3,
            locks_held: 2,
            waiters: 2,
            keys: 1
        }
    );
}

#[test]
fn keep_alives_in_one_entry_each_get_what_a_lone_keep_alive_would() {
    let mut h = Harness::new();
    let short = h.open(1_000);
    let long = h.open(5_000);
    let closed = h.open(5_000);
    h.ok(Op::CloseSession { session_id: closed });
    // `short` crosses its deadline in the batch's own entry: expiry runs
    // first, as for a lone keep-alive, and the others are still renewed.
    h.advance(1_000);
    let a = h.apply(Op::KeepAlives {
        session_ids: vec![long, short, 77, closed, long],
    });
    assert_eq!(a.expired_sessions, vec![short]);
    assert_eq!(
        a.result,
        Ok(Reply::KeptAliveMany {
            renewed: vec![
                Ok(5_000),
                Err(SmError::SessionExpired { session_id: short }),
                Err(SmError::SessionNotFound { session_id: 77 }),
                Err(SmError::SessionExpired { session_id: closed }),
                Ok(5_000),
            ]
        })
    );
    assert_eq!(h.sm.session(long).unwrap().deadline_ms, h.clock_ms + 5_000);
}

#[test]
fn keep_alives_in_one_entry_leave_the_state_a_keep_alive_each_would() {
    let mut one = Harness::new();
    let mut many = Harness::new();
    let ids: Vec<u64> = (0..4).map(|_| one.open(2_000)).collect();
    for _ in 0..4 {
        many.open(2_000);
    }
    one.advance(1_500);
    many.advance(1_500);
    for id in &ids[..3] {
        one.ok(Op::KeepAlive { session_id: *id });
    }
    many.ok(Op::KeepAlives {
        session_ids: ids[..3].to_vec(),
    });
    // The unrenewed one expires on both at the same replicated time.
    one.advance(500);
    many.advance(500);
    assert_eq!(one.apply(Op::Tick).expired_sessions, vec![ids[3]]);
    assert_eq!(many.apply(Op::Tick).expired_sessions, vec![ids[3]]);
    for id in &ids[..3] {
        assert_eq!(one.sm.session(*id), many.sm.session(*id));
    }
}
