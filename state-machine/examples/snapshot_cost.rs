//! CPU cost of a snapshot, which every replica builds every `snapshot-logs-since-last` entries:
//! the state after the warm pairs' warm-up (~100,000 puts of the `apply_cost` workload, ~8 MB
//! encoded), copied as the node copies it under the state-machine lock, encoded, and the copy
//! dropped; then restored from the encoding, as a follower installing it or a node starting
//! from it does.
//!
//!     cargo run --release -p aegis-state-machine --example snapshot_cost [PUTS]
//!
//! Prints the median and range of five rounds of each step in ms, and the heap allocations the
//! copy and the restore make (counted, so the same on every run of a build: the figures to
//! compare when the timing is noisy).

use std::time::{Duration, Instant};

#[path = "common/counting.rs"]
mod counting;
#[path = "common/workload.rs"]
mod workload;

fn main() {
    let puts: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let (mut sm, mut index) = workload::machine();
    let value = vec![b'v'; workload::VALUE_SIZE];
    for i in 0..puts {
        index += 1;
        let applied = sm.apply(index, &workload::put(index, i, &value));
        assert!(applied.result.is_ok(), "put refused: {:?}", applied.result);
    }
    let (mut copy_ms, mut encode_ms, mut drop_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut restore_ms = Vec::new();
    let (mut copy_allocations, mut restore_allocations, mut size) = (0, 0, 0);
    for _ in 0..5 {
        let allocations_before = counting::allocations();
        let started = Instant::now();
        let copy = sm.clone();
        let copied = Instant::now();
        copy_allocations = counting::allocations() - allocations_before;
        let data = copy.to_snapshot().expect("the state encodes");
        let encoded = Instant::now();
        drop(copy);
        let dropped = Instant::now();
        size = data.len();
        let allocations_before = counting::allocations();
        let restoring = Instant::now();
        let restored =
            aegis_state_machine::StateMachine::from_snapshot(&data).expect("the encoding restores");
        let restored_at = Instant::now();
        restore_allocations = counting::allocations() - allocations_before;
        assert!(restored == sm, "the restored state differs");
        restore_ms.push(ms(restored_at - restoring));
        copy_ms.push(ms(copied - started));
        encode_ms.push(ms(encoded - copied));
        drop_ms.push(ms(dropped - encoded));
    }
    println!("snapshot of {puts} puts, {size} bytes; 5 rounds, median (range) in ms:");
    for (step, v) in [
        ("copy", copy_ms),
        ("encode", encode_ms),
        ("drop the copy", drop_ms),
        ("restore", restore_ms),
    ] {
        println!("  {step:<14} {}", summary(v));
    }
    println!("  the copy made {copy_allocations} allocations, the restore {restore_allocations}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.1} ({:.1}..{:.1})", v[v.len() / 2], v[0], v[v.len() - 1])
}
