//! The Raft log on the segmented WAL. An append is written and readable at
//! once, and openraft is told it is flushed only after an fdatasync covers
//! it: a follower acknowledges an entry, and the leader counts its own copy
//! toward a quorum, only once it is on disk.
//!
//! The fdatasync runs on a flusher thread, not in openraft's core loop (group
//! commit): while the disk works, the core keeps accepting proposals and
//! replicating them, and the next sync covers everything written meanwhile.
//! On the leader its own fsync overlaps the followers'.
//!
//! A follower whose appends come one at a time (a quiet leader, one client)
//! syncs on the calling thread instead: its core has nothing else to do until
//! the append is durable, and the hand-offs to the flusher and back cost
//! 20–60 µs of its ~350–370 µs from receipt to reply (docs/adr/0019).
//! A quiet leader's append is synced on a runtime worker too, but only after
//! the tasks already queued have run: those send the append to the followers,
//! and waking the flusher first delayed them by ~15 µs. A later append that
//! comes before then takes it to the flusher.
//!
//! The committed index is not persisted (openraft's `save_committed` is left
//! at its default): persisting it would cost an extra fsync per commit, and a
//! restarted node learns the commit index from the leader within a heartbeat.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use aegis_wal::Wal;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::vote::RaftLeaderId;
use openraft::{OptionalSend, RaftLogReader};

use super::entry_cache::{EntryCache, CACHED_ENTRIES};
use super::types::{decode, encode, encode_into, Entry, LogId, NodeId, TypeConfig, Vote};
use crate::metrics::Metrics;

/// Bytes an encoded entry typically takes (a put of a short key and a
/// 256-byte value): a batch's buffer starts this large per entry.
const ENCODED_ENTRY_HINT: usize = 320;

const META_VOTE: &str = "vote";

#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Mutex<Wal>>,
    /// Changed only while `wal` is locked, right after the WAL (lock order: `wal`, then this);
    /// read on its own.
    cache: Arc<Mutex<EntryCache>>,
    flush: Arc<FlushQueue>,
    metrics: Metrics,
    /// This node: entries another node stamped are a follower's to log.
    own_id: NodeId,
}

#[derive(Default)]
struct FlushQueue {
    state: Mutex<Flushing>,
    wake: Condvar,
}

#[derive(Default)]
struct Flushing {
    /// Callbacks of appends that are written but not yet known to be durable.
    waiting: Vec<IOFlushed<TypeConfig>>,
    /// The flusher, or a worker, has taken callbacks and not yet reported them.
    syncing: bool,
    /// A leader's lone append, left for a runtime worker to sync once the
    /// replication it started has gone out. Older than anything in `waiting`:
    /// the flusher takes it first if a later append wakes it before then.
    deferred: Option<IOFlushed<TypeConfig>>,
    /// When the last sync ended, and how long it took.
    last_sync: Option<(Instant, Duration)>,
}

