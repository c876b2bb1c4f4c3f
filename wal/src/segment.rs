//! Segment files: naming, listing and scanning.
//!
//! A segment is `MAGIC` followed by frames. Its file name is the zero-padded index of the first
//! entry it was created for, so `ls` order is replay order. Names must strictly increase in
//! creation order; in the rare case (after a truncation) where the next first index would not,
//! the name is bumped to previous + 1. Replay only relies on the ordering, never on the name
//! being exactly the first index inside.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, WalError};
use crate::frame::{self, Decoded, Record};

/// Identifies the file format; the last byte is the format version.
pub(crate) const MAGIC: &[u8; 8] = b"AEGISWL\x01";
const SUFFIX: &str = ".wal";
const NAME_DIGITS: usize = 20;

pub(crate) fn file_name(start: u64) -> String {
    format!("{start:0NAME_DIGITS$}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment files in `dir`, in replay order. Files without the `.wal` suffix are ignored; a
/// `.wal` file with a malformed name is an error rather than silently skipped, because skipping
/// it could drop log records.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(SUFFIX) {
            continue;
        }
        let path = entry.path();
        match parse_name(name) {
            Some(start) => found.push((start, path)),
            None => {
                return Err(WalError::Corrupt {
                    segment: path,
                    offset: 0,
                    reason: "segment file name is not a 20-digit index",
                })
            }
        }
    }
    found.sort_by_key(|(start, _)| *start);
    Ok(found)
}

/// The damaged tail found at the end of the last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Where the valid data ends (the file is cut back to this length).
    pub(crate) valid_len: u64,
    pub(crate) reason: &'static str,
}

pub(crate) struct Scan<'a> {
    pub(crate) records: Vec<(u64, Record<'a>)>,
    /// Where the records end: the file length, or where a zeroed tail written ahead of the
    /// writer (see [`crate::WalOptions::preallocate_bytes`]) begins.
    pub(crate) end: u64,
    /// `Some` only for the last segment, whose torn tail is dropped rather than rejected.
    pub(crate) tail: Option<Tail>,
}

/// Parses a whole segment. Zeros from the end of the records to the end of the file are the
/// writer's preallocation, not damage: no frame is all zeros (its checksum would not match).
/// Damage is tolerated only as a torn tail of the last segment: a partial frame, or a bad
/// frame with nothing valid after it. Anything else (damage followed by a valid frame,
/// damage in an older segment) means acknowledged records would be lost, so it is reported
/// as [`WalError::Corrupt`]. A zeroed stretch where records used to be, in an older segment,
/// shows as the next segment not continuing the log, which replay rejects.
pub(crate) fn scan<'a>(path: &Path, bytes: &'a [u8], is_last: bool) -> Result<Scan<'a>, WalError> {
    let corrupt = |offset: usize, reason: &'static str| WalError::Corrupt {
        segment: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let torn = |offset: usize, reason: &'static str| -> Result<Scan<'a>, WalError> {
        if is_last {
            Ok(Scan {
                records: Vec::new(),
                end: offset as u64,
                tail: Some(Tail {
                    valid_len: offset as u64,
                    reason,
                }),
            })
        } else {
            Err(corrupt(offset, reason))
        }
    };

    if bytes.len() < MAGIC.len() {
        // A crash while creating the segment leaves a prefix of the header.
        if MAGIC.starts_with(bytes) {
            return torn(0, "partial segment header");
        }
        return Err(corrupt(0, "bad segment header"));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(0, "bad segment header"));
    }

    let mut records = Vec::new();
    let mut offset = MAGIC.len();
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest[0] == 0 && rest.iter().all(|&b| b == 0) {
            break;
        }
        match frame::decode(rest) {
            Decoded::Frame { record, len } => {
                records.push((offset as u64, record));
                offset += len;
            }
            Decoded::UnknownKind => return Err(corrupt(offset, "unknown record kind")),
            Decoded::Incomplete => {
                let mut scan = torn(offset, "partial frame at end of segment")?;
                scan.records = records;
                return Ok(scan);
            }
            Decoded::BadChecksum => {
                if valid_frame_follows(rest) {
                    return Err(corrupt(offset, "bad checksum followed by valid records"));
                }
                let mut scan = torn(offset, "bad checksum in last frame")?;
                scan.records = records;
                return Ok(scan);
            }
        }
    }
    Ok(Scan {
        records,
        end: offset as u64,
        tail: None,
    })
}

