//! Small named values (Raft vote, committed index) stored one per file under `dir/meta/`.
//!
//! Each write goes to a hidden temporary file that is fsynced, renamed over the old value and
//! made durable with an fsync of the directory, so a crash leaves either the old or the new
//! value, never a mix. Files are `[crc32 u32 LE][value]` to catch bit rot on read.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, WalError};
use crate::fsutil;

const MAX_NAME_LEN: usize = 128;
const TMP_PREFIX: &str = ".";
const TMP_SUFFIX: &str = ".tmp";

#[derive(Debug)]
pub(crate) struct MetaStore {
    dir: PathBuf,
    values: BTreeMap<String, Vec<u8>>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl MetaStore {
    pub(crate) fn open(dir: PathBuf) -> Result<Self, WalError> {
        fsutil::create_dir_durable(&dir)?;
        let mut values = BTreeMap::new();
        let mut removed_tmp = false;
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let path = entry.path();
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            if name.starts_with(TMP_PREFIX) && name.ends_with(TMP_SUFFIX) {
                // Left by a crash before the rename: the old value is still in place.
                fs::remove_file(&path).at(&path)?;
                removed_tmp = true;
                continue;
            }
            if !valid_name(name) {
                continue;
            }
            let bytes = fs::read(&path).at(&path)?;
            values.insert(name.to_owned(), decode(&path, &bytes)?);
        }
        if removed_tmp {
            fsutil::sync_dir(&dir)?;
        }
        Ok(MetaStore { dir, values })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.values.get(name).map(Vec::as_slice)
    }

    pub(crate) fn put(&mut self, name: &str, value: &[u8]) -> Result<(), WalError> {
        if !valid_name(name) {
            return Err(WalError::InvalidMetaName {
                name: name.to_owned(),
            });
        }
        let tmp = self.dir.join(format!("{TMP_PREFIX}{name}{TMP_SUFFIX}"));
        let target = self.dir.join(name);
        let mut file = File::create(&tmp).at(&tmp)?;
        file.write_all(&crc32fast::hash(value).to_le_bytes())
            .at(&tmp)?;
        file.write_all(value).at(&tmp)?;
        file.sync_all().at(&tmp)?;
        drop(file);
        fs::rename(&tmp, &target).at(&target)?;
        fsutil::sync_dir(&self.dir)?;
        self.values.insert(name.to_owned(), value.to_vec());
        Ok(())
    }
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, WalError> {
    let corrupt = || WalError::CorruptMeta {
        path: path.to_path_buf(),
    };
    let (crc, value) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
    if crc32fast::hash(value) != u32::from_le_bytes(*crc) {
        return Err(corrupt());
    }
    Ok(value.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted_to_plain_file_names() {
        for ok in ["vote", "committed", "a.b-c_d", "X9"] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in ["", ".hidden", "../x", "a/b", "sp ace", "é", long.as_str()] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
