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
mod network;
mod pace;
mod peer_port;
mod peer_service;
mod state_machine;
mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aegis_config::ClusterConfig;
use aegis_proto::raft::raft_peer_client::RaftPeerClient;
use aegis_proto::raft::raft_peer_server::RaftPeerServer;
use aegis_proto::raft::{IdentityRequest, IdentityResponse, RaftPayload};
use aegis_state_machine::{Applied, Command, Op};
use aegis_wal::{Wal, WalOptions};
use openraft::async_runtime::WatchReceiver;
use openraft::{ChangeMembers, ReadPolicy, ServerState};
use tonic::transport::Channel;

pub use forward::{ForwardError, ForwardReply, ForwardRequest};
pub use state_machine::{SmEvent, SmShared};
pub use types::{Member, NodeId};

use crate::metrics::Metrics;
use log_store::LogStore;
use network::PeerNetwork;
use peer_service::PeerService;
use state_machine::SmStore;
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

/// Why founding a group failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BootstrapError {
    /// `--members` names an address where another node answers.
    #[error(
        "founding member {id} at {addr} answers as node {answered}: check --members \
         (refusing to initialise the group)"
    )]
    WrongNode {
        id: NodeId,
        addr: String,
        answered: NodeId,
    },
    #[error("initialising raft: {0}")]
    Raft(String),
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
    metrics: Metrics,
}

