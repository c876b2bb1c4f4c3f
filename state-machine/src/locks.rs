//! Named locks with FIFO wait queues and fencing tokens.
//!
//! A lock's token is the log index of the entry that granted it, so tokens
//! grow with the log across every lock, holder and leader. A lock entry is
//! kept after release: its last token is what fencing guards compare
//! against, and forgetting it would let a delayed writer with an old token
//! through.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::types::{LockGrant, LockInfo, SmError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    /// 0 when free.
    pub holder: u64,
    /// Token of the last grant (kept when free); 0 if never granted.
    pub token: u64,
    pub waiters: VecDeque<u64>,
}

/// What an acquire did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireOutcome {
    Granted(u64),
    AlreadyHeld(u64),
    /// 1-based place in the queue; `newly` is false if it was already there.
    Queued {
        position: u64,
        newly: bool,
    },
    Busy(u64),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locks {
    by_name: BTreeMap<String, LockState>,
}

impl Locks {
    pub fn current_token(&self, name: &str) -> u64 {
        self.by_name.get(name).map_or(0, |l| l.token)
    }

    pub fn info(&self, name: &str) -> LockInfo {
        let state = self.by_name.get(name);
        LockInfo {
            name: name.to_string(),
            holder_session: state.map_or(0, |l| l.holder),
            token: state.map_or(0, |l| l.token),
            waiters: state.map_or_else(Vec::new, |l| l.waiters.iter().copied().collect()),
        }
    }

    pub fn acquire(&mut self, name: &str, session: u64, wait: bool, index: u64) -> AcquireOutcome {
        let lock = self.by_name.entry(name.to_string()).or_default();
        if lock.holder == 0 {
            lock.holder = session;
            lock.token = index;
            return AcquireOutcome::Granted(index);
        }
        if lock.holder == session {
            return AcquireOutcome::AlreadyHeld(lock.token);
        }
        if let Some(pos) = lock.waiters.iter().position(|&w| w == session) {
            return if wait {
                AcquireOutcome::Queued {
                    position: pos as u64 + 1,
                    newly: false,
                }
            } else {
                AcquireOutcome::Busy(lock.holder)
            };
        }
        if !wait {
            return AcquireOutcome::Busy(lock.holder);
        }
        lock.waiters.push_back(session);
        AcquireOutcome::Queued {
            position: lock.waiters.len() as u64,
            newly: true,
        }
    }

    /// Checks a client release without changing anything.
    pub fn check_release(&self, name: &str, session: u64, token: u64) -> Result<(), SmError> {
        let current = self.current_token(name);
        let holder = self.by_name.get(name).map_or(0, |l| l.holder);
        if holder == session && session != 0 && token == current {
            return Ok(());
        }
        if token < current {
            return Err(SmError::StaleFencingToken {
                lock: name.to_string(),
                token,
                current,
            });
        }
        Err(SmError::NotLockHolder {
            lock: name.to_string(),
            session_id: session,
        })
    }

    /// Frees `name` if `session` holds it and hands it to the first waiter
    /// with token `index`. Callers remove ending sessions from the queues
    /// first, so the next waiter is always live.
    pub fn release_by(&mut self, name: &str, session: u64, index: u64) -> Option<LockGrant> {
        let lock = self.by_name.get_mut(name)?;
        if lock.holder != session || session == 0 {
            return None;
        }
        lock.holder = 0;
        let next = lock.waiters.pop_front()?;
        lock.holder = next;
        lock.token = index;
        Some(LockGrant {
            name: name.to_string(),
            session_id: next,
            token: index,
        })
    }

    /// True if `session` was waiting for `name`.
    pub fn remove_waiter(&mut self, name: &str, session: u64) -> bool {
        let Some(lock) = self.by_name.get_mut(name) else {
            return false;
        };
        let before = lock.waiters.len();
        lock.waiters.retain(|&w| w != session);
        before != lock.waiters.len()
    }

    pub fn holder(&self, name: &str) -> u64 {
        self.by_name.get(name).map_or(0, |l| l.holder)
    }

    pub fn held_count(&self) -> u64 {
        self.by_name.values().filter(|l| l.holder != 0).count() as u64
    }

    pub fn waiter_count(&self) -> u64 {
        self.by_name.values().map(|l| l.waiters.len() as u64).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &LockState)> {
        self.by_name.iter()
    }
}
