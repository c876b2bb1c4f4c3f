//! The leader's half of `AppendStream`: one stream per replication session
//! instead of one call per AppendEntries, framed on its own connection (see
//! `framed_append`) or, to a peer of an older build, over gRPC.
//!
//! A unary call costs a new HTTP/2 stream each time (headers, an end-of-stream
//! frame and trailers, and a task on the follower), and openraft waits for
//! its reply before it sends the next append. On the stream an append is one
//! message and a reply is one message, and up to [`MAX_INFLIGHT_APPENDS`]
//! appends are in flight, so the follower's fsync overlaps the next append.
//!
//! openraft sends an append without entries whenever the commit index moves
//! and no new entries are there to carry it: at one client, one per write and
//! follower, a second round trip and a second wake-up of every follower for
//! each write. Such an append is held for up to [`COMMIT_HOLD`]; if the next
//! append continues from the same point, it alone is sent (it carries a commit
//! index at least as new), and its reply answers both.
//!
//! Appends to a follower outside the fastest quorum are spaced out (see
//! `pace`): the stream waits before it asks openraft for the next append, so
//! that one append carries everything written meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aegis_proto::raft::RaftPayload;
use futures::{Stream, StreamExt};
use openraft::errors::{NetworkError, RPCError, Unreachable};
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use tokio::sync::Semaphore;

use super::network::{status_error, unpack};
use super::pace::Pacer;
use super::types::{encode, LogId, NodeId, TypeConfig};

/// Appends one replication stream keeps in flight before it waits for a
/// reply. More overlaps the network and the follower's fsync with the next
/// append; fewer lets entries pile up into larger, fewer messages.
pub const MAX_INFLIGHT_APPENDS: usize = 2;

/// How long an append that only moves the commit index waits for one with
/// entries to carry it instead. Below one write's round trip at one client,
/// so a follower learns a commit at most this much later than it would.
pub const COMMIT_HOLD: Duration = Duration::from_micros(1500);

type Reply = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// One append on the wire.
struct Sent {
    at: Instant,
    /// Entry-less appends this one replaced, all from its `prev_log_id`;
    /// answered when this one's reply comes.
    carried: Carried,
}

/// Entry-less appends replaced by the one sent after them.
#[derive(Clone, Copy, Default)]
struct Carried {
    count: usize,
    /// The `prev_log_id` they share with the sent append: what each matched.
    from: Option<LogId>,
}

/// What both halves of one stream share.
pub struct Session {
    target: NodeId,
    /// Room for more appends in flight; a reply gives one back.
    room: Semaphore,
    /// Unanswered appends, oldest first.
    sent: Mutex<VecDeque<Sent>>,
    /// Why the request half ended early (an append that could not be encoded).
    failed: Mutex<Option<String>>,
    /// The longest an append may wait for its reply.
    timeout: Duration,
    /// Learns each reply's latency; says whether appends must be spaced out.
    pacer: Arc<Pacer>,
    /// An append went unanswered past the timeout: the connection may be
    /// stuck (see `PeerConnection::reconnect`).
    stalled: AtomicBool,
}

impl Session {
    pub fn new(target: NodeId, timeout: Duration, pacer: Arc<Pacer>) -> Arc<Self> {
        Arc::new(Session {
            target,
            room: Semaphore::new(MAX_INFLIGHT_APPENDS),
            sent: Mutex::new(VecDeque::new()),
            failed: Mutex::new(None),
            timeout,
            pacer,
            stalled: AtomicBool::new(false),
        })
    }

    fn on_sent(&self, carried: Carried, commit: Option<u64>, last: Option<u64>) -> Instant {
        timeline!("send", self.target);
        let at = Instant::now();
        if let Ok(mut sent) = self.sent.lock() {
            sent.push_back(Sent { at, carried });
        }
        self.pacer.sent(self.target, at, commit, last);
        at
    }

