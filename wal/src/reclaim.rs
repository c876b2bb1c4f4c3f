//! Giving purged segments' disk space back without stalling other writers.
//!
//! Unlinking a whole segment frees all its blocks at once. On ext4 without a
//! journal and mounted with `discard` (the benchmark host's root), that is one
//! synchronous discard of the whole file: ~20–30 ms for 64 MiB, during which
//! every fdatasync on the device waits, this node's and every other process's.
//! Shrinking the file a step at a time lets other I/O in between the steps;
//! the total work is the same, the longest wait ~1 ms (docs/BENCHMARKS.md).
//!
//! A segment is renamed out of the log, and the rename made durable, before
//! anything here touches it: a crash part way through leaves a shortened
//! `.purged` file that replay ignores and the next [`crate::Wal::open`] passes
//! back here, never a shortened segment.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

/// Extension of a segment renamed out of the log, waiting to be removed.
const EXTENSION: &str = "purged";
const STEP_BYTES: u64 = 1 << 20;
/// Leaves the device idle between steps, so a sync that arrives waits for at
/// most one step.
const PAUSE: Duration = Duration::from_millis(1);

/// Where `segment` goes when it leaves the log.
pub(crate) fn purged_path(segment: &Path) -> PathBuf {
    segment.with_extension(EXTENSION)
}

/// Removes `paths`, each shrunk in steps first, on a thread of their own.
/// Failures are left for the next open to retry: the files are no longer
/// part of the log.
pub(crate) fn release(paths: Vec<PathBuf>) {
    if paths.is_empty() {
        return;
    }
    let work = paths.clone();
    let spawned = thread::Builder::new()
        .name("wal-reclaim".into())
        .spawn(move || {
            for path in &work {
                let _ = remove_in_steps(path, STEP_BYTES, PAUSE, |_| {});
            }
        });
    if spawned.is_err() {
        // No thread to spare: remove them here, at once, as before.
        for path in &paths {
            let _ = remove(path);
        }
    }
}

/// `.purged` files in `dir`, left by a process that stopped before removing them.
pub(crate) fn leftovers(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == EXTENSION) {
            found.push(path);
        }
    }
    Ok(found)
}

/// Shrinks `path` by `step` bytes at a time, pausing between steps, then
/// removes it. `on_step` sees each new length.
fn remove_in_steps(
    path: &Path,
    step: u64,
    pause: Duration,
    mut on_step: impl FnMut(u64),
) -> io::Result<()> {
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut len = file.metadata()?.len();
    while len > 0 {
        len = len.saturating_sub(step.max(1));
        file.set_len(len)?;
        on_step(len);
        if len > 0 {
            thread::sleep(pause);
        }
    }
    drop(file);
    remove(path)
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_file_is_shrunk_step_by_step_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.purged");
        fs::write(&path, vec![7u8; 3 * 1024 + 512]).unwrap();
        let mut lengths = Vec::new();
        remove_in_steps(&path, 1024, Duration::ZERO, |len| lengths.push(len)).unwrap();
        assert_eq!(lengths, [2 * 1024 + 512, 1024 + 512, 512, 0]);
        assert!(!path.exists());
    }

    #[test]
    fn a_file_already_gone_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("2.purged");
        assert!(remove_in_steps(&gone, 1024, Duration::ZERO, |_| {}).is_ok());
    }

    #[test]
    fn released_files_are_removed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..3)
            .map(|i| {
                let p = dir.path().join(format!("{i}.purged"));
                fs::write(&p, vec![1u8; 3 * STEP_BYTES as usize / 2]).unwrap();
                p
            })
            .collect();
        fs::write(dir.path().join("keep.wal"), b"x").unwrap();
        assert_eq!(leftovers(dir.path()).unwrap().len(), 3);
        release(paths);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !leftovers(dir.path()).unwrap().is_empty() {
            assert!(Instant::now() < deadline, "purged files still there");
            thread::sleep(Duration::from_millis(5));
        }
        assert!(dir.path().join("keep.wal").exists());
    }
}
