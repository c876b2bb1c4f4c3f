mod common;

use aegis_state_machine::*;
use common::*;

fn cmp(
    key: &str,
    target: CompareTarget,
    result: CompareResult,
    value: &str,
    number: u64,
) -> Compare {
    Compare {
        key: key.as_bytes().to_vec(),
        target,
        result,
        value: value.as_bytes().to_vec(),
        number,
    }
}

fn range(prefix: &str) -> TxnStep {
    TxnStep::Range(RangeOp {
        prefix: prefix.as_bytes().to_vec(),
        limit: 0,
        keys_only: false,
    })
}

fn txn(compare: Vec<Compare>, success: Vec<TxnStep>, failure: Vec<TxnStep>) -> Op {
    Op::Txn(TxnOp {
        compare,
        success,
        failure,
    })
}

fn succeeded(reply: &Reply) -> bool {
    match reply {
        Reply::Txn { succeeded, .. } => *succeeded,
        other => panic!("{other:?}"),
    }
}

#[test]
fn compares_on_a_missing_key_see_empty_value_and_zero_revisions() {
    let mut h = Harness::new();
    let checks = [
        cmp("nope", CompareTarget::Value, CompareResult::Equal, "", 0),
        cmp("nope", CompareTarget::Version, CompareResult::Equal, "", 0),
        cmp(
            "nope",
            CompareTarget::ModRevision,
            CompareResult::Equal,
            "",
            0,
        ),
        cmp(
            "nope",
            CompareTarget::CreateRevision,
            CompareResult::Equal,
            "",
            0,
        ),
    ];
    for c in checks {
        let r = h.ok(txn(vec![c.clone()], vec![], vec![]));
        assert!(succeeded(&r), "{c:?}");
    }
}

#[test]
fn compare_results_on_value_and_numbers() {
    let mut h = Harness::new();
    h.put("k", "m"); // 1
    h.put("k", "m"); // 2: version 2, create 1, mod 2
    use CompareResult::*;
    use CompareTarget::*;
    let cases = [
        (cmp("k", Value, Equal, "m", 0), true),
        (cmp("k", Value, NotEqual, "m", 0), false),
        (cmp("k", Value, Greater, "a", 0), true),
        (cmp("k", Value, Less, "a", 0), false),
        (cmp("k", Value, Less, "z", 0), true),
        (cmp("k", Version, Equal, "", 2), true),
        (cmp("k", Version, Greater, "", 2), false),
        (cmp("k", CreateRevision, Equal, "", 1), true),
        (cmp("k", ModRevision, Equal, "", 2), true),
        (cmp("k", ModRevision, Less, "", 3), true),
        (cmp("k", ModRevision, NotEqual, "", 2), false),
    ];
    for (c, expected) in cases {
        let r = h.ok(txn(vec![c.clone()], vec![], vec![]));
        assert_eq!(succeeded(&r), expected, "{c:?}");
    }
    // All compares must hold.
    let r = h.ok(txn(
        vec![
            cmp("k", Value, Equal, "m", 0),
            cmp("k", Version, Equal, "", 9),
        ],
        vec![],
        vec![],
    ));
    assert!(!succeeded(&r));
}

#[test]
fn compare_on_lock_token_tracks_the_current_grant() {
    let mut h = Harness::new();
    let s = h.open(60_000);
    use CompareResult::*;
    let c0 = cmp("leader", CompareTarget::LockToken, Equal, "", 0);
    assert!(succeeded(&h.ok(txn(vec![c0], vec![], vec![]))));
    let t = h.must_acquire("leader", s);
    let ct = cmp("leader", CompareTarget::LockToken, Equal, "", t);
    let r = h.ok(txn(
        vec![ct.clone()],
        vec![TxnStep::Put(put_full("cfg", "x", 0, None))],
        vec![],
    ));
    assert!(succeeded(&r));
    h.release("leader", s, t);
    // The token stays after release; a new grant moves it.
    assert!(succeeded(&h.ok(txn(vec![ct.clone()], vec![], vec![]))));
    h.must_acquire("leader", s);
    assert!(!succeeded(&h.ok(txn(vec![ct], vec![], vec![]))));
}

