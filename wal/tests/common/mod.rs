#![allow(dead_code)] // each test crate uses a different subset

use std::path::Path;

use aegis_wal::{Wal, WalOptions};

/// Deterministic payload for `index`; `salt` distinguishes rewrites of the same index.
pub fn payload(index: u64, salt: u8) -> Vec<u8> {
    let len = 1 + (index % 37) as usize * 7;
    (0..len)
        .map(|i| (index as u8).wrapping_mul(31) ^ (i as u8) ^ salt)
        .collect()
}

pub fn small_segments(segment_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes,
        ..WalOptions::default()
    }
}

/// Options whose segment files end exactly where their records do, for tests that damage
/// the last bytes of a file.
pub fn exact_files(segment_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes,
        preallocate_bytes: 0,
        ..WalOptions::default()
    }
}

/// Appends `from..to` in batches of `batch`, with payloads from [`payload`].
pub fn append_range(wal: &mut Wal, from: u64, to: u64, batch: usize, salt: u8) {
    let indexes: Vec<u64> = (from..to).collect();
    for chunk in indexes.chunks(batch) {
        let payloads: Vec<Vec<u8>> = chunk.iter().map(|&i| payload(i, salt)).collect();
        let entries: Vec<(u64, &[u8])> = chunk
            .iter()
            .zip(&payloads)
            .map(|(&i, p)| (i, p.as_slice()))
            .collect();
        wal.append(&entries).unwrap();
    }
}

pub fn assert_range(wal: &Wal, from: u64, to: u64, salt: u8) {
    for i in from..to {
        assert_eq!(
            wal.get(i),
            Some(payload(i, salt).as_slice()),
            "entry {i} (salt {salt})"
        );
    }
}

pub fn segment_files(dir: &Path) -> Vec<String> {
    files_ending(dir, ".wal")
}

/// Names of the files in `dir` that end with `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}
