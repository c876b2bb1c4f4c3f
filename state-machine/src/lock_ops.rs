//! Lock commands: acquire, release, cancel a wait.

use crate::locks::AcquireOutcome;
use crate::machine::{invalid, Effects, StateMachine};
use crate::types::{LockGrant, Reply, SmError};

impl StateMachine {
    pub(crate) fn acquire(
        &mut self,
        index: u64,
        name: &str,
        session_id: u64,
        wait: bool,
        fx: &mut Effects,
    ) -> Result<Reply, SmError> {
        if name.is_empty() {
            return Err(invalid("lock name is empty"));
        }
        self.sessions.check_live(session_id)?;
        match self.locks.acquire(name, session_id, wait, index) {
            AcquireOutcome::Granted(token) => {
                let grant = LockGrant {
                    name: name.to_string(),
                    session_id,
                    token,
                };
                self.note_grant(grant, fx);
                Ok(Reply::Acquired { token })
            }
            AcquireOutcome::AlreadyHeld(token) => Ok(Reply::Acquired { token }),
            AcquireOutcome::Queued { position, newly } => {
                if newly {
                    if let Some(s) = self.sessions.get_mut(session_id) {
                        s.waiting.insert(name.to_string());
                    }
                }
                Ok(Reply::Queued { position })
            }
            AcquireOutcome::Busy(holder_session) => Ok(Reply::Busy { holder_session }),
        }
    }

    pub(crate) fn release(
        &mut self,
        index: u64,
        name: &str,
        session_id: u64,
        token: u64,
        fx: &mut Effects,
    ) -> Result<Reply, SmError> {
        if name.is_empty() {
            return Err(invalid("lock name is empty"));
        }
        self.locks.check_release(name, session_id, token)?;
        if token == index {
            // Granted by this same entry's expirations: passing it on now
            // would give the next holder the same token. No client can know
            // such a token before the entry is applied, so this is a guess.
            return Err(invalid("lock was granted at this index; release it later"));
        }
        if let Some(s) = self.sessions.get_mut(session_id) {
            s.locks.remove(name);
        }
        let next = self.locks.release_by(name, session_id, index);
        if let Some(grant) = &next {
            self.note_grant(grant.clone(), fx);
        }
        Ok(Reply::Released { next })
    }

    pub(crate) fn cancel_wait(&mut self, name: &str, session_id: u64) -> Result<Reply, SmError> {
        if name.is_empty() {
            return Err(invalid("lock name is empty"));
        }
        if session_id != 0 && self.locks.holder(name) == session_id {
            return Err(invalid(
                "session already holds the lock; release it instead",
            ));
        }
        // Idempotent: a retried cancel of a wait that already ended succeeds.
        self.locks.remove_waiter(name, session_id);
        if let Some(s) = self.sessions.get_mut(session_id) {
            s.waiting.remove(name);
        }
        Ok(Reply::WaitCancelled)
    }
}
