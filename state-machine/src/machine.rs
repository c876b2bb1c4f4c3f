//! The state machine: replicated time, expiry, dispatch, and reads.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::kv::KvStore;
use crate::locks::Locks;
use crate::sessions::{Session, Sessions};
use crate::types::{
    Applied, Command, Event, EventKind, KeyValue, LockGrant, LockInfo, Op, RangeResult, Reply,
    SessionInfo, SmError, Stats,
};
use crate::watch_history::WatchHistory;

/// Side effects of one entry, gathered while it is applied.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub events: Vec<Event>,
    pub grants: Vec<LockGrant>,
    pub expired: Vec<u64>,
}

/// Everything every replica agrees on after applying the same log prefix.
/// Plain ordered data only, so the encoding (and the digest) is identical
/// on every replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateMachine {
    pub(crate) applied_index: u64,
    pub(crate) now_ms: u64,
    /// Set by a new leader's blank entry; consumed by the next command.
    pub(crate) refresh_pending: bool,
    pub(crate) sessions: Sessions,
    pub(crate) locks: Locks,
    pub(crate) kv: KvStore,
    pub(crate) history: WatchHistory,
}

pub(crate) fn invalid(msg: &str) -> SmError {
    SmError::Invalid(msg.to_string())
}

impl StateMachine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one committed command at log `index`.
    pub fn apply(&mut self, index: u64, cmd: &Command) -> Applied {
        if index == 0 || (index <= self.applied_index) {
            // Re-applying would hand out duplicate ids and tokens; refuse
            // without touching anything.
            return Applied {
                index,
                result: Err(invalid("log index is not after the applied index")),
                events: Vec::new(),
                grants: Vec::new(),
                expired_sessions: Vec::new(),
            };
        }
        self.applied_index = index;
        self.now_ms = self.now_ms.max(cmd.leader_ts_ms);
        if self.refresh_pending {
            self.refresh_pending = false;
            self.sessions.refresh_all(cmd.leader_ts_ms);
        }
        let mut fx = Effects::default();
        self.expire(index, &cmd.op, &mut fx);
        let result = self.apply_op(index, &cmd.op, &mut fx);
        Applied {
            index,
            result,
            events: fx.events,
            grants: fx.grants,
            expired_sessions: fx.expired,
        }
    }

    /// A log entry without a command. A new leader's blank entry marks
    /// that no leader was stamping time (nor relaying keep-alives) for a
    /// while: clients could not have kept their sessions alive during the
    /// election, so punishing them for it would turn every failover into a
    /// mass expiry. The next command therefore grants every live session a
    /// full TTL from its (new) leader's timestamp before expiring anything,
    /// as etcd refreshes leases when a leader changes.
    pub fn apply_marker(&mut self, index: u64, new_leader: bool) {
        if index < self.applied_index || (index == self.applied_index && index != 0) {
            return;
        }
        self.applied_index = index;
        if new_leader {
            self.refresh_pending = true;
        }
    }

    fn apply_op(&mut self, index: u64, op: &Op, fx: &mut Effects) -> Result<Reply, SmError> {
        match op {
            Op::Tick => Ok(Reply::Ticked),
            Op::OpenSession { ttl_ms } => self.open_session(index, *ttl_ms),
            Op::KeepAlive { session_id } => {
                let ttl_ms = self.sessions.keep_alive(*session_id, self.now_ms)?;
                Ok(Reply::KeptAlive {
                    session_id: *session_id,
                    ttl_ms,
                })
            }
            Op::KeepAlives { session_ids } => Ok(Reply::KeptAliveMany {
                renewed: session_ids
                    .iter()
                    .map(|id| self.sessions.keep_alive(*id, self.now_ms))
                    .collect(),
            }),
            Op::CloseSession { session_id } => {
                let session = self.sessions.remove(*session_id)?;
                self.end_sessions(index, vec![session], fx);
                Ok(Reply::SessionClosed)
            }
            Op::Acquire {
                name,
                session_id,
                wait,
            } => self.acquire(index, name, *session_id, *wait, fx),
            Op::Release {
                name,
                session_id,
                token,
            } => self.release(index, name, *session_id, *token, fx),
            Op::CancelWait { name, session_id } => self.cancel_wait(name, *session_id),
            Op::Put(put) => self.put(index, put, fx),
            Op::Delete(del) => self.delete(index, del, fx),
            Op::Txn(txn) => self.txn(index, txn, fx),
            Op::SetRetention { max_versions } => {
                if *max_versions == 0 {
                    return Err(invalid("max_versions must be at least 1"));
                }
                self.kv.set_max_versions(*max_versions);
                Ok(Reply::RetentionSet)
            }
        }
    }

    fn open_session(&mut self, index: u64, ttl_ms: u64) -> Result<Reply, SmError> {
        if ttl_ms == 0 {
            return Err(invalid("ttl_ms must be positive"));
        }
        self.sessions.open(index, ttl_ms, self.now_ms);
        Ok(Reply::SessionOpened {
            session_id: index,
            ttl_ms,
        })
    }

    fn expire(&mut self, index: u64, op: &Op, fx: &mut Effects) {
        let expired = self.sessions.take_expired(self.now_ms);
        if expired.is_empty() {
            return;
        }
        // A session this very entry closes must not be handed a lock by the
        // expirations first: its close would pass the lock on again at the
        // same index, and one lock would see the same token twice.
        if let Op::CloseSession { session_id } = op {
            let waiting = self
                .sessions
                .get(*session_id)
                .map(|s| s.waiting.clone())
                .unwrap_or_default();
            for name in &waiting {
                self.locks.remove_waiter(name, *session_id);
            }
            if let Some(s) = self.sessions.get_mut(*session_id) {
                s.waiting.clear();
            }
        }
        fx.expired = expired.iter().map(|s| s.id).collect();
        self.end_sessions(index, expired, fx);
    }

    /// Releases what ended sessions held and deletes their keys, at `index`.
    fn end_sessions(&mut self, index: u64, ended: Vec<Session>, fx: &mut Effects) {
        // Leave every queue first, so no lock is handed to a session that is
        // ending in the same entry (which would grant it twice at one index).
        for s in &ended {
            for name in &s.waiting {
                self.locks.remove_waiter(name, s.id);
            }
        }
        for s in &ended {
            for name in &s.locks {
                if let Some(grant) = self.locks.release_by(name, s.id, index) {
                    self.note_grant(grant, fx);
                }
            }
        }
        for s in &ended {
            for key in &s.keys {
                self.delete_key(key, index, fx);
            }
        }
    }

    /// Records a grant on the receiving session and in the effects.
    pub(crate) fn note_grant(&mut self, grant: LockGrant, fx: &mut Effects) {
        if let Some(s) = self.sessions.get_mut(grant.session_id) {
            s.waiting.remove(&grant.name);
            s.locks.insert(grant.name.clone());
        }
        fx.grants.push(grant);
    }

    /// Deletes one key (if live) at `index`, unbinding it from its session.
    pub(crate) fn delete_key(
        &mut self,
        key: &[u8],
        index: u64,
        fx: &mut Effects,
    ) -> Option<KeyValue> {
        let prev = self.kv.delete(key, index)?;
        if prev.session_id != 0 {
            if let Some(s) = self.sessions.get_mut(prev.session_id) {
                s.keys.remove(key);
            }
        }
        self.record(
            Event {
                kind: EventKind::Delete,
                kv: Arc::new(KeyValue {
                    key: key.to_vec(),
                    value: Arc::default(),
                    create_revision: 0,
                    mod_revision: index,
                    version: 0,
                    session_id: 0,
                }),
            },
            fx,
        );
        Some(prev)
    }

    pub(crate) fn record(&mut self, event: Event, fx: &mut Effects) {
        self.history.push(event.clone());
        fx.events.push(event);
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Resolves a read revision: 0 means the applied index.
    fn read_revision(&self, revision: u64) -> Result<u64, SmError> {
        if revision > self.applied_index {
            return Err(SmError::FutureRevision {
                revision,
                current: self.applied_index,
            });
        }
        Ok(if revision == 0 {
            self.applied_index
        } else {
            revision
        })
    }

    pub fn get(&self, key: &[u8], revision: u64) -> Result<Option<KeyValue>, SmError> {
        if key.is_empty() {
            return Err(invalid("key is empty"));
        }
        let revision = self.read_revision(revision)?;
        self.kv.get_at(key, revision)
    }

    /// Live keys starting with `prefix` (all keys when empty) at `revision`.
    pub fn range(
        &self,
        prefix: &[u8],
        limit: u32,
        revision: u64,
        keys_only: bool,
    ) -> Result<RangeResult, SmError> {
        let revision = self.read_revision(revision)?;
        self.kv.range_at(prefix, limit, revision, keys_only)
    }

    pub fn session(&self, session_id: u64) -> Result<SessionInfo, SmError> {
        self.sessions.get(session_id).map(Session::info)
    }

    pub fn lock(&self, name: &str) -> LockInfo {
        self.locks.info(name)
    }

    /// Events for `key` (or every key under it when `prefix`) from
    /// `start_revision` up to the applied index.
    pub fn events_since(
        &self,
        start_revision: u64,
        key: &[u8],
        prefix: bool,
    ) -> Result<Vec<Event>, SmError> {
        if key.is_empty() && !prefix {
            return Err(invalid("key is empty"));
        }
        self.history.since(start_revision, key, prefix)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            sessions: self.sessions.len() as u64,
            locks_held: self.locks.held_count(),
            waiters: self.locks.waiter_count(),
            keys: self.kv.live_count(),
        }
    }

    /// The retention in force (versions kept per key).
    pub fn max_versions(&self) -> u64 {
        self.kv.max_versions()
    }
}
