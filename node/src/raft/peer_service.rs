//! Incoming Raft RPCs from peers, and requests followers forward to us.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aegis_proto::raft::raft_peer_server::RaftPeer;
use aegis_proto::raft::{IdentityRequest, IdentityResponse, RaftPayload, SnapshotChunk};
use futures::{Stream, StreamExt};
use openraft::async_runtime::WatchReceiver;
use openraft::raft::AppendEntriesRequest;
use openraft::vote::RaftLeaderId;
use serde::{de::DeserializeOwned, Serialize};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use super::forward::ForwardRequest;
use super::network::{EXPECTED_INCARNATION, INCARNATION_MISMATCH, ORIGIN_NODE};
use super::types::{decode, encode, LogId, SnapshotMeta, TypeConfig, Vote};
use super::Consensus;

/// At most one log line per this interval about refused RPCs: a leader
/// retries (and heartbeats) far more often than anyone reads logs.
const MISMATCH_LOG_EVERY: Duration = Duration::from_secs(10);

pub struct PeerService {
    pub consensus: Arc<Consensus>,
    mismatch_logged: Mutex<Option<Instant>>,
}

impl PeerService {
    pub fn new(consensus: Arc<Consensus>) -> Self {
        PeerService {
            consensus,
            mismatch_logged: Mutex::new(None),
        }
    }

    /// Refuses a Raft RPC meant for another incarnation of this node: the
    /// sender admitted a member whose data this node no longer has (its data
    /// directory was wiped), so nothing this node could answer would be true
    /// of that member. A missing or 0 expectation is not checked.
    fn check_incarnation(&self, md: &MetadataMap) -> Result<(), Status> {
        let Some(v) = md.get(EXPECTED_INCARNATION) else {
            return Ok(());
        };
        let expected = v
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| Status::invalid_argument(format!("bad {EXPECTED_INCARNATION}")))?;
        self.check_expected(expected)
    }

    /// The same check for an expectation already parsed (the framed append
    /// stream's hello carries it).
    pub fn check_expected(&self, expected: u64) -> Result<(), Status> {
        let own = self.consensus.incarnation;
        if expected == 0 || expected == own {
            return Ok(());
        }
        let msg = format!(
            "{INCARNATION_MISMATCH}: expected {expected:016x}, this node is {own:016x} \
             (its data directory was replaced; remove and re-add it as a learner)"
        );
        if let Ok(mut last) = self.mismatch_logged.lock() {
            if last.is_none_or(|t| t.elapsed() >= MISMATCH_LOG_EVERY) {
                *last = Some(Instant::now());
                tracing::warn!("refusing Raft RPCs: {msg}");
            }
        }
        Err(Status::failed_precondition(msg))
    }
}

fn payload<T: Serialize>(r: &T) -> Result<RaftPayload, Status> {
    encode(r)
        .map(|data| RaftPayload { data })
        .map_err(|e| Status::internal(e.to_string()))
}

fn reply<T: Serialize>(r: &T) -> Result<Response<RaftPayload>, Status> {
    payload(r).map(Response::new)
}

fn unpayload<T: DeserializeOwned>(p: &RaftPayload) -> Result<T, Status> {
    decode(&p.data).map_err(|e| Status::invalid_argument(format!("undecodable peer message: {e}")))
}

fn request<T: DeserializeOwned>(r: Request<RaftPayload>) -> Result<T, Status> {
    unpayload(&r.into_inner())
}

/// Decodes a peer message, hands it to Raft, and encodes the outcome; a
/// Raft error travels back as its text (see `network::unpack`).
async fn relay<Req, Resp, E, Fut>(
    r: Request<RaftPayload>,
    f: impl FnOnce(Req) -> Fut,
) -> Result<Response<RaftPayload>, Status>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    E: std::fmt::Display,
    Fut: std::future::Future<Output = Result<Resp, E>>,
{
    let req = request(r)?;
    reply(&f(req).await.map_err(|e| e.to_string()))
}

