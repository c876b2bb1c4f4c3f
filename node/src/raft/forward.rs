//! What a follower asks of the leader on a client's behalf. One path for
//! every write, so the leader alone stamps time and proposes.

use aegis_state_machine::{Applied, Op};
use serde::{Deserialize, Serialize};

use super::types::{Member, NodeId};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardRequest {
    Propose(Op),
    /// A read-index barrier: the leader confirms leadership with a quorum
    /// and answers the index the follower must apply before reading.
    ReadIndex,
    AddLearner {
        id: NodeId,
        member: Member,
    },
    Promote {
        id: NodeId,
    },
    Remove {
        id: NodeId,
    },
    TransferLeader {
        to: NodeId,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardReply {
    Applied(Applied),
    ReadIndex(u64),
    Done { index: u64 },
}

/// Failures a forwarded request reports back. `NotLeader` means nothing
/// was proposed, so the follower may safely try the new leader.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    #[error("not leader")]
    NotLeader { leader: Option<NodeId> },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}
