//! The operator's view of a Raft group: the five operations it needs, behind a trait
//! so the membership and rotation planners run against a fake in tests and against
//! the node's gRPC `aegis.v1.Admin` service in production ([`grpc::GrpcClusterAdmin`]).

pub mod grpc;

use std::collections::BTreeMap;
use std::future::Future;

/// How to reach one member's Admin service (served on its client port).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeEndpoint {
    pub id: u64,
    /// `host:port`.
    pub client_addr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Unknown,
}

impl Role {
    pub fn parse(s: &str) -> Role {
        match s {
            "leader" => Role::Leader,
            "follower" => Role::Follower,
            "candidate" => Role::Candidate,
            "learner" => Role::Learner,
            _ => Role::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub peer_addr: String,
    pub client_addr: String,
    pub voter: bool,
    /// The incarnation of the member's data directory the group admitted; 0 when not
    /// known (a member the operator is about to add: the leader asks the node itself).
    pub incarnation: u64,
}

/// One node's answer to `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: u64,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub role: Role,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Leader only: follower id → entries behind.
    pub lags: BTreeMap<u64, u64>,
    /// The membership this node knows; empty on a node that has never joined a group.
    pub members: Vec<Member>,
    pub config_hash: String,
    /// The node's own incarnation: random, fixed for the life of its data directory
    /// (0 from a node that does not report one).
    pub incarnation: u64,
}

impl NodeStatus {
    pub fn voters(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.voter)
    }

    pub fn learners(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| !m.voter)
    }

    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("node {node} unreachable: {message}")]
    Unreachable { node: u64, message: String },
    #[error("node {node} is not the leader (leader hint: {hint:?})")]
    NotLeader { node: u64, hint: Option<u64> },
    #[error("node {node} refused: {message}")]
    Refused { node: u64, message: String },
}

/// The Raft administration the operator performs. Membership calls go to the leader;
/// each returns once the change is committed (the node's Admin service contract).
pub trait ClusterAdmin: Send + Sync + 'static {
    fn status(
        &self,
        node: &NodeEndpoint,
    ) -> impl Future<Output = Result<NodeStatus, AdminError>> + Send;

    fn add_learner(
        &self,
        leader: &NodeEndpoint,
        member: &Member,
    ) -> impl Future<Output = Result<Vec<Member>, AdminError>> + Send;

    fn promote(
        &self,
        leader: &NodeEndpoint,
        node_id: u64,
    ) -> impl Future<Output = Result<Vec<Member>, AdminError>> + Send;

    fn remove_member(
        &self,
        leader: &NodeEndpoint,
        node_id: u64,
    ) -> impl Future<Output = Result<Vec<Member>, AdminError>> + Send;

    fn transfer_leader(
        &self,
        leader: &NodeEndpoint,
        to: u64,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
}
