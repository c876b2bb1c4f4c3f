//! Small durability helpers.

use std::fs::{self, File};
use std::path::Path;

use crate::error::{IoContext, WalError};

/// Makes creations, renames and deletions of entries in `dir` durable. Without this a file
/// that was fsynced can still vanish after a power loss because its directory entry was not.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).at(dir)?.sync_all().at(dir)
}

/// `create_dir_all` that also makes a newly created directory's entry durable in its parent.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), WalError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).at(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}
