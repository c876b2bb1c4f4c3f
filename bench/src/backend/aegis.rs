//! AEGIS through the raw generated tonic clients: one HTTP/2 connection per `AegisConn`,
//! no SDK failover layer in the measured path (the benchmark wants the server's cost).

use std::time::Duration;

use aegis_proto::v1 as pb;
use pb::admin_client::AdminClient;
use pb::kv_client::KvClient;
use pb::lock_client::LockClient;
use pb::session_client::SessionClient;
use pb::watch_client::WatchClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::{url, MemberStatus, Op, OpSpec};
use crate::keys::{self, Rng};

#[derive(Clone)]
pub struct AegisConn {
    channel: Channel,
}

fn status_text(s: &tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

impl AegisConn {
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<AegisConn, String> {
        let channel = Endpoint::from_shared(url(endpoint))
            .map_err(|e| format!("bad endpoint {endpoint}: {e}"))?
            .connect_timeout(timeout)
            // Per call, in the client: the same layer etcd-client sets up for the etcd side.
            .timeout(timeout)
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| format!("connect {endpoint}: {e}"))?;
        Ok(AegisConn { channel })
    }

    pub async fn worker(&self, spec: &OpSpec, index: u64) -> Result<AegisWorker, String> {
        let session = match spec.op {
            Op::Lock | Op::KeepAlive => {
                let ttl_ms = u64::try_from(spec.session_ttl.as_millis()).unwrap_or(u64::MAX);
                let r = SessionClient::new(self.channel.clone())
                    .open(pb::OpenSessionRequest { ttl_ms })
                    .await
                    .map_err(|s| format!("session open: {}", status_text(&s)))?
                    .into_inner();
                r.session_id
            }
            _ => 0,
        };
        // One keep-alive stream per worker, as the etcd side holds one
        // LeaseKeepAlive stream per lease.
        let keeper = match spec.op {
            Op::KeepAlive => Some(self.keep_alive_stream().await?),
            _ => None,
        };
        let fixed_key = keys::key("bench/k", 0, spec.key_size);
        if matches!(spec.op, Op::GetLinearizable | Op::GetSerializable) && index == 0 {
            // Reads need something to read; one worker writes it before the clock starts.
            self.put(fixed_key.clone(), spec.value.to_vec()).await?;
        }
        Ok(AegisWorker {
            kv: KvClient::new(self.channel.clone()),
            lock: LockClient::new(self.channel.clone()),
            session_client: SessionClient::new(self.channel.clone()),
            spec: spec.clone(),
            rng: Rng::new(index + 1),
            session,
            keeper,
            lock_name: format!("bench/lock/{}", index % spec.lock_names.max(1)),
            fixed_key,
        })
    }

    pub async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        KvClient::new(self.channel.clone())
            .put(pb::PutRequest {
                key,
                value,
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|s| status_text(&s))
    }

    async fn keep_alive_stream(&self) -> Result<Keeper, String> {
        let (tx, rx) = mpsc::channel(1);
        let replies = SessionClient::new(self.channel.clone())
            .keep_alive_stream(ReceiverStream::new(rx))
            .await
            .map_err(|s| format!("keep-alive stream: {}", status_text(&s)))?
            .into_inner();
        Ok(Keeper { tx, replies })
    }

    pub async fn status(&self) -> Result<MemberStatus, String> {
        let s = AdminClient::new(self.channel.clone())
            .status(pb::StatusRequest::default())
            .await
            .map_err(|s| status_text(&s))?
            .into_inner();
        Ok(MemberStatus {
            id: s.node_id,
            leader: s.leader_id,
            is_leader: s.role == "leader",
            term: s.term,
            index: s.applied_index,
        })
    }

    pub async fn watch_prefix(&self, prefix: &[u8]) -> Result<AegisWatcher, String> {
        let mut stream = WatchClient::new(self.channel.clone())
            .watch(pb::WatchRequest {
                key: prefix.to_vec(),
                prefix: true,
                start_revision: 0,
            })
            .await
            .map_err(|s| format!("watch: {}", status_text(&s)))?
            .into_inner();
        // The first message confirms the watch; events written after it are delivered.
        match stream.message().await {
            Ok(Some(m)) if m.created => Ok(AegisWatcher { stream }),
            Ok(Some(m)) => Err(format!("watch: first message was not 'created': {m:?}")),
            Ok(None) => Err("watch: stream ended before 'created'".into()),
            Err(s) => Err(format!("watch: {}", status_text(&s))),
        }
    }
}

/// The sending half and the replies of one `KeepAliveStream`.
struct Keeper {
    tx: mpsc::Sender<pb::KeepAliveRequest>,
    replies: tonic::Streaming<pb::KeepAliveResponse>,
}

