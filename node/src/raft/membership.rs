//! Membership: founding a group, admitting, promoting and removing members,
//! and handing leadership over. The `*_here` calls run on the leader (a
//! follower forwards them, as it does writes); the public ones route there.
//! Each node is admitted with its incarnation (ADR-0009), so a member whose
//! data directory was replaced is refused rather than trusted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aegis_proto::raft::{IdentityRequest, IdentityResponse};
use openraft::async_runtime::WatchReceiver;
use openraft::ChangeMembers;

use super::{keep_alive_batch, types, write_err};
use super::{
    Consensus, ConsensusError, ForwardError, ForwardReply, ForwardRequest, Member, NodeId,
};

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

impl Consensus {
    /// True once this node belongs to a group: it initialised one or some
    /// leader's log reached it.
    pub(super) fn has_membership(&self) -> bool {
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        let has = m.membership_config.membership().nodes().next().is_some();
        has
    }

    /// Asks the node at `member`'s peer address who it is.
    pub(super) async fn identity_of(
        &self,
        member: &Member,
    ) -> Result<IdentityResponse, tonic::Status> {
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

    /// Adds a learner, on this node, which believes it is the leader.
    pub(super) async fn add_learner_here(
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
    pub(super) async fn promote_here(&self, id: NodeId) -> Result<ForwardReply, ForwardError> {
        let promote = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        membership_written(self.raft.change_membership(promote, true).await)
    }

    /// Removes member `id`, on this node, which believes it is the leader.
    pub(super) async fn remove_here(&self, id: NodeId) -> Result<ForwardReply, ForwardError> {
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
    pub(super) async fn transfer_leader_here(
        &self,
        to: NodeId,
    ) -> Result<ForwardReply, ForwardError> {
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
}
