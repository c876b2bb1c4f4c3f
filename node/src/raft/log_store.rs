//! The Raft log on the segmented WAL: an append returns only after
//! fdatasync, so an entry a follower acknowledges is on its disk.
//!
//! The committed index is not persisted (openraft's `save_committed` is left
//! at its default): persisting it would cost an extra fsync per commit, and a
//! restarted node learns the commit index from the leader within a heartbeat.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

use aegis_wal::Wal;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use super::types::{decode, encode, Entry, LogId, TypeConfig, Vote};
use crate::metrics::Metrics;

const META_VOTE: &str = "vote";

#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Mutex<Wal>>,
    metrics: Metrics,
}

impl LogStore {
    pub fn new(wal: Wal, metrics: Metrics) -> Self {
        LogStore {
            wal: Arc::new(Mutex::new(wal)),
            metrics,
        }
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, Wal>> {
        self.wal
            .lock()
            .map_err(|_| io::Error::other("wal mutex poisoned"))
    }

    fn last_log_id(wal: &Wal) -> io::Result<Option<LogId>> {
        match wal.last_index() {
            None => Ok(None),
            Some(i) => match wal.get(i) {
                Some(b) => Ok(Some(decode::<Entry>(b)?.log_id)),
                None => Ok(None),
            },
        }
    }
}

fn wal_err(e: aegis_wal::WalError) -> io::Error {
    io::Error::other(e)
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = bounds(&range);
        let wal = self.lock()?;
        wal.range(start, end)
            .into_iter()
            .map(|(_, b)| decode::<Entry>(&b))
            .collect()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        let wal = self.lock()?;
        wal.get_meta(META_VOTE).map(|b| decode(&b)).transpose()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let wal = self.lock()?;
        let last = Self::last_log_id(&wal)?;
        let purged: Option<LogId> = wal.purged_meta().map(decode).transpose()?;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let b = encode(vote)?;
        let mut wal = self.lock()?;
        tokio::task::block_in_place(|| wal.put_meta(META_VOTE, &b)).map_err(wal_err)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index(), encode(&e)?)))
            .collect::<io::Result<_>>()?;
        let res = {
            let mut wal = self.lock()?;
            let batch: Vec<(u64, &[u8])> =
                encoded.iter().map(|(i, b)| (*i, b.as_slice())).collect();
            failpoint!("log_store::append::before");
            let r = tokio::task::block_in_place(|| wal.append(&batch)).map_err(wal_err);
            failpoint!("log_store::append::after");
            self.metrics.observe_fsync(wal.last_sync_seconds());
            r
        };
        match res {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index() + 1).unwrap_or(0);
        let mut wal = self.lock()?;
        tokio::task::block_in_place(|| wal.truncate_from(from)).map_err(wal_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let b = encode(&log_id)?;
        let mut wal = self.lock()?;
        // The purged log id rides in the purge record itself, so it cannot
        // disagree with the purge point after a crash.
        tokio::task::block_in_place(|| wal.purge_upto_with_meta(log_id.index(), &b))
            .map_err(wal_err)
    }
}
