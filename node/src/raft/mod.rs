//! Consensus: everything that knows openraft. The rest of the node sees
//! [`Consensus`] — propose an op, pass a read barrier, read status, change
//! membership — and never names an openraft type.

mod append_stream;
mod entry_cache;
mod forward;
mod framed_append;
pub mod incarnation;
mod keep_alive_batch;
mod log_store;
mod membership;
mod network;
mod pace;
mod peer_port;
mod peer_service;
#[doc(hidden)]
pub mod peer_wire;
mod state_machine;
mod step_in;
mod timing;
mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aegis_config::ClusterConfig;
use aegis_proto::raft::raft_peer_client::RaftPeerClient;
use aegis_proto::raft::raft_peer_server::RaftPeerServer;
use aegis_proto::raft::RaftPayload;
use aegis_state_machine::{Applied, Command, Op};
use aegis_wal::{Wal, WalOptions};
use openraft::async_runtime::WatchReceiver;
use openraft::{ReadPolicy, ServerState};
use tonic::transport::Channel;

pub use forward::{ForwardError, ForwardReply, ForwardRequest};
pub use membership::BootstrapError;
pub use state_machine::{SmEvent, SmShared};
pub use types::{Member, NodeId};

use crate::metrics::Metrics;
use log_store::LogStore;
use network::PeerNetwork;
use peer_service::PeerService;
use state_machine::SmStore;
use timing::{openraft_election_timeouts, snapshot_interval};
use types::{decode, encode, Raft};

/// Why a request could not be carried out by consensus.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsensusError {
    /// No leader could be reached before the deadline (e.g. an election).
    #[error("no leader")]
    NoLeader,
    /// The request may or may not have been applied (the leader failed
    /// after receiving it).
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The request was refused before it was proposed (e.g. an invalid
    /// membership change).
    #[error("{0}")]
    Refused(String),
    #[error("raft stopped: {0}")]
    Fatal(String),
}

/// A snapshot of this node's Raft view, for status and metrics.
#[derive(Debug, Clone, Default)]
pub struct RaftView {
    pub id: NodeId,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub role: &'static str,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: u64,
    /// Leader only: follower id → leader last index − matched index.
    pub lags: BTreeMap<NodeId, u64>,
    /// id → (member, is_voter)
    pub members: BTreeMap<NodeId, (Member, bool)>,
}

pub struct StartOptions<'a> {
    pub id: NodeId,
    pub data_dir: &'a Path,
    /// This data directory's incarnation (`incarnation::load_or_create`,
    /// called before anything else touches the directory).
    pub incarnation: u64,
    pub config: &'a ClusterConfig,
    pub metrics: Metrics,
    /// Nice value of the log's flusher thread; 0 leaves it as it is.
    pub wal_flusher_nice: i32,
}

pub struct Consensus {
    raft: Raft,
    id: NodeId,
    incarnation: u64,
    sm: Arc<SmShared>,
    peers: Mutex<BTreeMap<String, RaftPeerClient<Channel>>>,
    /// How long a request may wait for a leader before "no leader".
    leader_wait: Duration,
    rpc_timeout: Duration,
    /// How old a quorum acknowledgement may be for the leader to answer a
    /// linearizable read without a new heartbeat round (see `read_index`).
    read_lease: Duration,
    /// The term in which this node, as leader, started handing leadership
    /// over: no lease reads in it (0: none).
    handing_over_in: AtomicU64,
    /// Shared with the network: which followers get appends in batches.
    pacer: Arc<pace::Pacer>,
    /// Proposes the keep-alives this node leads many to an entry.
    keep_alives: keep_alive_batch::KeepAliveBatcher,
    /// Starts a pre-vote round when a stale candidate shows the leader is gone.
    step_in: step_in::StepIn,
    metrics: Metrics,
}

