//! Request checks against the config limits, before anything is proposed.

use aegis_config::ClusterConfig;
use aegis_proto::v1 as pb;
use tonic::Status;

fn limit(v: i64) -> usize {
    usize::try_from(v).unwrap_or(0)
}

pub fn request_size(config: &ClusterConfig, encoded_len: usize) -> Result<(), Status> {
    if encoded_len > limit(config.kv.max_request_bytes) {
        return Err(Status::invalid_argument("request too large"));
    }
    Ok(())
}

pub fn key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument("key is empty"));
    }
    Ok(())
}

pub fn lock_name(name: &str) -> Result<(), Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("lock name is empty"));
    }
    Ok(())
}

pub fn put(config: &ClusterConfig, p: &pb::PutRequest) -> Result<(), Status> {
    key(&p.key)?;
    if p.value.len() > limit(config.kv.max_value_bytes) {
        return Err(Status::invalid_argument("value too large"));
    }
    if let Some(g) = &p.guard {
        lock_name(&g.lock)?;
    }
    Ok(())
}

pub fn ttl(config: &ClusterConfig, ttl_ms: u64) -> Result<(), Status> {
    let min = u64::try_from(config.lease.min_ttl_ms).unwrap_or(0);
    if ttl_ms < min {
        return Err(Status::invalid_argument("ttl below minimum"));
    }
    Ok(())
}

/// A compare names a key and uses a target and result this node knows:
/// an unknown enum value (from a newer or broken client) is refused rather
/// than read as the zero value.
pub fn compare(c: &pb::Compare) -> Result<(), Status> {
    key(&c.key)?;
    if pb::compare::Target::try_from(c.target).is_err() {
        return Err(Status::invalid_argument("unknown compare target"));
    }
    if pb::compare::Result::try_from(c.result).is_err() {
        return Err(Status::invalid_argument("unknown compare result"));
    }
    Ok(())
}

pub fn txn(config: &ClusterConfig, t: &pb::TxnRequest) -> Result<(), Status> {
    let ops = t.compare.len() + t.success.len() + t.failure.len();
    if ops > limit(config.kv.max_txn_ops) {
        return Err(Status::invalid_argument("too many txn ops"));
    }
    for c in &t.compare {
        compare(c)?;
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.op {
            Some(pb::txn_op::Op::Put(p)) => put(config, p)?,
            Some(pb::txn_op::Op::Delete(d)) => key(&d.key)?,
            Some(pb::txn_op::Op::Range(_)) => {}
            None => return Err(Status::invalid_argument("txn op is empty")),
        }
    }
    Ok(())
}
