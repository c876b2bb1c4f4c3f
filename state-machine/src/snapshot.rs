//! Snapshot encoding, restore with validation, and the state digest.

use sha2::{Digest, Sha256};

use crate::machine::StateMachine;
use crate::types::SnapshotError;

/// First byte of every snapshot; bumped whenever the encoding changes.
pub const SNAPSHOT_FORMAT: u8 = 1;

/// Feeds postcard's output into the hash through a small buffer, so a
/// digest of a large state needs no second copy of it.
struct HashWriter {
    hasher: Sha256,
    buf: Vec<u8>,
}

const HASH_CHUNK: usize = 64 * 1024;

impl Extend<u8> for HashWriter {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.buf.extend(bytes);
        if self.buf.len() >= HASH_CHUNK {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }
}

impl StateMachine {
    /// Hex SHA-256 of the postcard encoding of the whole state.
    pub fn digest(&self) -> String {
        let writer = HashWriter {
            hasher: Sha256::new(),
            buf: Vec::with_capacity(HASH_CHUNK),
        };
        let hasher = match postcard::to_extend(self, writer) {
            Ok(mut w) => {
                w.hasher.update(&w.buf);
                w.hasher
            }
            // Plain owned data always encodes; should that ever change, a
            // digest that matches nothing is safer than a panic.
            Err(e) => {
                let mut h = Sha256::new();
                h.update(format!("unencodable state: {e}"));
                h
            }
        };
        hex::encode(hasher.finalize())
    }

    pub fn to_snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        self.to_snapshot_with_capacity(0)
    }

    /// [`Self::to_snapshot`] into a buffer of at least `capacity` bytes, so a
    /// caller that knows the rough size spares the copies of a growing buffer.
    pub fn to_snapshot_with_capacity(&self, capacity: usize) -> Result<Vec<u8>, SnapshotError> {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(SNAPSHOT_FORMAT);
        postcard::to_extend(self, buf).map_err(|e| SnapshotError::Encode(e.to_string()))
    }

    /// Restores a snapshot; corrupt, truncated or inconsistent input is an
    /// error, never a panic.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let (&format, body) = bytes.split_first().ok_or(SnapshotError::Empty)?;
        if format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::UnsupportedVersion(format));
        }
        let (machine, rest): (StateMachine, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(SnapshotError::TrailingBytes(rest.len()));
        }
        machine.validate().map_err(SnapshotError::Inconsistent)?;
        Ok(machine)
    }

    /// Cross-checks the indexes a restored state relies on.
    fn validate(&self) -> Result<(), String> {
        self.sessions.validate()?;
        self.kv.validate()?;
        self.history.validate()?;
        for (name, lock) in self.locks.iter() {
            if name.is_empty() {
                return Err("lock with an empty name".into());
            }
            if lock.holder == 0 && !lock.waiters.is_empty() {
                return Err(format!("free lock {name} has waiters"));
            }
            if lock.holder != 0 {
                let holds = self
                    .sessions
                    .get(lock.holder)
                    .is_ok_and(|s| s.locks.contains(name));
                if !holds {
                    return Err(format!("lock {name} held by an unknown session"));
                }
            }
            for w in &lock.waiters {
                let waits = self
                    .sessions
                    .get(*w)
                    .is_ok_and(|s| s.waiting.contains(name));
                if !waits || *w == lock.holder {
                    return Err(format!("lock {name} has a bad waiter"));
                }
            }
        }
        for (key, session) in self.kv.bound_keys() {
            if self
                .sessions
                .get(session)
                .is_ok_and(|s| s.keys.contains(key))
            {
                continue;
            }
            return Err(format!(
                "a key is bound to session {session}, which does not list it"
            ));
        }
        for s in self.sessions.iter() {
            if s.locks.iter().any(|n| self.locks.holder(n) != s.id) {
                return Err(format!("session {} lists a lock it does not hold", s.id));
            }
            if s.waiting
                .iter()
                .any(|n| !self.locks.info(n).waiters.contains(&s.id))
            {
                return Err(format!("session {} lists a wait it is not in", s.id));
            }
            if s.keys
                .iter()
                .any(|k| self.kv.latest(k).is_none_or(|kv| kv.session_id != s.id))
            {
                return Err(format!("session {} lists a key it is not bound to", s.id));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::Sessions;
    use crate::types::{Command, Op, PutOp};

    fn cmd(op: Op) -> Command {
        Command {
            leader_ts_ms: 10,
            op,
        }
    }

    /// A session holding a lock and owning a key.
    fn populated() -> StateMachine {
        let mut sm = StateMachine::new();
        sm.apply(1, &cmd(Op::OpenSession { ttl_ms: 1_000 }));
        sm.apply(
            2,
            &cmd(Op::Acquire {
                name: "L".into(),
                session_id: 1,
                wait: false,
            }),
        );
        sm.apply(
            3,
            &cmd(Op::Put(PutOp {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                session_id: 1,
                prev_kv: false,
                guard: None,
            })),
        );
        assert!(StateMachine::from_snapshot(&sm.to_snapshot().unwrap()).is_ok());
        sm
    }

    fn restore(sm: &StateMachine) -> Result<StateMachine, SnapshotError> {
        StateMachine::from_snapshot(&sm.to_snapshot().unwrap())
    }

    #[test]
    fn lock_held_by_a_missing_session_is_inconsistent() {
        let mut sm = populated();
        sm.sessions = Sessions::default();
        assert!(matches!(restore(&sm), Err(SnapshotError::Inconsistent(_))));
    }

    #[test]
    fn session_claiming_a_key_it_does_not_own_is_inconsistent() {
        let mut sm = populated();
        if let Some(s) = sm.sessions.get_mut(1) {
            s.keys.insert(b"other".to_vec());
        }
        assert!(matches!(restore(&sm), Err(SnapshotError::Inconsistent(_))));
    }

    #[test]
    fn key_bound_to_a_session_that_forgot_it_is_inconsistent() {
        let mut sm = populated();
        if let Some(s) = sm.sessions.get_mut(1) {
            s.keys.clear();
        }
        assert!(matches!(restore(&sm), Err(SnapshotError::Inconsistent(_))));
    }

    #[test]
    fn deadline_index_out_of_step_is_inconsistent() {
        let mut sm = populated();
        if let Some(s) = sm.sessions.get_mut(1) {
            s.deadline_ms += 1;
        }
        assert!(matches!(restore(&sm), Err(SnapshotError::Inconsistent(_))));
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let mut sm = populated();
        sm.apply_marker(4, true);
        let back = restore(&sm).unwrap();
        assert_eq!(back, sm);
        assert!(back.refresh_pending);
        assert_eq!(back.applied_index(), 4);
    }
}
