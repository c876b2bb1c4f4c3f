use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the log. Variants are stable: callers match on them.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Damage that is not a torn tail: acknowledged data would be lost by dropping it, so the
    /// log refuses to open instead of guessing.
    #[error("corrupt write-ahead log segment {} at offset {offset}: {reason}", segment.display())]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: &'static str,
    },

    #[error("non-contiguous append: expected index {expected}, got {got}")]
    NonContiguous { expected: u64, got: u64 },

    #[error("log index overflow after index {last}")]
    IndexOverflow { last: u64 },

    #[error("cannot truncate from index {from}: entries up to {purged} are already purged")]
    TruncatePurged { from: u64, purged: u64 },

    #[error("payload of entry {index} is {len} bytes, more than the frame limit of {max}")]
    PayloadTooLarge { index: u64, len: usize, max: usize },

    #[error("invalid metadata name {name:?}: use 1-128 of [A-Za-z0-9._-], not starting with '.'")]
    InvalidMetaName { name: String },

    #[error("corrupt metadata file {}", path.display())]
    CorruptMeta { path: PathBuf },

    /// A write or fsync failed earlier. After a failed fsync the kernel may have dropped the
    /// dirty pages, so nothing written since the last good sync can be trusted; reopen the log
    /// (which re-reads what is really on disk) instead of retrying.
    #[error("the log is unusable after an earlier write or sync failure; reopen it")]
    Poisoned,
}

impl WalError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        WalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Shorthand for attaching the path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, WalError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, WalError> {
        self.map_err(|e| WalError::io(path, e))
    }
}
