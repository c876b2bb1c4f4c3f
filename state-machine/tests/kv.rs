mod common;

use aegis_state_machine::*;
use common::*;

fn kv(key: &str, value: &str, create: u64, modr: u64, version: u64) -> KeyValue {
    KeyValue {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().into(),
        create_revision: create,
        mod_revision: modr,
        version,
        session_id: 0,
    }
}

#[test]
fn versions_tombstones_and_generations() {
    let mut h = Harness::new();
    h.put("k", "a"); // 1
    h.put("k", "b"); // 2
    assert_eq!(h.sm.get(b"k", 0), Ok(Some(kv("k", "b", 1, 2, 2))));
    let applied = h.apply(del_op("k", false)); // 3
    assert_eq!(
        applied.result,
        Ok(Reply::Deleted {
            deleted: 1,
            prev_kvs: vec![kv("k", "b", 1, 2, 2)]
        })
    );
    assert_eq!(h.sm.get(b"k", 0), Ok(None));
    h.put("k", "c"); // 4: a new generation
    assert_eq!(h.sm.get(b"k", 0), Ok(Some(kv("k", "c", 4, 4, 1))));
    // History at each revision.
    assert_eq!(h.sm.get(b"k", 1), Ok(Some(kv("k", "a", 1, 1, 1))));
    assert_eq!(h.sm.get(b"k", 2), Ok(Some(kv("k", "b", 1, 2, 2))));
    assert_eq!(h.sm.get(b"k", 3), Ok(None));
    assert_eq!(h.sm.get(b"k", 4), Ok(Some(kv("k", "c", 4, 4, 1))));
    assert_eq!(
        h.sm.get(b"k", 5),
        Err(SmError::FutureRevision {
            revision: 5,
            current: 4
        })
    );
    assert_eq!(
        h.sm.get(b"", 0),
        Err(SmError::Invalid("key is empty".into()))
    );
}

#[test]
fn get_at_old_revision_sees_keys_written_later_as_absent() {
    let mut h = Harness::new();
    h.put("a", "1");
    h.ok(Op::Tick);
    h.put("b", "2");
    assert_eq!(h.sm.get(b"b", 2), Ok(None));
    assert_eq!(&*h.sm.get(b"b", 3).unwrap().unwrap().value, b"2");
    assert_eq!(h.sm.range(b"", 0, 2, false).unwrap().count, 1);
    assert_eq!(h.sm.range(b"", 0, 0, false).unwrap().count, 2);
}

#[test]
fn put_prev_kv_returns_the_previous_live_value_only() {
    let mut h = Harness::new();
    let r = h.ok(Op::Put(put_full("k", "a", 0, None)));
    assert_eq!(r, Reply::Put { prev_kv: None });
    let r = h.ok(Op::Put(put_full("k", "b", 0, None)));
    assert_eq!(
        r,
        Reply::Put {
            prev_kv: Some(kv("k", "a", 1, 1, 1))
        }
    );
    h.apply(del_op("k", false));
    let r = h.ok(Op::Put(put_full("k", "c", 0, None)));
    assert_eq!(r, Reply::Put { prev_kv: None });
    // Without prev_kv asked, nothing is returned.
    assert_eq!(h.ok(put_op("k", "d")), Reply::Put { prev_kv: None });
}

#[test]
fn retention_drops_old_versions_and_reports_compacted_reads() {
    let mut h = Harness::new();
    h.ok(Op::SetRetention { max_versions: 3 }); // 1
    for i in 0..5 {
        h.put("k", &format!("v{i}")); // 2..=6
    }
    // Kept: revisions 4, 5, 6; dropped up to 3.
    assert_eq!(&*h.sm.get(b"k", 4).unwrap().unwrap().value, b"v2");
    assert_eq!(&*h.sm.get(b"k", 6).unwrap().unwrap().value, b"v4");
    assert_eq!(
        h.sm.get(b"k", 3),
        Err(SmError::Compacted {
            revision: 3,
            compact_revision: 3
        })
    );
    assert_eq!(
        h.sm.get(b"k", 1),
        Err(SmError::Compacted {
            revision: 1,
            compact_revision: 3
        })
    );
    // A range at a compacted revision is refused as a whole.
    assert_eq!(
        h.sm.range(b"k", 0, 2, false),
        Err(SmError::Compacted {
            revision: 2,
            compact_revision: 3
        })
    );
    // The latest version counts on: retention keeps generation metadata.
    assert_eq!(h.sm.get(b"k", 0).unwrap().unwrap().version, 5);
    // Lowering retention compacts every key at once.
    h.ok(Op::SetRetention { max_versions: 1 });
    assert!(matches!(
        h.sm.get(b"k", 5),
        Err(SmError::Compacted {
            compact_revision: 5,
            ..
        })
    ));
    assert_eq!(
        h.err(Op::SetRetention { max_versions: 0 }),
        SmError::Invalid("max_versions must be at least 1".into())
    );
    assert_eq!(h.sm.max_versions(), 1);
}

