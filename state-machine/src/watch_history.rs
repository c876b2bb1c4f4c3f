//! A bounded, replicated history of KV events, so any replica can serve a
//! watch that resumes from an older revision — or say exactly why not.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::types::{Event, SmError};

/// Fixed (not configurable) because it is part of the replicated state: every
/// replica must drop the same events at the same index.
pub const WATCH_HISTORY_EVENTS: usize = 10_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchHistory {
    /// Oldest first; revisions never decrease.
    events: VecDeque<Event>,
    /// Revision of the newest dropped event; 0 if none was dropped.
    dropped_upto: u64,
}

impl WatchHistory {
    pub fn push(&mut self, event: Event) {
        self.events.push_back(event);
        while self.events.len() > WATCH_HISTORY_EVENTS {
            match self.events.pop_front() {
                Some(old) => self.dropped_upto = self.dropped_upto.max(old.kv.mod_revision),
                None => break,
            }
        }
    }

    pub fn since(
        &self,
        start_revision: u64,
        key: &[u8],
        prefix: bool,
    ) -> Result<Vec<Event>, SmError> {
        // Events at `dropped_upto` itself may be only partly kept (one txn
        // produces several), so that revision counts as compacted too.
        if self.dropped_upto > 0 && start_revision <= self.dropped_upto {
            return Err(SmError::Compacted {
                revision: start_revision,
                compact_revision: self.dropped_upto,
            });
        }
        let first = self
            .events
            .partition_point(|e| e.kv.mod_revision < start_revision);
        let matches = |k: &[u8]| if prefix { k.starts_with(key) } else { k == key };
        Ok(self
            .events
            .iter()
            .skip(first)
            .filter(|e| matches(&e.kv.key))
            .cloned()
            .collect())
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.events.len() > WATCH_HISTORY_EVENTS {
            return Err("watch history longer than its bound".into());
        }
        let ordered = self
            .events
            .iter()
            .zip(self.events.iter().skip(1))
            .all(|(a, b)| a.kv.mod_revision <= b.kv.mod_revision);
        if !ordered
            || self
                .events
                .front()
                .is_some_and(|e| e.kv.mod_revision < self.dropped_upto)
        {
            return Err("watch history out of order".into());
        }
        Ok(())
    }
}
