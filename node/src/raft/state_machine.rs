//! openraft's view of the deterministic state machine: applies committed
//! entries, publishes what each one produced, and keeps snapshots on disk.
//!
//! The state machine itself lives in memory; what makes it durable is the
//! Raft log plus the latest snapshot file, from which a restarted node
//! rebuilds it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use aegis_state_machine::{Applied, StateMachine};
use futures::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::{broadcast, watch};

use super::types::{
    decode, encode, LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig,
};
use crate::leader_spin::MAX_IN_FLIGHT;
use crate::metrics::{Metrics, SnapshotPhases};

const SNAPSHOT_FILE: &str = "snapshot.bin";

/// After an apply that answered a few waiting clients, lets their tasks
/// (each request's stream, then its connection's write) run before this
/// one returns to openraft, whose core is woken as it does. "A few" is the
/// leader spin's light load: more means a loaded leader, whose worker always
/// has a queue and gains nothing from the order. With one
/// runtime worker per node the run queue is first come, first served: the
/// core, woken first, otherwise took its turn (~5–12 µs) between the answer
/// being ready and its write to the client (docs/adr/0023).
async fn let_answers_go_first(answered: usize) {
    if (1..=MAX_IN_FLIGHT).contains(&answered) {
        tokio::task::yield_now().await;
    }
}

/// What apply publishes to watchers and lock waiters on this replica.
#[derive(Debug, Clone)]
pub enum SmEvent {
    Applied(Arc<Applied>),
    /// A snapshot replaced the state wholesale; streams derived from the
    /// applied sequence must resynchronise from the state machine.
    Reset {
        index: u64,
    },
}

struct Progress {
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

pub struct SmShared {
    sm: RwLock<StateMachine>,
    progress: Mutex<Progress>,
    events: broadcast::Sender<SmEvent>,
    applied_index: watch::Sender<u64>,
    dir: PathBuf,
    current: Mutex<Option<Snapshot>>,
    metrics: Metrics,
    /// The last state digest, shared by everyone who asked while it was
    /// being computed (see `digest`).
    digest: tokio::sync::Mutex<DigestMemo>,
    digests_computed: AtomicU64,
}

#[derive(Default)]
struct DigestMemo {
    /// How many digests were computed before this one was stored.
    generation: u64,
    index: u64,
    digest: String,
}

#[derive(Clone)]
pub struct SmStore {
    shared: Arc<SmShared>,
}

fn poisoned() -> io::Error {
    io::Error::other("state machine lock poisoned")
}

impl SmStore {
    /// Opens the snapshot directory and restores the latest snapshot, if any.
    pub fn open(dir: &Path, metrics: Metrics) -> io::Result<SmStore> {
        std::fs::create_dir_all(dir)?;
        let mut sm = StateMachine::new();
        let mut progress = Progress {
            last_applied: None,
            membership: StoredMembership::default(),
        };
        let mut current = None;
        let path = dir.join(SNAPSHOT_FILE);
        if path.exists() {
            let bytes = std::fs::read(&path)?;
            // As one byte string, not element by element.
            let (meta, data): (SnapshotMeta, serde_bytes::ByteBuf) = decode(&bytes)?;
            sm = StateMachine::from_snapshot(&data)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            progress.last_applied = meta.last_log_id;
            progress.membership = meta.last_membership.clone();
            metrics.snapshot_held(data.len());
            current = Some(Snapshot {
                meta,
                snapshot: data.into_vec().into(),
            });
        }
        let (events, _) = broadcast::channel(4096);
        let (applied_index, _) = watch::channel(sm.applied_index());
        Ok(SmStore {
            shared: Arc::new(SmShared {
                sm: RwLock::new(sm),
                progress: Mutex::new(progress),
                events,
                applied_index,
                dir: dir.to_path_buf(),
                current: Mutex::new(current),
                metrics,
                digest: tokio::sync::Mutex::new(DigestMemo::default()),
                digests_computed: AtomicU64::new(0),
            }),
        })
    }

    pub fn shared(&self) -> Arc<SmShared> {
        self.shared.clone()
    }
}

impl SmShared {
    /// Runs `f` against the current state under a read lock.
    pub fn read<T>(&self, f: impl FnOnce(&StateMachine) -> T) -> T {
        let guard = match self.sm.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&guard)
    }

