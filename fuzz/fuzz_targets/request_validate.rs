//! Client request validation and conversion, exactly as the gRPC handlers
//! run them (`aegis_node::fuzzing`): arbitrary bytes decoded as one of the
//! public request messages, checked against config limits drawn from the
//! input.
//!
//! Properties:
//! - nothing panics, and the same request gets the same answer twice;
//! - a refusal is `INVALID_ARGUMENT` with a message of the documented
//!   contract (docs/API.md), and the reason it names really holds; a request
//!   is accepted exactly when no such reason holds;
//! - an accepted request converts to the command an independent reading of
//!   the request gives, that command survives the log encoding (postcard)
//!   unchanged, its size stays proportional to the request's, and applying
//!   it to a state machine fails, if at all, with a documented error.
#![no_main]

use aegis_config::ClusterConfig;
use aegis_node::fuzzing as req;
use aegis_proto::v1 as pb;
use aegis_state_machine::{self as sm, Command, Op, SmError, StateMachine};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tonic::{Code, Status};

/// The `INVALID_ARGUMENT` messages of docs/API.md.
const KEY_EMPTY: &str = "key is empty";
const VALUE_TOO_LARGE: &str = "value too large";
const REQUEST_TOO_LARGE: &str = "request too large";
const TOO_MANY_TXN_OPS: &str = "too many txn ops";
const LOCK_NAME_EMPTY: &str = "lock name is empty";
const TTL_BELOW_MINIMUM: &str = "ttl below minimum";
const TXN_OP_EMPTY: &str = "txn op is empty";
const UNKNOWN_COMPARE_TARGET: &str = "unknown compare target";
const UNKNOWN_COMPARE_RESULT: &str = "unknown compare result";

/// What the state machine itself may refuse an accepted request with
/// (docs/API.md lists these too).
const SM_INVALID: &[&str] = &[
    "txn writes the same key more than once",
    "lock name is not valid UTF-8",
    "lock was granted at this index; release it later",
];

/// Limits from one input byte: small ones so that short inputs cross them,
/// or the defaults. Always within the config envelope (request >= value).
fn config(b: u8) -> ClusterConfig {
    let mut c = ClusterConfig::default();
    if b & 0x80 == 0 {
        c.kv.max_value_bytes = 1 + i64::from(b & 0x0f) * 4;
        c.kv.max_request_bytes = c.kv.max_value_bytes + i64::from((b >> 4) & 0x07) * 24;
        c.kv.max_txn_ops = 1 + i64::from(b & 0x07);
        c.lease.min_ttl_ms = 100 + i64::from(b) * 40;
    }
    c
}

struct Limits {
    value: usize,
    request: usize,
    txn_ops: usize,
    min_ttl: u64,
}

fn limits(c: &ClusterConfig) -> Limits {
    Limits {
        value: usize::try_from(c.kv.max_value_bytes).unwrap_or(0),
        request: usize::try_from(c.kv.max_request_bytes).unwrap_or(0),
        txn_ops: usize::try_from(c.kv.max_txn_ops).unwrap_or(0),
        min_ttl: u64::try_from(c.lease.min_ttl_ms).unwrap_or(0),
    }
}

/// Every documented reason to refuse, computed independently of the node.
#[derive(Default)]
struct Reasons(Vec<&'static str>);

impl Reasons {
    fn when(&mut self, cond: bool, msg: &'static str) {
        if cond {
            self.0.push(msg);
        }
    }
    fn put(&mut self, l: &Limits, p: &pb::PutRequest) {
        self.when(p.key.is_empty(), KEY_EMPTY);
        self.when(p.value.len() > l.value, VALUE_TOO_LARGE);
        self.when(
            p.guard.as_ref().is_some_and(|g| g.lock.is_empty()),
            LOCK_NAME_EMPTY,
        );
    }
}

fn verdict<T: std::fmt::Debug>(what: &str, got: &Result<T, Status>, reasons: &Reasons) {
    match got {
        Ok(v) => assert!(
            reasons.0.is_empty(),
            "{what}: accepted ({v:?}) although {:?}",
            reasons.0
        ),
        Err(s) => {
            assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
            assert!(
                reasons.0.contains(&s.message()),
                "{what}: refused with {:?}, but the reasons that hold are {:?}",
                s.message(),
                reasons.0
            );
        }
    }
}

fn same(a: &Result<Op, Status>, b: &Result<Op, Status>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(x), Err(y)) => x.code() == y.code() && x.message() == y.message(),
        _ => false,
    }
}

fn expect_put(p: &pb::PutRequest) -> sm::PutOp {
    sm::PutOp {
        key: p.key.clone(),
        value: p.value.clone(),
        session_id: p.session_id,
        prev_kv: p.prev_kv,
        guard: p.guard.as_ref().map(|g| sm::FencingGuard {
            lock: g.lock.clone(),
            token: g.token,
        }),
    }
}

