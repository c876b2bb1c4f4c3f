//! CPU cost of applying a put, the work every replica does for every write: puts of 256-byte
//! values over 10,000 keys, two versions kept per key (the benchmark cluster's setting).
//!
//!     cargo run --release -p aegis-state-machine --example apply_cost [PUTS_PER_ROUND]
//!
//! Prints the median and range of five rounds in ns per put. Compare two builds by running
//! them alternately on the same machine; the absolute figure depends on the machine.

use std::time::Instant;

use aegis_state_machine::{Command, Op, PutOp, StateMachine};

const KEYS: u64 = 10_000;

fn main() {
    let per_round: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let mut sm = StateMachine::new();
    let mut index = 1;
    sm.apply(
        index,
        &Command {
            leader_ts_ms: 1_000,
            op: Op::SetRetention { max_versions: 2 },
        },
    );
    let value = vec![b'v'; 256];
    let mut rounds = Vec::new();
    // Round 0 fills the key space and is not counted.
    for round in 0..6 {
        // The commands are built before the clock starts: the apply is what is timed.
        let cmds: Vec<Command> = (0..per_round)
            .map(|i| Command {
                leader_ts_ms: 1_000 + index + i,
                op: Op::Put(PutOp {
                    key: format!("bench/k{:010}", (i * 7_919) % KEYS).into_bytes(),
                    value: value.clone(),
                    session_id: 0,
                    prev_kv: false,
                    guard: None,
                }),
            })
            .collect();
        let started = Instant::now();
        for cmd in &cmds {
            index += 1;
            let applied = sm.apply(index, cmd);
            assert!(applied.result.is_ok(), "put refused: {:?}", applied.result);
        }
        let ns = started.elapsed().as_nanos() as f64 / per_round as f64;
        if round > 0 {
            rounds.push(ns);
        }
    }
    rounds.sort_by(f64::total_cmp);
    println!(
        "apply put: median {:.0} ns, range {:.0}..{:.0} ns ({per_round} puts a round, 5 rounds)",
        rounds[2], rounds[0], rounds[4]
    );
}
