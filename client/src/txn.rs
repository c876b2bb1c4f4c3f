//! A small builder for transactions: compares, then the ops to run when all hold (`and_then`)
//! or when any fails (`or_else`).

use aegis_proto::v1 as pb;

/// Options of a put beyond key and value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Bind the key to a session: it is deleted when the session expires.
    pub session: Option<u64>,
    /// Return the previous version of the key.
    pub prev_kv: bool,
    /// Fail with `StaleFencingToken` when `token` is older than `lock`'s current token.
    pub guard: Option<(String, u64)>,
}

impl PutOptions {
    pub fn session(mut self, id: u64) -> Self {
        self.session = Some(id);
        self
    }
    pub fn prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }
    pub fn guard(mut self, lock: impl Into<String>, token: u64) -> Self {
        self.guard = Some((lock.into(), token));
        self
    }

    pub(crate) fn to_request(&self, key: Vec<u8>, value: Vec<u8>) -> pb::PutRequest {
        pb::PutRequest {
            key,
            value,
            session_id: self.session.unwrap_or(0),
            prev_kv: self.prev_kv,
            guard: self.guard.as_ref().map(|(lock, token)| pb::FencingGuard {
                lock: lock.clone(),
                token: *token,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Greater,
    Less,
}

impl CompareOp {
    fn to_pb(self) -> pb::compare::Result {
        match self {
            CompareOp::Equal => pb::compare::Result::Equal,
            CompareOp::NotEqual => pb::compare::Result::NotEqual,
            CompareOp::Greater => pb::compare::Result::Greater,
            CompareOp::Less => pb::compare::Result::Less,
        }
    }
}

/// One condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare(pub(crate) pb::Compare);

impl Compare {
    fn numeric(key: Vec<u8>, target: pb::compare::Target, op: CompareOp, n: u64) -> Self {
        Compare(pb::Compare {
            key,
            target: target as i32,
            result: op.to_pb() as i32,
            value: Vec::new(),
            number: n,
        })
    }
    pub fn value(key: impl Into<Vec<u8>>, op: CompareOp, value: impl Into<Vec<u8>>) -> Self {
        Compare(pb::Compare {
            key: key.into(),
            target: pb::compare::Target::Value as i32,
            result: op.to_pb() as i32,
            value: value.into(),
            number: 0,
        })
    }
    /// Version 0 means "the key does not exist".
    pub fn version(key: impl Into<Vec<u8>>, op: CompareOp, version: u64) -> Self {
        Self::numeric(key.into(), pb::compare::Target::Version, op, version)
    }
    pub fn mod_revision(key: impl Into<Vec<u8>>, op: CompareOp, rev: u64) -> Self {
        Self::numeric(key.into(), pb::compare::Target::ModRevision, op, rev)
    }
    pub fn create_revision(key: impl Into<Vec<u8>>, op: CompareOp, rev: u64) -> Self {
        Self::numeric(key.into(), pb::compare::Target::CreateRevision, op, rev)
    }
    /// Compares the current token of lock `lock`.
    pub fn lock_token(lock: impl Into<String>, op: CompareOp, token: u64) -> Self {
        Self::numeric(
            lock.into().into_bytes(),
            pb::compare::Target::LockToken,
            op,
            token,
        )
    }
}

/// One operation of a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOp(pub(crate) pb::txn_op::Op);

impl TxnOp {
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::put_with(key, value, &PutOptions::default())
    }
    pub fn put_with(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, o: &PutOptions) -> Self {
        TxnOp(pb::txn_op::Op::Put(o.to_request(key.into(), value.into())))
    }
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        TxnOp(pb::txn_op::Op::Delete(pb::DeleteRequest {
            key: key.into(),
            prefix: false,
            prev_kv: false,
        }))
    }
    pub fn delete_prefix(prefix: impl Into<Vec<u8>>) -> Self {
        TxnOp(pb::txn_op::Op::Delete(pb::DeleteRequest {
            key: prefix.into(),
            prefix: true,
            prev_kv: false,
        }))
    }
    /// Reads every key under `prefix` (an exact key is a prefix of itself; use `limit` 1).
    pub fn range(prefix: impl Into<Vec<u8>>, limit: u32) -> Self {
        TxnOp(pb::txn_op::Op::Range(pb::RangeRequest {
            prefix: prefix.into(),
            limit,
            revision: 0,
            serializable: false,
            keys_only: false,
        }))
    }
    fn is_read(&self) -> bool {
        matches!(self.0, pb::txn_op::Op::Range(_))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    compares: Vec<Compare>,
    success: Vec<TxnOp>,
    failure: Vec<TxnOp>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn when(mut self, c: Compare) -> Self {
        self.compares.push(c);
        self
    }
    pub fn and_then(mut self, op: TxnOp) -> Self {
        self.success.push(op);
        self
    }
    pub fn or_else(mut self, op: TxnOp) -> Self {
        self.failure.push(op);
        self
    }
    pub fn compares(&self) -> &[Compare] {
        &self.compares
    }
    pub fn success_ops(&self) -> &[TxnOp] {
        &self.success
    }
    pub fn failure_ops(&self) -> &[TxnOp] {
        &self.failure
    }

    /// A transaction with no writes in either branch can be retried freely.
    pub fn is_read_only(&self) -> bool {
        self.success.iter().chain(&self.failure).all(TxnOp::is_read)
    }

    pub(crate) fn to_request(&self) -> pb::TxnRequest {
        let ops = |v: &[TxnOp]| {
            v.iter()
                .map(|o| pb::TxnOp {
                    op: Some(o.0.clone()),
                })
                .collect()
        };
        pb::TxnRequest {
            compare: self.compares.iter().map(|c| c.0.clone()).collect(),
            success: ops(&self.success),
            failure: ops(&self.failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_produces_request() {
        let t = Txn::new()
            .when(Compare::version("k", CompareOp::Equal, 0))
            .when(Compare::lock_token("L", CompareOp::Less, 9))
            .and_then(TxnOp::put_with("k", "v", &PutOptions::default().session(5)))
            .or_else(TxnOp::range("k", 1));
        let r = t.to_request();
        assert_eq!(r.compare.len(), 2);
        assert_eq!(r.compare[1].target, pb::compare::Target::LockToken as i32);
        assert_eq!(r.compare[1].result, pb::compare::Result::Less as i32);
        assert_eq!(r.compare[1].key, b"L");
        assert_eq!(r.compare[1].number, 9);
        match &r.success[0].op {
            Some(pb::txn_op::Op::Put(p)) => {
                assert_eq!(p.session_id, 5);
                assert_eq!(p.value, b"v");
            }
            other => panic!("{other:?}"),
        }
        assert!(!t.is_read_only());
        assert!(Txn::new().or_else(TxnOp::range("a", 0)).is_read_only());
    }

    #[test]
    fn put_options_guard() {
        let r = PutOptions::default()
            .guard("L", 7)
            .prev_kv()
            .to_request(b"k".to_vec(), b"v".to_vec());
        assert!(r.prev_kv);
        assert_eq!(
            r.guard,
            Some(pb::FencingGuard {
                lock: "L".into(),
                token: 7
            })
        );
        assert_eq!(r.session_id, 0);
    }
}
