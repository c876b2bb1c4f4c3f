//! The SDK client: one connection per endpoint, failover between them, and the typed calls.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_proto::v1 as pb;
use pb::admin_client::AdminClient;
use pb::kv_client::KvClient;
use pb::lock_client::LockClient;
use pb::session_client::SessionClient;
use tonic::transport::{Channel, Endpoint};

use crate::endpoints::{Backoff, EndpointSet};
use crate::error::{Error, Failure, Result};
use crate::txn::{PutOptions, Txn};
use crate::types::*;

/// Tunables of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub connect_timeout: Duration,
    /// Deadline of one unary attempt (waiting acquires have none).
    pub request_timeout: Duration,
    pub backoff: Backoff,
    /// HTTP/2 ping period; a peer that stops answering pings (a frozen process) is dropped
    /// after `keepalive_timeout`, which also unblocks long waits and watches.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            backoff: Backoff::default(),
            keepalive_interval: Duration::from_secs(2),
            keepalive_timeout: Duration::from_secs(3),
        }
    }
}

/// Whether a call may be repeated after a failure that leaves its outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads, keep-alives, the holder's acquire: repeating is harmless.
    Idempotent,
    /// Repeating could apply the change twice; an ambiguous failure becomes `Error::Unknown`.
    Write,
}

/// Options of a read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// 0 = latest.
    pub revision: u64,
    /// Allow a possibly stale answer from any replica.
    pub serializable: bool,
}

/// Options of a range read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeOptions {
    /// 0 = no limit.
    pub limit: u32,
    pub revision: u64,
    pub serializable: bool,
    pub keys_only: bool,
}

/// A handle to an AEGIS cluster. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: Mutex<EndpointSet>,
    channels: Mutex<HashMap<String, Channel>>,
    config: ClientConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints())
            .finish()
    }
}

/// Builds a request carrying a deadline (sent to the server as `grpc-timeout` too).
pub(crate) fn timed<M>(msg: M, timeout: Option<Duration>) -> tonic::Request<M> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = timeout {
        r.set_timeout(t);
    }
    r
}

impl Client {
    /// Connects to the first reachable endpoint of the list; later calls fail over between them.
    pub async fn connect(endpoints: Vec<String>) -> Result<Client> {
        Self::connect_with(endpoints, ClientConfig::default()).await
    }