impl LogStore {
    /// The log of node `own_id`. Starts the flusher thread at nice value
    /// `flusher_nice` (0: as the caller's thread).
    pub fn new(wal: Wal, metrics: Metrics, flusher_nice: i32, own_id: NodeId) -> io::Result<Self> {
        let store = LogStore {
            wal: Arc::new(Mutex::new(wal)),
            cache: Arc::new(Mutex::new(EntryCache::new(CACHED_ENTRIES))),
            flush: Arc::new(FlushQueue::default()),
            metrics,
            own_id,
        };
        let wal = Arc::clone(&store.wal);
        let queue = Arc::downgrade(&store.flush);
        let metrics = store.metrics.clone();
        std::thread::Builder::new()
            .name("wal-flusher".into())
            .spawn(move || {
                prioritise(flusher_nice);
                flusher(wal, queue, metrics)
            })?;
        Ok(store)
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, Wal>> {
        self.wal
            .lock()
            .map_err(|_| io::Error::other("wal mutex poisoned"))
    }

    fn lock_cache(&self) -> io::Result<MutexGuard<'_, EntryCache>> {
        self.cache
            .lock()
            .map_err(|_| io::Error::other("entry cache mutex poisoned"))
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
        // The cache alone answers consistently: it changes only together with the WAL. A
        // change between the two locks only makes the WAL read newer.
        if let Some(entries) = self.lock_cache()?.range(start, end) {
            return Ok(entries);
        }
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
        let entries: Vec<Entry> = entries.into_iter().collect();
        // All entries into one buffer: encoding each into its own vector cost
        // several allocations per entry as it grew.
        let mut encoded = Vec::with_capacity(entries.len() * ENCODED_ENTRY_HINT);
        let mut ends = Vec::with_capacity(entries.len());
        for e in &entries {
            encoded = encode_into(e, encoded)?;
            ends.push((e.log_id.index(), encoded.len()));
        }
        let mut start = 0;
        let batch: Vec<(u64, &[u8])> = ends
            .iter()
            .map(|&(index, end)| {
                let payload = (index, &encoded[start..end]);
                start = end;
                payload
            })
            .collect();
        {
            let mut wal = self.lock()?;
            let mut cache = self.lock_cache()?;
            failpoint!("log_store::append::before");
            // A write into the page cache: cheap enough for the core loop. Queued under
            // the log lock, so the flusher never syncs ahead of a queued write.
            if let Err(e) = wal.append_unsynced(&batch) {
                cache.clear();
                let e = wal_err(e);
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
            let followed = entries
                .iter()
                .all(|e| *e.log_id.leader_id.node_id() != self.own_id);
            cache.extend(entries);
            drop(cache);
            timeline!("append", batch.first().map_or(0, |b| b.0));
            // Only this path pushes, and it holds the log lock: nothing can be
            // queued between the check and the sync.
            if self.flush.quiet()? {
                if followed {
                    return self.sync_here(&mut wal, callback);
                }
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    self.flush.defer(callback)?;
                    rt.spawn(sync_deferred(
                        Arc::clone(&self.wal),
                        Arc::clone(&self.flush),
                        self.metrics.clone(),
                    ));
                    return Ok(());
                }
            }
            self.flush.push(callback)?;
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index() + 1).unwrap_or(0);
        let mut wal = self.lock()?;
        let mut cache = self.lock_cache()?;
        let truncated = tokio::task::block_in_place(|| wal.truncate_from(from)).map_err(wal_err);
        match truncated {
            Ok(()) => cache.truncate_from(from),
            Err(_) => cache.clear(),
        }
        truncated
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let b = encode(&log_id)?;
        let mut wal = self.lock()?;
        let mut cache = self.lock_cache()?;
        // The purged log id rides in the purge record itself, so it cannot
        // disagree with the purge point after a crash.
        let purged = tokio::task::block_in_place(|| wal.purge_upto_with_meta(log_id.index(), &b))
            .map_err(wal_err);
        match purged {
            Ok(()) => cache.purge_upto(log_id.index()),
            Err(_) => cache.clear(),
        }
        purged
    }
}

