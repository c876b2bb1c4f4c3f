use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{IoContext, WalError};
use crate::frame::{Record, HEADER_LEN, MAX_PAYLOAD};
use crate::fsutil;
use crate::log_state::LogState;
use crate::meta::MetaStore;
use crate::reclaim;
use crate::segment::{self, MAGIC};

/// Tuning knobs for [`Wal::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// Start a new segment file once the current one has reached this size. A batch is never
    /// split, so a segment can exceed this by up to one batch.
    pub segment_bytes: u64,
    /// fsync log writes and segment creation/deletion. `false` gives no durability at all and
    /// exists only for benchmarks. Metadata writes are always synced.
    pub sync: bool,
    /// Keep this many bytes of zeros written ahead of the records (never past
    /// `segment_bytes`). An fdatasync of a write that grows the file must also write the
    /// inode, a second synchronous disk write; a write into bytes already there needs only
    /// the data and the cache flush. `0` appends at the end of the file instead.
    pub preallocate_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 * 1024 * 1024,
            sync: true,
            preallocate_bytes: 1024 * 1024,
        }
    }
}

/// What [`Wal::open`] had to repair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Set when the end of the last segment held a partial or damaged frame (a write that
    /// was never acknowledged) and was cut off.
    pub torn_tail: Option<TornTail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    /// The segment was truncated to this length.
    pub offset: u64,
    pub bytes_dropped: u64,
    pub reason: &'static str,
}

#[derive(Debug)]
struct SegmentInfo {
    start: u64,
    path: PathBuf,
    /// Highest entry index ever written to this segment (including entries later truncated).
    /// Used to decide when the whole file is behind the purge point.
    max_entry: Option<u64>,
}

#[derive(Debug)]
struct Active {
    /// Shared with [`SyncPoint`]s so an fdatasync can run without the writer's lock.
    file: Arc<File>,
    /// Where the next record goes.
    len: u64,
    /// The file's length: records, then the zeros written ahead of them.
    allocated: u64,
}

/// A handle on the active segment for an fdatasync taken outside the writer's lock (group
/// commit: appends keep going while the disk works). It covers every byte written before
/// [`Wal::sync_point`] was called; bytes in an earlier segment were synced when that segment
/// was closed.
#[derive(Debug, Clone)]
pub struct SyncPoint {
    file: Arc<File>,
    path: PathBuf,
}

impl SyncPoint {
    /// fdatasyncs the segment and returns how long it took. On error the log must be
    /// [`poisoned`](Wal::poison): the page cache may no longer match the disk.
    pub fn sync(&self) -> Result<Duration, WalError> {
        let started = Instant::now();
        self.file.sync_data().at(&self.path)?;
        Ok(started.elapsed())
    }
}

/// A segmented, append-only write-ahead log. Single writer: wrap it in a mutex or give it a
/// dedicated thread. Every mutating call returns only once its record is on stable storage.
///
/// All live payloads are held in memory (see the crate docs).
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    state: LogState,
    segments: Vec<SegmentInfo>,
    /// Write handle on the last segment; `None` until the first record is written.
    active: Option<Active>,
    meta: MetaStore,
    last_sync_seconds: f64,
    poisoned: bool,
    recovery: Recovery,
}

impl Wal {
    /// Opens the log in `dir`, creating it if needed, and replays every segment.
    ///
    /// A torn tail of the last segment (a partial frame, or a damaged final frame) is cut off
    /// and reported in [`Wal::recovery`]; any other damage is [`WalError::Corrupt`].
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        fsutil::create_dir_durable(dir)?;
        let meta = MetaStore::open(dir.join("meta"))?;
        let mut state = LogState::default();
        let mut segments = Vec::new();
        let mut recovery = Recovery::default();