    /// The state digest and the applied index it describes.
    ///
    /// Hashing a large state is slow, and status probes may ask for it many
    /// times a second: one computation runs at a time, off the async
    /// workers, on a copy taken under the read lock so apply is held up only
    /// for the copy. Whoever asked while it ran gets its result, and a
    /// digest at the still-current index is reused, so probes cannot pile
    /// up hashing work on the node.
    pub async fn digest(self: &Arc<Self>) -> io::Result<(String, u64)> {
        let asked_after = self.digests_computed.load(Ordering::Acquire);
        let mut memo = self.digest.lock().await;
        // The published index: no need to take the state lock to compare.
        let current = *self.applied_index.borrow();
        let fresh = memo.generation > asked_after;
        let unchanged = memo.generation > 0 && memo.index == current;
        if !(fresh || unchanged) {
            let shared = self.clone();
            let (digest, index) = tokio::task::spawn_blocking(move || {
                let state = shared.read(|sm| sm.clone());
                (state.digest(), state.applied_index())
            })
            .await
            .map_err(|e| io::Error::other(format!("digest task failed: {e}")))?;
            memo.generation = self.digests_computed.fetch_add(1, Ordering::AcqRel) + 1;
            memo.index = index;
            memo.digest = digest;
        }
        Ok((memo.digest.clone(), memo.index))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SmEvent> {
        self.events.subscribe()
    }

    pub fn applied_index(&self) -> watch::Receiver<u64> {
        self.applied_index.subscribe()
    }

    /// Writes the file `open` reads: the postcard encoding of `(meta, data)`.
    /// The header is encoded on its own and the data written after it, so
    /// a state of many megabytes is not copied into a second buffer.
    fn write_snapshot_file(&self, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
        let header = snapshot_file_header(meta, data.len())?;
        let tmp = self.dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&header)?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(SNAPSHOT_FILE))?;
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

/// What precedes the data in the snapshot file: the metadata, then the data's
/// length as postcard prefixes a byte sequence (the same varint as a `u64`).
fn snapshot_file_header(meta: &SnapshotMeta, len: usize) -> io::Result<Vec<u8>> {
    encode(&(meta, len as u64))
}

impl RaftSnapshotBuilder<TypeConfig> for SmStore {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let shared = self.shared.clone();
        // The last snapshot's size, plus room to grow: encoding then fills
        // one buffer instead of doubling and copying its way up to the size.
        let size_hint = match &*shared.current.lock().map_err(|_| poisoned())? {
            Some(s) => s.snapshot.len() + s.snapshot.len() / 8 + 4096,
            None => 4096,
        };
        // Encoding a large state takes long: let the runtime move its other
        // tasks off this worker meanwhile, and encode a copy, so apply (which
        // needs the write lock) waits only for the copy.
        let mut phases = SnapshotPhases::default();
        let (meta, data) = tokio::task::block_in_place(|| {
            let started = Instant::now();
            // Both locks together, so the metadata describes exactly the
            // state copied.
            let (state, meta) = {
                let sm = shared.sm.read().map_err(|_| poisoned())?;
                let progress = shared.progress.lock().map_err(|_| poisoned())?;
                let meta = SnapshotMeta {
                    last_log_id: progress.last_applied,
                    last_membership: progress.membership.clone(),
                };
                (sm.clone(), meta)
            };
            phases.copy = started.elapsed();
            let data = state
                .to_snapshot_with_capacity(size_hint)
                .map_err(|e| io::Error::other(e.to_string()))?;
            phases.encode = started.elapsed() - phases.copy;
            Ok::<_, io::Error>((meta, data))
        })?;
        let started = Instant::now();
        tokio::task::block_in_place(|| shared.write_snapshot_file(&meta, &data))?;
        phases.write = started.elapsed();
        shared.metrics.observe_snapshot_built(&phases, data.len());
        let snap = Snapshot {
            meta,
            snapshot: data.into(),
        };
        *shared.current.lock().map_err(|_| poisoned())? = Some(snap.clone());
        Ok(snap)
    }
}

