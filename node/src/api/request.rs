//! Every client request from the wire to what the node does with it:
//! checked against the config limits ([`validate`]) and, for requests that
//! change state, converted into the replicated [`Op`] ([`convert`]). The
//! handlers call these and nothing else before proposing, so the request
//! validation fuzz target (through [`crate::fuzzing`]) drives exactly the
//! code a client reaches.
//!
//! Every refusal is `INVALID_ARGUMENT` with one of the fixed messages of
//! docs/API.md.

use aegis_config::ClusterConfig;
use aegis_proto::v1 as pb;
use aegis_state_machine::Op;
use prost::Message;
use tonic::Status;

use super::{convert, validate};

pub fn put(config: &ClusterConfig, req: pb::PutRequest) -> Result<Op, Status> {
    validate::request_size(config, req.encoded_len())?;
    validate::put(config, &req)?;
    Ok(Op::Put(convert::put_op(req)))
}

pub fn delete(config: &ClusterConfig, req: pb::DeleteRequest) -> Result<Op, Status> {
    validate::request_size(config, req.encoded_len())?;
    validate::key(&req.key)?;
    Ok(Op::Delete(convert::delete_op(req)))
}

pub fn txn(config: &ClusterConfig, req: pb::TxnRequest) -> Result<Op, Status> {
    validate::request_size(config, req.encoded_len())?;
    validate::txn(config, &req)?;
    Ok(Op::Txn(convert::txn(req)))
}

pub fn open_session(config: &ClusterConfig, req: &pb::OpenSessionRequest) -> Result<Op, Status> {
    validate::ttl(config, req.ttl_ms)?;
    Ok(Op::OpenSession { ttl_ms: req.ttl_ms })
}

pub fn keep_alive(req: &pb::KeepAliveRequest) -> Op {
    Op::KeepAlive {
        session_id: req.session_id,
    }
}

pub fn close_session(req: &pb::CloseSessionRequest) -> Op {
    Op::CloseSession {
        session_id: req.session_id,
    }
}

pub fn acquire(config: &ClusterConfig, req: &pb::AcquireRequest) -> Result<Op, Status> {
    validate::request_size(config, req.encoded_len())?;
    validate::lock_name(&req.name)?;
    Ok(Op::Acquire {
        name: req.name.clone(),
        session_id: req.session_id,
        wait: req.wait,
    })
}

pub fn release(config: &ClusterConfig, req: pb::ReleaseRequest) -> Result<Op, Status> {
    validate::request_size(config, req.encoded_len())?;
    validate::lock_name(&req.name)?;
    Ok(Op::Release {
        name: req.name,
        session_id: req.session_id,
        token: req.token,
    })
}

/// Reads propose nothing; these only check.
pub fn get(req: &pb::GetRequest) -> Result<(), Status> {
    validate::key(&req.key)
}

pub fn inspect(req: &pb::InspectRequest) -> Result<(), Status> {
    validate::lock_name(&req.name)
}

pub fn watch(req: &pb::WatchRequest) -> Result<(), Status> {
    // An empty prefix watches everything; an empty exact key is no key.
    if req.key.is_empty() && !req.prefix {
        return Err(Status::invalid_argument("key is empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ClusterConfig {
        let mut c = ClusterConfig::default();
        c.kv.max_value_bytes = 8;
        c.kv.max_request_bytes = 32;
        c.kv.max_txn_ops = 2;
        c
    }

    fn refused<T: std::fmt::Debug>(r: Result<T, Status>) -> String {
        match r {
            Ok(v) => panic!("accepted: {v:?}"),
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::InvalidArgument);
                s.message().to_owned()
            }
        }
    }

    #[test]
    fn every_proposal_is_held_to_the_request_limit() {
        let c = small();
        let big = vec![b'k'; 40];
        let name = "n".repeat(40);
        let del = pb::DeleteRequest {
            key: big.clone(),
            ..Default::default()
        };
        assert_eq!(refused(delete(&c, del)), "request too large");
        let acq = pb::AcquireRequest {
            name: name.clone(),
            ..Default::default()
        };
        assert_eq!(refused(acquire(&c, &acq)), "request too large");
        let rel = pb::ReleaseRequest {
            name,
            ..Default::default()
        };
        assert_eq!(refused(release(&c, rel)), "request too large");
        let put_req = pb::PutRequest {
            key: big,
            ..Default::default()
        };
        assert_eq!(refused(put(&c, put_req)), "request too large");
        // Within the limit all of them pass.
        let ok = pb::DeleteRequest {
            key: b"k".to_vec(),
            ..Default::default()
        };
        assert!(delete(&c, ok).is_ok());
    }

    #[test]
    fn unknown_compare_enums_are_refused_not_read_as_zero() {
        let c = small();
        let txn_with = |target: i32, result: i32| pb::TxnRequest {
            compare: vec![pb::Compare {
                key: b"k".to_vec(),
                target,
                result,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(refused(txn(&c, txn_with(9, 0))), "unknown compare target");
        assert_eq!(refused(txn(&c, txn_with(0, -1))), "unknown compare result");
        match txn(&c, txn_with(4, 3)) {
            Ok(Op::Txn(t)) => {
                assert_eq!(
                    t.compare[0].target,
                    aegis_state_machine::CompareTarget::LockToken
                );
                assert_eq!(
                    t.compare[0].result,
                    aegis_state_machine::CompareResult::Less
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_empty_txn_op_is_refused_not_dropped() {
        let t = pb::TxnRequest {
            success: vec![pb::TxnOp { op: None }],
            ..Default::default()
        };
        assert_eq!(refused(txn(&small(), t)), "txn op is empty");
    }

    #[test]
    fn watch_needs_a_key_or_a_prefix() {
        assert_eq!(refused(watch(&pb::WatchRequest::default())), "key is empty");
        let all = pb::WatchRequest {
            prefix: true,
            ..Default::default()
        };
        assert!(watch(&all).is_ok());
    }
}