    /// Returns the appends the answered one replaced.
    fn on_reply(&self) -> Carried {
        timeline!("reply", self.target);
        let answered = match self.sent.lock() {
            Ok(mut sent) => sent
                .pop_front()
                .map(|s| (s, sent.front().map(|next| next.at))),
            Err(_) => None,
        };
        self.room.add_permits(1);
        match answered {
            Some((s, next)) => {
                self.pacer.answered(self.target, s.at.elapsed(), next);
                s.carried
            }
            None => Carried::default(),
        }
    }

    /// An append of this session went unanswered past the timeout.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// True when the oldest unanswered append has waited past the timeout.
    fn overdue(&self) -> bool {
        self.sent
            .lock()
            .ok()
            .and_then(|sent| sent.front().map(|s| s.at.elapsed() >= self.timeout))
            .unwrap_or(false)
    }

    /// Ends the request half: it stops at its next wait for room instead of
    /// waiting for a reply nobody will read.
    pub fn close(&self) {
        self.room.close();
    }

    fn fail(&self, why: String) {
        if let Ok(mut failed) = self.failed.lock() {
            *failed = Some(why);
        }
    }

    fn take_failure(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|mut f| f.take())
    }
}

/// Where the request half stands between two messages.
struct Outgoing<S> {
    input: S,
    /// An append read while holding a commit-only one that did not continue
    /// from it; it goes next.
    next: Option<AppendEntriesRequest<TypeConfig>>,
    /// openraft ended its stream while an append was held.
    ended: bool,
    /// When the previous append went out.
    last_sent: Option<Instant>,
    pace_changes: tokio::sync::watch::Receiver<u64>,
}

impl<S> Outgoing<S> {
    /// Waits until an append to a spare follower may go (see `pace`), or
    /// until the follower joins the quorum set. Once its interval is over, a
    /// spare append waits up to half an interval more for a moment when the
    /// quorum set has answered everything: at low load that is the gap
    /// between one write's commit and the next write, and the spare
    /// follower's fdatasync then does not queue on the disk with theirs.
    /// Only one spare follower goes per such moment; the other waits for
    /// the next. It goes at once when a member of the set is late: a write
    /// may be waiting for it.
    async fn space_out(&mut self, session: &Session, previous: Instant) {
        while let Some(spacing) = session.pacer.spacing(session.target, Instant::now()) {
            let due = previous + spacing;
            let latest = due + spacing / 2;
            let late_at = session.pacer.late_at();
            let now = Instant::now();
            if now >= latest {
                return;
            }
            if late_at.is_some_and(|late| now >= late) {
                timeline!("late", session.target);
                return;
            }
            if now < due {
                let until = late_at.map_or(due, |late| late.min(due));
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => {}
                    Ok(()) = self.pace_changes.changed() => {}
                }
                continue;
            }
            let quieted = session.pacer.quieted();
            tokio::pin!(quieted);
            quieted.as_mut().enable();
            if session.pacer.take_quiet() {
                // The quiet moment is usually a member's reply that has just
                // completed a commit. Yielding first lets this worker run what
                // that reply set going (the commit, the apply, the client's
                // answer) before it encodes and sends this batch; sent at once,
                // the batch held those writes back by ~80 µs (one-client
                // timeline, BENCHMARKS.md).
                tokio::task::yield_now().await;
                return;
            }
            let until = late_at.map_or(latest, |late| late.min(latest));
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = &mut quieted => {}
                Ok(()) = self.pace_changes.changed() => {}
            }
        }
    }
}

