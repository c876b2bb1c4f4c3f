//! CPU cost of applying a put, the work every replica does for every write: puts of 256-byte
//! values over 10,000 keys, two versions kept per key (the benchmark cluster's setting).
//!
//!     cargo run --release -p aegis-state-machine --example apply_cost [PUTS_PER_ROUND]
//!
//! Prints the median and range of five rounds in ns per put, and the heap allocations per put
//! (counted, so the same on every run of a build: the figure to compare when the timing is
//! noisy). Compare two builds by running them alternately on the same machine; the absolute
//! time depends on the machine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aegis_state_machine::{Command, Op, PutOp, StateMachine};

const KEYS: u64 = 10_000;

/// The system allocator, counting allocations (a `realloc` counts as one).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let (mut allocations, mut counted) = (0u64, 0u64);
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
        let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
        let started = Instant::now();
        for cmd in &cmds {
            index += 1;
            let applied = sm.apply(index, cmd);
            assert!(applied.result.is_ok(), "put refused: {:?}", applied.result);
        }
        let ns = started.elapsed().as_nanos() as f64 / per_round as f64;
        if round > 0 {
            rounds.push(ns);
            allocations += ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
            counted += per_round;
        }
    }
    rounds.sort_by(f64::total_cmp);
    println!(
        "apply put: median {:.0} ns, range {:.0}..{:.0} ns ({per_round} puts a round, 5 rounds); \
         {:.2} allocations per put",
        rounds[2],
        rounds[0],
        rounds[4],
        allocations as f64 / counted.max(1) as f64
    );
}
