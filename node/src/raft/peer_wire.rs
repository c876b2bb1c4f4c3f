//! Peer messages built and read as the node builds and reads them, for the integration tests
//! that play a peer (`node/tests/step_in.rs`); not an API.

use openraft::raft::{VoteRequest, VoteResponse};
use openraft::vote::RaftLeaderId;

use super::types::{decode, encode, LogId, TypeConfig, Vote};

/// A pre-vote (or vote) request from `candidate` for `term`, whose log ends at
/// `last_log` = (term, leader, index), or is empty.
pub fn vote_request(
    term: u64,
    candidate: u64,
    last_log: Option<(u64, u64, u64)>,
) -> std::io::Result<Vec<u8>> {
    let last = last_log.map(|(t, leader, index)| log_id(t, leader, index));
    encode(&VoteRequest::<TypeConfig>::new(
        Vote::new(term, candidate),
        last,
    ))
}

/// The id of entry `index`, written in `term` by `leader`.
pub(super) fn log_id(term: u64, leader: u64, index: u64) -> LogId {
    type LeaderId = openraft::type_config::alias::LeaderIdOf<TypeConfig>;
    LogId::new(LeaderId::new(term, leader).to_committed(), index)
}

/// Whether a (pre-)vote answer granted the vote; an error answer's text as the error.
pub fn vote_granted(payload: &[u8]) -> Result<bool, String> {
    let r: Result<VoteResponse<TypeConfig>, String> = decode(payload).map_err(|e| e.to_string())?;
    r.map(|v| v.vote_granted)
}
