//! Keep-alives proposed many to a log entry.
//!
//! Every keep-alive moves a session's deadline on replicated time, so each
//! one goes through Raft (ADR-0001). One entry per keep-alive makes a
//! thousand sessions cost a thousand entries: each encoded, written,
//! replicated, applied and answered on its own. The leader instead queues
//! the keep-alives it is asked for while earlier ones are in flight and
//! proposes the queue as one `Op::KeepAlives`, whose apply renews each
//! session exactly as its own `Op::KeepAlive` would have, in order. A lone
//! keep-alive is still proposed as `Op::KeepAlive`: at low load nothing
//! changes.
//!
//! A build that predates `Op::KeepAlives` cannot decode an entry holding
//! it, and would stop replicating mid-upgrade. So the leader asks every
//! member which commands it decodes ([`COMMANDS`], the `commands` field of
//! `RaftPeer.Identity`) every [`GATE_EVERY`], and batches only while all of
//! them have answered that they decode it (ADR-0022).
//!
//! A follower forwards its clients' keep-alives to the leader the same way:
//! what queued while the previous batch was on its way goes as one
//! `ForwardRequest::KeepAlives`, to a leader that has said (the same
//! `commands`, asked every [`GATE_EVERY`]) it takes one. The leader puts
//! each into its own batch.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use aegis_state_machine::{Applied, Op, Reply};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::forward::{ForwardError, ForwardReply, ForwardRequest};
use super::types::{NodeId, Raft};
use super::{stamp_and_write, Consensus, ConsensusError};

/// The newest set of commands this build decodes (see the proto's
/// `IdentityResponse.commands`): 1 adds `Op::KeepAlives` and
/// `ForwardRequest::KeepAlives`.
pub(crate) const COMMANDS: u32 = 1;

/// How often a leader asks its members which commands they decode.
const GATE_EVERY: Duration = Duration::from_secs(2);

/// Batches in flight at once. While one is, new keep-alives queue and go
/// together in the next. One rather than two: at 64 clients, three
/// alternating rounds answered 14–45 % more keep-alives with one (larger
/// batches, fewer entries for every member to write and apply).
const MAX_IN_FLIGHT: usize = 1;

/// Keep-alives in one entry at most (an entry of about 10 KiB).
const MAX_BATCH: usize = 1024;

/// Keep-alives waiting for the batching task at most. Each has a caller
/// awaiting it, so this only bounds a burst; a full queue makes callers wait.
const QUEUE: usize = 4096;

/// A keep-alive waiting for its batch, and where its answer goes.
struct Waiting<E> {
    session_id: u64,
    reply: oneshot::Sender<Result<Applied, E>>,
}

pub(crate) struct KeepAliveBatcher {
    /// Every member decodes `Op::KeepAlives` (as last asked).
    open: AtomicBool,
    queue: mpsc::Sender<Waiting<ForwardError>>,
    /// On a follower: the leader last asked, and the commands it said it
    /// decodes.
    leader_said: Mutex<Option<(NodeId, u32)>>,
    forwarded: mpsc::Sender<Waiting<ConsensusError>>,
}

/// The follower's queue, for [`forward_batches`].
pub(crate) struct ForwardQueue(mpsc::Receiver<Waiting<ConsensusError>>);

impl KeepAliveBatcher {
    /// Starts the leader's batching task, which proposes through `raft`;
    /// the follower's queue is for [`forward_batches`] to serve.
    pub(crate) fn start(raft: Raft) -> (KeepAliveBatcher, ForwardQueue) {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, move |batch| {
            let raft = raft.clone();
            async move { propose(&raft, batch).await }
        }));
        let (forwarded, forward_rx) = mpsc::channel(QUEUE);
        let batcher = KeepAliveBatcher {
            open: AtomicBool::new(false),
            queue,
            leader_said: Mutex::new(None),
            forwarded,
        };
        (batcher, ForwardQueue(forward_rx))
    }

    /// True when `leader` has said it takes keep-alives many to a request.
    pub(crate) fn leader_takes_batches(&self, leader: NodeId) -> bool {
        matches!(*self.said_by_leader(), Some((l, commands)) if l == leader && commands >= COMMANDS)
    }

    fn said_by_leader(&self) -> std::sync::MutexGuard<'_, Option<(NodeId, u32)>> {
        // Plain data, whole after any panic: a poisoned lock is still usable.
        self.leader_said
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// On a follower: renews `session_id` through the leader, in the next
    /// batch this follower forwards.
    pub(crate) async fn forward(&self, session_id: u64) -> Result<Applied, ConsensusError> {
        enqueue(
            &self.forwarded,
            session_id,
            ConsensusError::Fatal,
            ConsensusError::Unknown,
        )
        .await
    }

    /// True when keep-alives may share entries.
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Renews `session_id` in the next batch; answers as a lone
    /// `Op::KeepAlive` would have.
    pub(crate) async fn renew(&self, session_id: u64) -> Result<Applied, ForwardError> {
        enqueue(
            &self.queue,
            session_id,
            ForwardError::Refused,
            ForwardError::Failed,
        )
        .await
    }
}

