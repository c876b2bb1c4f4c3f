//! A voter with a newer log steps in when a candidate with an older one asks for its pre-vote.
//!
//! Spare followers (see `pace`) lag the quorum set by up to a batch, so when the leader dies,
//! the first follower whose election timer fires is a spare one about half the time. Its
//! pre-vote is refused by every voter with a newer log, and the election then waits for one of
//! those voters' own timers: up to the width of the wait's range later (82 ms at the default
//! timing, `raft::timing`). The refusal is news to the refusing voter: a peer has gone a whole election
//! timeout without hearing from the leader. So the voter asks openraft for a pre-vote round of
//! its own (`Trigger::elect` with `pre_vote`). That round cannot disturb a live leader: openraft
//! refuses it locally while this voter's own leader lease lasts, and every voter whose lease
//! lasts refuses it too. It only brings forward an election this voter's timer would start.
//!
//! Two voters with the same newest log would both step in and could split the vote. Each
//! waits its turn, [`STAGGER_PER_HEARTBEAT`] of a heartbeat per rank among the voters, and lets
//! its turn go if anyone else campaigned meanwhile: a vote request arrived, or this voter
//! granted a pre-vote. That is counted as the requests arrive, not read from openraft's
//! metrics afterwards: a first version compared the vote in the metrics, which lag, stepped in
//! right after granting another member's vote, and its new term deposed the leader just
//! elected (openraft's lease check passes a vote not yet committed; its own timer would not
//! have fired, since granting a vote restarts it). See
//! docs/bench-results/2026-12-05/step-in-for-stale-candidates.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::ServerState;

use super::types::{NodeId, Raft, TypeConfig, Vote};
use crate::metrics::Metrics;

/// One rank's wait, in heartbeats: long enough for the voter before it to finish a pre-vote
/// round and send its vote requests on a loaded loopback, short against the election range.
const STAGGER_PER_HEARTBEAT: f64 = 0.2;
/// The shortest wait per rank, whatever the heartbeat.
const MIN_STAGGER: Duration = Duration::from_millis(2);

/// Whether a pre-vote answer is a refusal by a voter whose log is newer than the candidate's:
/// the case in which this voter could win where the candidate cannot.
pub fn refused_for_an_older_log(
    req: &VoteRequest<TypeConfig>,
    resp: &VoteResponse<TypeConfig>,
) -> bool {
    !resp.vote_granted && resp.last_log_id > req.last_log_id
}

/// How long a voter waits before it steps in: its rank among the voters other than the
/// candidate, times one stagger.
pub fn wait_for_turn(
    own: NodeId,
    candidate: NodeId,
    voters: impl IntoIterator<Item = NodeId>,
    heartbeat: Duration,
) -> Duration {
    let rank = voters
        .into_iter()
        .filter(|v| *v != candidate && *v < own)
        .count();
    let stagger = heartbeat.mul_f64(STAGGER_PER_HEARTBEAT).max(MIN_STAGGER);
    stagger * u32::try_from(rank).unwrap_or(u32::MAX)
}

/// At most one step-in waits at a time: the refusals of one election (one per stale
/// candidate) lead to one round.
pub struct StepIn {
    waiting: Arc<AtomicBool>,
    /// Counts the campaigns of others this voter has seen (see [`StepIn::someone_campaigns`]).
    campaigns: Arc<AtomicU64>,
    heartbeat: Duration,
}

impl StepIn {
    pub fn new(heartbeat: Duration) -> StepIn {
        StepIn {
            waiting: Arc::new(AtomicBool::new(false)),
            campaigns: Arc::new(AtomicU64::new(0)),
            heartbeat,
        }
    }

    /// Another voter campaigns: a vote request arrived (called before openraft handles it), or
    /// this voter granted a pre-vote. A waiting step-in lets its turn go.
    pub fn someone_campaigns(&self) {
        self.campaigns.fetch_add(1, Ordering::AcqRel);
    }

    /// The campaigns seen so far: read before openraft handles a pre-vote, so that one that
    /// arrives while it does counts against the step-in that pre-vote may lead to.
    pub fn campaigns_seen(&self) -> u64 {
        self.campaigns.load(Ordering::Acquire)
    }

