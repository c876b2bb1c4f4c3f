//! The deterministic state machine (ADR-001): sessions with replicated
//! expiry, locks with fencing tokens, a versioned KV store and a bounded
//! watch history. No clock, randomness, environment or IO is read here;
//! time enters only through each command's leader timestamp.
//!
//! Conventions the Raft glue and the API layer rely on:
//! - `apply` must see strictly increasing log indexes; an index at or
//!   below the applied index (or 0) is refused with `Invalid` and changes
//!   nothing. Every log entry without a command goes to `apply_marker`.
//! - Each `apply` first advances replicated time, then (after a new
//!   leader's marker) refreshes sessions, then expires sessions, then runs
//!   the op. A refused op leaves only those first three steps behind.
//! - Session ids, fencing tokens and KV revisions are log indexes.
//! - `Reply::Queued{position}` is 1-based (1 = next in line).
//! - `SmError::Compacted{compact_revision}` names the newest revision that
//!   is (possibly partly) gone; a watcher can resume only from
//!   `compact_revision + 1`, after re-reading the current state.
//! - `CancelWait` is idempotent: cancelling a wait that already ended
//!   succeeds, unless the session has meanwhile been granted the lock.
mod kv;
mod kv_ops;
mod lock_ops;
mod locks;
mod machine;
mod sessions;
mod shared_bytes;
mod snapshot;
mod store_key;
mod txn;
mod types;
mod watch_history;

pub use kv::DEFAULT_MAX_VERSIONS;
pub use machine::StateMachine;
pub use sessions::ENDED_MEMORY;
pub use snapshot::SNAPSHOT_FORMAT;
pub use types::*;
pub use watch_history::WATCH_HISTORY_EVENTS;
