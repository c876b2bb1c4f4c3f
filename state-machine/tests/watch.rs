mod common;

use aegis_state_machine::*;
use common::*;

fn revisions(events: &[Event]) -> Vec<(u64, EventKind)> {
    events.iter().map(|e| (e.kv.mod_revision, e.kind)).collect()
}

#[test]
fn events_since_filters_by_key_or_prefix_and_revision() {
    let mut h = Harness::new();
    h.put("a/1", "x"); // 1
    h.put("b", "x"); // 2
    h.put("a/2", "x"); // 3
    h.apply(del_op("a/1", false)); // 4
    h.put("a", "x"); // 5
    let all_a = h.sm.events_since(1, b"a/", true).unwrap();
    assert_eq!(
        revisions(&all_a),
        vec![
            (1, EventKind::Put),
            (3, EventKind::Put),
            (4, EventKind::Delete)
        ]
    );
    let from3 = h.sm.events_since(3, b"a/", true).unwrap();
    assert_eq!(
        revisions(&from3),
        vec![(3, EventKind::Put), (4, EventKind::Delete)]
    );
    let exact = h.sm.events_since(0, b"a", false).unwrap();
    assert_eq!(revisions(&exact), vec![(5, EventKind::Put)]);
    let everything = h.sm.events_since(1, b"", true).unwrap();
    assert_eq!(everything.len(), 5);
    assert!(h.sm.events_since(6, b"", true).unwrap().is_empty());
    assert_eq!(
        h.sm.events_since(1, b"", false),
        Err(SmError::Invalid("key is empty".into()))
    );
}

#[test]
fn resuming_from_last_revision_plus_one_has_no_gap_and_no_duplicate() {
    let mut h = Harness::new();
    let mut seen = Vec::new();
    let mut next = 1;
    for round in 0..20 {
        h.put(&format!("k/{}", round % 3), "v");
        if round % 4 == 0 {
            h.apply(del_op("k/", true));
        }
        if round % 5 == 0 {
            let batch = h.sm.events_since(next, b"k/", true).unwrap();
            if let Some(last) = batch.last() {
                next = last.kv.mod_revision + 1;
            }
            seen.extend(batch);
        }
    }
    seen.extend(h.sm.events_since(next, b"k/", true).unwrap());
    assert_eq!(seen, h.sm.events_since(1, b"k/", true).unwrap());
}

#[test]
fn bounded_history_reports_compaction() {
    let mut h = Harness::new();
    let total = WATCH_HISTORY_EVENTS as u64 + 5;
    for i in 0..total {
        h.put(&format!("k{}", i % 7), "v");
    }
    // Revisions 1..=5 were dropped.
    for start in [0, 1, 5] {
        assert_eq!(
            h.sm.events_since(start, b"k", true),
            Err(SmError::Compacted {
                revision: start,
                compact_revision: 5
            })
        );
    }
    // Even a key that never had an event: the history cannot prove it.
    assert!(matches!(
        h.sm.events_since(2, b"zzz", false),
        Err(SmError::Compacted { .. })
    ));
    let rest = h.sm.events_since(6, b"k", true).unwrap();
    assert_eq!(rest.len(), WATCH_HISTORY_EVENTS);
    assert_eq!(rest[0].kv.mod_revision, 6);
    assert_eq!(rest.last().unwrap().kv.mod_revision, total);
}

#[test]
fn a_txn_split_by_the_history_bound_counts_as_compacted() {
    let mut h = Harness::new();
    // One txn with 3 events at revision 1, then exactly enough events to
    // drop two of them.
    let steps = ["x", "y", "z"]
        .iter()
        .map(|k| TxnStep::Put(put_full(k, "v", 0, None)))
        .collect();
    h.ok(Op::Txn(TxnOp {
        compare: vec![],
        success: steps,
        failure: vec![],
    }));
    for _ in 0..WATCH_HISTORY_EVENTS - 1 {
        h.put("k", "v");
    }
    assert_eq!(
        h.sm.events_since(1, b"z", false),
        Err(SmError::Compacted {
            revision: 1,
            compact_revision: 1
        })
    );
    assert_eq!(
        h.sm.events_since(2, b"k", false).unwrap().len(),
        WATCH_HISTORY_EVENTS - 1
    );
}

#[test]
fn expiry_deletes_appear_in_the_history() {
    let mut h = Harness::new();
    let s = h.open(100); // 1
    h.ok(Op::Put(put_full("lease/a", "1", s, None))); // 2
    h.advance(100);
    h.ok(Op::Tick); // 3
    let events = h.sm.events_since(1, b"lease/", true).unwrap();
    assert_eq!(
        revisions(&events),
        vec![(2, EventKind::Put), (3, EventKind::Delete)]
    );
}