    /// Called with every pre-vote this voter refused; `seen` is
    /// [`campaigns_seen`](Self::campaigns_seen) from before it was handled.
    pub fn after_refused_pre_vote(
        &self,
        seen: u64,
        raft: &Raft,
        own: NodeId,
        req: &VoteRequest<TypeConfig>,
        resp: &VoteResponse<TypeConfig>,
        metrics: &Metrics,
    ) {
        if !refused_for_an_older_log(req, resp) {
            return;
        }
        let voters: Vec<NodeId> = {
            let m = raft.metrics();
            let m = m.borrow_watched();
            if m.state != ServerState::Follower {
                return;
            }
            m.membership_config.membership().voter_ids().collect()
        };
        if !voters.contains(&own) || self.waiting.swap(true, Ordering::AcqRel) {
            return;
        }
        let wait = wait_for_turn(own, req.vote.leader_id().node_id, voters, self.heartbeat);
        let refused_as = resp.vote;
        let campaigns = Arc::clone(&self.campaigns);
        let (raft, waiting, metrics) = (raft.clone(), Arc::clone(&self.waiting), metrics.clone());
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let taken =
                campaigns.load(Ordering::Acquire) == seen && still_the_same(&raft, &refused_as);
            if taken {
                metrics.stepped_in();
                if let Err(e) = raft.trigger().elect(true).await {
                    tracing::debug!("stepping in for a stale candidate: {e}");
                }
            }
            waiting.store(false, Ordering::Release);
        });
    }
}

/// Still a follower, with the vote it refused the candidate under, as far as openraft's metrics
/// have caught up: no new leader was heard of.
fn still_the_same(raft: &Raft, refused_as: &Vote) -> bool {
    let m = raft.metrics();
    let m = m.borrow_watched();
    m.state == ServerState::Follower && m.vote == *refused_as
}

#[cfg(test)]
mod tests {
    use super::super::peer_wire::log_id;
    use super::*;

    fn request(candidate: NodeId, last: Option<(u64, u64)>) -> VoteRequest<TypeConfig> {
        VoteRequest::new(
            Vote::new(4, candidate),
            last.map(|(term, index)| log_id(term, 1, index)),
        )
    }

    fn answer(granted: bool, last: Option<(u64, u64)>) -> VoteResponse<TypeConfig> {
        VoteResponse::new(
            Vote::new_committed(3, 1),
            last.map(|(term, index)| log_id(term, 1, index)),
            granted,
        )
    }

    #[test]
    fn only_a_refusal_with_a_newer_log_counts() {
        let stale = request(2, Some((3, 278)));
        assert!(refused_for_an_older_log(
            &stale,
            &answer(false, Some((3, 281)))
        ));
        // A newer term wins over a higher index.
        assert!(refused_for_an_older_log(
            &request(2, Some((2, 900))),
            &answer(false, Some((3, 1)))
        ));
        assert!(refused_for_an_older_log(
            &request(2, None),
            &answer(false, Some((1, 1)))
        ));
        // Granted, or refused for another reason (a lease, the same log).
        assert!(!refused_for_an_older_log(
            &stale,
            &answer(true, Some((3, 281)))
        ));
        assert!(!refused_for_an_older_log(
            &stale,
            &answer(false, Some((3, 278)))
        ));
        assert!(!refused_for_an_older_log(
            &stale,
            &answer(false, Some((3, 200)))
        ));
    }

    #[test]
    fn each_voter_waits_by_its_rank_without_the_candidate() {
        let hb = Duration::from_millis(50);
        let voters = [1, 2, 3, 4, 5];
        // Candidate 2: the others rank 1 -> 0, 3 -> 1, 4 -> 2, 5 -> 3.
        let waits: Vec<Duration> = [1, 3, 4, 5]
            .iter()
            .map(|own| wait_for_turn(*own, 2, voters, hb))
            .collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(waits, [ms(0), ms(10), ms(20), ms(30)]);
        // A short heartbeat still leaves MIN_STAGGER between ranks.
        assert_eq!(wait_for_turn(3, 1, voters, ms(5)), ms(2));
        assert_eq!(wait_for_turn(3, 1, voters, ms(20)), ms(4));
    }
}