/// Queues `session_id` and waits for its answer. `stopped`: the queue is
/// closed, nothing was sent; `dropped`: the batch went without answering it.
async fn enqueue<E>(
    queue: &mpsc::Sender<Waiting<E>>,
    session_id: u64,
    stopped: fn(String) -> E,
    dropped: fn(String) -> E,
) -> Result<Applied, E> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(Waiting { session_id, reply })
        .await
        .map_err(|_| stopped("the node is stopping".into()))?;
    answer
        .await
        .map_err(|_| dropped("keep-alive dropped before its outcome was known".into()))?
}

/// Takes what has queued as one batch whenever fewer than
/// [`MAX_IN_FLIGHT`] are in flight, and hands it to `send`.
async fn run<E, F, Fut>(mut rx: mpsc::Receiver<Waiting<E>>, mut send: F)
where
    F: FnMut(Vec<Waiting<E>>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            first = rx.recv(), if in_flight.len() < MAX_IN_FLIGHT => {
                let Some(first) = first else { break };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(w) => batch.push(w),
                        Err(_) => break,
                    }
                }
                in_flight.push(send(batch));
            }
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
    // The node is stopping: let what was proposed finish answering.
    while in_flight.next().await.is_some() {}
}

async fn propose(raft: &Raft, batch: Vec<Waiting<ForwardError>>) {
    let op = match batch.as_slice() {
        [one] => Op::KeepAlive {
            session_id: one.session_id,
        },
        _ => Op::KeepAlives {
            session_ids: batch.iter().map(|w| w.session_id).collect(),
        },
    };
    let applied = stamp_and_write(raft, op, batch.len()).await;
    for (i, w) in batch.into_iter().enumerate() {
        // A caller that gave up is not waiting for its answer.
        let _ = w.reply.send(one_of(&applied, i, w.session_id));
    }
}

/// What keep-alive `i` of a batch, for `session_id`, is answered.
fn one_of(
    applied: &Result<Applied, ForwardError>,
    i: usize,
    session_id: u64,
) -> Result<Applied, ForwardError> {
    let applied = applied.as_ref().map_err(Clone::clone)?;
    let result = match &applied.result {
        Ok(Reply::KeptAliveMany { renewed }) => match renewed.get(i) {
            Some(Ok(ttl_ms)) => Ok(Reply::KeptAlive {
                session_id,
                ttl_ms: *ttl_ms,
            }),
            Some(Err(e)) => Err(e.clone()),
            None => {
                return Err(ForwardError::Failed(format!(
                    "a batch of keep-alives was answered for {} sessions, not {}",
                    renewed.len(),
                    i + 1
                )))
            }
        },
        // A batch of one is a plain keep-alive.
        other => other.clone(),
    };
    Ok(Applied {
        index: applied.index,
        result,
        events: Vec::new(),
        grants: Vec::new(),
        expired_sessions: Vec::new(),
    })
}

/// While `consensus` lives, forwards its followers' keep-alives from
/// `queue` to the leader in batches.
pub(crate) async fn forward_batches(consensus: Weak<Consensus>, queue: ForwardQueue) {
    run(queue.0, move |batch| {
        let consensus = consensus.clone();
        async move {
            match consensus.upgrade() {
                Some(c) => forward_batch(&c, batch).await,
                // Dropping the batch tells each caller the node stopped.
                None => drop(batch),
            }
        }
    })
    .await;
}

async fn forward_batch(c: &Consensus, batch: Vec<Waiting<ConsensusError>>) {
    let leader = c
        .leader()
        .filter(|&l| l != c.id && c.keep_alives.leader_takes_batches(l))
        .and_then(|l| c.member(l));
    let sent = match leader {
        Some(leader) => {
            let req = ForwardRequest::KeepAlives {
                session_ids: batch.iter().map(|w| w.session_id).collect(),
            };
            Some(c.forward_to(&leader, &req).await)
        }
        None => None,
    };
    let answers: Vec<Option<Result<Applied, ForwardError>>> = match sent {
        Some(Ok(ForwardReply::KeptAlive(each))) if each.len() == batch.len() => {
            each.into_iter().map(Some).collect()
        }
        // Not sent, or no answer to go by: each goes on its own, as a lone
        // keep-alive would (renewing twice is harmless).
        _ => vec![None; batch.len()],
    };
    let each = batch
        .into_iter()
        .zip(answers)
        .map(|(w, answer)| async move {
            let result = match answer {
                Some(Ok(applied)) => Ok(applied),
                Some(Err(ForwardError::Refused(m))) => Err(ConsensusError::Refused(m)),
                Some(Err(ForwardError::Failed(m))) => {
                    c.metrics.proposal_failed();
                    Err(ConsensusError::Unknown(m))
                }
                Some(Err(ForwardError::NotLeader { .. })) | None => {
                    c.propose_routed(Op::KeepAlive {
                        session_id: w.session_id,
                    })
                    .await
                }
            };
            // A caller that gave up is not waiting for its answer.
            let _ = w.reply.send(result);
        });
    futures::future::join_all(each).await;
}

