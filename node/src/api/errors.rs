//! The stable error contract: every refusal maps to one gRPC code and one
//! fixed message (docs/API.md lists them). Clients match on these.

use aegis_state_machine::SmError;
use tonic::{Code, Status};

use crate::raft::ConsensusError;

pub const COMPACT_REVISION_KEY: &str = "aegis-compact-revision";

pub fn status_of(e: &SmError) -> Status {
    match e {
        SmError::SessionNotFound { .. } => Status::not_found("session not found"),
        SmError::SessionExpired { .. } => Status::not_found("session expired"),
        SmError::StaleFencingToken { .. } => Status::failed_precondition("stale fencing token"),
        SmError::NotLockHolder { .. } => {
            Status::failed_precondition("lock not held by this session")
        }
        SmError::Compacted {
            compact_revision, ..
        } => {
            let mut s = Status::out_of_range("compacted revision");
            if let Ok(v) = compact_revision.to_string().parse() {
                s.metadata_mut().insert(COMPACT_REVISION_KEY, v);
            }
            s
        }
        SmError::FutureRevision { .. } => Status::out_of_range("future revision"),
        SmError::Invalid(m) => Status::invalid_argument(m.clone()),
    }
}

pub fn consensus_status(e: &ConsensusError) -> Status {
    match e {
        ConsensusError::NoLeader => Status::unavailable("no leader"),
        ConsensusError::Unknown(m) => Status::new(Code::Unknown, format!("outcome unknown: {m}")),
        ConsensusError::Refused(m) => Status::failed_precondition(m.clone()),
        ConsensusError::Fatal(m) => Status::internal(format!("node stopped: {m}")),
    }
}