    pub async fn connect_with(endpoints: Vec<String>, config: ClientConfig) -> Result<Client> {
        let client = Self::new_lazy(endpoints, config)?;
        let all = client.endpoints();
        let mut last = Error::NoEndpoints;
        for ep in &all {
            match client.channel(ep).await {
                Ok(_) => {
                    client.lock_endpoints().prefer(ep);
                    return Ok(client);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A client that connects on first use; useful when the cluster may still be starting.
    pub fn new_lazy(endpoints: Vec<String>, config: ClientConfig) -> Result<Client> {
        let set = EndpointSet::new(&endpoints)?;
        Ok(Client {
            inner: Arc::new(Inner {
                endpoints: Mutex::new(set),
                channels: Mutex::new(HashMap::new()),
                config,
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The endpoints in rotation order (leader hints may have added some).
    pub fn endpoints(&self) -> Vec<String> {
        self.lock_endpoints().all().to_vec()
    }

    /// The endpoint the next call will try first.
    pub fn current_endpoint(&self) -> String {
        self.lock_endpoints().current().to_owned()
    }

    fn lock_endpoints(&self) -> std::sync::MutexGuard<'_, EndpointSet> {
        // A poisoned lock only means another thread panicked mid-rotation; the set is still valid.
        self.inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn lock_channels(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        self.inner
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn advance_from(&self, failed: &str) {
        self.lock_endpoints().advance_from(failed);
    }

    pub(crate) fn forget_channel(&self, endpoint: &str) {
        self.lock_channels().remove(endpoint);
    }

    /// The cached channel to `endpoint`, connecting eagerly when there is none so that a
    /// refused connection is known to have sent nothing.
    pub(crate) async fn channel(&self, endpoint: &str) -> Result<Channel> {
        if let Some(ch) = self.lock_channels().get(endpoint) {
            return Ok(ch.clone());
        }
        let cfg = &self.inner.config;
        let ep = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| Error::InvalidEndpoint {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            })?
            .connect_timeout(cfg.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(cfg.keepalive_interval)
            .keep_alive_timeout(cfg.keepalive_timeout)
            .keep_alive_while_idle(true);
        let ch = ep
            .connect()
            .await
            .map_err(|e| Error::Unavailable(format!("{endpoint}: {}", error_chain(&e))))?;
        self.lock_channels().insert(endpoint.to_owned(), ch.clone());
        Ok(ch)
    }

    /// Runs one call with failover. `f` gets a channel to the current endpoint and the
    /// per-attempt deadline to put on its request.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        retry: Retry,
        timeout: Option<Duration>,
        mut f: F,
    ) -> Result<T>
    where
        F: FnMut(Channel, Option<Duration>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let backoff = self.inner.config.backoff;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let ep = self.current_endpoint();
            let err = match self.channel(&ep).await {
                Err(e) => e,
                Ok(ch) => match f(ch, timeout).await {
                    Ok(resp) => return Ok(resp.into_inner()),
                    Err(status) => Error::from_status(&status),
                },
            };
            tracing::debug!(endpoint = %ep, attempt = attempts, error = %err, "call failed");
            match err.failure() {
                Failure::Final => return Err(err),
                Failure::Ambiguous => {
                    self.forget_channel(&ep);
                    self.advance_from(&ep);
                    if retry == Retry::Write {
                        return Err(match err {
                            Error::Unknown(_) => err,
                            other => Error::Unknown(other.to_string()),
                        });
                    }
                }
                Failure::NotApplied => {
                    let followed = match &err {
                        Error::NotLeader {
                            leader_addr: Some(addr),
                            ..
                        } => self.lock_endpoints().prefer(addr),
                        _ => false,
                    };
                    if !followed {
                        if matches!(err, Error::Unavailable(_)) {
                            self.forget_channel(&ep);
                        }
                        self.advance_from(&ep);
                    }
                }
            }
            if backoff.exhausted(attempts) {
                return Err(err);
            }
            tokio::time::sleep(backoff.delay(attempts)).await;
        }
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.inner.config.request_timeout)
    }

    // ------------------------------------------------------------------ kv

    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<PutResult> {
        self.put_with(key, value, &PutOptions::default()).await
    }

    pub async fn put_with(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: &PutOptions,
    ) -> Result<PutResult> {
        let req = options.to_request(key.into(), value.into());
        self.run(Retry::Write, self.timeout(), |ch, t| {
            let req = req.clone();
            async move { KvClient::new(ch).put(timed(req, t)).await }
        })
        .await
        .map(Into::into)
    }

    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<GetResult> {
        self.get_with(key, ReadOptions::default()).await
    }

    /// The key as of `revision`; a compacted revision is `Error::Compacted`.
    pub async fn get_at(&self, key: impl Into<Vec<u8>>, revision: u64) -> Result<GetResult> {
        self.get_with(
            key,
            ReadOptions {
                revision,
                serializable: false,
            },
        )
        .await
    }

    pub async fn get_with(&self, key: impl Into<Vec<u8>>, o: ReadOptions) -> Result<GetResult> {
        let req = pb::GetRequest {
            key: key.into(),
            revision: o.revision,
            serializable: o.serializable,
        };
        let requested = o.revision;
        self.run(Retry::Idempotent, self.timeout(), |ch, t| {
            let req = req.clone();
            async move { KvClient::new(ch).get(timed(req, t)).await }
        })
        .await
        .map(Into::into)
        .map_err(|e| with_requested(e, requested))
    }

    pub async fn range(&self, prefix: impl Into<Vec<u8>>) -> Result<RangeResult> {
        self.range_with(prefix, RangeOptions::default()).await
    }

    pub async fn range_with(
        &self,
        prefix: impl Into<Vec<u8>>,
        o: RangeOptions,
    ) -> Result<RangeResult> {
        let req = pb::RangeRequest {
            prefix: prefix.into(),
            limit: o.limit,
            revision: o.revision,
            serializable: o.serializable,
            keys_only: o.keys_only,
        };
        let requested = o.revision;
        self.run(Retry::Idempotent, self.timeout(), |ch, t| {
            let req = req.clone();
            async move { KvClient::new(ch).range(timed(req, t)).await }
        })
        .await
        .map(Into::into)
        .map_err(|e| with_requested(e, requested))
    }

    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<DeleteResult> {
        self.delete_req(key.into(), false).await
    }

    /// Deletes every key starting with `prefix`.
    pub async fn delete_prefix(&self, prefix: impl Into<Vec<u8>>) -> Result<DeleteResult> {
        self.delete_req(prefix.into(), true).await
    }

    async fn delete_req(&self, key: Vec<u8>, prefix: bool) -> Result<DeleteResult> {
        let req = pb::DeleteRequest {
            key,
            prefix,
            prev_kv: true,
        };
        self.run(Retry::Write, self.timeout(), |ch, t| {
            let req = req.clone();
            async move { KvClient::new(ch).delete(timed(req, t)).await }
        })
        .await
        .map(Into::into)
    }

    pub async fn txn(&self, txn: &Txn) -> Result<TxnResult> {
        let req = txn.to_request();
        let retry = if txn.is_read_only() {
            Retry::Idempotent
        } else {
            Retry::Write
        };
        self.run(retry, self.timeout(), |ch, t| {
            let req = req.clone();
            async move { KvClient::new(ch).txn(timed(req, t)).await }
        })
        .await
        .map(Into::into)
    }

    // ------------------------------------------------------------ sessions

    /// Opens a session without a keep-alive task; see [`Client::session`] for the managed handle.
    /// Returns `(session_id, granted ttl_ms)`.
    pub async fn session_open(&self, ttl_ms: u64) -> Result<(u64, u64)> {
        let req = pb::OpenSessionRequest { ttl_ms };
        let r = self
            .run(Retry::Write, self.timeout(), |ch, t| async move {
                SessionClient::new(ch).open(timed(req, t)).await
            })
            .await?;
        if r.session_id == 0 {
            return Err(Error::MalformedResponse("session id 0".into()));
        }
        Ok((r.session_id, r.ttl_ms))
    }

    /// One keep-alive; returns the session's ttl_ms.
    pub async fn session_keep_alive(&self, session_id: u64) -> Result<u64> {
        self.keep_alive_with_timeout(session_id, self.timeout())
            .await
    }

    pub(crate) async fn keep_alive_with_timeout(
        &self,
        session_id: u64,
        timeout: Option<Duration>,
    ) -> Result<u64> {
        let req = pb::KeepAliveRequest { session_id };
        self.run(Retry::Idempotent, timeout, |ch, t| async move {
            SessionClient::new(ch).keep_alive(timed(req, t)).await
        })
        .await
        .map(|r| r.ttl_ms)
    }

    /// Closes a session, releasing its locks and deleting its keys. Closing is idempotent in
    /// effect: after an ambiguous failure it is retried, and "not found" then means done.
    pub async fn session_close(&self, session_id: u64) -> Result<()> {
        let req = pb::CloseSessionRequest { session_id };
        let call = |retry| {
            self.run(retry, self.timeout(), |ch, t| async move {
                SessionClient::new(ch).close(timed(req, t)).await
            })
        };
        match call(Retry::Write).await {
            Ok(_) => Ok(()),
            Err(Error::Unknown(_)) => match call(Retry::Idempotent).await {
                Ok(_) | Err(Error::SessionNotFound) | Err(Error::SessionExpired) => Ok(()),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    pub async fn session_get(&self, session_id: u64) -> Result<SessionInfo> {
        let req = pb::GetSessionRequest {
            session_id,
            serializable: false,
        };
        let r = self
            .run(Retry::Idempotent, self.timeout(), |ch, t| async move {
                SessionClient::new(ch).get(timed(req, t)).await
            })
            .await?;
        r.session
            .map(Into::into)
            .ok_or_else(|| Error::MalformedResponse("session missing".into()))
    }

    /// Opens a session and keeps it alive in the background until dropped or closed.
    pub async fn session(&self, ttl_ms: u64) -> Result<crate::Session> {
        let (id, ttl) = self.session_open(ttl_ms).await?;
        Ok(crate::Session::start(self.clone(), id, ttl))
    }

    // --------------------------------------------------------------- locks

    /// Acquires `name` for `session_id`, waiting in the FIFO queue. Safe to repeat: an acquire
    /// by the holder returns its token again.
    pub async fn lock_acquire(&self, name: &str, session_id: u64) -> Result<AcquireResult> {
        self.acquire(name, session_id, true).await
    }

    /// Acquires `name` only if it is free; `acquired` is false otherwise.
    pub async fn lock_try_acquire(&self, name: &str, session_id: u64) -> Result<AcquireResult> {
        self.acquire(name, session_id, false).await
    }

    async fn acquire(&self, name: &str, session_id: u64, wait: bool) -> Result<AcquireResult> {
        let req = pb::AcquireRequest {
            name: name.to_owned(),
            session_id,
            wait,
        };
        // A waiting acquire may legitimately block for long; dead peers are caught by HTTP/2
        // keep-alive instead of a deadline.
        let timeout = if wait { None } else { self.timeout() };
        self.run(Retry::Idempotent, timeout, |ch, t| {
            let req = req.clone();
            async move { LockClient::new(ch).acquire(timed(req, t)).await }
        })
        .await
        .map(Into::into)
    }

    /// Releases `name` held by `session_id` with `token`. After an ambiguous failure it is
    /// retried, and "not held" then means the first attempt took effect.
    pub async fn lock_release(
        &self,
        name: &str,
        session_id: u64,
        token: u64,
    ) -> Result<Option<ReleaseResult>> {
        let req = pb::ReleaseRequest {
            name: name.to_owned(),
            session_id,
            token,
        };
        let call = |retry| {
            let req = req.clone();
            self.run(retry, self.timeout(), move |ch, t| {
                let req = req.clone();
                async move { LockClient::new(ch).release(timed(req, t)).await }
            })
        };
        match call(Retry::Write).await {
            Ok(r) => Ok(Some(r.into())),
            Err(Error::Unknown(_)) => match call(Retry::Idempotent).await {
                Ok(r) => Ok(Some(r.into())),
                Err(Error::LockNotHeld) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    pub async fn lock_inspect(&self, name: &str) -> Result<LockInfo> {
        let req = pb::InspectRequest {
            name: name.to_owned(),
            serializable: false,
        };
        let r = self
            .run(Retry::Idempotent, self.timeout(), |ch, t| {
                let req = req.clone();
                async move { LockClient::new(ch).inspect(timed(req, t)).await }
            })
            .await?;
        r.lock
            .map(Into::into)
            .ok_or_else(|| Error::MalformedResponse("lock missing".into()))
    }

    // --------------------------------------------------------------- admin

    /// Status of whichever node answers first in rotation order, with the
    /// node's state digest.
    pub async fn status(&self) -> Result<NodeStatus> {
        self.status_with(true).await
    }

    /// Status without the state digest (left empty, index 0): cheap for
    /// the node, for polling roles and indexes.
    pub async fn status_brief(&self) -> Result<NodeStatus> {
        self.status_with(false).await
    }

    async fn status_with(&self, include_digest: bool) -> Result<NodeStatus> {
        self.run(Retry::Idempotent, self.timeout(), |ch, t| async move {
            AdminClient::new(ch)
                .status(timed(pb::StatusRequest { include_digest }, t))
                .await
        })
        .await
        .map(Into::into)
    }

    /// Status of one specific endpoint, without failover.
    pub async fn status_of(&self, endpoint: &str) -> Result<NodeStatus> {
        let ep = crate::endpoints::normalize_endpoint(endpoint)?;
        let ch = self.channel(&ep).await?;
        match AdminClient::new(ch)
            .status(timed(
                pb::StatusRequest {
                    include_digest: true,
                },
                self.timeout(),
            ))
            .await
        {
            Ok(r) => Ok(r.into_inner().into()),
            Err(s) => {
                self.forget_channel(&ep);
                Err(Error::from_status(&s))
            }
        }
    }

    /// Status of every known endpoint, in order; unreachable ones carry their error.
    pub async fn status_all(&self) -> Vec<(String, Result<NodeStatus>)> {
        let eps = self.endpoints();
        let futs = eps.iter().map(|ep| self.status_of(ep));
        let results = futures::future::join_all(futs).await;
        eps.into_iter().zip(results).collect()
    }

    pub async fn member_add_learner(
        &self,
        node_id: u64,
        peer_addr: &str,
        client_addr: &str,
    ) -> Result<MembershipResult> {
        let req = pb::AddLearnerRequest {
            node_id,
            peer_addr: peer_addr.to_owned(),
            client_addr: client_addr.to_owned(),
        };
        self.run(Retry::Write, self.timeout(), |ch, t| {
            let req = req.clone();
            async move { AdminClient::new(ch).add_learner(timed(req, t)).await }
        })
        .await
        .map(Into::into)
    }

    pub async fn member_promote(&self, node_id: u64) -> Result<MembershipResult> {
        let req = pb::PromoteRequest { node_id };
        self.run(Retry::Write, self.timeout(), |ch, t| async move {
            AdminClient::new(ch).promote(timed(req, t)).await
        })
        .await
        .map(Into::into)
    }

    pub async fn member_remove(&self, node_id: u64) -> Result<MembershipResult> {
        let req = pb::RemoveMemberRequest { node_id };
        self.run(Retry::Write, self.timeout(), |ch, t| async move {
            AdminClient::new(ch).remove_member(timed(req, t)).await
        })
        .await
        .map(Into::into)
    }

    /// The current membership as reported by the first node that answers.
    pub async fn member_list(&self) -> Result<Vec<Member>> {
        self.status().await.map(|s| s.members)
    }

    pub async fn transfer_leader(&self, node_id: u64) -> Result<()> {
        let req = pb::TransferLeaderRequest { node_id };
        self.run(Retry::Write, self.timeout(), |ch, t| async move {
            AdminClient::new(ch).transfer_leader(timed(req, t)).await
        })
        .await
        .map(|_| ())
    }

    /// Asks the node at the current endpoint to build a snapshot; returns its index.
    pub async fn snapshot(&self) -> Result<u64> {
        self.run(Retry::Idempotent, self.timeout(), |ch, t| async move {
            AdminClient::new(ch)
                .snapshot(timed(pb::SnapshotRequest {}, t))
                .await
        })
        .await
        .map(|r| r.snapshot_index)
    }

    /// Watches a key (or every key under a prefix) from `start_revision` (0 = from now).
    /// Returns once a node has accepted the watch, so "now" is before this call returns; fails
    /// only when no node accepts it (the node's answer, or the last connection error).
    pub async fn watch(
        &self,
        key: impl Into<Vec<u8>>,
        prefix: bool,
        start_revision: u64,
    ) -> Result<crate::WatchStream> {
        crate::WatchStream::start(self.clone(), key.into(), prefix, start_revision).await
    }
}

fn with_requested(e: Error, requested: u64) -> Error {
    match e {
        Error::Compacted {
            compact_revision, ..
        } => Error::Compacted {
            requested: Some(requested),
            compact_revision,
        },
        e => e,
    }
}

/// A transport error's message with its causes, which tonic keeps in the source chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port nothing listens on: bind, read the port, drop the listener.
    fn dead_endpoint() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        addr.to_string()
    }

    fn fast() -> ClientConfig {
        ClientConfig {
            backoff: Backoff {
                base: Duration::from_millis(1),
                max: Duration::from_millis(2),
                max_attempts: 4,
            },
            ..ClientConfig::default()
        }
    }

    #[tokio::test]
    async fn connect_fails_cleanly_when_nothing_listens() {
        let err = Client::connect_with(vec![dead_endpoint(), dead_endpoint()], fast())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn connect_rejects_bad_endpoints() {
        let err = Client::connect(vec!["nope".into()]).await.unwrap_err();
        assert!(matches!(err, Error::InvalidEndpoint { .. }), "{err:?}");
        let err = Client::connect(vec![]).await.unwrap_err();
        assert_eq!(err, Error::NoEndpoints);
    }

    #[tokio::test]
    async fn write_to_unreachable_cluster_is_unavailable_not_unknown() {
        // Refused connections prove nothing was sent, so a write may rotate and finally report
        // Unavailable rather than an unknown outcome.
        let (a, b) = (dead_endpoint(), dead_endpoint());
        let c = Client::new_lazy(vec![a, b], fast()).unwrap();
        let err = c.put("k", "v").await.unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(!err.is_outcome_unknown());
    }

    #[tokio::test]
    async fn rotation_visits_every_endpoint() {
        let (a, b) = (dead_endpoint(), dead_endpoint());
        let c = Client::new_lazy(vec![a.clone(), b.clone()], fast()).unwrap();
        assert_eq!(c.current_endpoint(), format!("http://{a}"));
        let _ = c.get("k").await;
        // Four attempts over two endpoints end back at the first.
        assert_eq!(c.current_endpoint(), format!("http://{a}"));
        c.advance_from(&format!("http://{a}"));
        assert_eq!(c.current_endpoint(), format!("http://{b}"));
    }
}
