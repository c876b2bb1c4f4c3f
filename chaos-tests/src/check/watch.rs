//! Watch delivery, per watcher (a client's sequence of `watch` records):
//! revisions strictly increase (no duplicates, no reordering, also across
//! the stream's reconnects); every event matches a write of the history;
//! and every committed write on a watched key at or after the start
//! revision is delivered — up to the last revision delivered when the
//! stream ended with an error, or entirely otherwise.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::Violation;
use crate::history::{OpKind, Outcome, Record};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Ev {
    revision: u64,
    kind: String,
    key: String,
    /// Empty for deletes.
    value: String,
}

/// What a write put into the event log, if it wrote anything.
fn write_event(r: &Record) -> Option<(String, String)> {
    match r.op {
        OpKind::Put => Some(("put".into(), r.value.as_str()?.to_owned())),
        OpKind::GuardedPut => Some(("put".into(), r.value_str("value")?.to_owned())),
        OpKind::Cas => {
            if r.outcome == Outcome::Ok
                && r.result.get("succeeded").and_then(Value::as_bool) != Some(true)
            {
                return None;
            }
            Some(("put".into(), r.value_str("new")?.to_owned()))
        }
        OpKind::Delete => {
            if r.outcome == Outcome::Ok && r.result_u64("deleted") == Some(0) {
                return None;
            }
            Some(("delete".into(), String::new()))
        }
        _ => None,
    }
}

fn watched(key: &str, target: &str, prefix: bool) -> bool {
    if prefix {
        key.starts_with(target)
    } else {
        key == target
    }
}

fn v(key: &str, message: String) -> Violation {
    Violation {
        checker: "watch",
        key: key.to_owned(),
        message,
    }
}