#[test]
fn branch_runs_in_order_at_one_revision_and_ranges_see_earlier_writes() {
    let mut h = Harness::new();
    h.put("a/1", "old"); // 1
    h.put("a/2", "x"); // 2
    let applied = h.apply(txn(
        vec![cmp(
            "a/1",
            CompareTarget::Value,
            CompareResult::Equal,
            "old",
            0,
        )],
        vec![
            range("a/"),
            TxnStep::Put(put_full("a/1", "new", 0, None)),
            TxnStep::Delete(DeleteOp {
                key: b"a/2".to_vec(),
                prefix: false,
                prev_kv: false,
            }),
            TxnStep::Put(put_full("a/3", "n", 0, None)),
            range("a/"),
        ],
        vec![TxnStep::Put(put_full("failed", "1", 0, None))],
    )); // 3
    let Ok(Reply::Txn {
        succeeded,
        responses,
    }) = applied.result
    else {
        panic!("{:?}", applied.result)
    };
    assert!(succeeded);
    assert_eq!(responses.len(), 5);
    match &responses[0] {
        TxnStepReply::Range { kvs, count, .. } => {
            assert_eq!(*count, 2);
            assert_eq!(&kvs[0].value[..], b"old");
        }
        other => panic!("{other:?}"),
    }
    match &responses[1] {
        TxnStepReply::Put { prev_kv: Some(p) } => assert_eq!(&p.value[..], b"old"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        responses[2],
        TxnStepReply::Deleted {
            deleted: 1,
            prev_kvs: vec![]
        }
    );
    match &responses[4] {
        TxnStepReply::Range { kvs, count, more } => {
            assert_eq!((*count, *more), (2, false));
            let got: Vec<_> = kvs
                .iter()
                .map(|k| (k.key.clone(), k.value.to_vec(), k.mod_revision))
                .collect();
            assert_eq!(
                got,
                vec![
                    (b"a/1".to_vec(), b"new".to_vec(), 3),
                    (b"a/3".to_vec(), b"n".to_vec(), 3)
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(applied.events.len(), 3);
    assert!(applied.events.iter().all(|e| e.kv.mod_revision == 3));
    assert_eq!(h.sm.get(b"failed", 0), Ok(None));
    // The state before the txn is still readable.
    assert_eq!(&*h.sm.get(b"a/1", 2).unwrap().unwrap().value, b"old");
    assert!(h.sm.get(b"a/2", 2).unwrap().is_some());
}

#[test]
fn compares_see_the_state_before_the_txn() {
    let mut h = Harness::new();
    // Failure branch chosen; its write does not influence the compare.
    let r = h.ok(txn(
        vec![cmp(
            "k",
            CompareTarget::Version,
            CompareResult::Equal,
            "",
            1,
        )],
        vec![],
        vec![TxnStep::Put(put_full("k", "v", 0, None))],
    ));
    assert!(!succeeded(&r));
    assert_eq!(h.sm.get(b"k", 0).unwrap().unwrap().version, 1);
}

#[test]
fn txn_writing_a_key_twice_is_invalid() {
    let mut h = Harness::new();
    h.put("p/x", "1");
    let dup = |a: TxnStep, b: TxnStep| txn(vec![], vec![a, b], vec![]);
    let put = |k: &str| TxnStep::Put(put_full(k, "v", 0, None));
    let del = |k: &str, prefix: bool| {
        TxnStep::Delete(DeleteOp {
            key: k.as_bytes().to_vec(),
            prefix,
            prev_kv: false,
        })
    };
    let msg = SmError::Invalid("txn writes the same key more than once".into());
    assert_eq!(h.err(dup(put("k"), put("k"))), msg);
    assert_eq!(h.err(dup(put("p/x"), del("p/", true))), msg);
    assert_eq!(h.err(dup(del("p/", true), del("p/x/", true))), msg);
    assert_eq!(h.err(dup(del("k", false), put("k"))), msg);
    // Also in a branch that would not run.
    assert_eq!(h.err(txn(vec![], vec![], vec![put("k"), put("k")])), msg);
    assert_eq!(h.sm.get(b"k", 0), Ok(None));
    assert_eq!(&*h.sm.get(b"p/x", 0).unwrap().unwrap().value, b"1");
    // Distinct keys are fine.
    let r = h.ok(dup(put("k"), del("p/", true)));
    assert!(succeeded(&r));
}

#[test]
fn a_refused_step_refuses_the_whole_txn_without_changes() {
    let mut h = Harness::new();
    let s = h.open(60_000);
    let t1 = h.must_acquire("L", s);
    h.release("L", s, t1);
    let t2 = h.must_acquire("L", s);
    let before = h.sm.get(b"a", 0).unwrap();
    let applied = h.apply(txn(
        vec![],
        vec![
            TxnStep::Put(put_full("a", "1", 0, None)),
            TxnStep::Put(put_full("b", "1", 0, Some(("L", t1)))),
        ],
        vec![],
    ));
    assert_eq!(
        applied.result,
        Err(SmError::StaleFencingToken {
            lock: "L".into(),
            token: t1,
            current: t2
        })
    );
    assert!(applied.events.is_empty());
    assert_eq!(h.sm.get(b"a", 0).unwrap(), before);
    let applied = h.apply(txn(
        vec![],
        vec![
            TxnStep::Put(put_full("a", "1", 0, None)),
            TxnStep::Put(put_full("b", "1", 999, None)),
        ],
        vec![],
    ));
    assert_eq!(
        applied.result,
        Err(SmError::SessionNotFound { session_id: 999 })
    );
    assert_eq!(h.sm.get(b"a", 0), Ok(None));
}

#[test]
fn empty_keys_in_a_txn_are_invalid() {
    let mut h = Harness::new();
    let e = h.err(txn(
        vec![cmp("", CompareTarget::Value, CompareResult::Equal, "", 0)],
        vec![],
        vec![],
    ));
    assert_eq!(e, SmError::Invalid("key is empty".into()));
    let e = h.err(txn(
        vec![],
        vec![TxnStep::Put(put_full("", "v", 0, None))],
        vec![],
    ));
    assert_eq!(e, SmError::Invalid("key is empty".into()));
    let bad_lock = Compare {
        key: vec![0xff, 0xfe],
        target: CompareTarget::LockToken,
        result: CompareResult::Equal,
        value: vec![],
        number: 0,
    };
    let e = h.err(txn(vec![bad_lock], vec![], vec![]));
    assert_eq!(e, SmError::Invalid("lock name is not valid UTF-8".into()));
}