fn expect_delete(d: &pb::DeleteRequest) -> sm::DeleteOp {
    sm::DeleteOp {
        key: d.key.clone(),
        prefix: d.prefix,
        prev_kv: d.prev_kv,
    }
}

fn expect_compare(c: &pb::Compare) -> sm::Compare {
    sm::Compare {
        key: c.key.clone(),
        target: match c.target {
            0 => sm::CompareTarget::Value,
            1 => sm::CompareTarget::Version,
            2 => sm::CompareTarget::ModRevision,
            3 => sm::CompareTarget::CreateRevision,
            4 => sm::CompareTarget::LockToken,
            other => panic!("accepted compare target {other}"),
        },
        result: match c.result {
            0 => sm::CompareResult::Equal,
            1 => sm::CompareResult::NotEqual,
            2 => sm::CompareResult::Greater,
            3 => sm::CompareResult::Less,
            other => panic!("accepted compare result {other}"),
        },
        value: c.value.clone(),
        number: c.number,
    }
}

fn expect_step(op: &pb::TxnOp) -> sm::TxnStep {
    match &op.op {
        Some(pb::txn_op::Op::Put(p)) => sm::TxnStep::Put(expect_put(p)),
        Some(pb::txn_op::Op::Delete(d)) => sm::TxnStep::Delete(expect_delete(d)),
        Some(pb::txn_op::Op::Range(r)) => sm::TxnStep::Range(sm::RangeOp {
            prefix: r.prefix.clone(),
            limit: r.limit,
            keys_only: r.keys_only,
        }),
        None => panic!("accepted an empty txn op"),
    }
}

/// Log encoding round trip, size bound, and one apply after a session
/// (id 1) has been opened, so session-bound requests can get past the
/// session lookup.
fn accepted(what: &str, op: Op, request_len: usize, ts: u64) {
    let cmd = Command {
        leader_ts_ms: ts,
        op,
    };
    let bytes = postcard::to_stdvec(&cmd).expect("a command encodes");
    let back: Command = postcard::from_bytes(&bytes).expect("an encoded command decodes");
    assert_eq!(back, cmd, "{what}: command changed in the log encoding");
    assert!(
        bytes.len() <= 2 * request_len + 32,
        "{what}: {} command bytes from a {request_len}-byte request",
        bytes.len()
    );
    let mut m = StateMachine::new();
    let open = Command {
        leader_ts_ms: ts,
        op: Op::OpenSession { ttl_ms: 60_000 },
    };
    assert!(m.apply(1, &open).result.is_ok(), "opening a session");
    if let Err(e) = m.apply(2, &cmd).result {
        if let SmError::Invalid(msg) = &e {
            assert!(
                SM_INVALID.contains(&msg.as_str()),
                "{what}: the state machine refused an accepted request with an undocumented message {msg:?}"
            );
        }
        let s = aegis_node::api::status_of(&e);
        assert!(
            matches!(
                s.code(),
                Code::InvalidArgument
                    | Code::NotFound
                    | Code::FailedPrecondition
                    | Code::OutOfRange
            ),
            "{what}: {s:?}"
        );
    }
}

/// Runs `check` twice on the same request (determinism), checks the
/// verdict, and for an accepted request compares with the expected command.
fn run_proposal<M: Message + Clone>(
    what: &str,
    m: M,
    reasons: Reasons,
    ts: u64,
    check: impl Fn(M) -> Result<Op, Status>,
    expected: impl FnOnce(&M) -> Op,
) {
    let len = m.encoded_len();
    let got = check(m.clone());
    assert!(same(&got, &check(m.clone())), "{what}: two answers");
    verdict(what, &got, &reasons);
    if let Ok(op) = got {
        assert_eq!(op, expected(&m), "{what}: converted to another command");
        accepted(what, op, len, ts);
    }
}