fn millis(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

/// What a failed `client_write` tells the node that asked for it.
fn write_err(
    e: openraft::errors::RaftError<
        types::TypeConfig,
        openraft::errors::ClientWriteError<types::TypeConfig>,
    >,
) -> ForwardError {
    use openraft::errors::{ClientWriteError, RaftError};
    match e {
        // Rejected before its entry was appended: safe to retry elsewhere.
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ForwardError::NotLeader {
            leader: f.leader_id,
        },
        // Appended, then discarded on a leader change: another leader
        // may still commit it, so the outcome is unknown.
        RaftError::APIError(e @ ClientWriteError::LogEntryDiscarded(_)) => {
            ForwardError::Failed(e.to_string())
        }
        RaftError::APIError(other) => ForwardError::Refused(other.to_string()),
        RaftError::Fatal(f) => ForwardError::Failed(f.to_string()),
    }
}

/// Stamps `op` with this node's clock and proposes it, on a node that
/// believes it is the leader. `writes`: how many clients' writes it carries,
/// for the leader's spin (ADR-0021).
async fn stamp_and_write(raft: &Raft, op: Op, writes: usize) -> Result<Applied, ForwardError> {
    let cmd = Command {
        leader_ts_ms: leader_now_ms(),
        op,
    };
    timeline!("propose", 0);
    let _in_flight = crate::leader_spin::InFlight::writes(writes);
    let resp = raft.client_write(Arc::new(cmd)).await.map_err(write_err)?;
    timeline!("written", 0);
    resp.data
        .ok_or_else(|| ForwardError::Failed("command applied without a result".into()))
}

/// The leader's wall clock, stamped into each command it proposes. The only
/// clock read on the write path, and it happens before replication
/// (ADR-001).
fn leader_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Consensus {
    pub async fn start(opts: StartOptions<'_>) -> anyhow::Result<Arc<Consensus>> {
        use anyhow::Context;
        let c = opts.config;
        let election = openraft_election_timeouts(
            millis(c.raft.heartbeat_interval_ms),
            millis(c.raft.election_timeout_min_ms),
            millis(c.raft.election_timeout_max_ms),
        );
        let raft_config = openraft::Config {
            cluster_name: "aegis".into(),
            heartbeat_interval: millis(c.raft.heartbeat_interval_ms),
            election_timeout_min: election.0,
            election_timeout_max: election.1,
            max_payload_entries: millis(c.raft.max_payload_entries),
            api_batch_capacity: millis(c.raft.max_batch_proposals),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_interval(
                millis(c.raft.snapshot_logs_since_last),
                opts.id,
            )),
            max_in_snapshot_log_to_keep: millis(c.raft.max_logs_kept_after_snapshot),
            enable_pre_vote: Some(true),
            // A restarted node must win an election before it leads again.
            // Restoring leadership from the stored vote would let it answer
            // read-index barriers from an in-memory state machine rebuilt
            // from the snapshot, behind writes acknowledged before the crash
            // (a stale linearizable read; chaos-tests/tests/regressions.rs).
            enable_leader_restore: Some(false),
            ..Default::default()
        }
        .validate()
        .context("raft settings")?;

        let wal = Wal::open(&opts.data_dir.join("wal"), WalOptions::default())
            .with_context(|| format!("opening the log under {}", opts.data_dir.display()))?;
        let log = LogStore::new(wal, opts.metrics.clone(), opts.wal_flusher_nice, opts.id)
            .context("starting the log flusher")?;
        let sm = SmStore::open(&opts.data_dir.join("snapshot"), opts.metrics.clone())
            .with_context(|| format!("opening the snapshot under {}", opts.data_dir.display()))?;
        let shared = sm.shared();
        let rpc_timeout = Duration::from_millis(millis(c.raft.rpc_timeout_ms).max(1));
        let pacer = Arc::new(pace::Pacer::new(
            Duration::from_millis(millis(c.raft.spare_batch_ms)),
            millis(c.raft.max_payload_entries),
        ));
        let network = PeerNetwork {
            connect_timeout: rpc_timeout,
            pacer: Arc::clone(&pacer),
        };
        let raft = Raft::new(opts.id, Arc::new(raft_config), network, log, sm)
            .await
            .context("starting raft")?;
        let leader_wait = Duration::from_millis(
            (millis(c.raft.election_timeout_max_ms) * 4).max(2000) + rpc_timeout.as_millis() as u64,
        );
        let (keep_alives, forward_queue) = keep_alive_batch::KeepAliveBatcher::start(raft.clone());
        let consensus = Arc::new(Consensus {
            raft,
            id: opts.id,
            incarnation: opts.incarnation,
            sm: shared,
            peers: Mutex::new(BTreeMap::new()),
            leader_wait,
            rpc_timeout,
            read_lease: Duration::from_millis(election.1 / 2),
            handing_over_in: AtomicU64::new(0),
            pacer,
            keep_alives,
            step_in: step_in::StepIn::new(Duration::from_millis(millis(
                c.raft.heartbeat_interval_ms,
            ))),
            metrics: opts.metrics,
        });
        tokio::spawn(keep_alive_batch::watch_gate(Arc::downgrade(&consensus)));
        tokio::spawn(keep_alive_batch::forward_batches(
            Arc::downgrade(&consensus),
            forward_queue,
        ));
        Ok(consensus)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This node's incarnation (docs/adr/0009-node-incarnation.md).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn sm(&self) -> &Arc<SmShared> {
        &self.sm
    }

    pub fn peer_service(self: &Arc<Self>) -> RaftPeerServer<PeerService> {
        RaftPeerServer::new(PeerService::new(self.clone())).max_decoding_message_size(64 << 20)
    }

    /// Takes the peer port's connections: append streams are served here;
    /// the returned stream holds the rest, for the gRPC server of
    /// [`peer_service`](Self::peer_service).
    pub fn serve_peer_port(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
    ) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> + Send + 'static {
        let (grpc, mut framed) = peer_port::sort(listener);
        let peer = Arc::new(PeerService::new(self.clone()));
        tokio::spawn(async move {
            while let Some(conn) = framed.recv().await {
                let conn = crate::timeline::peer_stream(conn);
                tokio::spawn(framed_append::serve(conn, Arc::clone(&peer)));
            }
        });
        grpc
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow_watched().state == ServerState::Leader
    }

    /// The current term, without copying the rest of the metrics.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow_watched().current_term
    }

    /// The leader this node knows of, if it is a member this node can reach.
    fn leader(&self) -> Option<NodeId> {
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        let id = m.current_leader?;
        m.membership_config.membership().get_node(&id)?;
        Some(id)
    }

    /// Where to reach member `id`.
    fn member(&self, id: NodeId) -> Option<Member> {
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        m.membership_config.membership().get_node(&id).cloned()
    }

    pub fn view(&self) -> RaftView {
        let m = self.raft.metrics().borrow_watched().clone();
        let last_log_index = m.last_log_index.unwrap_or(0);
        let mut lags = BTreeMap::new();
        if let Some(rep) = &m.replication {
            for (id, matched) in rep {
                if *id != self.id {
                    let matched = matched.as_ref().map(|l| l.index()).unwrap_or(0);
                    lags.insert(*id, last_log_index.saturating_sub(matched));
                }
            }
        }
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| (*id, (node.clone(), voters.contains(id))))
            .collect();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            _ => "learner",
        };
        RaftView {
            id: self.id,
            term: m.current_term,
            leader: m.current_leader,
            role,
            commit_index: m.cluster_committed.as_ref().map(|l| l.index()).unwrap_or(0),
            applied_index: m.last_applied.as_ref().map(|l| l.index()).unwrap_or(0),
            last_log_index,
            snapshot_index: m.snapshot.as_ref().map(|l| l.index()).unwrap_or(0),
            lags,
            members,
        }
    }

    fn peer(&self, member: &Member) -> Result<RaftPeerClient<Channel>, ConsensusError> {
        let mut peers = self
            .peers
            .lock()
            .map_err(|_| ConsensusError::Fatal("peer cache poisoned".into()))?;
        if let Some(c) = peers.get(&member.peer_addr) {
            return Ok(c.clone());
        }
        let ch = network::channel(&member.peer_addr, self.rpc_timeout).map_err(|e| {
            ConsensusError::Refused(format!("bad peer address {}: {e}", member.peer_addr))
        })?;
        let c = RaftPeerClient::new(ch).max_decoding_message_size(64 << 20);
        peers.insert(member.peer_addr.clone(), c.clone());
        Ok(c)
    }

    /// Sends a request to the leader if it is another node, or handles it
    /// here. Retries while leadership is unsettled, until `leader_wait`.
    async fn route(&self, req: ForwardRequest) -> Result<ForwardReply, ConsensusError> {
        let deadline = Instant::now() + self.leader_wait;
        let mut backoff = Duration::from_millis(10);
        loop {
            let tried = self.leader();
            let outcome = match tried {
                Some(l) if l == self.id => self.handle_forwarded(req.clone(), None).await,
                // Looked up only to forward: the common case, a write on the
                // leader, copies no addresses.
                Some(l) => match self.member(l) {
                    Some(member) => self.forward_to(&member, &req).await,
                    None => Err(ForwardError::NotLeader { leader: None }),
                },
                None => Err(ForwardError::NotLeader { leader: None }),
            };
            match outcome {
                Ok(r) => return Ok(r),
                Err(ForwardError::NotLeader { .. }) => {}
                Err(ForwardError::Refused(m)) => return Err(ConsensusError::Refused(m)),
                Err(ForwardError::Failed(m)) => {
                    self.metrics.proposal_failed();
                    return Err(ConsensusError::Unknown(m));
                }
            }
            if Instant::now() >= deadline {
                self.metrics.proposal_failed();
                return Err(ConsensusError::NoLeader);
            }
            // Retry as soon as this node learns of another leader (an election
            // just ended), or after the backoff.
            let _ = self
                .raft
                .wait(Some(backoff))
                .metrics(
                    move |m| m.current_leader.is_some() && m.current_leader != tried,
                    "leader change",
                )
                .await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    async fn forward_to(
        &self,
        leader: &Member,
        req: &ForwardRequest,
    ) -> Result<ForwardReply, ForwardError> {
        let mut client = self
            .peer(leader)
            .map_err(|e| ForwardError::Refused(e.to_string()))?;
        let data = encode(req).map_err(|e| ForwardError::Refused(e.to_string()))?;
        let mut request = tonic::Request::new(RaftPayload { data });
        request.set_timeout(self.leader_wait);
        request
            .metadata_mut()
            .insert(network::ORIGIN_NODE, self.id.into());
        match client.forward(request).await {
            Ok(resp) => decode::<Result<ForwardReply, ForwardError>>(&resp.into_inner().data)
                .map_err(|e| ForwardError::Failed(format!("undecodable reply from leader: {e}")))?,
            // Could not connect: nothing was sent, so it is safe to look for
            // the leader again.
            Err(s) if s.code() == tonic::Code::Unavailable && is_connect_error(&s) => {
                Err(ForwardError::NotLeader { leader: None })
            }
            Err(s) => Err(ForwardError::Failed(format!(
                "leader failed: {}",
                s.message()
            ))),
        }
    }

    /// One keep-alive on this node, which believes it is the leader: in the
    /// next batch when every member decodes batches, else an entry of its own.
    async fn renew_here(&self, session_id: u64) -> Result<Applied, ForwardError> {
        if self.keep_alives.is_open() {
            self.keep_alives.renew(session_id).await
        } else {
            stamp_and_write(&self.raft, Op::KeepAlive { session_id }, 1).await
        }
    }

    /// Carries out a request on this node, which believes it is the leader;
    /// `origin` is the node that forwarded it.
    pub(crate) async fn handle_forwarded(
        &self,
        req: ForwardRequest,
        origin: Option<NodeId>,
    ) -> Result<ForwardReply, ForwardError> {
        match req {
            ForwardRequest::Propose(Op::KeepAlive { session_id }) => {
                self.renew_here(session_id).await.map(ForwardReply::Applied)
            }
            ForwardRequest::Propose(op) => stamp_and_write(&self.raft, op, 1)
                .await
                .map(ForwardReply::Applied),
            ForwardRequest::KeepAlives { session_ids } => {
                let each = session_ids.into_iter().map(|id| self.renew_here(id));
                Ok(ForwardReply::KeptAlive(
                    futures::future::join_all(each).await,
                ))
            }
            ForwardRequest::ReadIndex => {
                // Boxed for the size of its state, as the arms below; a read
                // pays one allocation so that a write's future is not as large.
                let index = Box::pin(self.read_index()).await?;
                // The origin now waits to apply `index`. If it is a spare
                // follower not yet sent a commit index that high, its next
                // append need not wait its turn: made from now on, it carries
                // the commit index as of then, at least `index` (unless
                // `index` is this term's first entry, not yet committed).
                if let Some(origin) = origin {
                    self.pacer.hurry(origin, index);
                }
                Ok(ForwardReply::ReadIndex(index))
            }
            // Boxed: these rare arms wait on openraft's membership calls,
            // whose states are larger than a write's. Inline, every write's
            // future would be that large and be copied at that size each
            // time it is moved (docs/bench-results/2026-12-04/leader-memmove).
            ForwardRequest::AddLearner { id, member } => {
                Box::pin(self.add_learner_here(id, member)).await
            }
            ForwardRequest::Promote { id } => Box::pin(self.promote_here(id)).await,
            ForwardRequest::Remove { id } => Box::pin(self.remove_here(id)).await,
            ForwardRequest::TransferLeader { to } => Box::pin(self.transfer_leader_here(to)).await,
        }
    }

    /// The leader's read index: every write acknowledged before this call is
    /// at or below it.
    ///
    /// Lease read: if a quorum acknowledged this leader within `read_lease`
    /// (half of openraft's leader lease), no other leader can have been
    /// elected since — a voter grants no vote within the full lease of the
    /// last leader message it saw — so the read needs no network round.
    /// The other half of the lease is the margin for clocks running at
    /// different rates. Otherwise it is a ReadIndex: a fresh heartbeat round
    /// confirms leadership first.
    async fn read_index(&self) -> Result<u64, ForwardError> {
        let term = self.term();
        let leased = self.handing_over_in.load(Ordering::SeqCst) != term;
        let option = if leased {
            openraft::LinearizerOption::new(Some(self.read_lease), true)
        } else {
            ReadPolicy::ReadIndex.into()
        };
        let not_leader = |e: openraft::errors::RaftError<
            types::TypeConfig,
            openraft::errors::LinearizableReadError<types::TypeConfig>,
        >| match e.forward_to_leader() {
            Some(f) => ForwardError::NotLeader {
                leader: f.leader_id,
            },
            None => ForwardError::NotLeader { leader: None },
        };
        let mut lin = self
            .raft
            .get_read_linearizer(option)
            .await
            .map_err(not_leader)?;
        // A hand-over that began while the lease was being checked may have
        // let the target win without waiting out the lease: confirm afresh.
        if leased && self.handing_over_in.load(Ordering::SeqCst) >= term {
            lin = self
                .raft
                .get_read_linearizer(ReadPolicy::ReadIndex)
                .await
                .map_err(not_leader)?;
        }
        Ok(lin.read_log_id().index())
    }

    /// Proposes an op through the leader and returns what applying it produced.
    pub async fn propose(&self, op: Op) -> Result<Applied, ConsensusError> {
        if let Op::KeepAlive { session_id } = op {
            let leader = self.leader().filter(|&l| l != self.id);
            if leader.is_some_and(|l| self.keep_alives.leader_takes_batches(l)) {
                return self.keep_alives.forward(session_id).await;
            }
        }
        self.propose_routed(op).await
    }

    /// Proposes an op through the leader, on its own.
    async fn propose_routed(&self, op: Op) -> Result<Applied, ConsensusError> {
        match self.route(ForwardRequest::Propose(op)).await? {
            ForwardReply::Applied(a) => Ok(a),
            other => Err(ConsensusError::Unknown(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// A linearizable read barrier: returns once this replica has applied
    /// everything committed before the call, as confirmed by the leader.
    pub async fn read_barrier(&self) -> Result<u64, ConsensusError> {
        let index = match self.route(ForwardRequest::ReadIndex).await? {
            ForwardReply::ReadIndex(i) => i,
            other => {
                return Err(ConsensusError::Unknown(format!(
                    "unexpected reply {other:?}"
                )))
            }
        };
        let mut applied = self.sm.applied_index();
        let waited =
            tokio::time::timeout(self.leader_wait, applied.wait_for(|a| *a >= index)).await;
        match waited.map(|r| r.map(|_| ())) {
            Ok(Ok(_)) => Ok(index),
            Ok(Err(_)) => Err(ConsensusError::Fatal("state machine stopped".into())),
            Err(_) => Err(ConsensusError::NoLeader),
        }
    }

    /// Builds a snapshot on this node now; returns the snapshot index once built.
    pub async fn snapshot(&self) -> Result<u64, ConsensusError> {
        let before = self.view().snapshot_index;
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| ConsensusError::Fatal(e.to_string()))?;
        let mut rx = self.raft.metrics();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let idx = rx
                .borrow_watched()
                .snapshot
                .as_ref()
                .map(|l| l.index())
                .unwrap_or(0);
            let applied = rx
                .borrow_watched()
                .last_applied
                .as_ref()
                .map(|l| l.index())
                .unwrap_or(0);
            if idx > before || (idx == applied && idx > 0) {
                return Ok(idx);
            }
            if Instant::now() >= deadline {
                return Err(ConsensusError::Unknown(
                    "snapshot not finished in 30s".into(),
                ));
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        }
    }

    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

fn is_connect_error(s: &tonic::Status) -> bool {
    // Only failures to open a connection prove nothing was sent; a reset
    // mid-request leaves the outcome unknown.
    let m = s.message().to_ascii_lowercase();
    m.contains("trying to connect") || m.contains("tcp connect") || m.contains("connection refused")
}