/// Refuses a snapshot no leader following the protocol could send, which
/// openraft would not refuse but assert on, stopping this node's Raft: one
/// whose last log id is beyond the sender's vote, or one above what this
/// node has committed but not at a higher index (two entries in one
/// committed slot). `committed` is read before the call, so a commit racing
/// with a forged snapshot can still slip past the second check.
fn check_snapshot(
    vote: &Vote,
    meta: &SnapshotMeta,
    committed: Option<&LogId>,
) -> Result<(), Status> {
    let Some(last) = meta.last_log_id.as_ref() else {
        return Ok(());
    };
    if *last.committed_leader_id() > vote.leader_id().to_committed() {
        return Err(Status::invalid_argument(format!(
            "snapshot up to {last} is beyond the sender's vote {vote}"
        )));
    }
    if let Some(c) = committed {
        if last > c && last.index() <= c.index() {
            return Err(Status::invalid_argument(format!(
                "snapshot up to {last} contradicts the committed log up to {c}"
            )));
        }
    }
    Ok(())
}

/// Replies of one `AppendStream`, in request order.
type AppendReplies = Pin<Box<dyn Stream<Item = Result<RaftPayload, Status>> + Send>>;

/// Decodes the requests of an `AppendStream` until the first that cannot be
/// decoded (or a transport error); the reason is kept in `refused` and sent
/// after the replies to everything before it.
fn decode_appends(
    incoming: Streaming<RaftPayload>,
    refused: Arc<Mutex<Option<Status>>>,
) -> impl Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + 'static {
    futures::stream::unfold(Some(incoming), move |incoming| {
        let refused = Arc::clone(&refused);
        async move {
            let mut incoming = incoming?;
            let why = match incoming
                .next()
                .await?
                .and_then(|p| unpayload::<AppendEntriesRequest<TypeConfig>>(&p))
            {
                Ok(req) => {
                    timeline!("f_recv", req.entries.len());
                    return Some((req, Some(incoming)));
                }
                Err(status) => status,
            };
            if let Ok(mut slot) = refused.lock() {
                *slot = Some(why);
            }
            None
        }
    })
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    type AppendStreamStream = AppendReplies;

    /// Hands the stream to openraft, which pipelines it into the Raft core
    /// and answers each request once its entries are on disk.
    async fn append_stream(
        &self,
        r: Request<Streaming<RaftPayload>>,
    ) -> Result<Response<AppendReplies>, Status> {
        self.check_incarnation(r.metadata())?;
        let refused = Arc::new(Mutex::new(None));
        let requests = decode_appends(r.into_inner(), Arc::clone(&refused));
        let replies = self.consensus.raft.stream_append(requests).map(|r| {
            timeline!("f_reply", 0);
            payload(&r.map_err(|fatal| fatal.to_string()))
        });
        let refusal =
            futures::stream::once(
                async move { refused.lock().ok().and_then(|mut slot| slot.take()) },
            )
            .filter_map(|why| async move { why.map(Err) });
        Ok(Response::new(Box::pin(replies.chain(refusal))))
    }

    async fn append_entries(
        &self,
        r: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.check_incarnation(r.metadata())?;
        relay(r, |req| self.consensus.raft.append_entries(req)).await
    }

    async fn vote(&self, r: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check_incarnation(r.metadata())?;
        self.consensus.step_in.someone_campaigns();
        relay(r, |req| self.consensus.raft.vote(req)).await
    }

    async fn pre_vote(&self, r: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check_incarnation(r.metadata())?;
        let req: openraft::raft::VoteRequest<TypeConfig> = request(r)?;
        let c = &self.consensus;
        let seen = c.step_in.campaigns_seen();
        let resp = c.raft.pre_vote(req.clone()).await;
        match &resp {
            Ok(resp) if resp.vote_granted => c.step_in.someone_campaigns(),
            Ok(resp) => c
                .step_in
                .after_refused_pre_vote(seen, &c.raft, c.id, &req, resp, &c.metrics),
            Err(_) => {}
        }
        reply(&resp.map_err(|e| e.to_string()))
    }

    async fn transfer_leader(
        &self,
        r: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.check_incarnation(r.metadata())?;
        relay(r, |req| self.consensus.raft.handle_transfer_leader(req)).await
    }

    async fn install_snapshot(
        &self,
        r: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.check_incarnation(r.metadata())?;
        let mut stream = r.into_inner();
        let mut header: Option<(Vote, SnapshotMeta)> = None;
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if header.is_none() {
                header =
                    Some(decode(&chunk.header).map_err(|e| {
                        Status::invalid_argument(format!("bad snapshot header: {e}"))
                    })?);
            }
            data.extend_from_slice(&chunk.data);
        }
        let (vote, meta) =
            header.ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let committed = self
            .consensus
            .raft
            .metrics()
            .borrow_watched()
            .local_committed;
        check_snapshot(&vote, &meta, committed.as_ref())?;
        let snapshot = openraft::storage::Snapshot {
            meta,
            snapshot: data.into(),
        };
        let res = self
            .consensus
            .raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| e.to_string());
        reply(&res)
    }

    async fn forward(&self, r: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        // Absent from older builds; only a hint, so a bad value is ignored.
        let origin = r
            .metadata()
            .get(ORIGIN_NODE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let req: ForwardRequest = request(r)?;
        self.consensus.metrics.forwarded();
        let res = self.consensus.handle_forwarded(req, origin).await;
        reply(&res)
    }

    async fn identity(
        &self,
        _r: Request<IdentityRequest>,
    ) -> Result<Response<IdentityResponse>, Status> {
        Ok(Response::new(IdentityResponse {
            node_id: self.consensus.id,
            incarnation: self.consensus.incarnation,
            initialized: self.consensus.has_membership(),
            commands: super::keep_alive_batch::COMMANDS,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    use aegis_config::ClusterConfig;
    use aegis_proto::raft::raft_peer_client::RaftPeerClient;
    use aegis_state_machine::Op;
    use openraft::testing::log_id;

    use super::*;
    use crate::metrics::Metrics;
    use crate::raft::types::{Member, StoredMembership};
    use crate::raft::{Consensus, StartOptions};

    fn vote(term: u64, node: u64) -> Vote {
        Vote::new_committed(term, node)
    }

    fn meta(last: Option<LogId>) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: last,
            last_membership: StoredMembership::default(),
        }
    }

    fn at(term: u64, node: u64, index: u64) -> Option<LogId> {
        Some(log_id::<TypeConfig>(term, node, index))
    }

    #[test]
    fn snapshots_no_leader_could_send_are_refused() {
        let committed = log_id::<TypeConfig>(3, 1, 10);
        // Beyond the sender's vote.
        let e = check_snapshot(&vote(5, 2), &meta(at(9, 2, 20)), Some(&committed));
        assert_eq!(e.unwrap_err().code(), tonic::Code::InvalidArgument);
        // Above the committed log id but not past its index.
        let e = check_snapshot(&vote(5, 2), &meta(at(4, 2, 10)), Some(&committed));
        assert_eq!(e.unwrap_err().code(), tonic::Code::InvalidArgument);
        // What a leader sends: within its vote, past what is committed (or not
        // newer at all, which openraft ignores).
        for last in [at(5, 2, 11), at(3, 1, 8), None] {
            assert!(check_snapshot(&vote(5, 2), &meta(last), Some(&committed)).is_ok());
        }
        assert!(check_snapshot(&vote(5, 2), &meta(at(4, 2, 3)), None).is_ok());
    }

    /// A single-node group serving its peer port on loopback.
    async fn lone_node(dir: &Path) -> (Arc<Consensus>, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let config = ClusterConfig::default();
        let consensus = Consensus::start(StartOptions {
            id: 1,
            data_dir: dir,
            incarnation: 7,
            config: &config,
            metrics: Metrics::new(),
            wal_flusher_nice: 0,
        })
        .await
        .unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(consensus.peer_service())
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let me = Member {
            peer_addr: addr.clone(),
            client_addr: addr.clone(),
            incarnation: 7,
        };
        consensus
            .bootstrap(BTreeMap::from([(1, me)]))
            .await
            .unwrap();
        (consensus, addr)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_forged_snapshot_is_refused_and_raft_keeps_running() {
        let dir = tempfile::tempdir().unwrap();
        let (consensus, addr) = lone_node(dir.path()).await;
        let first = consensus.propose(Op::Tick).await;
        assert!(first.is_ok(), "{first:?}");

        // A higher vote (so openraft would accept it) with a snapshot ending in
        // a later term than that vote.
        let header = encode(&(vote(50, 2), meta(at(90, 2, 5)))).unwrap();
        let mut peer = RaftPeerClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let chunk = SnapshotChunk {
            header,
            data: Vec::new(),
        };
        let refused = peer
            .install_snapshot(futures::stream::iter([chunk]))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(
            refused.message().contains("beyond the sender's vote"),
            "{refused:?}"
        );

        let after = tokio::time::timeout(Duration::from_secs(10), consensus.propose(Op::Tick))
            .await
            .expect("a write completes");
        assert!(after.is_ok(), "{after:?}");
    }
}