impl RaftStateMachine<TypeConfig> for SmStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SmStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let p = self.shared.progress.lock().map_err(|_| poisoned())?;
        Ok((p.last_applied, p.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut answered = 0;
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let index = entry.log_id.index();
            timeline!("apply", index);
            failpoint!("state_machine::apply::before");
            let applied = {
                let mut sm = self.shared.sm.write().map_err(|_| poisoned())?;
                let mut progress = self.shared.progress.lock().map_err(|_| poisoned())?;
                let applied = match entry.payload {
                    EntryPayload::Normal(ref cmd) => Some(Arc::new(sm.apply(index, cmd))),
                    EntryPayload::Blank => {
                        sm.apply_marker(index, true);
                        None
                    }
                    EntryPayload::Membership(ref m) => {
                        sm.apply_marker(index, false);
                        progress.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                        None
                    }
                };
                progress.last_applied = Some(entry.log_id);
                applied
            };
            if let Some(a) = &applied {
                self.shared.metrics.observe_applied(a);
                // No receiver is fine: nobody is watching.
                let _ = self.shared.events.send(SmEvent::Applied(a.clone()));
            }
            self.shared.applied_index.send_replace(index);
            if let Some(r) = responder {
                r.send(applied.map(|a| a.without_effects()));
                timeline!("responded", index);
                answered += 1;
            }
        }
        let_answers_go_first(answered).await;
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        failpoint!("state_machine::install_snapshot");
        let restored = StateMachine::from_snapshot(&snapshot)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let shared = self.shared.clone();
        tokio::task::block_in_place(|| shared.write_snapshot_file(meta, &snapshot))?;
        let index = restored.applied_index();
        {
            let mut sm = shared.sm.write().map_err(|_| poisoned())?;
            let mut progress = shared.progress.lock().map_err(|_| poisoned())?;
            *sm = restored;
            progress.last_applied = meta.last_log_id;
            progress.membership = meta.last_membership.clone();
        }
        shared.metrics.snapshot_held(snapshot.len());
        *shared.current.lock().map_err(|_| poisoned())? = Some(Snapshot {
            meta: meta.clone(),
            snapshot,
        });
        let _ = shared.events.send(SmEvent::Reset { index });
        shared.applied_index.send_replace(index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self.shared.current.lock().map_err(|_| poisoned())?.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_state_machine::{Command, Op, PutOp};

    /// Whether a task woken before `let_answers_go_first(answered)` has run
    /// by the time it returns, on a one-thread runtime like a node's.
    fn answer_ran_first(answered: usize) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        rt.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = Arc::clone(&ran);
            let waiter = tokio::spawn(async move {
                let _ = rx.await;
                flag.store(true, Ordering::SeqCst);
            });
            // Let the waiter reach its await, as a request's task has.
            tokio::task::yield_now().await;
            let _ = tx.send(());
            let_answers_go_first(answered).await;
            let first = ran.load(Ordering::SeqCst);
            waiter.await.expect("the waiter finishes");
            first
        })
    }

    #[test]
    fn a_few_answers_run_before_apply_returns() {
        assert!(answer_ran_first(1));
        assert!(answer_ran_first(MAX_IN_FLIGHT));
    }

    #[test]
    fn no_answer_or_many_do_not_yield() {
        assert!(!answer_ran_first(0));
        assert!(!answer_ran_first(MAX_IN_FLIGHT + 1));
    }

    fn store_with_keys(dir: &Path, keys: u64) -> Arc<SmShared> {
        let store = SmStore::open(dir, Metrics::new()).expect("open the snapshot directory");
        let shared = store.shared();
        {
            let mut sm = shared.sm.write().expect("fresh lock");
            for i in 1..=keys {
                let cmd = Command {
                    leader_ts_ms: i,
                    op: Op::Put(PutOp {
                        key: format!("k{i}").into_bytes(),
                        value: vec![7; 256],
                        session_id: 0,
                        prev_kv: false,
                        guard: None,
                    }),
                };
                assert!(sm.apply(i, &cmd).result.is_ok());
            }
        }
        shared.applied_index.send_replace(keys);
        shared
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_digest_requests_share_one_computation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shared = store_with_keys(dir.path(), 2_000);
        let asks = (0..32).map(|_| {
            let s = shared.clone();
            tokio::spawn(async move { s.digest().await })
        });
        let answers: Vec<(String, u64)> = futures::future::join_all(asks)
            .await
            .into_iter()
            .map(|r| r.expect("task").expect("digest"))
            .collect();
        let expected = shared.read(|sm| (sm.digest(), sm.applied_index()));
        assert!(answers.iter().all(|a| *a == expected), "{answers:?}");
        assert_eq!(shared.digests_computed.load(Ordering::Acquire), 1);

        // A new index gets a new digest.
        {
            let mut sm = shared.sm.write().expect("lock");
            let cmd = Command {
                leader_ts_ms: 9_999,
                op: Op::Tick,
            };
            sm.apply(2_001, &cmd);
        }
        shared.applied_index.send_replace(2_001);
        let (digest, index) = shared.digest().await.expect("digest");
        assert_eq!(index, 2_001);
        assert_ne!(digest, expected.0);
        assert_eq!(shared.digests_computed.load(Ordering::Acquire), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_built_snapshot_is_the_file_a_restart_restores() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shared = store_with_keys(dir.path(), 500);
        shared.progress.lock().expect("lock").last_applied =
            Some(openraft::testing::log_id::<TypeConfig>(1, 1, 500));
        let mut store = SmStore {
            shared: shared.clone(),
        };
        let built = store.build_snapshot().await.expect("build");
        // A second build is sized from the first and must encode the same.
        let again = store.build_snapshot().await.expect("build again");
        assert_eq!(built.snapshot, again.snapshot);

        // The file is the postcard encoding of (meta, data), as earlier
        // versions wrote it with one `encode`.
        let file = std::fs::read(dir.path().join(SNAPSHOT_FILE)).expect("read the file");
        let (meta, data): (SnapshotMeta, Vec<u8>) = decode(&file).expect("decode the file");
        assert_eq!(meta, built.meta);
        assert_eq!(data, built.snapshot.as_ref());
        assert_eq!(
            file,
            encode(&(&built.meta, data.as_slice())).expect("encode")
        );

        let reopened = SmStore::open(dir.path(), Metrics::new()).expect("reopen");
        let restored = reopened.shared();
        assert_eq!(
            restored.read(|sm| sm.digest()),
            shared.read(|sm| sm.digest())
        );
        let current = reopened
            .clone()
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("a snapshot");
        assert_eq!(current.snapshot, built.snapshot);
        assert_eq!(current.meta, built.meta);
    }
}
