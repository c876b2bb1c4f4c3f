//! Static checks of a transaction and evaluation of its compares.

use std::cmp::Ordering;

use crate::kv::KvStore;
use crate::locks::Locks;
use crate::machine::invalid;
use crate::types::{Compare, CompareResult, CompareTarget, SmError, TxnOp, TxnStep};

/// The keys one step writes: one exact key, or every key under a prefix.
#[derive(Debug, Clone, Copy)]
enum Writes<'a> {
    Key(&'a [u8]),
    Prefix(&'a [u8]),
}

impl Writes<'_> {
    fn overlaps(&self, other: &Writes<'_>) -> bool {
        match (*self, *other) {
            (Writes::Key(a), Writes::Key(b)) => a == b,
            (Writes::Key(k), Writes::Prefix(p)) | (Writes::Prefix(p), Writes::Key(k)) => {
                k.starts_with(p)
            }
            (Writes::Prefix(a), Writes::Prefix(b)) => a.starts_with(b) || b.starts_with(a),
        }
    }
}

fn step_writes(step: &TxnStep) -> Result<Option<Writes<'_>>, SmError> {
    match step {
        TxnStep::Put(put) if put.key.is_empty() => Err(invalid("key is empty")),
        TxnStep::Put(put) => Ok(Some(Writes::Key(&put.key))),
        TxnStep::Delete(del) if del.key.is_empty() => Err(invalid("key is empty")),
        TxnStep::Delete(del) if del.prefix => Ok(Some(Writes::Prefix(&del.key))),
        TxnStep::Delete(del) => Ok(Some(Writes::Key(&del.key))),
        TxnStep::Range(_) => Ok(None),
    }
}

/// Every write in one branch has a key and no two writes touch the same
/// key: a txn writes each key at most once at its single revision.
fn check_branch(steps: &[TxnStep]) -> Result<(), SmError> {
    let mut seen: Vec<Writes<'_>> = Vec::new();
    for step in steps {
        if let Some(w) = step_writes(step)? {
            if seen.iter().any(|s| s.overlaps(&w)) {
                return Err(invalid("txn writes the same key more than once"));
            }
            seen.push(w);
        }
    }
    Ok(())
}

pub(crate) fn check_txn(txn: &TxnOp) -> Result<(), SmError> {
    for c in &txn.compare {
        if c.key.is_empty() {
            return Err(invalid("key is empty"));
        }
        if c.target == CompareTarget::LockToken && std::str::from_utf8(&c.key).is_err() {
            return Err(invalid("lock name is not valid UTF-8"));
        }
    }
    check_branch(&txn.success)?;
    check_branch(&txn.failure)
}

fn holds(ord: Ordering, result: CompareResult) -> bool {
    match result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}

/// A compare against the current state; a missing key has an empty value
/// and zero version and revisions.
pub(crate) fn evaluate(c: &Compare, kv: &KvStore, locks: &Locks) -> bool {
    if c.target == CompareTarget::LockToken {
        let name = std::str::from_utf8(&c.key).unwrap_or_default();
        return holds(locks.current_token(name).cmp(&c.number), c.result);
    }
    let current = kv.latest(&c.key);
    let ord = match c.target {
        CompareTarget::Value => {
            let value: &[u8] = current.as_ref().map_or(&[], |kv| &kv.value);
            value.cmp(c.value.as_slice())
        }
        CompareTarget::Version => current.map_or(0, |kv| kv.version).cmp(&c.number),
        CompareTarget::ModRevision => current.map_or(0, |kv| kv.mod_revision).cmp(&c.number),
        CompareTarget::CreateRevision => current.map_or(0, |kv| kv.create_revision).cmp(&c.number),
        CompareTarget::LockToken => Ordering::Equal,
    };
    holds(ord, c.result)
}
