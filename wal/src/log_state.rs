//! The in-memory view of the log. The same transitions are used when writing and when
//! replaying segments, so a reopened log is the log that was written.

use std::collections::VecDeque;

use crate::error::WalError;

#[derive(Debug, Default)]
pub(crate) struct LogState {
    /// Index of `entries[0]`; meaningless while `entries` is empty.
    first: u64,
    /// Payloads are kept in memory: the Raft log is bounded by snapshots and purge, and a
    /// memory-resident log makes reads free. Memory therefore grows with the unpurged log.
    entries: VecDeque<Vec<u8>>,
    purged: Option<u64>,
    purged_meta: Option<Vec<u8>>,
}

impl LogState {
    pub(crate) fn first_index(&self) -> Option<u64> {
        (!self.entries.is_empty()).then_some(self.first)
    }

    pub(crate) fn last_index(&self) -> Option<u64> {
        let n = self.entries.len() as u64;
        (n > 0).then(|| self.first + (n - 1))
    }

    pub(crate) fn purged(&self) -> Option<u64> {
        self.purged
    }

    pub(crate) fn purged_meta(&self) -> Option<&[u8]> {
        self.purged_meta.as_deref()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Checks that `index` may be the next appended entry: it continues the log, or, when the
    /// log holds no live entries, it is past the purge point.
    pub(crate) fn check_next(&self, index: u64) -> Result<(), WalError> {
        let expected = match (self.last_index(), self.purged) {
            (Some(last), _) => last
                .checked_add(1)
                .ok_or(WalError::IndexOverflow { last })?,
            (None, Some(p)) => {
                let min = p
                    .checked_add(1)
                    .ok_or(WalError::IndexOverflow { last: p })?;
                if index >= min {
                    return Ok(());
                }
                min
            }
            (None, None) => return Ok(()),
        };
        if index == expected {
            Ok(())
        } else {
            Err(WalError::NonContiguous {
                expected,
                got: index,
            })
        }
    }

    /// Appends after [`check_next`](Self::check_next) accepted `index`.
    pub(crate) fn push(&mut self, index: u64, payload: Vec<u8>) {
        if self.entries.is_empty() {
            self.first = index;
        }
        self.entries.push_back(payload);
    }

    /// Returns whether truncating from `from` changes anything; errors if it would cut into
    /// purged entries (Raft only ever truncates uncommitted entries, so that is a caller bug).
    pub(crate) fn check_truncate(&self, from: u64) -> Result<bool, WalError> {
        if let Some(purged) = self.purged {
            if from <= purged {
                return Err(WalError::TruncatePurged { from, purged });
            }
        }
        Ok(self.last_index().is_some_and(|last| from <= last))
    }

    pub(crate) fn truncate_from(&mut self, from: u64) {
        if self.entries.is_empty() {
            return;
        }
        let keep = from.saturating_sub(self.first);
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        self.entries.truncate(keep);
    }

    /// Returns whether purging up to `upto` changes anything.
    pub(crate) fn check_purge(&self, upto: u64) -> bool {
        self.purged.is_none_or(|p| upto > p)
    }

    pub(crate) fn purge_upto(&mut self, upto: u64, meta: &[u8]) {
        if !self.check_purge(upto) {
            return;
        }
        if !self.entries.is_empty() && self.first <= upto {
            // Count rather than step `first`, which would overflow at index u64::MAX.
            let covered = (upto - self.first).saturating_add(1);
            let drop =
                usize::try_from(covered).map_or(self.entries.len(), |c| c.min(self.entries.len()));
            self.entries.drain(..drop);
            if !self.entries.is_empty() {
                self.first += drop as u64;
            }
        }
        self.purged = Some(upto);
        self.purged_meta = Some(meta.to_vec());
    }

    pub(crate) fn get(&self, index: u64) -> Option<&[u8]> {
        let offset = index.checked_sub(self.first)?;
        let offset = usize::try_from(offset).ok()?;
        self.entries.get(offset).map(Vec::as_slice)
    }

    pub(crate) fn range(&self, from: u64, to_exclusive: u64) -> Vec<(u64, Vec<u8>)> {
        let Some(last) = self.last_index() else {
            return Vec::new();
        };
        let start = from.max(self.first);
        let end = to_exclusive.min(last.saturating_add(1));
        if start >= end {
            return Vec::new();
        }
        (start..end)
            .filter_map(|i| self.get(i).map(|p| (i, p.to_vec())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(first: u64, n: u64) -> LogState {
        let mut s = LogState::default();
        for i in (first..=u64::MAX).take(n as usize) {
            s.check_next(i).unwrap();
            s.push(i, i.to_le_bytes().to_vec());
        }
        s
    }

    #[test]
    fn empty_log_accepts_any_first_index_then_requires_contiguity() {
        let s = state_with(10, 3);
        assert_eq!((s.first_index(), s.last_index()), (Some(10), Some(12)));
        assert!(s.check_next(13).is_ok());
        assert!(matches!(
            s.check_next(15),
            Err(WalError::NonContiguous {
                expected: 13,
                got: 15
            })
        ));
    }

    #[test]
    fn purge_past_the_end_empties_and_bounds_the_next_index() {
        let mut s = state_with(1, 5);
        s.purge_upto(20, b"");
        assert_eq!(s.first_index(), None);
        assert_eq!(s.purged(), Some(20));
        assert!(matches!(
            s.check_next(20),
            Err(WalError::NonContiguous {
                expected: 21,
                got: 20
            })
        ));
        assert!(s.check_next(21).is_ok());
        assert!(s.check_next(500).is_ok());
    }

    #[test]
    fn truncate_and_range_clamp() {
        let mut s = state_with(5, 10);
        assert!(s.check_truncate(9).unwrap());
        s.truncate_from(9);
        assert_eq!(s.last_index(), Some(8));
        assert_eq!(
            s.range(0, 100).iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![5, 6, 7, 8]
        );
        assert!(!s.check_truncate(9).unwrap());
        s.purge_upto(6, b"");
        assert!(matches!(
            s.check_truncate(6),
            Err(WalError::TruncatePurged { from: 6, purged: 6 })
        ));
        assert_eq!(s.get(6), None);
        assert_eq!(s.get(7), Some(&7u64.to_le_bytes()[..]));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let mut s = state_with(u64::MAX - 1, 2);
        assert_eq!(s.last_index(), Some(u64::MAX));
        assert!(matches!(
            s.check_next(0),
            Err(WalError::IndexOverflow { last: u64::MAX })
        ));
        s.purge_upto(u64::MAX - 1, b"");
        assert_eq!(s.first_index(), Some(u64::MAX));
        s.purge_upto(u64::MAX, b"");
        assert_eq!(s.first_index(), None);
        assert!(matches!(
            s.check_next(5),
            Err(WalError::IndexOverflow { last: u64::MAX })
        ));
    }
}
