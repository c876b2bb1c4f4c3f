//! KV commands: put (with session binding and fencing guard), delete, txn.

use std::sync::Arc;

use crate::kv::NewVersion;
use crate::machine::{invalid, Effects, StateMachine};
use crate::txn::{check_txn, evaluate};
use crate::types::{
    DeleteOp, Event, EventKind, KeyValue, PutOp, Reply, SmError, TxnOp, TxnStep, TxnStepReply,
};

impl StateMachine {
    /// Everything that can refuse a put, checked before anything changes.
    fn check_put(&self, put: &PutOp) -> Result<(), SmError> {
        if put.key.is_empty() {
            return Err(invalid("key is empty"));
        }
        if put.session_id != 0 {
            self.sessions.check_live(put.session_id)?;
        }
        if let Some(guard) = &put.guard {
            if guard.lock.is_empty() {
                return Err(invalid("lock name is empty"));
            }
            let current = self.locks.current_token(&guard.lock);
            if guard.token < current {
                return Err(SmError::StaleFencingToken {
                    lock: guard.lock.clone(),
                    token: guard.token,
                    current,
                });
            }
        }
        Ok(())
    }

    /// Writes a checked put; returns the value it replaced if the put asked
    /// for it (`prev_kv`).
    fn write_put(&mut self, index: u64, put: &PutOp, fx: &mut Effects) -> Option<KeyValue> {
        let (replaced, kv) = self.kv.put(NewVersion {
            key: &put.key,
            value: &put.value,
            session_id: put.session_id,
            revision: index,
            want_prev: put.prev_kv,
        });
        let old_session = replaced.as_ref().map_or(0, |r| r.session_id);
        if old_session != put.session_id && old_session != 0 {
            if let Some(s) = self.sessions.get_mut(old_session) {
                s.keys.remove(&put.key);
            }
        }
        if put.session_id != 0 {
            if let Some(s) = self.sessions.get_mut(put.session_id) {
                s.keys.insert(put.key.clone());
            }
        }
        self.record(
            Event {
                kind: EventKind::Put,
                kv: Arc::new(kv),
            },
            fx,
        );
        replaced.and_then(|r| r.kv)
    }

    pub(crate) fn put(
        &mut self,
        index: u64,
        put: &PutOp,
        fx: &mut Effects,
    ) -> Result<Reply, SmError> {
        self.check_put(put)?;
        Ok(Reply::Put {
            prev_kv: self.write_put(index, put, fx),
        })
    }

    /// Deletes a key or prefix; returns (count, previous values if asked).
    fn write_delete(
        &mut self,
        index: u64,
        del: &DeleteOp,
        fx: &mut Effects,
    ) -> (u64, Vec<KeyValue>) {
        let keys = if del.prefix {
            self.kv.live_keys_with_prefix(&del.key)
        } else {
            vec![del.key.clone()]
        };
        let mut deleted = 0;
        let mut prev_kvs = Vec::new();
        for key in keys {
            if let Some(prev) = self.delete_key(&key, index, fx) {
                deleted += 1;
                if del.prev_kv {
                    prev_kvs.push(prev);
                }
            }
        }
        (deleted, prev_kvs)
    }

    pub(crate) fn delete(
        &mut self,
        index: u64,
        del: &DeleteOp,
        fx: &mut Effects,
    ) -> Result<Reply, SmError> {
        if del.key.is_empty() {
            return Err(invalid("key is empty"));
        }
        let (deleted, prev_kvs) = self.write_delete(index, del, fx);
        Ok(Reply::Deleted { deleted, prev_kvs })
    }

    pub(crate) fn txn(
        &mut self,
        index: u64,
        txn: &TxnOp,
        fx: &mut Effects,
    ) -> Result<Reply, SmError> {
        check_txn(txn)?;
        let succeeded = txn
            .compare
            .iter()
            .all(|c| evaluate(c, &self.kv, &self.locks));
        let steps = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        // Refuse before the first write so a refused txn changes nothing.
        for step in steps {
            if let TxnStep::Put(put) = step {
                self.check_put(put)?;
            }
        }
        let mut responses = Vec::with_capacity(steps.len());
        for step in steps {
            responses.push(match step {
                TxnStep::Put(put) => TxnStepReply::Put {
                    prev_kv: self.write_put(index, put, fx),
                },
                TxnStep::Delete(del) => {
                    let (deleted, prev_kvs) = self.write_delete(index, del, fx);
                    TxnStepReply::Deleted { deleted, prev_kvs }
                }
                TxnStep::Range(range) => {
                    // The newest state, so the txn's earlier writes are visible.
                    let r = self
                        .kv
                        .range_latest(&range.prefix, range.limit, range.keys_only);
                    TxnStepReply::Range {
                        kvs: r.kvs,
                        more: r.more,
                        count: r.count,
                    }
                }
            });
        }
        Ok(Reply::Txn {
            succeeded,
            responses,
        })
    }
}