/// While `consensus` lives: on its leader, opens the gate once every member
/// has said it decodes `Op::KeepAlives`, and closes it when one says it does
/// not; on any other node, keeps it closed. A member that does not answer
/// (down, partitioned) counts as what it last said: batching goes on while
/// a node is away, and a node that comes back on an earlier build closes
/// the gate when it answers. One never heard from keeps it closed.
pub(crate) async fn watch_gate(consensus: Weak<Consensus>) {
    let mut said: BTreeMap<NodeId, u32> = BTreeMap::new();
    loop {
        tokio::time::sleep(GATE_EVERY).await;
        let Some(c) = consensus.upgrade() else { return };
        let open = if c.is_leader() {
            *c.keep_alives.said_by_leader() = None;
            ask_members(&c, &mut said).await;
            said.values().all(|&commands| commands >= COMMANDS)
        } else {
            said.clear();
            ask_leader(&c).await;
            false
        };
        if c.keep_alives.open.swap(open, Ordering::Relaxed) != open {
            if open {
                tracing::info!("every member decodes batched keep-alives: batching them");
            } else {
                tracing::info!("keep-alives go one to an entry");
            }
        }
    }
}

/// On a follower: asks the leader which commands it decodes. Without an
/// answer, what the same leader said last stands.
async fn ask_leader(c: &Consensus) {
    let Some(leader) = c.leader().filter(|&l| l != c.id) else {
        *c.keep_alives.said_by_leader() = None;
        return;
    };
    let answer = match c.member(leader) {
        Some(member) => c.identity_of(&member).await.ok(),
        None => None,
    };
    let mut said = c.keep_alives.said_by_leader();
    match answer {
        Some(r) if r.node_id == leader => *said = Some((leader, r.commands)),
        _ if matches!(*said, Some((l, _)) if l == leader) => {}
        _ => *said = None,
    }
}

/// Updates `said` to the current members (but this node) and what each
/// answers; a member never heard from is recorded as 0.
async fn ask_members(c: &Consensus, said: &mut BTreeMap<NodeId, u32>) {
    let others: Vec<_> = c
        .view()
        .members
        .into_iter()
        .filter(|(id, _)| *id != c.id)
        .collect();
    said.retain(|id, _| others.iter().any(|(o, _)| o == id));
    let answers = futures::future::join_all(others.iter().map(|(id, (member, _))| async move {
        match c.identity_of(member).await {
            // Another node at this member's address says nothing about it.
            Ok(r) if r.node_id == *id => Some(r.commands),
            _ => None,
        }
    }))
    .await;
    for ((id, _), answer) in others.iter().zip(answers) {
        match answer {
            Some(commands) => {
                said.insert(*id, commands);
            }
            None => {
                said.entry(*id).or_insert(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aegis_state_machine::SmError;

    use super::*;

    fn batch_applied(renewed: Vec<Result<u64, SmError>>) -> Result<Applied, ForwardError> {
        Ok(Applied {
            index: 9,
            result: Ok(Reply::KeptAliveMany { renewed }),
            events: Vec::new(),
            grants: Vec::new(),
            expired_sessions: vec![4],
        })
    }

    #[test]
    fn each_keep_alive_of_a_batch_is_answered_with_its_own_outcome() {
        let gone = SmError::SessionExpired { session_id: 5 };
        let applied = batch_applied(vec![Ok(3_000), Err(gone.clone())]);
        let first = one_of(&applied, 0, 4).expect("applied");
        assert_eq!(first.index, 9);
        assert_eq!(
            first.result,
            Ok(Reply::KeptAlive {
                session_id: 4,
                ttl_ms: 3_000
            })
        );
        assert!(first.expired_sessions.is_empty());
        assert_eq!(one_of(&applied, 1, 5).expect("applied").result, Err(gone));
        assert!(matches!(
            one_of(&applied, 2, 6),
            Err(ForwardError::Failed(m)) if m.contains("2 sessions, not 3")
        ));
    }

    #[test]
    fn a_failed_batch_fails_every_keep_alive_in_it_alike() {
        let failed = Err(ForwardError::NotLeader { leader: Some(2) });
        for i in 0..3 {
            assert!(matches!(
                one_of(&failed, i, 7),
                Err(ForwardError::NotLeader { leader: Some(2) })
            ));
        }
    }
}