/// The request half: openraft's appends, encoded, at most
/// [`MAX_INFLIGHT_APPENDS`] ahead of the replies.
pub fn requests<S>(input: S, session: Arc<Session>) -> impl Stream<Item = RaftPayload> + Send
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
{
    let start = Outgoing {
        input,
        next: None,
        ended: false,
        last_sent: None,
        pace_changes: session.pacer.changes(),
    };
    futures::stream::unfold(start, move |mut out| {
        let session = Arc::clone(&session);
        async move {
            if out.ended && out.next.is_none() {
                return None;
            }
            // Waiting here, not after `next`, lets entries that arrive meanwhile
            // join the next append instead of each becoming one.
            session.room.acquire().await.ok()?.forget();
            if let (Some(previous), None) = (out.last_sent, &out.next) {
                out.space_out(&session, previous).await;
            }
            let mut req = match out.next.take() {
                Some(req) => req,
                None => out.input.next().await?,
            };
            let mut carried = Carried::default();
            if req.entries.is_empty() {
                timeline!("hold", session.target);
            }
            while req.entries.is_empty() && !out.ended {
                match tokio::time::timeout(COMMIT_HOLD, out.input.next()).await {
                    Ok(Some(later))
                        if later.prev_log_id == req.prev_log_id && later.vote == req.vote =>
                    {
                        carried = Carried {
                            count: carried.count + 1,
                            from: req.prev_log_id,
                        };
                        req = later;
                    }
                    Ok(Some(other)) => {
                        out.next = Some(other);
                        break;
                    }
                    Ok(None) => out.ended = true,
                    Err(_) => break,
                }
            }
            failpoint!("network::append_entries::before");
            match encode(&req) {
                Ok(data) => {
                    let commit = req.leader_commit.map(|c| c.index());
                    let last = req.entries.last().map(|e| e.log_id.index());
                    out.last_sent = Some(session.on_sent(carried, commit, last));
                    Some((RaftPayload { data }, out))
                }
                Err(e) => {
                    session.fail(format!("cannot encode an append: {e}"));
                    None
                }
            }
        }
    })
}

/// The reply half: the follower's answers in request order. Ends after the
/// first error or refusal, as openraft expects of a stream.
pub fn replies<I>(incoming: I, session: Arc<Session>) -> impl Stream<Item = Reply> + Send + 'static
where
    I: Stream<Item = Result<RaftPayload, tonic::Status>> + Send + Unpin + 'static,
{
    let half = ReplyHalf(session);
    let start = Some((incoming, half, VecDeque::new()));
    futures::stream::unfold(start, |state| async move {
        let (mut incoming, half, mut ready) = state?;
        if let Some(reply) = ready.pop_front() {
            return Some((reply, Some((incoming, half, ready))));
        }
        let session = Arc::clone(&half.0);
        loop {
            let next = tokio::time::timeout(session.timeout, incoming.next()).await;
            let reply = match next.map(Option::transpose) {
                Ok(Ok(Some(payload))) => {
                    let carried = session.on_reply();
                    let reply = unpack(payload);
                    if carried.count == 0 {
                        reply
                    } else {
                        // The follower accepted an append from the same point with
                        // a commit index at least as new: each replaced one would
                        // have been accepted too. A refusal ends the stream at
                        // the first of them, as it would have.
                        match reply {
                            Ok(Ok(_)) => {
                                let more = carried.count - 1;
                                ready.extend(
                                    std::iter::repeat_n(carried.from, more).map(|m| Ok(Ok(m))),
                                );
                                ready.push_back(reply);
                                Ok(Ok(carried.from))
                            }
                            refused => refused,
                        }
                    }
                }
                // The follower closed the stream after answering everything.
                Ok(Ok(None)) => {
                    let why = session.take_failure()?;
                    Err(RPCError::Network(NetworkError::from_string(why)))
                }
                Ok(Err(status)) => Err(status_error(session.target, status)),
                // Quiet while nothing is asked is fine: the leader has nothing to send.
                Err(_) if !session.overdue() => continue,
                Err(_) => {
                    session.stalled.store(true, Ordering::Relaxed);
                    Err(RPCError::Unreachable(Unreachable::from_string(format!(
                        "peer {}: no reply to an append within {:?}",
                        session.target, session.timeout
                    ))))
                }
            };
            if reply.is_err() {
                session.pacer.failed(session.target);
            }
            let go_on = matches!(reply, Ok(Ok(_)));
            return Some((reply, go_on.then_some((incoming, half, ready))));
        }
    })
}

/// The reply half's hold on its session. When openraft drops the replies
/// (after an error, or to start a new session) the request half must end
/// too: it may be waiting for room that only a reply would give back, and
/// would otherwise keep its HTTP/2 stream open for as long as the connection
/// lives (a paused follower that resumes).
struct ReplyHalf(Arc<Session>);

impl Drop for ReplyHalf {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests;
