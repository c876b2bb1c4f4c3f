//! Lock safety from the client's side, using the contract that a fencing
//! token is the Raft log index of the grant:
//!
//! - grants are unique: two acquires that returned different sessions never
//!   share a token;
//! - tokens increase in real time: an acquire that returned before another
//!   was called got the smaller token;
//! - a guarded write accepted at revision `r` with token `t` means no other
//!   grant `t'` with `t < t' < r` exists (the newer holder's grant would have
//!   made `t` stale), and accepted guarded writes in revision order never
//!   see their token go down.

use std::collections::{BTreeMap, HashMap};

use super::Violation;
use crate::history::{OpKind, Outcome, Record};

#[derive(Debug, Clone)]
struct Grant {
    record: usize,
    session: u64,
    token: u64,
    call: u64,
    ret: u64,
}

fn v(key: &str, message: String) -> Violation {
    Violation {
        checker: "lock",
        key: key.to_owned(),
        message,
    }
}

pub fn check(records: &[Record]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut grants: BTreeMap<&str, Vec<Grant>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.op != OpKind::Acquire || r.outcome != Outcome::Ok {
            continue;
        }
        // A try-acquire that found the lock taken granted nothing.
        if r.result.get("acquired").and_then(|a| a.as_bool()) == Some(false) {
            continue;
        }
        match (r.value_u64("session"), r.result_u64("token")) {
            (Some(session), Some(token)) if token > 0 => {
                grants.entry(&r.key).or_default().push(Grant {
                    record: i,
                    session,
                    token,
                    call: r.call_ns,
                    ret: r.return_ns,
                })
            }
            _ => out.push(v(
                &r.key,
                format!("record {i}: acquire without session or token: {r:?}"),
            )),
        }
    }

    for (lock, gs) in &grants {
        let mut owner: HashMap<u64, u64> = HashMap::new();
        for g in gs {
            if let Some(prev) = owner.insert(g.token, g.session) {
                if prev != g.session {
                    out.push(v(
                        lock,
                        format!(
                            "token {} granted to sessions {prev} and {} (record {})",
                            g.token, g.session, g.record
                        ),
                    ));
                }
            }
        }
        for a in gs {
            for b in gs {
                if a.ret < b.call && a.token > b.token {
                    out.push(v(lock, format!(
                        "token went down: record {} got {} and returned before record {} was called, which got {}",
                        a.record, a.token, b.record, b.token
                    )));
                }
            }
        }
    }

    // Guarded writes, per lock.
    let mut writes: BTreeMap<&str, Vec<(u64, u64, usize)>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.op != OpKind::GuardedPut || r.outcome != Outcome::Ok {
            continue;
        }
        match (r.value_str("lock"), r.value_u64("token"), r.revision()) {
            (Some(lock), Some(token), Some(rev)) => {
                writes.entry(lock).or_default().push((rev, token, i))
            }
            _ => out.push(v(
                &r.key,
                format!("record {i}: guarded_put without lock, token or revision: {r:?}"),
            )),
        }
    }
    for (lock, ws) in writes.iter_mut() {
        ws.sort();
        for pair in ws.windows(2) {
            let ((r1, t1, i1), (r2, t2, i2)) = (pair[0], pair[1]);
            if r1 == r2 {
                out.push(v(
                    lock,
                    format!("records {i1} and {i2} both accepted at revision {r1}"),
                ));
            }
            if t2 < t1 {
                out.push(v(lock, format!(
                    "stale write accepted: record {i2} with token {t2} at revision {r2} after record {i1} with token {t1} at revision {r1}"
                )));
            }
        }
        let tokens: Vec<u64> = grants
            .get(lock)
            .map(|g| g.iter().map(|g| g.token).collect())
            .unwrap_or_default();
        for (rev, token, i) in ws.iter() {
            if *rev <= *token {
                out.push(v(
                    lock,
                    format!(
                        "record {i}: write at revision {rev} under token {token} from the future"
                    ),
                ));
            }
            if let Some(newer) = tokens.iter().find(|t| **t > *token && **t < *rev) {
                out.push(v(lock, format!(
                    "overlapping holders: record {i} with token {token} accepted at revision {rev}, after token {newer} was granted"
                )));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn acquire(session: u64, token: u64, call: u64, ret: u64) -> Record {
        Record {
            client: format!("s{session}"),
            op: OpKind::Acquire,
            key: "L".into(),
            value: json!({"session": session}),
            result: json!({"token": token, "revision": token}),
            call_ns: call,
            return_ns: ret,
            outcome: Outcome::Ok,
        }
    }
    fn gput(token: u64, rev: u64, outcome: Outcome) -> Record {
        Record {
            client: format!("t{token}"),
            op: OpKind::GuardedPut,
            key: "L/data".into(),
            value: json!({"lock": "L", "token": token, "value": format!("w{rev}")}),
            result: if outcome == Outcome::Ok {
                json!({"revision": rev})
            } else {
                Value::Null
            },
            call_ns: rev * 10,
            return_ns: rev * 10 + 5,
            outcome,
        }
    }

    #[test]
    fn a_clean_handover_passes() {
        let h = vec![
            acquire(1, 5, 0, 10),
            gput(5, 6, Outcome::Ok),
            gput(5, 7, Outcome::Ok),
            acquire(2, 9, 20, 100),
            gput(9, 10, Outcome::Ok),
            // The old holder's late write is rejected: fine.
            gput(5, 11, Outcome::Fail),
        ];
        assert_eq!(check(&h), vec![]);
    }

    #[test]
    fn a_stale_holder_write_after_a_newer_grant_is_caught() {
        let h = vec![
            acquire(1, 5, 0, 10),
            acquire(2, 9, 20, 100),
            gput(9, 10, Outcome::Ok),
            gput(5, 11, Outcome::Ok),
        ];
        let v = check(&h);
        assert!(
            v.iter().any(|x| x.message.contains("stale write accepted")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|x| x.message.contains("overlapping holders")),
            "{v:?}"
        );
    }

    #[test]
    fn a_write_accepted_after_a_newer_grant_is_caught_even_alone() {
        // The new holder never wrote, but its grant at 9 makes token 5 stale at 12.
        let h = vec![
            acquire(1, 5, 0, 10),
            acquire(2, 9, 20, 100),
            gput(5, 12, Outcome::Ok),
        ];
        let v = check(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("overlapping holders"));
    }

    #[test]
    fn duplicate_and_decreasing_tokens_are_caught() {
        let v = check(&[acquire(1, 5, 0, 10), acquire(2, 5, 20, 30)]);
        assert!(
            v.iter().any(|x| x.message.contains("granted to sessions")),
            "{v:?}"
        );
        let v = check(&[acquire(1, 8, 0, 10), acquire(2, 6, 20, 30)]);
        assert!(
            v.iter().any(|x| x.message.contains("token went down")),
            "{v:?}"
        );
        // Concurrent acquires may be granted in either order.
        assert_eq!(
            check(&[acquire(1, 8, 0, 30), acquire(2, 6, 20, 40)]),
            vec![]
        );
        // Re-acquire by the holder returns the same token; after a release, a newer one.
        assert_eq!(
            check(&[
                acquire(1, 8, 0, 10),
                acquire(1, 8, 20, 30),
                acquire(1, 12, 40, 50)
            ]),
            vec![]
        );
    }

    #[test]
    fn malformed_records_are_reported() {
        let mut a = acquire(1, 5, 0, 10);
        a.result = json!({});
        assert_eq!(check(&[a]).len(), 1);
    }
}