pub struct AegisWorker {
    kv: KvClient<Channel>,
    lock: LockClient<Channel>,
    session_client: SessionClient<Channel>,
    spec: OpSpec,
    rng: Rng,
    session: u64,
    keeper: Option<Keeper>,
    lock_name: String,
    fixed_key: Vec<u8>,
}

impl AegisWorker {
    fn random_key(&mut self) -> Vec<u8> {
        let i = self.rng.below(self.spec.key_space);
        keys::key("bench/k", i, self.spec.key_size)
    }

    pub async fn run_once(&mut self) -> Result<(), String> {
        // The deadline is kept in the client, as on the etcd side: no `grpc-timeout` header
        // reaches the server, so neither system under test spends a timer on it (ADR-0007).
        let t = self.spec.request_timeout;
        tokio::time::timeout(t, self.call())
            .await
            .map_err(|_| format!("timed out after {t:?}"))?
    }

    async fn call(&mut self) -> Result<(), String> {
        match self.spec.op {
            Op::Put => {
                let key = self.random_key();
                let req = pb::PutRequest {
                    key,
                    value: self.spec.value.to_vec(),
                    ..Default::default()
                };
                self.kv.put(req).await.map_err(|s| status_text(&s))?;
            }
            Op::GetLinearizable | Op::GetSerializable => {
                let req = pb::GetRequest {
                    key: self.fixed_key.clone(),
                    revision: 0,
                    serializable: self.spec.op == Op::GetSerializable,
                };
                let r = self.kv.get(req).await.map_err(|s| status_text(&s))?;
                if r.into_inner().kv.is_none() {
                    return Err("get: key missing".into());
                }
            }
            Op::Txn => {
                let key = self.random_key();
                let req = pb::TxnRequest {
                    compare: vec![pb::Compare {
                        key: key.clone(),
                        target: pb::compare::Target::ModRevision as i32,
                        result: pb::compare::Result::Less as i32,
                        value: Vec::new(),
                        number: u64::MAX / 2,
                    }],
                    success: vec![pb::TxnOp {
                        op: Some(pb::txn_op::Op::Put(pb::PutRequest {
                            key,
                            value: self.spec.value.to_vec(),
                            ..Default::default()
                        })),
                    }],
                    failure: Vec::new(),
                };
                let r = self.kv.txn(req).await.map_err(|s| status_text(&s))?;
                if !r.into_inner().succeeded {
                    return Err("txn: compare failed".into());
                }
            }
            Op::Lock => {
                let acquire = pb::AcquireRequest {
                    name: self.lock_name.clone(),
                    session_id: self.session,
                    wait: true,
                };
                let a = self
                    .lock
                    .acquire(acquire)
                    .await
                    .map_err(|s| format!("acquire: {}", status_text(&s)))?
                    .into_inner();
                if !a.acquired {
                    return Err("acquire: not acquired".into());
                }
                let release = pb::ReleaseRequest {
                    name: self.lock_name.clone(),
                    session_id: self.session,
                    token: a.token,
                };
                self.lock
                    .release(release)
                    .await
                    .map_err(|s| format!("release: {}", status_text(&s)))?;
            }
            Op::KeepAlive => {
                let keeper = self
                    .keeper
                    .as_mut()
                    .ok_or_else(|| "keep-alive stream missing".to_string())?;
                let req = pb::KeepAliveRequest {
                    session_id: self.session,
                };
                keeper
                    .tx
                    .send(req)
                    .await
                    .map_err(|_| "keep-alive: stream closed".to_string())?;
                match keeper.replies.message().await {
                    Ok(Some(r)) if r.ttl_ms == 0 => return Err("keep-alive: session gone".into()),
                    Ok(Some(_)) => {}
                    Ok(None) => return Err("keep-alive: stream ended".into()),
                    Err(s) => return Err(status_text(&s)),
                }
            }
        }
        Ok(())
    }

    pub async fn cleanup(mut self) {
        if self.session != 0 {
            let req = pb::CloseSessionRequest {
                session_id: self.session,
            };
            let _ = self.session_client.close(req).await;
        }
    }
}

pub struct AegisWatcher {
    stream: tonic::Streaming<pb::WatchResponse>,
}

impl AegisWatcher {
    pub async fn next_keys(&mut self) -> Result<Option<Vec<Vec<u8>>>, String> {
        match self.stream.message().await {
            Ok(Some(m)) => {
                if m.canceled {
                    return Err(format!("watch canceled: {}", m.cancel_reason));
                }
                Ok(Some(
                    m.events
                        .into_iter()
                        .filter_map(|e| e.kv.map(|kv| kv.key))
                        .collect(),
                ))
            }
            Ok(None) => Ok(None),
            Err(s) => Err(status_text(&s)),
        }
    }
}
