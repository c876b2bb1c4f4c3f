//! Segmented, append-only write-ahead log used as the Raft log storage of an AEGIS node.
//!
//! - Durability first: [`Wal::append`], [`Wal::truncate_from`] and [`Wal::purge_upto`] return
//!   only after the record is fdatasynced. A batch is one `write` and one fdatasync (group
//!   commit), so callers should batch. [`Wal::append_unsynced`] + [`Wal::sync_point`] split
//!   the two so one fdatasync, taken outside the writer's lock, can cover many appends.
//! - Truncate and purge are records in the log, so replay rebuilds the exact state. Purge also
//!   removes whole segment files whose entries are all purged: renamed to `.purged`, then
//!   shrunk and removed on a thread of their own (see `reclaim`).
//! - Recovery: a torn tail of the last segment (partial frame, or damaged final frame) is cut
//!   off and reported in [`Wal::recovery`]; any other damage fails [`Wal::open`] with
//!   [`WalError::Corrupt`] instead of silently losing acknowledged entries.
//! - Memory: every live payload is kept in memory, so memory grows with the unpurged log.
//!   Raft bounds that by snapshotting and purging.
//! - Single writer: one process, one `Wal`; wrap it in a mutex or a dedicated thread. Opening
//!   the same directory twice at once is not detected.
//!
//! Layout of `dir`: `<20-digit first index>.wal` segment files, `<same>.purged` files on their
//! way out, and `meta/<name>` small values written atomically by [`Wal::put_meta`].

mod error;
mod frame;
mod fsutil;
mod log_state;
mod meta;
mod reclaim;
mod segment;
mod wal;

pub use error::WalError;
pub use frame::MAX_PAYLOAD;
pub use wal::{Recovery, SyncPoint, TornTail, Wal, WalOptions};

#[cfg(test)]
mod tests {
    /// The node shares one log between async tasks behind a mutex.
    #[test]
    fn wal_can_move_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Wal>();
        assert_send_sync::<super::WalError>();
    }
}
