//! Random operation sequences checked against a plain in-memory model, reopening the log at
//! random points. Small segments make rolling, purge deletion and truncation across segment
//! boundaries frequent.

mod common;

use std::collections::BTreeMap;

use aegis_wal::{Wal, WalError, WalOptions};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, so a failing seed can be replayed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Default)]
struct Model {
    entries: BTreeMap<u64, Vec<u8>>,
    purged: Option<u64>,
}

impl Model {
    fn last(&self) -> Option<u64> {
        self.entries.keys().next_back().copied()
    }
    fn first(&self) -> Option<u64> {
        self.entries.keys().next().copied()
    }
}

fn check(wal: &Wal, model: &Model, context: &str) {
    assert_eq!(wal.first_index(), model.first(), "first_index {context}");
    assert_eq!(wal.last_index(), model.last(), "last_index {context}");
    assert_eq!(wal.purged_upto(), model.purged, "purged_upto {context}");
    assert_eq!(wal.len(), model.entries.len(), "len {context}");
    let all = wal.range(0, u64::MAX);
    let expected: Vec<(u64, Vec<u8>)> =
        model.entries.iter().map(|(i, p)| (*i, p.clone())).collect();
    assert_eq!(all, expected, "contents {context}");
}

fn run(seed: u64, ops: usize) {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 300,
        // Reopening in-process reads the page cache either way; durability has its own tests.
        sync: false,
        // Smaller than a segment, so segments hold records, zeros written ahead, and
        // records written over those zeros.
        preallocate_bytes: 64,
    };
    let mut rng = Rng(seed);
    let mut model = Model::default();
    let mut wal = Wal::open(dir.path(), opts).unwrap();
    let mut salt = 0u8;

    for step in 0..ops {
        let context = format!("seed {seed} step {step}");
        match rng.below(100) {
            0..=54 => {
                let start = match (model.last(), model.purged) {
                    (Some(last), _) => last + 1,
                    (None, Some(p)) => p + 1 + rng.below(3),
                    (None, None) => rng.below(5),
                };
                let n = 1 + rng.below(8);
                salt = salt.wrapping_add(1);
                let payloads: Vec<Vec<u8>> = (start..start + n)
                    .map(|i| common::payload(i, salt))
                    .collect();
                let batch: Vec<(u64, &[u8])> =
                    (start..).zip(payloads.iter().map(Vec::as_slice)).collect();
                wal.append(&batch).unwrap();
                for (i, p) in (start..).zip(payloads) {
                    model.entries.insert(i, p);
                }
            }
            55..=62 => {
                // A wrong index is rejected and changes nothing.
                if let Some(last) = model.last() {
                    let bad = if rng.below(2) == 0 { last } else { last + 2 };
                    let err = wal.append(&[(bad, b"x".as_slice())]).unwrap_err();
                    assert!(matches!(err, WalError::NonContiguous { .. }), "{context}");
                }
            }
            63..=74 => {
                let low = model.purged.map_or(0, |p| p + 1);
                let high = model.last().map_or(low, |l| l + 2);
                let from = low + rng.below(high - low + 1);
                wal.truncate_from(from).unwrap();
                model.entries.retain(|&i, _| i < from);
            }
            75..=86 => {
                let base = model.first().or(model.purged).unwrap_or(0);
                let upto = base + rng.below(12);
                wal.purge_upto(upto).unwrap();
                if model.purged.is_none_or(|p| upto > p) {
                    model.purged = Some(upto);
                    model.entries.retain(|&i, _| i > upto);
                }
            }
            _ => {
                drop(wal);
                wal = Wal::open(dir.path(), opts).unwrap();
                assert_eq!(wal.recovery().torn_tail, None, "{context}");
            }
        }
        check(&wal, &model, &context);
    }

    drop(wal);
    let mut wal = Wal::open(dir.path(), opts).unwrap();
    check(&wal, &model, &format!("seed {seed} final reopen"));
    // Purging past everything ever written leaves only the segment holding the purge record.
    let beyond = model.last().or(model.purged).unwrap_or(0) + 1000;
    wal.purge_upto(beyond).unwrap();
    assert_eq!(common::segment_files(dir.path()).len(), 1, "seed {seed}");
    drop(wal);
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!((wal.first_index(), wal.purged_upto()), (None, Some(beyond)));
}

#[test]
fn random_operations_match_the_model_across_reopens() {
    for seed in [1, 2, 3, 0xdead_beef, 0x1234_5678_9abc] {
        run(seed, 600);
    }
}