#[test]
fn tombstones_count_towards_retention() {
    let mut h = Harness::new();
    h.ok(Op::SetRetention { max_versions: 2 }); // 1
    h.put("k", "a"); // 2
    h.apply(del_op("k", false)); // 3
    h.put("k", "b"); // 4: drops revision 2
    assert_eq!(h.sm.get(b"k", 3), Ok(None));
    assert!(matches!(
        h.sm.get(b"k", 2),
        Err(SmError::Compacted {
            compact_revision: 2,
            ..
        })
    ));
}

#[test]
fn default_retention_is_100_versions() {
    let mut h = Harness::new();
    assert_eq!(h.sm.max_versions(), DEFAULT_MAX_VERSIONS);
    for i in 0..101 {
        h.put("k", &i.to_string());
    }
    assert!(h.sm.get(b"k", 1).is_err());
    assert_eq!(&*h.sm.get(b"k", 2).unwrap().unwrap().value, b"1");
}

#[test]
fn range_with_limit_more_count_and_keys_only() {
    let mut h = Harness::new();
    for k in ["app/a", "app/b", "app/c", "apq", "ap", "other"] {
        h.put(k, "v");
    }
    h.apply(del_op("app/b", false));
    let r = h.sm.range(b"app/", 0, 0, false).unwrap();
    let keys: Vec<_> = r.kvs.iter().map(|k| k.key.clone()).collect();
    assert_eq!(keys, vec![b"app/a".to_vec(), b"app/c".to_vec()]);
    assert_eq!((r.count, r.more), (2, false));

    let r = h.sm.range(b"ap", 2, 0, true).unwrap();
    assert_eq!(r.count, 4);
    assert!(r.more);
    assert_eq!(r.kvs.len(), 2);
    assert_eq!(r.kvs[0].key, b"ap");
    assert_eq!(r.kvs[1].key, b"app/a");
    assert!(
        r.kvs.iter().all(|k| k.value.is_empty()),
        "keys_only drops values"
    );

    let r = h.sm.range(b"ap", 4, 0, false).unwrap();
    assert!(!r.more);
    assert_eq!(r.kvs.len(), 4);
    let r = h.sm.range(b"", 0, 0, false).unwrap();
    assert_eq!(r.count, 5);
    let r = h.sm.range(b"zzz", 0, 0, false).unwrap();
    assert_eq!((r.count, r.more, r.kvs.len()), (0, false, 0));
    assert!(matches!(
        h.sm.range(b"", 0, 99, false),
        Err(SmError::FutureRevision { .. })
    ));
}

