//! The examples' workload: puts of 256-byte values over 10,000 keys, two versions kept per key
//! (the benchmark cluster's setting). Included by each example with `#[path]`.

use aegis_state_machine::{Command, Op, PutOp, StateMachine};

pub const KEYS: u64 = 10_000;
pub const VALUE_SIZE: usize = 256;

/// A state machine whose retention is set as on the benchmark cluster, and the index it
/// applied last.
pub fn machine() -> (StateMachine, u64) {
    let mut sm = StateMachine::new();
    sm.apply(
        1,
        &Command {
            leader_ts_ms: 1_000,
            op: Op::SetRetention { max_versions: 2 },
        },
    );
    (sm, 1)
}

/// The `i`-th put of a run, proposed at log `index`: keys taken in a fixed stride over the
/// key space, so every key is written as often as every other.
pub fn put(index: u64, i: u64, value: &[u8]) -> Command {
    Command {
        leader_ts_ms: 1_000 + index,
        op: Op::Put(PutOp {
            key: format!("bench/k{:010}", (i * 7_919) % KEYS).into_bytes(),
            value: value.to_vec(),
            session_id: 0,
            prev_kv: false,
            guard: None,
        }),
    }
}
