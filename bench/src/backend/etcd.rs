//! etcd through the `etcd-client` crate: one client (one HTTP/2 connection) per `EtcdConn`.
//! Sessions are leases and locks use etcd's lock service bound to the worker's lease.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, LeaseKeepAliveStream, LeaseKeeper,
    LockOptions, Txn, TxnOp, WatchOptions, WatchStream,
};

use super::{url, MemberStatus, Op, OpSpec};
use crate::keys::{self, Rng};

#[derive(Clone)]
pub struct EtcdConn {
    client: Client,
}

impl EtcdConn {
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<EtcdConn, String> {
        let opts = ConnectOptions::new()
            .with_connect_timeout(timeout)
            .with_timeout(timeout);
        let client = Client::connect([url(endpoint)], Some(opts))
            .await
            .map_err(|e| format!("connect {endpoint}: {e}"))?;
        Ok(EtcdConn { client })
    }

    pub async fn worker(&self, spec: &OpSpec, index: u64) -> Result<EtcdWorker, String> {
        let mut client = self.client.clone();
        let ttl = i64::try_from(spec.session_ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let mut lease = 0;
        let mut keeper = None;
        if matches!(spec.op, Op::Lock | Op::KeepAlive) {
            lease = client
                .lease_grant(ttl, None)
                .await
                .map_err(|e| format!("lease grant: {e}"))?
                .id();
        }
        if spec.op == Op::KeepAlive {
            keeper = Some(
                client
                    .lease_keep_alive(lease)
                    .await
                    .map_err(|e| format!("lease keep-alive stream: {e}"))?,
            );
        }
        let fixed_key = keys::key("bench/k", 0, spec.key_size);
        if matches!(spec.op, Op::GetLinearizable | Op::GetSerializable) && index == 0 {
            self.put(fixed_key.clone(), spec.value.to_vec()).await?;
        }
        Ok(EtcdWorker {
            client,
            spec: spec.clone(),
            rng: Rng::new(index + 1),
            lease,
            keeper,
            lock_name: format!("bench/lock/{}", index % spec.lock_names.max(1)),
            fixed_key,
        })
    }

    pub async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.client
            .clone()
            .put(key, value, None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub async fn status(&self) -> Result<MemberStatus, String> {
        let s = self
            .client
            .clone()
            .status()
            .await
            .map_err(|e| e.to_string())?;
        let (id, term) = s
            .header()
            .map(|h| (h.member_id(), h.raft_term()))
            .unwrap_or((0, 0));
        Ok(MemberStatus {
            id,
            leader: s.leader(),
            is_leader: id != 0 && s.leader() == id,
            term,
            index: s.raft_index(),
        })
    }

    pub async fn watch_prefix(&self, prefix: &[u8]) -> Result<EtcdWatcher, String> {
        let mut stream = self
            .client
            .clone()
            .watch(prefix.to_vec(), Some(WatchOptions::new().with_prefix()))
            .await
            .map_err(|e| format!("watch: {e}"))?;
        match stream.message().await {
            Ok(Some(m)) if m.created() => Ok(EtcdWatcher { stream }),
            Ok(Some(_)) => Err("watch: first message was not 'created'".into()),
            Ok(None) => Err("watch: stream ended before 'created'".into()),
            Err(e) => Err(format!("watch: {e}")),
        }
    }
}

pub struct EtcdWorker {
    client: Client,
    spec: OpSpec,
    rng: Rng,
    lease: i64,
    keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    lock_name: String,
    fixed_key: Vec<u8>,
}

impl EtcdWorker {
    fn random_key(&mut self) -> Vec<u8> {
        let i = self.rng.below(self.spec.key_space);
        keys::key("bench/k", i, self.spec.key_size)
    }

    pub async fn run_once(&mut self) -> Result<(), String> {
        let t = self.spec.request_timeout;
        let fut = async {
            match self.spec.op {
                Op::Put => {
                    let key = self.random_key();
                    self.client
                        .put(key, self.spec.value.to_vec(), None)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Op::GetLinearizable | Op::GetSerializable => {
                    let opts = if self.spec.op == Op::GetSerializable {
                        Some(GetOptions::new().with_serializable())
                    } else {
                        None
                    };
                    let r = self
                        .client
                        .get(self.fixed_key.clone(), opts)
                        .await
                        .map_err(|e| e.to_string())?;
                    if r.kvs().is_empty() {
                        return Err("get: key missing".into());
                    }
                }
                Op::Txn => {
                    let key = self.random_key();
                    let txn = Txn::new()
                        .when([Compare::mod_revision(
                            key.clone(),
                            CompareOp::Less,
                            i64::MAX,
                        )])
                        .and_then([TxnOp::put(key, self.spec.value.to_vec(), None)]);
                    let r = self.client.txn(txn).await.map_err(|e| e.to_string())?;
                    if !r.succeeded() {
                        return Err("txn: compare failed".into());
                    }
                }
                Op::Lock => {
                    let l = self
                        .client
                        .lock(
                            self.lock_name.clone(),
                            Some(LockOptions::new().with_lease(self.lease)),
                        )
                        .await
                        .map_err(|e| format!("lock: {e}"))?;
                    self.client
                        .unlock(l.key().to_vec())
                        .await
                        .map_err(|e| format!("unlock: {e}"))?;
                }
                Op::KeepAlive => {
                    let (keeper, stream) = self
                        .keeper
                        .as_mut()
                        .ok_or_else(|| "keep-alive stream missing".to_string())?;
                    keeper.keep_alive().await.map_err(|e| e.to_string())?;
                    match stream.message().await {
                        Ok(Some(r)) if r.ttl() > 0 => {}
                        Ok(Some(_)) => return Err("keep-alive: lease expired".into()),
                        Ok(None) => return Err("keep-alive: stream ended".into()),
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            Ok(())
        };
        // etcd-client has no per-call deadline on streams; bound every request the same way.
        tokio::time::timeout(t, fut)
            .await
            .map_err(|_| format!("timed out after {t:?}"))?
    }

    pub async fn cleanup(mut self) {
        if self.lease != 0 {
            let _ = tokio::time::timeout(
                self.spec.request_timeout,
                self.client.lease_revoke(self.lease),
            )
            .await;
        }
    }
}

pub struct EtcdWatcher {
    stream: WatchStream,
}

impl EtcdWatcher {
    pub async fn next_keys(&mut self) -> Result<Option<Vec<Vec<u8>>>, String> {
        match self.stream.message().await {
            Ok(Some(m)) => {
                if m.canceled() {
                    return Err(format!("watch canceled: {}", m.cancel_reason()));
                }
                Ok(Some(
                    m.events()
                        .iter()
                        .filter_map(|e| e.kv().map(|kv| kv.key().to_vec()))
                        .collect(),
                ))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}