#[test]
fn delete_prefix_counts_live_keys_and_emits_events_in_key_order() {
    let mut h = Harness::new();
    h.put("p/1", "a");
    h.put("p/2", "b");
    h.put("p/3", "c");
    h.put("q", "d");
    h.apply(del_op("p/2", false));
    let applied = h.apply(del_op("p/", true));
    match applied.result {
        Ok(Reply::Deleted { deleted, prev_kvs }) => {
            assert_eq!(deleted, 2);
            let keys: Vec<_> = prev_kvs.iter().map(|k| k.key.clone()).collect();
            assert_eq!(keys, vec![b"p/1".to_vec(), b"p/3".to_vec()]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(applied.events.len(), 2);
    for e in &applied.events {
        assert_eq!(e.kind, EventKind::Delete);
        assert_eq!(
            (e.kv.mod_revision, e.kv.version, e.kv.create_revision),
            (h.index, 0, 0)
        );
        assert!(e.kv.value.is_empty());
    }
    assert_eq!(h.sm.range(b"", 0, 0, false).unwrap().count, 1);
    // Deleting nothing is not an error and emits nothing.
    let applied = h.apply(del_op("p/", true));
    assert_eq!(
        applied.result,
        Ok(Reply::Deleted {
            deleted: 0,
            prev_kvs: vec![]
        })
    );
    assert!(applied.events.is_empty());
    assert_eq!(
        h.err(del_op("", true)),
        SmError::Invalid("key is empty".into())
    );
}

#[test]
fn session_bound_keys_live_and_die_with_the_session() {
    let mut h = Harness::new();
    let s = h.open(1_000);
    let other = h.open(60_000);
    h.ok(Op::Put(put_full("svc/a", "1", s, None)));
    h.ok(Op::Put(put_full("svc/b", "1", s, None)));
    h.ok(Op::Put(put_full("svc/c", "1", s, None)));
    // Rebinding to another session moves it; a plain put unbinds it.
    h.ok(Op::Put(put_full("svc/b", "2", other, None)));
    h.ok(Op::Put(put_full("svc/c", "2", 0, None)));
    assert_eq!(h.sm.session(s).unwrap().keys, vec![b"svc/a".to_vec()]);
    assert_eq!(h.sm.session(other).unwrap().keys, vec![b"svc/b".to_vec()]);
    assert_eq!(h.sm.get(b"svc/a", 0).unwrap().unwrap().session_id, s);
    h.advance(1_000);
    let applied = h.apply(Op::Tick);
    assert_eq!(applied.expired_sessions, vec![s]);
    assert_eq!(applied.events.len(), 1);
    assert_eq!(applied.events[0].kv.key, b"svc/a");
    assert_eq!(h.sm.get(b"svc/a", 0), Ok(None));
    assert!(h.sm.get(b"svc/b", 0).unwrap().is_some());
    assert!(h.sm.get(b"svc/c", 0).unwrap().is_some());
    // A put bound to a dead or unknown session is refused.
    assert_eq!(
        h.err(Op::Put(put_full("x", "1", s, None))),
        SmError::SessionExpired { session_id: s }
    );
    assert_eq!(
        h.err(Op::Put(put_full("x", "1", 9_999, None))),
        SmError::SessionNotFound { session_id: 9_999 }
    );
    assert_eq!(h.sm.get(b"x", 0), Ok(None));
    // Deleting a bound key unbinds it.
    h.apply(del_op("svc/b", false));
    assert!(h.sm.session(other).unwrap().keys.is_empty());
}

#[test]
fn guarded_put_rejects_tokens_older_than_the_lock() {
    let mut h = Harness::new();
    let a = h.open(60_000);
    let b = h.open(60_000);
    let t1 = h.must_acquire("leader", a);
    h.ok(Op::Put(put_full("cfg", "from-a", 0, Some(("leader", t1)))));
    h.release("leader", a, t1);
    let t2 = h.must_acquire("leader", b);
    h.ok(Op::Put(put_full("cfg", "from-b", 0, Some(("leader", t2)))));
    // a's delayed write with its old token.
    let e = h.err(Op::Put(put_full("cfg", "late-a", 0, Some(("leader", t1)))));
    assert_eq!(
        e,
        SmError::StaleFencingToken {
            lock: "leader".into(),
            token: t1,
            current: t2
        }
    );
    assert_eq!(&*h.sm.get(b"cfg", 0).unwrap().unwrap().value, b"from-b");
    // A lock never granted has token 0: a zero guard passes.
    h.ok(Op::Put(put_full("cfg2", "x", 0, Some(("unused", 0)))));
    assert_eq!(
        h.err(Op::Put(put_full("cfg2", "x", 0, Some(("", 0))))),
        SmError::Invalid("lock name is empty".into())
    );
    assert_eq!(
        h.err(put_op("", "x")),
        SmError::Invalid("key is empty".into())
    );
}

#[test]
fn put_events_carry_the_new_key_value() {
    let mut h = Harness::new();
    let applied = h.put("k", "v");
    assert_eq!(
        applied.events,
        vec![Event {
            kind: EventKind::Put,
            kv: kv("k", "v", 1, 1, 1).into()
        }]
    );
    let refused = h.apply(put_op("", "v"));
    assert!(refused.events.is_empty());
}

#[test]
fn expiry_delete_and_a_put_of_the_same_key_in_one_entry() {
    let mut h = Harness::new();
    let s = h.open(1_000);
    h.ok(Op::Put(put_full("k", "old", s, None)));
    h.advance(1_000);
    let applied = h.put("k", "new");
    assert_eq!(applied.expired_sessions, vec![s]);
    let kinds: Vec<_> = applied.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Delete, EventKind::Put]);
    let got = h.sm.get(b"k", h.index).unwrap().unwrap();
    assert_eq!(
        (&*got.value, got.version, got.create_revision),
        (&b"new"[..], 1, h.index)
    );
    assert_eq!(got.session_id, 0);
    assert_eq!(
        &*h.sm.get(b"k", h.index - 1).unwrap().unwrap().value,
        b"old"
    );
}