/// Whether the frame after a damaged one (located using its possibly damaged length) decodes.
/// A torn write never has a complete valid frame after it, so this separates bit rot in the
/// middle of the last segment from a crash in the middle of an append.
fn valid_frame_follows(damaged: &[u8]) -> bool {
    let Some(len_bytes) = damaged.get(..4) else {
        return false;
    };
    let payload_len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
    let next = frame::HEADER_LEN.saturating_add(payload_len as usize);
    damaged
        .get(next..)
        .is_some_and(|after| matches!(frame::decode(after), Decoded::Frame { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(records: &[Record<'_>]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        for r in records {
            r.encode_into(&mut v);
        }
        v
    }

    fn entries(n: u64) -> Vec<u8> {
        let payloads: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 10]).collect();
        let records: Vec<Record<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| Record::Entry {
                index: i as u64 + 1,
                payload: p,
            })
            .collect();
        segment(&records)
    }

    #[test]
    fn names_sort_in_index_order_and_reject_malformed() {
        assert_eq!(file_name(42), "00000000000000000042.wal");
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_name("42.wal"), None);
        assert_eq!(parse_name("0000000000000000004x.wal"), None);
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn torn_last_frame_is_a_tail_in_the_last_segment_only() {
        let full = entries(3);
        let cut = &full[..full.len() - 3];
        let p = Path::new("s");
        let scan = scan(p, cut, true).unwrap();
        assert_eq!(scan.records.len(), 2);
        let tail = scan.tail.unwrap();
        assert_eq!(
            tail.valid_len,
            (MAGIC.len() + 2 * (frame::HEADER_LEN + 10)) as u64
        );
        assert!(matches!(
            super::scan(p, cut, false),
            Err(WalError::Corrupt { offset, .. }) if offset == tail.valid_len
        ));
    }

    #[test]
    fn damage_before_a_valid_frame_is_corruption_even_in_the_last_segment() {
        let mut bytes = entries(3);
        let second_payload = MAGIC.len() + (frame::HEADER_LEN + 10) + frame::HEADER_LEN;
        bytes[second_payload] ^= 0xff;
        assert!(matches!(
            scan(Path::new("s"), &bytes, true),
            Err(WalError::Corrupt {
                reason: "bad checksum followed by valid records",
                ..
            })
        ));
    }

    #[test]
    fn zeros_after_the_records_end_the_segment_in_any_segment() {
        let mut bytes = entries(3);
        let records = bytes.len() as u64;
        bytes.resize(bytes.len() + 4096, 0);
        for is_last in [true, false] {
            let scan = scan(Path::new("s"), &bytes, is_last).unwrap();
            assert_eq!((scan.records.len(), scan.end), (3, records));
            assert!(scan.tail.is_none());
        }
        // Zeros with something after them are not a preallocated tail.
        let last = bytes.len() - 1;
        bytes[last] = 1;
        let scan = scan(Path::new("s"), &bytes, true).unwrap();
        assert_eq!(scan.tail.map(|t| t.valid_len), Some(records));
        assert!(super::scan(Path::new("s"), &bytes, false).is_err());
    }

    #[test]
    fn header_prefix_is_torn_but_wrong_header_is_corrupt() {
        let p = Path::new("s");
        assert_eq!(
            scan(p, &MAGIC[..3], true).unwrap().tail.unwrap().valid_len,
            0
        );
        assert!(scan(p, b"", true).unwrap().tail.is_some());
        assert!(matches!(
            scan(p, b"NOTAWAL\x01", true),
            Err(WalError::Corrupt { offset: 0, .. })
        ));
    }
}
