//! Linearizability of single-key register histories: the Wing–Gong search
//! with Lowe's memoisation, run separately for each key (a history is
//! linearizable iff each key's sub-history is).
//!
//! An operation whose outcome is unknown may have taken effect at any point
//! after its call, or never: its return is placed after everything else, so
//! the search may linearize it anywhere or leave it out. Failed operations
//! and reads without an answer constrain nothing and are dropped.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::Violation;
use crate::history::{OpKind, Outcome, Record};

/// The register value: absent, or a string.
pub type State = Option<String>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum RegOp {
    Put(String),
    Get(State),
    /// `succeeded` is `None` when the outcome is unknown.
    Cas {
        expect: String,
        new: String,
        succeeded: Option<bool>,
    },
    Delete {
        deleted: Option<u64>,
    },
}

impl RegOp {
    /// The state after this op on `s`, or `None` if the op cannot have
    /// returned what it did from `s`.
    fn step(&self, s: &State) -> Option<State> {
        match self {
            RegOp::Put(v) => Some(Some(v.clone())),
            RegOp::Get(want) => (want == s).then(|| s.clone()),
            RegOp::Cas {
                expect,
                new,
                succeeded,
            } => {
                let matches = s.as_deref() == Some(expect.as_str());
                match succeeded {
                    Some(true) => matches.then(|| Some(new.clone())),
                    Some(false) => (!matches).then(|| s.clone()),
                    None if matches => Some(Some(new.clone())),
                    None => Some(s.clone()),
                }
            }
            RegOp::Delete { deleted } => match deleted {
                Some(n) if *n != u64::from(s.is_some()) => None,
                _ => Some(None),
            },
        }
    }
}

#[derive(Debug, Clone)]
struct Op {
    record: usize,
    call: u64,
    /// `u64::MAX` for an unknown outcome.
    ret: u64,
    kind: RegOp,
}

fn str_of(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// The register op a record stands for, if it constrains the search.
fn reg_op(r: &Record) -> Option<(RegOp, bool)> {
    let unknown = match r.outcome {
        Outcome::Ok => false,
        Outcome::Unknown => true,
        Outcome::Fail => return None,
    };
    let kind = match r.op {
        OpKind::Put => RegOp::Put(str_of(&r.value)?),
        OpKind::Get if unknown => return None,
        OpKind::Get => RegOp::Get(match r.result.get("value") {
            None | Some(Value::Null) => None,
            Some(v) => Some(str_of(v)?),
        }),
        OpKind::Cas => RegOp::Cas {
            expect: r.value_str("expect")?.to_owned(),
            new: r.value_str("new")?.to_owned(),
            succeeded: if unknown {
                None
            } else {
                Some(r.result.get("succeeded")?.as_bool()?)
            },
        },
        OpKind::Delete => RegOp::Delete {
            deleted: if unknown {
                None
            } else {
                Some(r.result_u64("deleted")?)
            },
        },
        _ => return None,
    };
    Some((kind, unknown))
}

/// Why one key's history is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order exists; `stuck` is the record index of an op that could not
    /// be placed in the deepest attempt.
    NotLinearizable {
        stuck: usize,
    },
    /// The search gave up after `limit` steps.
    Inconclusive {
        limit: u64,
    },
}

/// Checks every key of the KV ops in `records` (guarded writes belong to
/// the lock checker). Malformed KV records are reported, not skipped.
pub fn check(records: &[Record], search_limit: u64) -> Vec<Violation> {
    let mut by_key: BTreeMap<&str, Vec<Op>> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if !matches!(
            r.op,
            OpKind::Put | OpKind::Get | OpKind::Cas | OpKind::Delete
        ) {
            continue;
        }
        if r.outcome == Outcome::Fail || (r.op == OpKind::Get && r.outcome == Outcome::Unknown) {
            continue;
        }
        match reg_op(r) {
            Some((kind, unknown)) => by_key.entry(&r.key).or_default().push(Op {
                record: i,
                call: r.call_ns,
                ret: if unknown { u64::MAX } else { r.return_ns },
                kind,
            }),
            None => out.push(Violation {
                checker: "linearizability",
                key: r.key.clone(),
                message: format!("record {i} is malformed for its op: {r:?}"),
            }),
        }
    }
    for (key, ops) in by_key {
        match search(&ops, search_limit) {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable { stuck } => out.push(Violation {
                checker: "linearizability",
                key: key.to_owned(),
                message: format!(
                    "no linearization of {} ops; cannot place record {stuck}: {:?}",
                    ops.len(),
                    records.get(stuck)
                ),
            }),
            Verdict::Inconclusive { limit } => out.push(Violation {
                checker: "linearizability",
                key: key.to_owned(),
                message: format!("search gave up after {limit} steps over {} ops", ops.len()),
            }),
        }
    }
    out
}

/// Checks one key's ops from an absent register.
pub fn check_key(records: &[Record], search_limit: u64) -> Verdict {
    let ops: Vec<Op> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let (kind, unknown) = reg_op(r)?;
            Some(Op {
                record: i,
                call: r.call_ns,
                ret: if unknown { u64::MAX } else { r.return_ns },
                kind,
            })
        })
        .collect();
    search(&ops, search_limit)
}

