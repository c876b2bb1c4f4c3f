//! Between wire messages and state-machine types.

use aegis_proto::v1 as pb;
use aegis_state_machine as sm;

pub fn kv(k: &sm::KeyValue) -> pb::KeyValue {
    pb::KeyValue {
        key: k.key.clone(),
        value: k.value.to_vec(),
        create_revision: k.create_revision,
        mod_revision: k.mod_revision,
        version: k.version,
        session_id: k.session_id,
    }
}

pub fn event(e: &sm::Event) -> pb::Event {
    pb::Event {
        r#type: match e.kind {
            sm::EventKind::Put => pb::event::EventType::Put as i32,
            sm::EventKind::Delete => pb::event::EventType::Delete as i32,
        },
        kv: Some(kv(&e.kv)),
    }
}

pub fn put_op(p: pb::PutRequest) -> sm::PutOp {
    sm::PutOp {
        key: p.key,
        value: p.value,
        session_id: p.session_id,
        prev_kv: p.prev_kv,
        guard: p.guard.map(|g| sm::FencingGuard {
            lock: g.lock,
            token: g.token,
        }),
    }
}

pub fn delete_op(d: pb::DeleteRequest) -> sm::DeleteOp {
    sm::DeleteOp {
        key: d.key,
        prefix: d.prefix,
        prev_kv: d.prev_kv,
    }
}

/// Validation has already refused unknown targets and results.
fn compare(c: pb::Compare) -> sm::Compare {
    use pb::compare::{Result as R, Target as T};
    let target = match T::try_from(c.target).unwrap_or(T::Value) {
        T::Value => sm::CompareTarget::Value,
        T::Version => sm::CompareTarget::Version,
        T::ModRevision => sm::CompareTarget::ModRevision,
        T::CreateRevision => sm::CompareTarget::CreateRevision,
        T::LockToken => sm::CompareTarget::LockToken,
    };
    let result = match R::try_from(c.result).unwrap_or(R::Equal) {
        R::Equal => sm::CompareResult::Equal,
        R::NotEqual => sm::CompareResult::NotEqual,
        R::Greater => sm::CompareResult::Greater,
        R::Less => sm::CompareResult::Less,
    };
    sm::Compare {
        key: c.key,
        target,
        result,
        value: c.value,
        number: c.number,
    }
}

fn step(op: pb::TxnOp) -> Option<sm::TxnStep> {
    Some(match op.op? {
        pb::txn_op::Op::Put(p) => sm::TxnStep::Put(put_op(p)),
        pb::txn_op::Op::Delete(d) => sm::TxnStep::Delete(delete_op(d)),
        pb::txn_op::Op::Range(r) => sm::TxnStep::Range(sm::RangeOp {
            prefix: r.prefix,
            limit: r.limit,
            keys_only: r.keys_only,
        }),
    })
}

/// Validation has already rejected empty ops.
pub fn txn(t: pb::TxnRequest) -> sm::TxnOp {
    sm::TxnOp {
        compare: t.compare.into_iter().map(compare).collect(),
        success: t.success.into_iter().filter_map(step).collect(),
        failure: t.failure.into_iter().filter_map(step).collect(),
    }
}

pub fn step_reply(r: &sm::TxnStepReply, header: Option<pb::ResponseHeader>) -> pb::TxnOpResponse {
    let op = match r {
        sm::TxnStepReply::Put { prev_kv } => pb::txn_op_response::Op::Put(pb::PutResponse {
            header,
            prev_kv: prev_kv.as_ref().map(kv),
        }),
        sm::TxnStepReply::Deleted { deleted, prev_kvs } => {
            pb::txn_op_response::Op::Delete(pb::DeleteResponse {
                header,
                deleted: *deleted,
                prev_kvs: prev_kvs.iter().map(kv).collect(),
            })
        }
        sm::TxnStepReply::Range { kvs, more, count } => {
            pb::txn_op_response::Op::Range(pb::RangeResponse {
                header,
                kvs: kvs.iter().map(kv).collect(),
                more: *more,
                count: *count,
            })
        }
    };
    pb::TxnOpResponse { op: Some(op) }
}
