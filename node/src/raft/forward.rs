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
    // Variants are encoded by position: new ones go last.
    /// Many clients' keep-alives, each renewed as `Propose(KeepAlive)`
    /// would; sent only to a leader that said it takes them (ADR-0022).
    KeepAlives {
        session_ids: Vec<u64>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardReply {
    Applied(Applied),
    ReadIndex(u64),
    Done {
        index: u64,
    },
    // Variants are encoded by position: new ones go last.
    /// One outcome per id of `ForwardRequest::KeepAlives`, in order.
    KeptAlive(Vec<Result<Applied, ForwardError>>),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes of earlier builds send and read these variants at these
    /// positions (postcard writes the position first).
    #[test]
    fn forward_variants_keep_their_positions() {
        let tag = |r: ForwardRequest| postcard::to_stdvec(&r).expect("encode")[0];
        assert_eq!(tag(ForwardRequest::ReadIndex), 1);
        assert_eq!(tag(ForwardRequest::TransferLeader { to: 1 }), 5);
        assert_eq!(
            tag(ForwardRequest::KeepAlives {
                session_ids: vec![1]
            }),
            6
        );
        let tag = |r: ForwardReply| postcard::to_stdvec(&r).expect("encode")[0];
        assert_eq!(tag(ForwardReply::Done { index: 1 }), 2);
        assert_eq!(tag(ForwardReply::KeptAlive(vec![])), 3);
    }
}
