//! CPU cost of applying a put, the work every replica does for every write: puts of 256-byte
//! values over 10,000 keys, two versions kept per key (the benchmark cluster's setting).
//!
//!     cargo run --release -p aegis-state-machine --example apply_cost [PUTS_PER_ROUND] [REPLICAS]
//!
//! Prints the median and range of five rounds in ns per put, and the heap allocations per put
//! (counted, so the same on every run of a build: the figure to compare when the timing is
//! noisy). Compare two builds by running them alternately on the same machine; the absolute
//! time depends on the machine.
//!
//! REPLICAS (default 1) states each apply every put in turn, as the five replicas of a local
//! cluster do on one machine: their states together outgrow the caches one state fits in, so a
//! put's lookups go to memory as they do in a loaded cluster. The figure is per put per state.

use std::time::Instant;

use aegis_state_machine::Command;

#[path = "common/counting.rs"]
mod counting;
#[path = "common/workload.rs"]
mod workload;

fn main() {
    let per_round: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let replicas: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1)
        .max(1);
    let (mut machines, indexes): (Vec<_>, Vec<_>) =
        (0..replicas).map(|_| workload::machine()).unzip();
    let mut index = indexes[0];
    let value = vec![b'v'; workload::VALUE_SIZE];
    let mut rounds = Vec::new();
    let (mut allocations, mut counted) = (0u64, 0u64);
    // Round 0 fills the key space and is not counted.
    for round in 0..6 {
        // The commands are built before the clock starts: the apply is what is timed.
        let cmds: Vec<Command> = (0..per_round)
            .map(|i| workload::put(index + 1 + i, i, &value))
            .collect();
        let allocations_before = counting::allocations();
        let started = Instant::now();
        for cmd in &cmds {
            index += 1;
            for sm in &mut machines {
                let applied = sm.apply(index, cmd);
                assert!(applied.result.is_ok(), "put refused: {:?}", applied.result);
            }
        }
        let applies = per_round * replicas as u64;
        let ns = started.elapsed().as_nanos() as f64 / applies as f64;
        if round > 0 {
            rounds.push(ns);
            allocations += counting::allocations() - allocations_before;
            counted += applies;
        }
    }
    rounds.sort_by(f64::total_cmp);
    println!(
        "apply put: median {:.0} ns, range {:.0}..{:.0} ns ({per_round} puts a round to \
         {replicas} states, 5 rounds); {:.2} allocations per put",
        rounds[2],
        rounds[0],
        rounds[4],
        allocations as f64 / counted.max(1) as f64
    );
}