pub fn check(records: &[Record]) -> Vec<Violation> {
    // Committed events by revision, and what unknown writes might have done.
    let mut committed: BTreeMap<u64, Vec<Ev>> = BTreeMap::new();
    let mut maybe: HashSet<(String, String, String)> = HashSet::new();
    for r in records {
        let Some((kind, value)) = write_event(r) else {
            continue;
        };
        match r.outcome {
            Outcome::Ok => {
                if let Some(revision) = r.revision() {
                    committed.entry(revision).or_default().push(Ev {
                        revision,
                        kind,
                        key: r.key.clone(),
                        value,
                    });
                }
            }
            Outcome::Unknown => {
                maybe.insert((kind, r.key.clone(), value));
            }
            Outcome::Fail => {}
        }
    }

    let mut watchers: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.op == OpKind::Watch) {
        watchers.entry(&r.client).or_default().push(r);
    }
    let mut out = Vec::new();
    for (client, recs) in watchers {
        let first = recs[0];
        let target = first.key.as_str();
        let prefix = first
            .value
            .get("prefix")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let start = first.value_u64("start_revision").unwrap_or(1);
        let mut last = 0u64;
        // Only a stream that ended on an error is excused from delivering
        // what came after; one that was reopened owes everything.
        let ended_early = recs.last().is_some_and(|r| r.outcome != Outcome::Ok);
        let mut delivered: BTreeMap<u64, Vec<Ev>> = BTreeMap::new();
        for r in recs {
            if r.outcome != Outcome::Ok {
                continue;
            }
            let Some(rev) = r.revision() else {
                out.push(v(
                    target,
                    format!("{client}: watch record without revision: {r:?}"),
                ));
                continue;
            };
            if rev <= last {
                let what = if rev == last {
                    "duplicate"
                } else {
                    "out of order"
                };
                out.push(v(
                    target,
                    format!("{client}: {what} revision {rev} after {last}"),
                ));
                continue;
            }
            if rev < start {
                out.push(v(
                    target,
                    format!("{client}: revision {rev} before the start revision {start}"),
                ));
            }
            last = rev;
            let events = r
                .result
                .get("events")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if events.is_empty() {
                out.push(v(
                    target,
                    format!("{client}: revision {rev} delivered with no events"),
                ));
            }
            for e in events {
                let ev = Ev {
                    revision: rev,
                    kind: e
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    key: e
                        .get("key")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    value: e
                        .get("value")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                };
                if !watched(&ev.key, target, prefix) {
                    out.push(v(
                        target,
                        format!("{client}: event for unwatched key {:?} at {rev}", ev.key),
                    ));
                }
                delivered.entry(rev).or_default().push(ev);
            }
        }
        // Every delivered event was written.
        for (rev, evs) in &delivered {
            for ev in evs {
                let known = committed.get(rev).is_some_and(|c| c.contains(ev));
                let possible = !committed
                    .get(rev)
                    .is_some_and(|c| c.iter().any(|c| c.key == ev.key))
                    && (maybe.contains(&(ev.kind.clone(), ev.key.clone(), ev.value.clone()))
                        || (ev.kind == "delete"
                            && maybe
                                .iter()
                                .any(|(k, key, _)| k == "delete" && *key == ev.key)));
                if !known && !possible {
                    out.push(v(
                        target,
                        format!("{client}: event {ev:?} matches no write in the history"),
                    ));
                }
            }
        }
        // Every committed event in range was delivered.
        let end = if ended_early { last } else { u64::MAX };
        for (rev, evs) in committed.range(start..) {
            if *rev > end {
                break;
            }
            for ev in evs.iter().filter(|e| watched(&e.key, target, prefix)) {
                if !delivered.get(rev).is_some_and(|d| d.contains(ev)) {
                    out.push(v(target, format!("{client}: committed event {ev:?} was not delivered (last delivered {last})")));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(key: &str, value: &str, rev: u64) -> Record {
        Record {
            client: "w".into(),
            op: OpKind::Put,
            key: key.into(),
            value: json!(value),
            result: json!({"revision": rev}),
            call_ns: rev * 10,
            return_ns: rev * 10 + 1,
            outcome: Outcome::Ok,
        }
    }
    fn seen(rev: u64, events: &[(&str, &str, &str)]) -> Record {
        let events: Vec<Value> = events
            .iter()
            .map(|(k, key, v)| json!({"kind": k, "key": key, "value": v}))
            .collect();
        Record {
            client: "watcher-1".into(),
            op: OpKind::Watch,
            key: "p/".into(),
            value: json!({"prefix": true, "start_revision": 2}),
            result: json!({"revision": rev, "events": events}),
            call_ns: rev * 10 + 2,
            return_ns: rev * 10 + 3,
            outcome: Outcome::Ok,
        }
    }

    fn base() -> Vec<Record> {
        vec![
            put("p/a", "1", 1),
            put("p/a", "2", 2),
            put("other", "x", 3),
            put("p/b", "3", 4),
        ]
    }

    #[test]
    fn complete_ordered_delivery_passes() {
        let mut h = base();
        h.push(seen(2, &[("put", "p/a", "2")]));
        h.push(seen(4, &[("put", "p/b", "3")]));
        assert_eq!(check(&h), vec![]);
    }

    #[test]
    fn duplicates_gaps_and_reordering_are_caught() {
        let mut h = base();
        h.push(seen(2, &[("put", "p/a", "2")]));
        h.push(seen(2, &[("put", "p/a", "2")]));
        h.push(seen(4, &[("put", "p/b", "3")]));
        assert!(check(&h).iter().any(|x| x.message.contains("duplicate")));

        let mut h = base();
        h.push(seen(4, &[("put", "p/b", "3")]));
        let v = check(&h);
        assert!(
            v.iter().any(|x| x.message.contains("not delivered")),
            "{v:?}"
        );

        let mut h = base();
        h.push(seen(4, &[("put", "p/b", "3")]));
        h.push(seen(2, &[("put", "p/a", "2")]));
        assert!(check(&h).iter().any(|x| x.message.contains("out of order")));
    }

    #[test]
    fn phantom_and_wrong_events_are_caught() {
        let mut h = base();
        h.push(seen(2, &[("put", "p/a", "WRONG")]));
        h.push(seen(4, &[("put", "p/b", "3")]));
        assert!(check(&h)
            .iter()
            .any(|x| x.message.contains("matches no write")));
        // An unknown-outcome write may show up.
        let mut h = base();
        let mut u = put("p/c", "9", 0);
        u.outcome = Outcome::Unknown;
        u.result = Value::Null;
        h.push(u);
        h.push(seen(2, &[("put", "p/a", "2")]));
        h.push(seen(4, &[("put", "p/b", "3")]));
        h.push(seen(5, &[("put", "p/c", "9")]));
        assert_eq!(check(&h), vec![]);
    }

    #[test]
    fn a_stream_that_ended_early_owes_only_what_came_before() {
        let mut h = base();
        h.push(seen(2, &[("put", "p/a", "2")]));
        let mut end = seen(0, &[]);
        end.outcome = Outcome::Fail;
        end.result = json!({"error": "compacted"});
        h.push(end);
        assert_eq!(check(&h), vec![]);
    }
}
