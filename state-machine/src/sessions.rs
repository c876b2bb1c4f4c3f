//! The session (lease) table, indexed by deadline so that advancing
//! replicated time costs O(sessions that expire), not O(all sessions).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::types::{SessionInfo, SmError};

/// How many ended session ids are remembered, so that a late keep-alive
/// gets "expired" rather than "not found". Fixed: it is part of the
/// replicated state, so every replica must forget at the same point.
pub const ENDED_MEMORY: usize = 4096;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: u64,
    pub ttl_ms: u64,
    pub deadline_ms: u64,
    /// Locks this session holds.
    pub locks: BTreeSet<String>,
    /// Locks whose wait queue this session is in.
    pub waiting: BTreeSet<String>,
    /// Keys bound to this session (deleted when it ends).
    pub keys: BTreeSet<Vec<u8>>,
}

impl Session {
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            session_id: self.id,
            ttl_ms: self.ttl_ms,
            deadline_ms: self.deadline_ms,
            locks: self.locks.iter().cloned().collect(),
            keys: self.keys.iter().cloned().collect(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    live: BTreeMap<u64, Session>,
    /// (deadline, id) for every live session.
    by_deadline: BTreeSet<(u64, u64)>,
    /// Recently ended ids, oldest first, and the same ids as a set.
    ended_order: VecDeque<u64>,
    ended: BTreeSet<u64>,
}

impl Sessions {
    pub fn open(&mut self, id: u64, ttl_ms: u64, now_ms: u64) {
        let deadline_ms = now_ms.saturating_add(ttl_ms);
        self.by_deadline.insert((deadline_ms, id));
        self.live.insert(
            id,
            Session {
                id,
                ttl_ms,
                deadline_ms,
                ..Session::default()
            },
        );
    }

    /// The error a command naming a session that is not live gets.
    pub fn not_live(&self, id: u64) -> SmError {
        if self.ended.contains(&id) {
            SmError::SessionExpired { session_id: id }
        } else {
            SmError::SessionNotFound { session_id: id }
        }
    }

    pub fn check_live(&self, id: u64) -> Result<(), SmError> {
        if self.live.contains_key(&id) {
            Ok(())
        } else {
            Err(self.not_live(id))
        }
    }

    pub fn get(&self, id: u64) -> Result<&Session, SmError> {
        self.live.get(&id).ok_or_else(|| self.not_live(id))
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Session> {
        self.live.get_mut(&id)
    }

    pub fn keep_alive(&mut self, id: u64, now_ms: u64) -> Result<u64, SmError> {
        let Some(session) = self.live.get_mut(&id) else {
            return Err(self.not_live(id));
        };
        self.by_deadline.remove(&(session.deadline_ms, id));
        session.deadline_ms = now_ms.saturating_add(session.ttl_ms);
        self.by_deadline.insert((session.deadline_ms, id));
        Ok(session.ttl_ms)
    }

    /// Gives every live session at least a full TTL counted from
    /// `leader_ts_ms` (see `StateMachine::apply_marker` for why).
    pub fn refresh_all(&mut self, leader_ts_ms: u64) {
        self.by_deadline.clear();
        for (id, session) in &mut self.live {
            let fresh = leader_ts_ms.saturating_add(session.ttl_ms);
            session.deadline_ms = session.deadline_ms.max(fresh);
            self.by_deadline.insert((session.deadline_ms, *id));
        }
    }

    /// Removes and returns every session whose deadline is <= `now_ms`,
    /// in (deadline, id) order.
    pub fn take_expired(&mut self, now_ms: u64) -> Vec<Session> {
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.by_deadline.first() {
            if deadline > now_ms {
                break;
            }
            self.by_deadline.remove(&(deadline, id));
            if let Some(session) = self.end(id) {
                expired.push(session);
            }
        }
        expired
    }

    /// Removes a live session (close), remembering its id as ended.
    pub fn remove(&mut self, id: u64) -> Result<Session, SmError> {
        match self.live.get(&id) {
            Some(s) => {
                self.by_deadline.remove(&(s.deadline_ms, id));
            }
            None => return Err(self.not_live(id)),
        }
        self.end(id).ok_or_else(|| self.not_live(id))
    }

    fn end(&mut self, id: u64) -> Option<Session> {
        let session = self.live.remove(&id)?;
        if self.ended.insert(id) {
            self.ended_order.push_back(id);
        }
        while self.ended_order.len() > ENDED_MEMORY {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
        Some(session)
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.live.values()
    }

    /// Structural checks for a restored snapshot.
    pub fn validate(&self) -> Result<(), String> {
        if self.by_deadline.len() != self.live.len() {
            return Err("session deadline index size mismatch".into());
        }
        for (id, s) in &self.live {
            if *id == 0 || s.id != *id || s.ttl_ms == 0 {
                return Err(format!("session {id} malformed"));
            }
            if !self.by_deadline.contains(&(s.deadline_ms, *id)) {
                return Err(format!("session {id} missing from deadline index"));
            }
        }
        if self.ended_order.len() != self.ended.len() || self.ended.len() > ENDED_MEMORY {
            return Err("ended session memory malformed".into());
        }
        if self.ended_order.iter().any(|id| !self.ended.contains(id)) {
            return Err("ended session memory malformed".into());
        }
        if self.ended.iter().any(|id| self.live.contains_key(id)) {
            return Err("a session is both live and ended".into());
        }
        Ok(())
    }
}