impl LogStore {
    /// fdatasyncs on the calling thread and reports the append durable.
    /// Called with nothing queued or syncing, so every earlier callback has
    /// been reported and they stay in order.
    fn sync_here(&self, wal: &mut Wal, callback: IOFlushed<TypeConfig>) -> io::Result<()> {
        match measured_sync(wal.sync_point(), &self.metrics, 1) {
            Ok(took) => {
                // A poisoned queue fails the next push, which reports it.
                let _ = self.flush.synced(took);
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                wal.poison();
                let e = wal_err(e);
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }
}

/// Syncs a leader's deferred append on the runtime worker, after the tasks
/// already queued (the replication its append woke) have run; unless the
/// flusher took it first.
async fn sync_deferred(wal: Arc<Mutex<Wal>>, flush: Arc<FlushQueue>, metrics: Metrics) {
    // A yielded task runs after the worker next polls its driver; that can
    // happen mid-way through the queue (every 61 tasks), so twice.
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    let Some(callback) = flush.take_deferred() else {
        return;
    };
    let took = sync_and_report(&wal, vec![callback], &metrics);
    let _ = flush.sync_done(took);
}

fn queue_poisoned() -> io::Error {
    io::Error::other("flush queue poisoned")
}

impl FlushQueue {
    fn push(&self, callback: IOFlushed<TypeConfig>) -> io::Result<()> {
        self.state
            .lock()
            .map_err(|_| queue_poisoned())?
            .waiting
            .push(callback);
        self.wake.notify_one();
        Ok(())
    }

    /// Nothing is queued or syncing, and the last sync ended at least two
    /// sync lengths ago: appends are coming one at a time. Under load they
    /// come closer, and the flusher's group commit (a sync covering every
    /// append that arrived during the previous one) is worth the hand-offs.
    /// Two lengths, not one: at ~2,000 put/s one made a leader's worker sync
    /// while its members' replies came in (docs/adr/0019, 2026-12-04).
    fn quiet(&self) -> io::Result<bool> {
        let state = self.state.lock().map_err(|_| queue_poisoned())?;
        Ok(state.waiting.is_empty()
            && !state.syncing
            && state.deferred.is_none()
            && state
                .last_sync
                .is_none_or(|(ended, took)| ended.elapsed() >= took * 2))
    }

    /// Leaves a leader's lone append for a worker to sync (see `sync_deferred`).
    fn defer(&self, callback: IOFlushed<TypeConfig>) -> io::Result<()> {
        self.state.lock().map_err(|_| queue_poisoned())?.deferred = Some(callback);
        Ok(())
    }

    /// The deferred append, unless the flusher took it or is syncing (then it
    /// goes to the flusher, which must report it before anything queued later).
    fn take_deferred(&self) -> Option<IOFlushed<TypeConfig>> {
        let mut state = self.state.lock().ok()?;
        let cb = state.deferred.take()?;
        if state.syncing {
            state.waiting.insert(0, cb);
            self.wake.notify_one();
            return None;
        }
        state.syncing = true;
        Some(cb)
    }

    /// Records a sync that just ended on an appending thread.
    fn synced(&self, took: Duration) -> io::Result<()> {
        let mut state = self.state.lock().map_err(|_| queue_poisoned())?;
        state.last_sync = Some((Instant::now(), took));
        Ok(())
    }

    /// Records the sync of the callbacks the flusher (or a worker) took, once
    /// it has reported them.
    fn sync_done(&self, took: Duration) -> io::Result<()> {
        let mut state = self.state.lock().map_err(|_| queue_poisoned())?;
        state.last_sync = Some((Instant::now(), took));
        state.syncing = false;
        if !state.waiting.is_empty() {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Waits up to `patience` for callbacks and takes all of them; the
    /// flusher reports them before it calls [`sync_done`](Self::sync_done).
    fn take(&self, patience: Duration) -> Vec<IOFlushed<TypeConfig>> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        if state.waiting.is_empty() || state.syncing {
            state = match self.wake.wait_timeout(state, patience) {
                Ok((s, _)) => s,
                Err(_) => return Vec::new(),
            };
        }
        // While a worker syncs a deferred append, what queued meanwhile waits for it.
        if state.syncing || state.waiting.is_empty() {
            return Vec::new();
        }
        // A deferred append is older than everything queued after it.
        let mut batch: Vec<_> = state.deferred.take().into_iter().collect();
        batch.append(&mut state.waiting);
        state.syncing = true;
        batch
    }
}

/// Every write waits for the flusher, and it uses little CPU itself. An
/// fdatasync wakes it more than once (the page written back, then the cache
/// flushed); at the workers' priority, on a machine whose cores are busy,
/// each of those wake-ups waits for a worker to yield, and the sync ends
/// tens of microseconds later (docs/adr/0018).
fn prioritise(nice: i32) {
    if nice == 0 {
        return;
    }
    match crate::thread_priority::set_current_thread_nice(nice) {
        Ok(()) => tracing::debug!(nice, "log flusher priority set"),
        Err(e) => tracing::info!(
            "the log flusher runs at the process's priority: nice {nice} was refused ({e}); \
             it needs CAP_SYS_NICE (--wal-flusher-nice 0 does not ask)"
        ),
    }
}

/// The group-commit loop: take every callback queued so far, fdatasync once
/// outside the log lock (appends go on meanwhile), then report them all
/// flushed. Ends when the store is dropped.
fn flusher(wal: Arc<Mutex<Wal>>, queue: Weak<FlushQueue>, metrics: Metrics) {
    loop {
        let Some(q) = queue.upgrade() else {
            return;
        };
        let batch = q.take(Duration::from_millis(100));
        drop(q);
        if batch.is_empty() {
            continue;
        }
        let took = sync_and_report(&wal, batch, &metrics);
        // Only now may a follower sync on its own thread: the callbacks taken
        // above are all reported.
        if let Some(q) = queue.upgrade() {
            // A poisoned queue fails the next push, which reports it.
            let _ = q.sync_done(took);
        }
    }
}

/// fdatasyncs up to `point` (nothing to do without one) for `callbacks`
/// appends, with its metric, timeline marks and fault site.
#[cfg_attr(not(feature = "timeline"), allow(unused_variables))]
fn measured_sync(
    point: Option<aegis_wal::SyncPoint>,
    metrics: &Metrics,
    callbacks: usize,
) -> Result<Duration, aegis_wal::WalError> {
    timeline!("fsync_start", callbacks);
    let took = match point {
        Some(p) => p.sync()?,
        None => Duration::ZERO,
    };
    metrics.observe_fsync(took.as_secs_f64());
    timeline!("fsync_end", 0);
    failpoint!("log_store::append::after");
    Ok(took)
}

/// One group commit: fdatasyncs what is written and reports `batch`; returns
/// how long the sync took.
fn sync_and_report(
    wal: &Mutex<Wal>,
    batch: Vec<IOFlushed<TypeConfig>>,
    metrics: &Metrics,
) -> Duration {
    // Every write whose callback is in `batch` happened before this point.
    let point = match wal.lock() {
        Ok(w) => w.sync_point(),
        Err(_) => {
            fail_all(batch, "wal mutex poisoned");
            return Duration::ZERO;
        }
    };
    match measured_sync(point, metrics, batch.len()) {
        Ok(took) => {
            for cb in batch {
                cb.io_completed(Ok(()));
            }
            took
        }
        Err(e) => {
            if let Ok(mut w) = wal.lock() {
                w.poison();
            }
            fail_all(batch, &e.to_string());
            Duration::ZERO
        }
    }
}

fn fail_all(batch: Vec<IOFlushed<TypeConfig>>, why: &str) {
    for cb in batch {
        cb.io_completed(Err(io::Error::other(format!("log fsync failed: {why}"))));
    }
}

#[cfg(test)]
mod tests {
    use openraft::errors::ErrorSource;
    use openraft::testing::log::{StoreBuilder, Suite};
    use openraft::StorageError;
    use tempfile::TempDir;

    use super::*;
    use crate::raft::state_machine::SmStore;
    use aegis_wal::WalOptions;

    struct OnDisk;

    impl StoreBuilder<TypeConfig, LogStore, SmStore, TempDir> for OnDisk {
        async fn build(&self) -> Result<(TempDir, LogStore, SmStore), StorageError<TypeConfig>> {
            let err = |e: &dyn std::fmt::Display| StorageError::read(ErrorSource::from_string(e));
            let dir = tempfile::tempdir().map_err(|e| err(&e))?;
            let wal =
                Wal::open(&dir.path().join("wal"), WalOptions::default()).map_err(|e| err(&e))?;
            let log = LogStore::new(wal, Metrics::new(), 0, 1).map_err(|e| err(&e))?;
            let sm = SmStore::open(&dir.path().join("sm"), Metrics::new()).map_err(|e| err(&e))?;
            Ok((dir, log, sm))
        }
    }

    /// The flusher thread runs at the nice value it was given. Lowering a
    /// priority needs no privilege, so the test asks for a lower one than
    /// its own and looks for a flusher thread at exactly that value.
    #[cfg(target_os = "linux")]
    #[test]
    fn flusher_runs_at_the_given_nice_value() {
        use crate::thread_priority::tests::{current_thread_nice, nice_of};
        let own = current_thread_nice();
        let wanted = (own + 4).min(19);
        assert_ne!(
            wanted, own,
            "the test process already runs at the lowest priority"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::open(&dir.path().join("wal"), WalOptions::default()).expect("wal");
        let _log = LogStore::new(wal, Metrics::new(), wanted, 1).expect("log store");
        let flusher_at_wanted = || {
            std::fs::read_dir("/proc/self/task")
                .expect("own threads")
                .filter_map(Result::ok)
                .any(|t| {
                    let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                    comm.trim() == "wal-flusher" && nice_of(&t.path().join("stat")) == Some(wanted)
                })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !flusher_at_wanted() {
            assert!(
                std::time::Instant::now() < deadline,
                "no wal-flusher thread at nice {wanted}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stamped_by(node_id: NodeId, index: u64) -> Entry {
        use openraft::entry::RaftEntry;
        use openraft::impls::leader_id_adv::LeaderId;
        let cmd = aegis_state_machine::Command {
            leader_ts_ms: index,
            op: aegis_state_machine::Op::Tick,
        };
        Entry::new_normal(
            LogId::new(LeaderId { term: 1, node_id }, index),
            Arc::new(cmd),
        )
    }

    /// A fresh log of node 1, with its directory.
    fn log_of_node_1() -> (TempDir, LogStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::open(&dir.path().join("wal"), WalOptions::default()).expect("wal");
        let log = LogStore::new(wal, Metrics::new(), 0, 1).expect("log store");
        (dir, log)
    }

    /// A follower's append that comes alone is durable when `append`
    /// returns: it was synced on the calling thread, not handed to the
    /// flusher.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_followers_lone_append_is_synced_before_append_returns() {
        let (_dir, mut log) = log_of_node_1();
        let (tx, mut rx) = {
            use openraft::type_config::TypeConfigExt;
            TypeConfig::oneshot()
        };
        log.append([stamped_by(2, 1)], IOFlushed::signal(tx))
            .await
            .expect("append");
        let reported = rx.try_recv().expect("reported before append returned");
        assert!(reported.is_ok(), "{reported:?}");
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_log_id.map(|l| l.index()), Some(1));
    }

    /// Appends that come while a sync is queued, deferred, running or just
    /// ended wait for the flusher.
    #[test]
    fn only_a_quiet_queue_lets_the_caller_sync() {
        let q = FlushQueue::default();
        assert!(q.quiet().expect("quiet"), "a fresh queue");
        q.push(IOFlushed::noop()).expect("push");
        assert!(!q.quiet().expect("quiet"), "a callback is queued");
        assert_eq!(q.take(Duration::ZERO).len(), 1);
        assert!(!q.quiet().expect("quiet"), "the flusher is syncing");
        q.sync_done(Duration::from_secs(3600)).expect("done");
        assert!(!q.quiet().expect("quiet"), "the last sync ended just now");
        q.sync_done(Duration::ZERO).expect("done");
        assert!(q.quiet().expect("quiet"), "the flusher is idle again");
        q.defer(IOFlushed::noop()).expect("defer");
        assert!(!q.quiet().expect("quiet"), "an append is deferred");
    }

    /// A leader's lone append is synced on the worker once the tasks queued
    /// behind its `append` have run, not before them and not by the flusher.
    /// On a runtime like the node's: one worker, its LIFO slot off (ADR-0013).
    #[test]
    fn a_leaders_lone_append_is_synced_after_the_queued_tasks() {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(1).enable_all();
        #[cfg(tokio_unstable)]
        builder.disable_lifo_slot();
        let rt = builder.build().expect("runtime");
        rt.block_on(leaders_lone_append());
    }

    async fn leaders_lone_append() {
        let (_dir, mut log) = log_of_node_1();
        let (tx, mut rx) = {
            use openraft::type_config::TypeConfigExt;
            TypeConfig::oneshot()
        };
        // On the worker, as openraft's core runs: the task spawned after
        // `append` stands for the replication it wakes.
        let queued = tokio::spawn(async move {
            log.append([stamped_by(1, 1)], IOFlushed::signal(tx))
                .await
                .expect("append");
            tokio::spawn(async move {
                match rx.try_recv() {
                    Ok(r) => (true, Some(r)),
                    Err(_) => (false, rx.await.ok()),
                }
            })
            .await
            .expect("queued task")
        });
        let (early, reported) = tokio::time::timeout(Duration::from_secs(10), queued)
            .await
            .expect("reported within 10 s")
            .expect("outer task");
        assert!(
            !early,
            "synced before the task queued behind the append ran"
        );
        assert!(matches!(reported, Some(Ok(()))), "{reported:?}");
    }

    /// A later append takes a deferred one to the flusher, ahead of itself;
    /// the flusher leaves a deferred append alone otherwise.
    #[test]
    fn a_later_append_takes_the_deferred_one_to_the_flusher_first() {
        use openraft::type_config::TypeConfigExt;
        let q = FlushQueue::default();
        let (first_tx, mut first_rx) = TypeConfig::oneshot();
        q.defer(IOFlushed::signal(first_tx)).expect("defer");
        assert!(q.take(Duration::ZERO).is_empty(), "only a deferred append");
        q.push(IOFlushed::noop()).expect("push");
        let mut batch = q.take(Duration::ZERO);
        assert_eq!(batch.len(), 2);
        assert!(q.take_deferred().is_none(), "the flusher has it");
        batch.remove(0).io_completed(Ok(()));
        assert!(
            matches!(first_rx.try_recv(), Ok(Ok(()))),
            "the deferred append leads the batch"
        );
    }

    /// openraft's own storage conformance suite: appends, reads, truncation, purge, votes and
    /// membership, against the WAL-backed log (with its entry cache) and the state machine.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_openraft_storage_suite() {
        Suite::test_all(OnDisk)
            .await
            .expect("openraft storage suite");
    }
}
