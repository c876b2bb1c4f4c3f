//! A session handle that keeps itself alive, and the lock guard built on it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::client::Client;
use crate::error::{Error, Result};

/// An open session. A background task sends a keep-alive every ttl/3; it stops when the last
/// handle (including lock guards) is dropped, on [`Session::close`], or when the session is
/// lost. Loss is reported through [`Session::lost`].
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    client: Client,
    id: u64,
    ttl_ms: u64,
    lost: watch::Receiver<Option<String>>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.inner.id)
            .field("ttl_ms", &self.inner.ttl_ms)
            .finish()
    }
}

impl Session {
    pub(crate) fn start(client: Client, id: u64, ttl_ms: u64) -> Session {
        let (lost_tx, lost_rx) = watch::channel(None);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(keep_alive_loop(
            client.clone(),
            id,
            Duration::from_millis(ttl_ms.max(1)),
            lost_tx,
            stop_rx,
        ));
        Session {
            inner: Arc::new(SessionInner {
                client,
                id,
                ttl_ms,
                lost: lost_rx,
                stop: Mutex::new(Some(stop_tx)),
                task,
            }),
        }
    }

    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn ttl_ms(&self) -> u64 {
        self.inner.ttl_ms
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Becomes `Some(reason)` once the session is known or presumed gone: the cluster said it
    /// expired, or no keep-alive was confirmed within one ttl. Locks held through it are lost.
    pub fn lost(&self) -> watch::Receiver<Option<String>> {
        self.inner.lost.clone()
    }

    pub fn is_lost(&self) -> bool {
        self.inner.lost.borrow().is_some()
    }

    /// Sends one keep-alive now, in addition to the background ones.
    pub async fn keep_alive(&self) -> Result<u64> {
        self.inner.client.session_keep_alive(self.inner.id).await
    }

    /// Stops the keep-alive task and closes the session on the cluster, releasing its locks.
    pub async fn close(self) -> Result<()> {
        self.stop_keep_alive();
        self.inner.client.session_close(self.inner.id).await
    }

    fn stop_keep_alive(&self) {
        let tx = self
            .inner
            .stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(tx) = tx {
            let _ = tx.send(());
        }
    }

    /// Acquires lock `name`, waiting behind earlier waiters.
    pub async fn lock(&self, name: &str) -> Result<LockGuard> {
        if let Some(reason) = self.inner.lost.borrow().clone() {
            return Err(Error::SessionLost(reason));
        }
        let r = self.inner.client.lock_acquire(name, self.inner.id).await?;
        if !r.acquired {
            return Err(Error::MalformedResponse(
                "waiting acquire returned without the lock".into(),
            ));
        }
        Ok(LockGuard::new(self.clone(), name, r.token))
    }

    /// Acquires lock `name` if it is free; `None` when another session holds it.
    pub async fn try_lock(&self, name: &str) -> Result<Option<LockGuard>> {
        if let Some(reason) = self.inner.lost.borrow().clone() {
            return Err(Error::SessionLost(reason));
        }
        let r = self
            .inner
            .client
            .lock_try_acquire(name, self.inner.id)
            .await?;
        Ok(r.acquired
            .then(|| LockGuard::new(self.clone(), name, r.token)))
    }
}

/// The period between keep-alives: a third of the ttl leaves two chances to recover.
pub(crate) fn keep_alive_period(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(10))
}

async fn keep_alive_loop(
    client: Client,
    id: u64,
    ttl: Duration,
    lost: watch::Sender<Option<String>>,
    mut stop: oneshot::Receiver<()>,
) {
    let period = keep_alive_period(ttl);
    // Measured from when the last confirmed keep-alive was *sent*, so the local estimate of
    // the deadline is never later than the cluster's.
    let mut confirmed_at = Instant::now();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(period) => {}
        }
        let sent = Instant::now();
        let Some(remaining) = ttl.checked_sub(confirmed_at.elapsed()) else {
            let _ = lost.send(Some("no keep-alive confirmed within the ttl".into()));
            return;
        };
        let call = client.keep_alive_with_timeout(id, Some(period));
        let outcome = tokio::select! {
            _ = &mut stop => return,
            r = tokio::time::timeout(remaining, call) => r,
        };
        match outcome {
            Ok(Ok(_)) => confirmed_at = sent,
            Ok(Err(e @ (Error::SessionNotFound | Error::SessionExpired))) => {
                let _ = lost.send(Some(e.to_string()));
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(session = id, error = %e, "keep-alive failed");
            }
            Err(_) => {
                let _ = lost.send(Some("no keep-alive confirmed within the ttl".into()));
                return;
            }
        }
    }
}

/// A held lock. Its fencing token should accompany every write the holder makes (as a put
/// guard or a txn compare) so that a holder that lost the lock cannot overwrite a newer one.
/// Dropping the guard releases the lock in the background; [`LockGuard::release`] waits.
pub struct LockGuard {
    session: Session,
    name: String,
    token: u64,
    released: bool,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("token", &self.token)
            .field("session", &self.session.id())
            .finish()
    }
}

impl LockGuard {
    fn new(session: Session, name: &str, token: u64) -> Self {
        Self {
            session,
            name: name.to_owned(),
            token,
            released: false,
        }
    }

    pub fn token(&self) -> u64 {
        self.token
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Reports the loss of the session, and with it the lock.
    pub fn lost(&self) -> watch::Receiver<Option<String>> {
        self.session.lost()
    }

    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.session
            .client()
            .lock_release(&self.name, self.session.id(), self.token)
            .await
            .map(|_| ())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Best effort: without a runtime the session's expiry releases the lock eventually.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let client = self.session.client().clone();
            let (name, id, token) = (
                std::mem::take(&mut self.name),
                self.session.id(),
                self.token,
            );
            rt.spawn(async move {
                if let Err(e) = client.lock_release(&name, id, token).await {
                    tracing::warn!(lock = %name, token, error = %e, "release on drop failed");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_is_a_third_with_a_floor() {
        assert_eq!(
            keep_alive_period(Duration::from_millis(3000)),
            Duration::from_millis(1000)
        );
        assert_eq!(
            keep_alive_period(Duration::from_millis(3)),
            Duration::from_millis(10)
        );
    }
}