const NIL: usize = usize::MAX;

#[derive(Debug, Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    time: u64,
}

/// The search over a doubly linked list of call and return events.
fn search(ops: &[Op], limit: u64) -> Verdict {
    if ops.is_empty() {
        return Verdict::Linearizable;
    }
    let mut events: Vec<Event> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        events.push(Event {
            op: i,
            is_call: true,
            time: op.call,
        });
        events.push(Event {
            op: i,
            is_call: false,
            time: op.ret,
        });
    }
    // Calls sort before returns at the same instant: such ops count as
    // concurrent, the permissive reading of a clock tie.
    events.sort_by_key(|e| (e.time, !e.is_call));
    let n = events.len();
    // Node 0 is the head sentinel; event k is node k + 1.
    let mut next = vec![NIL; n + 1];
    let mut prev = vec![NIL; n + 1];
    for k in 0..=n {
        next[k] = if k < n { k + 1 } else { NIL };
        prev[k] = if k == 0 { NIL } else { k - 1 };
    }
    let mut ret_node = vec![0usize; ops.len()];
    for (k, e) in events.iter().enumerate() {
        if !e.is_call {
            ret_node[e.op] = k + 1;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        let (p, q) = (prev[node], next[node]);
        next[p] = q;
        if q != NIL {
            prev[q] = p;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        let (p, q) = (prev[node], next[node]);
        next[p] = node;
        if q != NIL {
            prev[q] = node;
        }
    };

    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut state: State = None;
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    // (call node, state before it)
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut deepest = (0usize, NIL);
    let mut steps = 0u64;
    let mut node = next[0];
    loop {
        steps += 1;
        if steps > limit {
            return Verdict::Inconclusive { limit };
        }
        if next[0] == NIL {
            return Verdict::Linearizable;
        }
        let e = events[node - 1];
        if e.is_call {
            let op = &ops[e.op];
            let mut placed = false;
            if let Some(s2) = op.kind.step(&state) {
                let mut bits = linearized.clone();
                bits[e.op / 64] |= 1 << (e.op % 64);
                if cache.insert((bits.clone(), s2.clone())) {
                    stack.push((node, std::mem::replace(&mut state, s2)));
                    linearized = bits;
                    unlink(&mut next, &mut prev, node);
                    unlink(&mut next, &mut prev, ret_node[e.op]);
                    node = next[0];
                    placed = true;
                }
            }
            if !placed {
                node = next[node];
            }
        } else {
            if ops[e.op].ret == u64::MAX {
                // Only unknown-outcome returns remain: every op that
                // returned has been placed.
                return Verdict::Linearizable;
            }
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), ops[e.op].record);
            }
            let Some((call_node, s)) = stack.pop() else {
                return Verdict::NotLinearizable { stuck: deepest.1 };
            };
            let op = events[call_node - 1].op;
            state = s;
            linearized[op / 64] &= !(1 << (op % 64));
            relink(&mut next, &mut prev, ret_node[op]);
            relink(&mut next, &mut prev, call_node);
            node = next[call_node];
        }
        if node == NIL && next[0] == NIL {
            return Verdict::Linearizable;
        }
        if node == NIL {
            // Ran past the end without meeting a return: cannot happen, since
            // every remaining call has its return after it.
            return Verdict::NotLinearizable { stuck: deepest.1 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(op: OpKind, value: Value, result: Value, call: u64, ret: u64, outcome: Outcome) -> Record {
        Record {
            client: "c".into(),
            op,
            key: "k".into(),
            value,
            result,
            call_ns: call,
            return_ns: ret,
            outcome,
        }
    }
    fn put(v: &str, call: u64, ret: u64) -> Record {
        r(
            OpKind::Put,
            json!(v),
            json!({"revision": 1}),
            call,
            ret,
            Outcome::Ok,
        )
    }
    fn put_unknown(v: &str, call: u64, ret: u64) -> Record {
        r(
            OpKind::Put,
            json!(v),
            Value::Null,
            call,
            ret,
            Outcome::Unknown,
        )
    }
    fn get(v: Option<&str>, call: u64, ret: u64) -> Record {
        r(
            OpKind::Get,
            Value::Null,
            json!({"value": v, "revision": 1}),
            call,
            ret,
            Outcome::Ok,
        )
    }
    fn cas(expect: &str, new: &str, ok: bool, call: u64, ret: u64) -> Record {
        r(
            OpKind::Cas,
            json!({"expect": expect, "new": new}),
            json!({"succeeded": ok}),
            call,
            ret,
            Outcome::Ok,
        )
    }
    fn del(n: u64, call: u64, ret: u64) -> Record {
        r(
            OpKind::Delete,
            Value::Null,
            json!({"deleted": n}),
            call,
            ret,
            Outcome::Ok,
        )
    }
    const LIMIT: u64 = 1_000_000;

    #[test]
    fn sequential_and_concurrent_histories_pass() {
        let h = vec![
            put("a", 0, 10),
            get(Some("a"), 20, 30),
            cas("a", "b", true, 40, 50),
            get(Some("b"), 60, 70),
            del(1, 80, 90),
            get(None, 100, 110),
        ];
        assert_eq!(check_key(&h, LIMIT), Verdict::Linearizable);
        // A read concurrent with a write may see either value.
        let h = vec![
            put("a", 0, 10),
            put("b", 20, 60),
            get(Some("a"), 30, 40),
            get(Some("b"), 45, 50),
        ];
        assert_eq!(check_key(&h, LIMIT), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_after_a_completed_write_is_caught() {
        let h = vec![put("a", 0, 10), put("b", 20, 30), get(Some("a"), 40, 50)];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { stuck: 2 }
        ));
    }

    #[test]
    fn lost_acknowledged_write_is_caught() {
        // Durability seen as linearizability: the write returned, then a read
        // much later sees the key absent.
        let h = vec![put("a", 0, 10), get(None, 1_000, 1_010)];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn reads_going_back_in_time_are_caught() {
        let h = vec![
            put("a", 0, 10),
            put("b", 0, 10),
            get(Some("b"), 20, 30),
            get(Some("a"), 40, 50),
        ];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { .. }
        ));
        // Either order of the concurrent writes is fine, as long as reads agree.
        let h = vec![
            put("a", 0, 10),
            put("b", 0, 10),
            get(Some("a"), 20, 30),
            get(Some("a"), 40, 50),
        ];
        assert_eq!(check_key(&h, LIMIT), Verdict::Linearizable);
        // A read concurrent with the second write may flip once, not back.
        let h = vec![
            put("a", 0, 10),
            put("b", 15, 100),
            get(Some("a"), 20, 30),
            get(Some("b"), 40, 50),
            get(Some("a"), 60, 70),
        ];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn wrong_cas_results_are_caught() {
        let h = vec![put("a", 0, 10), cas("a", "b", false, 20, 30)];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { .. }
        ));
        let h = vec![put("a", 0, 10), cas("x", "b", true, 20, 30)];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { .. }
        ));
        // Two cas from the same expected value cannot both succeed.
        let h = vec![
            put("a", 0, 10),
            cas("a", "b", true, 20, 40),
            cas("a", "c", true, 25, 45),
        ];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { .. }
        ));
        let h = vec![put("a", 0, 10), del(0, 20, 30)];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn unknown_writes_may_apply_late_or_never() {
        // Applied long after its call, after other completed ops.
        let h = vec![
            put_unknown("x", 0, 5),
            put("a", 10, 20),
            get(Some("a"), 30, 40),
            get(Some("x"), 50, 60),
        ];
        assert_eq!(check_key(&h, LIMIT), Verdict::Linearizable);
        // Never applied.
        let h = vec![put_unknown("x", 0, 5), get(None, 50, 60)];
        assert_eq!(check_key(&h, LIMIT), Verdict::Linearizable);
        // But applied at most once: x, then a, then x again is impossible.
        let h = vec![
            put_unknown("x", 0, 5),
            get(Some("x"), 10, 20),
            put("a", 30, 40),
            get(Some("x"), 50, 60),
        ];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { .. }
        ));
        // A value nobody wrote.
        let h = vec![put_unknown("x", 0, 5), get(Some("y"), 10, 20)];
        assert!(matches!(
            check_key(&h, LIMIT),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn failed_writes_must_not_show_up() {
        let failed = r(OpKind::Put, json!("x"), Value::Null, 0, 5, Outcome::Fail);
        let h = vec![failed, get(Some("x"), 10, 20)];
        let v = check(&h, LIMIT);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].checker, "linearizability");
    }

    #[test]
    fn keys_are_checked_separately_and_malformed_records_reported() {
        let mut a = put("a", 0, 10);
        a.key = "k1".into();
        let mut b = get(Some("a"), 20, 30);
        b.key = "k2".into();
        let v = check(&[a, b], LIMIT);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].key, "k2");
        let bad = r(OpKind::Cas, json!("oops"), json!({}), 0, 1, Outcome::Ok);
        let v = check(&[bad], LIMIT);
        assert!(v[0].message.contains("malformed"), "{v:?}");
    }

    #[test]
    fn search_limit_is_reported_as_inconclusive() {
        let mut h = Vec::new();
        for i in 0..12 {
            h.push(put(&format!("v{i}"), 0, 1000));
        }
        h.push(get(Some("nobody"), 2000, 2010));
        assert_eq!(check_key(&h, 50), Verdict::Inconclusive { limit: 50 });
    }

    #[test]
    fn many_concurrent_ops_finish_quickly() {
        // 300 ops in overlapping windows of five: the memo keeps this small.
        let mut h = Vec::new();
        for i in 0..300u64 {
            let t = i * 10;
            if i % 3 == 0 {
                h.push(put(&format!("v{i}"), t, t + 45));
            } else {
                let last = (i / 3) * 3;
                h.push(get(Some(&format!("v{last}")), t + 46, t + 47));
            }
        }
        assert_eq!(check_key(&h, LIMIT), Verdict::Linearizable);
    }
}