fn millis(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

/// openraft's `(election_timeout_min, election_timeout_max)` for AEGIS's
/// configured election timeout range.
///
/// In AEGIS, as in etcd and the Raft paper, the election timeout is how long a
/// follower goes without hearing from a leader before it campaigns. openraft
/// 0.10 waits out a leader lease of `election_timeout_max` first and only then
/// its randomised `[min, max)` timeout, so passing the configured values
/// through would make a follower wait `[max + min, 2 max)`: 750–1,000 ms for
/// the default 250..500 ms, three times what the operator asked for. With
/// `max' = max / 2` and `min' = min - max'` the wait is `[min, max)` again.
///
/// `min'` is also openraft's deadline for every vote and pre-vote request,
/// so it is kept at least `max' / 2`: with `min'` just past one heartbeat
/// (51 ms), a candidate on a loaded machine gave up on votes that were on
/// their way, every node kept campaigning, and no election completed for
/// 30 s (RELIABILITY.md). The wait then starts later than `min` — at the
/// default `[375, 500)` ms — but still ends at `max`. `min'` stays above one
/// heartbeat (openraft requires that); a range too narrow to express ends
/// at `max`. Settings the envelope would reject are passed through
/// unchanged for openraft's own validation to refuse.
fn openraft_election_timeouts(heartbeat: u64, min: u64, max: u64) -> (u64, u64) {
    let lease = max / 2;
    let floor = heartbeat.saturating_add(1);
    if heartbeat == 0 || min >= max || floor >= lease.saturating_sub(1) {
        return (min, max);
    }
    let vote_deadline = lease / 2;
    // A range too narrow to express (min close to max) ends at max instead.
    let short = min
        .saturating_sub(lease)
        .max(vote_deadline)
        .max(floor)
        .min(lease - 1);
    (short, lease)
}

/// This node's snapshot interval: the configured one plus 0, 5, 10, 15 or 20 % by node id.
/// Every member applies the same entries, so with one interval all of them would encode and
/// fsync their whole state at the same index, together: on shared cores and disks that stalls
/// the quorum (the leader's heartbeats and the followers' log fsyncs) for the length of a
/// snapshot. Spread out, at most a member or two are busy at a time.
fn snapshot_interval(configured: u64, id: NodeId) -> u64 {
    configured.saturating_add(configured / 20 * (id % 5))
}

/// A membership change's reply: done at the log index openraft committed
/// it at, or the write's error as a forwarded request reports it.
fn membership_written(
    r: Result<
        openraft::raft::ClientWriteResponse<types::TypeConfig>,
        openraft::errors::RaftError<
            types::TypeConfig,
            openraft::errors::ClientWriteError<types::TypeConfig>,
        >,
    >,
) -> Result<ForwardReply, ForwardError> {
    let r = r.map_err(write_err)?;
    Ok(ForwardReply::Done {
        index: r.log_id.index(),
    })
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

    /// True once this node belongs to a group: it initialised one or some
    /// leader's log reached it.
    fn has_membership(&self) -> bool {
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        let has = m.membership_config.membership().nodes().next().is_some();
        has
    }

    /// Asks the node at `member`'s peer address who it is.
    async fn identity_of(&self, member: &Member) -> Result<IdentityResponse, tonic::Status> {
        let mut client = self
            .peer(member)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let mut request = tonic::Request::new(IdentityRequest {});
        request.set_timeout(self.rpc_timeout);
        client.identity(request).await.map(|r| r.into_inner())
    }

    /// Founds a group of `founders` (every founding node is given the same
    /// list). Each founder's incarnation is learned first, from the founder
    /// itself, retrying until all have answered; so every founder initialises
    /// with the same membership, incarnations included. Returns without
    /// initialising when this node already belongs to a group, or when a
    /// founder does (the group exists; its leader will replicate to us if we
    /// are still the member it admitted, and refuse us if our data was wiped).
    ///
    /// Runs while the peer service serves, since the founders ask each other.
    pub async fn bootstrap(
        &self,
        founders: BTreeMap<NodeId, Member>,
    ) -> Result<(), BootstrapError> {
        let mut backoff = Duration::from_millis(50);
        let mut reported = Instant::now();
        loop {
            if self.has_membership() {
                return Ok(());
            }
            let asked = futures::future::join_all(
                founders
                    .iter()
                    .filter(|(id, _)| **id != self.id)
                    .map(|(id, m)| async move { (*id, m, self.identity_of(m).await) }),
            )
            .await;
            let mut members = founders.clone();
            if let Some(me) = members.get_mut(&self.id) {
                me.incarnation = self.incarnation;
            }
            let mut silent = Vec::new();
            let mut grouped = None;
            for (id, m, answer) in asked {
                match answer {
                    Ok(r) if r.node_id != id => {
                        return Err(BootstrapError::WrongNode {
                            id,
                            addr: m.peer_addr.clone(),
                            answered: r.node_id,
                        })
                    }
                    Ok(r) => {
                        if r.initialized {
                            grouped = Some(id);
                        }
                        if let Some(member) = members.get_mut(&id) {
                            member.incarnation = r.incarnation;
                        }
                    }
                    Err(e) => silent.push(format!("{id} ({})", e.message())),
                }
            }
            if let Some(id) = grouped {
                tracing::info!(
                    "founding member {id} already belongs to a group: not initialising; \
                     waiting to be replicated to (or to be re-added, if this data directory is new)"
                );
                return Ok(());
            }
            if silent.is_empty() {
                return match self.raft.initialize(members).await {
                    Ok(()) => {
                        tracing::info!("initialised the group");
                        Ok(())
                    }
                    // A peer's log reached us meanwhile: the group exists.
                    Err(openraft::errors::RaftError::APIError(
                        e @ openraft::errors::InitializeError::NotAllowed(_),
                    )) => {
                        tracing::info!("initialize skipped: {e}");
                        Ok(())
                    }
                    Err(e) => Err(BootstrapError::Raft(e.to_string())),
                };
            }
            if reported.elapsed() >= Duration::from_secs(5) {
                reported = Instant::now();
                tracing::info!(
                    "waiting for founding members to answer before initialising: {}",
                    silent.join(", ")
                );
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// The identity of a node about to be added as a learner, asked until it
    /// answers or `leader_wait / 2` passes (the node may still be starting).
    async fn joining_identity(
        &self,
        id: NodeId,
        member: &Member,
    ) -> Result<IdentityResponse, ForwardError> {
        let deadline = Instant::now() + self.leader_wait / 2;
        let mut backoff = Duration::from_millis(20);
        loop {
            match self.identity_of(member).await {
                Ok(r) if r.node_id == id => return Ok(r),
                Ok(r) => {
                    return Err(ForwardError::Refused(format!(
                        "node {id} cannot be added: {} answers as node {}",
                        member.peer_addr, r.node_id
                    )))
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(ForwardError::Refused(format!(
                        "node {id} cannot be added: no identity from {}: {}",
                        member.peer_addr,
                        e.message()
                    )))
                }
                Err(_) => {}
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
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

    /// Adds a learner, on this node, which believes it is the leader.
    async fn add_learner_here(
        &self,
        id: NodeId,
        mut member: Member,
    ) -> Result<ForwardReply, ForwardError> {
        // The group admits this incarnation of the node: if its data
        // directory is later replaced, it refuses our RPCs instead of
        // acknowledging from an empty log (docs/adr/0009).
        let identity = self.joining_identity(id, &member).await?;
        // The log may hold keep-alive batches from now on, which a
        // build before them cannot read (ADR-0022).
        if self.keep_alives.is_open() && identity.commands < keep_alive_batch::COMMANDS {
            return Err(ForwardError::Refused(format!(
                "node {id} cannot be added: it runs an earlier build, which cannot read \
                 the keep-alive batches in this group's log (it decodes commands up to \
                 {}, the group uses {}): upgrade it first",
                identity.commands,
                keep_alive_batch::COMMANDS
            )));
        }
        member.incarnation = identity.incarnation;
        if let Some((known, _)) = self.view().members.get(&id) {
            // Re-adding keeps the recorded member (openraft does not
            // overwrite it), so a new incarnation needs a removal first.
            if known.incarnation != member.incarnation {
                return Err(ForwardError::Refused(format!(
                    "node {id} is a member recorded with incarnation {:016x}, but now \
                     answers with {:016x} (its data directory was replaced): remove it first",
                    known.incarnation, member.incarnation
                )));
            }
        }
        // Not blocking: catching up may take longer than a request may wait;
        // callers watch the learner's lag in status, then promote.
        membership_written(self.raft.add_learner(id, member, false).await)
    }

    /// Makes learner `id` a voter, on this node, which believes it is the leader.
    async fn promote_here(&self, id: NodeId) -> Result<ForwardReply, ForwardError> {
        let promote = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        membership_written(self.raft.change_membership(promote, true).await)
    }

    /// Removes member `id`, on this node, which believes it is the leader.
    async fn remove_here(&self, id: NodeId) -> Result<ForwardReply, ForwardError> {
        let is_voter = match self.view().members.get(&id) {
            Some((_, voter)) => *voter,
            None => return Err(ForwardError::Refused(format!("node {id} is not a member"))),
        };
        // Not retained as a learner: a removed voter leaves entirely.
        let change = if is_voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        membership_written(self.raft.change_membership(change, false).await)
    }

    /// Hands leadership to `to`, from this node, which believes it is the leader.
    async fn transfer_leader_here(&self, to: NodeId) -> Result<ForwardReply, ForwardError> {
        if !self.is_leader() {
            return Err(ForwardError::NotLeader { leader: None });
        }
        // The target campaigns at once and the other voters ignore this
        // leader's lease for it: stop serving reads from the lease first.
        self.handing_over_in.store(self.term(), Ordering::SeqCst);
        self.raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| ForwardError::Failed(e.to_string()))?;
        Ok(ForwardReply::Done { index: 0 })
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

    /// Waits (up to the leader wait) until this node's membership is the one
    /// of log `index` or a later one. Best effort: callers report what they
    /// see either way.
    pub async fn wait_membership(&self, index: u64) {
        let mut rx = self.raft.metrics();
        let deadline = Instant::now() + self.leader_wait;
        loop {
            let seen = rx
                .borrow_watched()
                .membership_config
                .log_id()
                .as_ref()
                .map(|l| l.index())
                .unwrap_or(0);
            if seen >= index || Instant::now() >= deadline {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
        }
    }

    pub async fn add_learner(&self, id: NodeId, member: Member) -> Result<u64, ConsensusError> {
        self.done(ForwardRequest::AddLearner { id, member }).await
    }

    pub async fn promote(&self, id: NodeId) -> Result<u64, ConsensusError> {
        self.done(ForwardRequest::Promote { id }).await
    }

    pub async fn remove(&self, id: NodeId) -> Result<u64, ConsensusError> {
        self.done(ForwardRequest::Remove { id }).await
    }

    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), ConsensusError> {
        if !self.view().members.contains_key(&to) {
            return Err(ConsensusError::Refused(format!(
                "node {to} is not a member"
            )));
        }
        self.done(ForwardRequest::TransferLeader { to })
            .await
            .map(|_| ())
    }

    async fn done(&self, req: ForwardRequest) -> Result<u64, ConsensusError> {
        match self.route(req).await? {
            ForwardReply::Done { index } => Ok(index),
            other => Err(ConsensusError::Unknown(format!(
                "unexpected reply {other:?}"
            ))),
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

#[cfg(test)]
mod tests {
    use super::openraft_election_timeouts as map;

    /// openraft waits `max'` (its leader lease) plus a random `[min', max')`.
    fn wait_range(hb: u64, min: u64, max: u64) -> (u64, u64) {
        let (lo, hi) = map(hb, min, max);
        assert!(lo > hb && lo < hi, "openraft would refuse ({lo}, {hi})");
        (hi + lo, 2 * hi)
    }

    #[test]
    fn a_follower_campaigns_within_the_configured_election_timeout() {
        for (hb, min, max) in [(50, 250, 500), (20, 100, 200), (10, 30, 40), (50, 400, 500)] {
            let (lo, hi) = wait_range(hb, min, max);
            assert!(
                lo >= min && hi <= max,
                "{hb}/{min}/{max} waits [{lo}, {hi})"
            );
        }
        // Where the range allows it, the wait is exactly the configured one.
        assert_eq!(wait_range(50, 400, 500), (400, 500));
        // A 1 ms wide range ends at its max rather than doubling.
        assert_eq!(wait_range(100, 300, 301), (299, 300));
    }

    #[test]
    fn five_members_snapshot_at_five_different_points_from_the_configured_one() {
        let points: Vec<u64> = (1..=5)
            .map(|id| super::snapshot_interval(100_000, id))
            .collect();
        assert_eq!(points, [105_000, 110_000, 115_000, 120_000, 100_000]);
        assert_eq!(super::snapshot_interval(100, 3), 115);
        assert_eq!(super::snapshot_interval(u64::MAX, 4), u64::MAX);
    }

    #[test]
    fn votes_get_at_least_half_the_lease() {
        // openraft's vote deadline is min'; the lease is max'.
        assert_eq!(map(50, 250, 500), (125, 250));
        assert_eq!(map(20, 100, 200), (50, 100));
        assert_eq!(wait_range(50, 250, 500), (375, 500));
        assert_eq!(wait_range(20, 100, 200), (150, 200));
        // Still above one heartbeat where half the lease is not.
        assert_eq!(map(10, 30, 40), (11, 20));
    }

    #[test]
    fn settings_openraft_cannot_express_pass_through() {
        assert_eq!(map(0, 250, 500), (250, 500));
        assert_eq!(map(50, 500, 250), (500, 250));
        assert_eq!(map(100, 150, 200), (150, 200));
    }
}