fuzz_target!(|data: &[u8]| {
    let [which, limits_byte, ts_byte, body @ ..] = data else {
        return;
    };
    let cfg = config(*limits_byte);
    let l = limits(&cfg);
    let ts = u64::from(*ts_byte) << 32;
    match which % 11 {
        0 => {
            let Ok(p) = pb::PutRequest::decode(body) else {
                return;
            };
            let mut r = Reasons::default();
            r.when(p.encoded_len() > l.request, REQUEST_TOO_LARGE);
            r.put(&l, &p);
            run_proposal(
                "put",
                p,
                r,
                ts,
                |m| req::put(&cfg, m),
                |m| Op::Put(expect_put(m)),
            );
        }
        1 => {
            let Ok(d) = pb::DeleteRequest::decode(body) else {
                return;
            };
            let mut r = Reasons::default();
            r.when(d.encoded_len() > l.request, REQUEST_TOO_LARGE);
            r.when(d.key.is_empty(), KEY_EMPTY);
            run_proposal(
                "delete",
                d,
                r,
                ts,
                |m| req::delete(&cfg, m),
                |m| Op::Delete(expect_delete(m)),
            );
        }
        2 => {
            let Ok(t) = pb::TxnRequest::decode(body) else {
                return;
            };
            let mut r = Reasons::default();
            r.when(t.encoded_len() > l.request, REQUEST_TOO_LARGE);
            r.when(
                t.compare.len() + t.success.len() + t.failure.len() > l.txn_ops,
                TOO_MANY_TXN_OPS,
            );
            for c in &t.compare {
                r.when(c.key.is_empty(), KEY_EMPTY);
                r.when(!(0..=4).contains(&c.target), UNKNOWN_COMPARE_TARGET);
                r.when(!(0..=3).contains(&c.result), UNKNOWN_COMPARE_RESULT);
            }
            for op in t.success.iter().chain(&t.failure) {
                match &op.op {
                    Some(pb::txn_op::Op::Put(p)) => r.put(&l, p),
                    Some(pb::txn_op::Op::Delete(d)) => r.when(d.key.is_empty(), KEY_EMPTY),
                    Some(pb::txn_op::Op::Range(_)) => {}
                    None => r.when(true, TXN_OP_EMPTY),
                }
            }
            run_proposal(
                "txn",
                t,
                r,
                ts,
                |m| req::txn(&cfg, m),
                |m| {
                    Op::Txn(sm::TxnOp {
                        compare: m.compare.iter().map(expect_compare).collect(),
                        success: m.success.iter().map(expect_step).collect(),
                        failure: m.failure.iter().map(expect_step).collect(),
                    })
                },
            );
        }
        3 => {
            let Ok(o) = pb::OpenSessionRequest::decode(body) else {
                return;
            };
            let mut r = Reasons::default();
            r.when(o.ttl_ms < l.min_ttl, TTL_BELOW_MINIMUM);
            run_proposal(
                "open",
                o,
                r,
                ts,
                |m| req::open_session(&cfg, &m),
                |m| Op::OpenSession { ttl_ms: m.ttl_ms },
            );
        }
        4 => {
            let Ok(k) = pb::KeepAliveRequest::decode(body) else {
                return;
            };
            run_proposal(
                "keep_alive",
                k,
                Reasons::default(),
                ts,
                |m| Ok(req::keep_alive(&m)),
                |m| Op::KeepAlive {
                    session_id: m.session_id,
                },
            );
        }
        5 => {
            let Ok(c) = pb::CloseSessionRequest::decode(body) else {
                return;
            };
            run_proposal(
                "close",
                c,
                Reasons::default(),
                ts,
                |m| Ok(req::close_session(&m)),
                |m| Op::CloseSession {
                    session_id: m.session_id,
                },
            );
        }
        6 => {
            let Ok(a) = pb::AcquireRequest::decode(body) else {
                return;
            };
            let mut r = Reasons::default();
            r.when(a.encoded_len() > l.request, REQUEST_TOO_LARGE);
            r.when(a.name.is_empty(), LOCK_NAME_EMPTY);
            run_proposal(
                "acquire",
                a,
                r,
                ts,
                |m| req::acquire(&cfg, &m),
                |m| Op::Acquire {
                    name: m.name.clone(),
                    session_id: m.session_id,
                    wait: m.wait,
                },
            );
        }
        7 => {
            let Ok(x) = pb::ReleaseRequest::decode(body) else {
                return;
            };
            let mut r = Reasons::default();
            r.when(x.encoded_len() > l.request, REQUEST_TOO_LARGE);
            r.when(x.name.is_empty(), LOCK_NAME_EMPTY);
            run_proposal(
                "release",
                x,
                r,
                ts,
                |m| req::release(&cfg, m),
                |m| Op::Release {
                    name: m.name.clone(),
                    session_id: m.session_id,
                    token: m.token,
                },
            );
        }
        8 => {
            let Ok(g) = pb::GetRequest::decode(body) else {
                return;
            };
            let mut r = Reasons::default();
            r.when(g.key.is_empty(), KEY_EMPTY);
            verdict("get", &req::get(&g), &r);
        }
        9 => {
            let Ok(i) = pb::InspectRequest::decode(body) else {
                return;
            };
            let mut r = Reasons::default();
            r.when(i.name.is_empty(), LOCK_NAME_EMPTY);
            verdict("inspect", &req::inspect(&i), &r);
        }
        _ => {
            let Ok(w) = pb::WatchRequest::decode(body) else {
                return;
            };
            let mut r = Reasons::default();
            r.when(w.key.is_empty() && !w.prefix, KEY_EMPTY);
            verdict("watch", &req::watch(&w), &r);
        }
    }
});
