//! A node's incarnation: a random, non-zero number fixed for the life of its
//! data directory (docs/adr/0009-node-incarnation.md). The group records it
//! in each member's `Member`; a node whose directory was wiped comes back with
//! a new one, so peers can tell it lost what it had acknowledged.
//!
//! Randomness is fine here: the number is drawn once, before Raft starts, and
//! never enters the state machine or the commit path (ADR-001 is about those).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file holding the incarnation, in the data directory.
pub const FILE: &str = "incarnation";
const TMP: &str = "incarnation.tmp";
/// What the storage layer creates in a data directory; finding any of these
/// without an incarnation file means the directory predates incarnations.
const STORAGE_ENTRIES: [&str; 2] = ["wal", "snapshot"];

#[derive(Debug, thiserror::Error)]
pub enum IncarnationError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid incarnation file (expected 16 hex digits, not all zero)")]
    Malformed { path: PathBuf },
    #[error(
        "{dir} holds Raft data but no incarnation file: it was written by a version without \
         node incarnations, which cannot be read; start from an empty directory"
    )]
    Legacy { dir: PathBuf },
    #[error("no randomness for a new incarnation: {0}")]
    Random(String),
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> IncarnationError {
    move |source| IncarnationError::Io { context, source }
}

/// Reads the incarnation of `dir`, creating it (durably) on first use. Must
/// run before anything else is written to `dir`, so that a directory with
/// Raft data always has one.
pub fn load_or_create(dir: &Path) -> Result<u64, IncarnationError> {
    let path = dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&text).ok_or(IncarnationError::Malformed { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if STORAGE_ENTRIES.iter().any(|e| dir.join(e).exists()) {
                return Err(IncarnationError::Legacy {
                    dir: dir.to_path_buf(),
                });
            }
            let value = fresh()?;
            write(dir, value)?;
            Ok(value)
        }
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

fn parse(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.len() != 16 {
        return None;
    }
    u64::from_str_radix(t, 16).ok().filter(|v| *v != 0)
}

fn fresh() -> Result<u64, IncarnationError> {
    loop {
        let v = getrandom::u64().map_err(|e| IncarnationError::Random(e.to_string()))?;
        if v != 0 {
            return Ok(v);
        }
    }
}

/// Writes a temp file, fsyncs it, renames it into place, fsyncs the directory.
fn write(dir: &Path, value: u64) -> Result<(), IncarnationError> {
    let tmp = dir.join(TMP);
    let path = dir.join(FILE);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io(format!("creating {}", tmp.display())))?;
    f.write_all(format!("{value:016x}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io(format!("writing {}", tmp.display())))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io(format!("renaming to {}", path.display())))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_read_back() {
        let d = tempfile::tempdir().unwrap();
        let a = load_or_create(d.path()).unwrap();
        assert_ne!(a, 0);
        assert_eq!(load_or_create(d.path()).unwrap(), a);
        assert!(!d.path().join(TMP).exists());
        // A wiped directory gets a new one.
        let e = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(e.path()).unwrap(), a);
    }

    #[test]
    fn refuses_damaged_and_legacy_directories() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(FILE), "zz\n").unwrap();
        assert!(matches!(
            load_or_create(d.path()),
            Err(IncarnationError::Malformed { .. })
        ));
        fs::write(d.path().join(FILE), "0000000000000000\n").unwrap();
        assert!(matches!(
            load_or_create(d.path()),
            Err(IncarnationError::Malformed { .. })
        ));

        let e = tempfile::tempdir().unwrap();
        fs::create_dir(e.path().join("wal")).unwrap();
        assert!(matches!(
            load_or_create(e.path()),
            Err(IncarnationError::Legacy { .. })
        ));
    }

    #[test]
    fn a_leftover_temp_file_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(TMP), "garbage").unwrap();
        let a = load_or_create(d.path()).unwrap();
        assert_eq!(
            parse(&fs::read_to_string(d.path().join(FILE)).unwrap()),
            Some(a)
        );
    }
}