        reclaim::release(reclaim::leftovers(dir).at(dir)?);
        let listed = segment::list(dir)?;
        let count = listed.len();
        let mut last_len = 0;
        let mut last_file_len = 0;
        for (i, (start, path)) in listed.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let bytes = fs::read(&path).at(&path)?;
            let scan = segment::scan(&path, &bytes, is_last)?;
            let mut max_entry = None;
            for (offset, record) in scan.records {
                replay(&mut state, &record).map_err(|_| WalError::Corrupt {
                    segment: path.clone(),
                    offset,
                    reason: "record does not continue the log",
                })?;
                if let Record::Entry { index, .. } = record {
                    max_entry = max_entry.max(Some(index));
                }
            }
            last_len = scan.end;
            last_file_len = bytes.len() as u64;
            if let Some(tail) = scan.tail {
                cut_tail(&path, tail.valid_len)?;
                recovery.torn_tail = Some(TornTail {
                    segment: path.clone(),
                    offset: tail.valid_len,
                    bytes_dropped: last_file_len.saturating_sub(tail.valid_len),
                    reason: tail.reason,
                });
                last_len = tail.valid_len.max(MAGIC.len() as u64);
                last_file_len = last_len;
            }
            segments.push(SegmentInfo {
                start,
                path,
                max_entry,
            });
        }

        let active = match segments.last() {
            Some(last) => {
                let file = open_for_write(&last.path)?;
                if opts.sync {
                    // The previous process may have died between a write and its fdatasync.
                    // Replay has just served those bytes from the page cache, so make them
                    // durable before anyone acts on them, along with the segment names.
                    file.sync_all().at(&last.path)?;
                    fsutil::sync_dir(dir)?;
                }
                Some(Active {
                    file: Arc::new(file),
                    len: last_len,
                    allocated: last_file_len,
                })
            }
            None => None,
        };
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            state,
            segments,
            active,
            meta,
            last_sync_seconds: 0.0,
            poisoned: false,
            recovery,
        })
    }

    /// Appends entries with consecutive indexes that continue the log (or, on an empty log,
    /// start anywhere past the purge point). One write and one fdatasync for the whole batch;
    /// returns once the batch is durable.
    pub fn append(&mut self, entries: &[(u64, &[u8])]) -> Result<(), WalError> {
        self.append_unsynced(entries)?;
        if let Some(point) = self.sync_point() {
            match point.sync() {
                Ok(took) => self.last_sync_seconds = took.as_secs_f64(),
                Err(e) => {
                    self.poisoned = true;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Like [`append`](Self::append) but without the fdatasync: the entries are written and
    /// readable, and durable only once a [`SyncPoint`] taken afterwards has synced (or any
    /// later durable call has returned). Lets a caller acknowledge many appends with one sync.
    pub fn append_unsynced(&mut self, entries: &[(u64, &[u8])]) -> Result<(), WalError> {
        self.check_usable()?;
        let Some(&(first, _)) = entries.first() else {
            return Ok(());
        };
        self.state.check_next(first)?;
        let mut buf = Vec::with_capacity(entries.iter().map(|(_, p)| HEADER_LEN + p.len()).sum());
        let mut prev: Option<u64> = None;
        for &(index, payload) in entries {
            if let Some(p) = prev {
                let expected = p
                    .checked_add(1)
                    .ok_or(WalError::IndexOverflow { last: p })?;
                if index != expected {
                    return Err(WalError::NonContiguous {
                        expected,
                        got: index,
                    });
                }
            }
            if payload.len() > MAX_PAYLOAD {
                return Err(WalError::PayloadTooLarge {
                    index,
                    len: payload.len(),
                    max: MAX_PAYLOAD,
                });
            }
            Record::Entry { index, payload }.encode_into(&mut buf);
            prev = Some(index);
        }
        let last = prev.unwrap_or(first);

        let roll = match &self.active {
            Some(active) => active.len >= self.opts.segment_bytes,
            None => true,
        };
        if roll {
            self.roll(first)?;
        }
        self.write(&buf, false)?;
        if let Some(seg) = self.segments.last_mut() {
            seg.max_entry = seg.max_entry.max(Some(last));
        }
        for &(index, payload) in entries {
            self.state.push(index, payload.to_vec());
        }
        Ok(())
    }

    /// Removes every entry with index >= `from` (a Raft log conflict). Durable on return.
    /// Truncating below the purge point is an error; truncating past the end is a no-op.
    pub fn truncate_from(&mut self, from: u64) -> Result<(), WalError> {
        self.check_usable()?;
        if !self.state.check_truncate(from)? {
            return Ok(());
        }
        let mut buf = Vec::new();
        Record::Truncate { from }.encode_into(&mut buf);
        self.write_durable(&buf)?;
        self.state.truncate_from(from);
        Ok(())
    }

    /// Marks entries <= `upto` as purged and deletes segment files that hold nothing else.
    /// `upto` may lie past the last entry (after installing a snapshot). Durable on return.
    pub fn purge_upto(&mut self, upto: u64) -> Result<(), WalError> {
        self.purge_upto_with_meta(upto, &[])
    }

    /// Like [`purge_upto`](Self::purge_upto), also storing `meta` (e.g. the purged entry's
    /// Raft log id) in the same durable record, so the purge point and its description can
    /// never disagree after a crash. Read it back with [`purged_meta`](Self::purged_meta).
    pub fn purge_upto_with_meta(&mut self, upto: u64, meta: &[u8]) -> Result<(), WalError> {
        self.check_usable()?;
        if !self.state.check_purge(upto) {
            return Ok(());
        }
        if meta.len() > MAX_PAYLOAD {
            return Err(WalError::PayloadTooLarge {
                index: upto,
                len: meta.len(),
                max: MAX_PAYLOAD,
            });
        }
        if self.active.is_none() {
            self.roll(upto.saturating_add(1))?;
        }
        let mut buf = Vec::new();
        Record::Purge { upto, meta }.encode_into(&mut buf);
        self.write_durable(&buf)?;
        self.state.purge_upto(upto, meta);
        self.delete_purged_segments(upto)
    }

    /// A handle to fdatasync everything written so far without holding `&mut self`; `None`
    /// when syncing is off or nothing was ever written.
    pub fn sync_point(&self) -> Option<SyncPoint> {
        if !self.opts.sync {
            return None;
        }
        let active = self.active.as_ref()?;
        let seg = self.segments.last()?;
        Some(SyncPoint {
            file: Arc::clone(&active.file),
            path: seg.path.clone(),
        })
    }

    /// Refuses every later write: a [`SyncPoint::sync`] failed, so what the page cache holds
    /// may not be what the disk holds.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    pub fn get(&self, index: u64) -> Option<&[u8]> {
        self.state.get(index)
    }

    /// Entries in `[from, to_exclusive)` that are present, in order.
    pub fn range(&self, from: u64, to_exclusive: u64) -> Vec<(u64, Vec<u8>)> {
        self.state.range(from, to_exclusive)
    }

    pub fn first_index(&self) -> Option<u64> {
        self.state.first_index()
    }

    pub fn last_index(&self) -> Option<u64> {
        self.state.last_index()
    }

    /// Number of live (unpurged, untruncated) entries.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.len() == 0
    }

    pub fn purged_upto(&self) -> Option<u64> {
        self.state.purged()
    }

    /// The `meta` given to the latest purge; empty if purged with [`purge_upto`](Self::purge_upto).
    pub fn purged_meta(&self) -> Option<&[u8]> {
        self.state.purged_meta()
    }

    /// Stores a small value atomically under `dir/meta/<name>`. Names are 1-128 characters
    /// of `[A-Za-z0-9._-]` not starting with a dot.
    pub fn put_meta(&mut self, name: &str, value: &[u8]) -> Result<(), WalError> {
        self.meta.put(name, value)
    }

    pub fn get_meta(&self, name: &str) -> Option<Vec<u8>> {
        self.meta.get(name).map(<[u8]>::to_vec)
    }

    /// Duration of the last fdatasync of the log, in seconds (0 before the first one).
    pub fn last_sync_seconds(&self) -> f64 {
        self.last_sync_seconds
    }

    /// What opening the log had to repair.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Segment files currently making up the log, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            Err(WalError::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Starts a new segment named after `first_index` (bumped if needed to keep names
    /// increasing). The header is durable and the file's directory entry synced before any
    /// record goes in, so a crash never leaves a record in a file that might disappear.
    fn roll(&mut self, first_index: u64) -> Result<(), WalError> {
        let start = match self.segments.last() {
            Some(last) if first_index <= last.start => last
                .start
                .checked_add(1)
                .ok_or(WalError::IndexOverflow { last: last.start })?,
            _ => first_index,
        };
        // Unsynced appends in the segment being closed must be durable before records go to
        // the next one: a later sync point only covers the new file.
        if self.opts.sync {
            if let (Some(active), Some(seg)) = (&self.active, self.segments.last()) {
                if let Err(e) = active.file.sync_data().at(&seg.path) {
                    self.poisoned = true;
                    return Err(e);
                }
            }
        }
        let path = self.dir.join(segment::file_name(start));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .at(&path)?;
            file.write_all(MAGIC).at(&path)?;
            if self.opts.sync {
                file.sync_all().at(&path)?;
                fsutil::sync_dir(&self.dir)?;
            }
            Ok(file)
        })();
        let file = result.inspect_err(|_| self.poisoned = true)?;
        self.segments.push(SegmentInfo {
            start,
            path,
            max_entry: None,
        });
        self.active = Some(Active {
            file: Arc::new(file),
            len: MAGIC.len() as u64,
            allocated: MAGIC.len() as u64,
        });
        Ok(())
    }

    /// Writes `buf` at the end of the active segment and fdatasyncs it (and so everything
    /// written before it). Any failure poisons the log: after a failed fsync the page cache
    /// may no longer match the disk.
    fn write_durable(&mut self, buf: &[u8]) -> Result<(), WalError> {
        self.write(buf, true)
    }

    fn write(&mut self, buf: &[u8], sync: bool) -> Result<(), WalError> {
        let Some(path) = self.segments.last().map(|s| s.path.clone()) else {
            self.poisoned = true;
            return Err(WalError::Poisoned);
        };
        let Some(active) = self.active.as_mut() else {
            self.poisoned = true;
            return Err(WalError::Poisoned);
        };
        let end = active.len + buf.len() as u64;
        let result = (|| {
            active.file.write_all_at(buf, active.len).at(&path)?;
            if end > active.allocated {
                // Past the zeroed region: this sync writes the inode anyway, so zero the next
                // stretch now and the syncs after it write data only.
                let ahead = end
                    .saturating_add(self.opts.preallocate_bytes)
                    .min(self.opts.segment_bytes.max(end));
                write_zeros(&active.file, end, ahead).at(&path)?;
                active.allocated = ahead;
            }
            if sync && self.opts.sync {
                let started = Instant::now();
                active.file.sync_data().at(&path)?;
                self.last_sync_seconds = started.elapsed().as_secs_f64();
            }
            Ok(())
        })();
        if result.is_err() {
            self.poisoned = true;
        }
        result?;
        active.len = end;
        Ok(())
    }

    /// Takes the oldest segments whose entries are all purged out of the log, and hands them
    /// to [`reclaim`] to remove. Only a prefix is taken, and never the active segment (it holds
    /// the purge record itself): a truncate record only affects older records, so dropping a
    /// prefix never brings truncated entries back. The renames are durable before any file is
    /// shortened, so a crash cannot leave a shortened segment for replay to find.
    fn delete_purged_segments(&mut self, upto: u64) -> Result<(), WalError> {
        let (mut taken, mut released) = (0, Vec::new());
        let mut result = Ok(());
        while self.segments.len() - taken > 1 {
            let seg = &self.segments[taken];
            if seg.max_entry.is_some_and(|m| m > upto) {
                break;
            }
            let purged = reclaim::purged_path(&seg.path);
            match fs::rename(&seg.path, &purged) {
                Ok(()) => released.push(purged),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    result = Err(WalError::io(&seg.path, e));
                    break;
                }
            }
            taken += 1;
        }
        if taken == 0 {
            return result;
        }
        self.segments.drain(..taken);
        if self.opts.sync {
            fsutil::sync_dir(&self.dir)?;
        }
        reclaim::release(released);
        result
    }
}

/// Applies one replayed record with the same checks as the live path.
fn replay(state: &mut LogState, record: &Record<'_>) -> Result<(), WalError> {
    match *record {
        Record::Entry { index, payload } => {
            state.check_next(index)?;
            state.push(index, payload.to_vec());
        }
        Record::Truncate { from } => {
            state.check_truncate(from)?;
            state.truncate_from(from);
        }
        Record::Purge { upto, meta } => state.purge_upto(upto, meta),
    }
    Ok(())
}

/// Cuts a torn tail off the last segment, rewriting the header if even that was torn.
fn cut_tail(path: &Path, valid_len: u64) -> Result<(), WalError> {
    let mut file = OpenOptions::new().write(true).open(path).at(path)?;
    if valid_len < MAGIC.len() as u64 {
        file.set_len(0).at(path)?;
        file.write_all(MAGIC).at(path)?;
    } else {
        file.set_len(valid_len).at(path)?;
    }
    file.sync_all().at(path)
}

fn open_for_write(path: &Path) -> Result<File, WalError> {
    OpenOptions::new().write(true).open(path).at(path)
}

/// Writes zeros over `[from, to)` (real zeros: a hole or an unwritten extent would make the
/// first write into it a metadata change again).
fn write_zeros(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}
