//! Which followers a leader replicates to at once, and which in batches.
//!
//! A write commits once a majority has it on disk: the leader and, in a
//! cluster of five, two followers. The leader still owes the other two every
//! entry, but not at once. Sending each write to them as it comes costs each
//! of them a wake-up, an fdatasync and a reply per write, and costs the
//! leader two more messages, for no earlier commit. So the leader sends to
//! the followers that make up the fastest quorum at once, and to the others
//! ("spare" followers) at most one append per `raft.spare-batch-ms`, which
//! carries everything written since. When the quorum set's replies take
//! long (a loaded leader), the interval grows with them, up to four times
//! the setting: spare followers then get fewer, larger appends, and the
//! leader encodes and sends fewer. At low load the spare followers then
//! sync one batch instead of every write; under heavy load every follower's
//! appends are large batches anyway. Once its interval is over, a spare
//! append waits up to half an interval more for the quorum set to have
//! answered everything it was sent ("quiet"): at low load that is the gap
//! between one write's commit and the next write, so the spare follower's
//! fdatasync does not queue on a shared disk with the next write's. One
//! spare follower goes per quiet moment, so that two spare followers'
//! batches, due together, fall beside different writes.
//!
//! Which followers are spare is decided from what the leader sees. The set
//! that gets appends at once (the "quorum set") starts as the lowest ids and
//! is sticky: a member leaves it only when its smoothed reply latency
//! exceeds [`SWAP_FACTOR`] times that of the best spare follower plus one
//! batch interval (the most a spare follower's spacing can add to a write),
//! when one of its appends has gone unanswered for [`STALL_BATCHES`]
//! batch intervals, or when an RPC to it fails. Scheduling noise of a few milliseconds thus does not
//! move followers back and forth, and a follower that stops answering drops
//! out within 40 ms (at the default 10 ms). A spare follower waiting out its
//! spacing is woken when it joins the set. If the set is wrong (a learner
//! counted in, a stall not yet seen), a write waits at most that much longer
//! than it would have: nothing is acknowledged before a majority has it on
//! disk, whoever that majority is.
//!
//! A write waits for every member of the quorum set, so one member that
//! does not answer in time (descheduled, a slow fsync) would hold it until
//! a spare follower's interval is over. When an append to a member has gone
//! unanswered for [`LATE_PER_LATENCY`] times the set's mean reply latency
//! (at least [`MIN_LATE`]), the member is late: spare followers get their
//! next append at once, without waiting out their interval or for the set
//! to be quiet, and the first of them to answer completes the majority.
//! Only an append sent when the member had answered everything can make
//! it late: under load appends are pipelined, reply times spread, and
//! sending spare followers every append that waits a little longer costs
//! more than it saves.
//!
//! An append carries at most `raft.max-payload-entries` entries. A spare
//! follower that many entries behind the newest sent to any follower gets
//! its next append at once, as a member would: otherwise it could take in
//! one full append per interval, fall ever further behind a faster write
//! rate, and hold up writes for as long as it catches up once it joins the
//! quorum set. So a spare follower lags by at most about one full append
//! plus what is in flight, whatever the write rate, which is also what a
//! reader of `aegis_raft_log_lag` expects of a healthy follower.
//!
//! A linearizable read served by a spare follower waits until that follower
//! has applied the leader's commit index. The leader [hurries](Pacer::hurry)
//! the follower whose read it has just confirmed: its next append goes at
//! once, so the read waits one append round trip instead of up to an
//! interval.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::types::NodeId;

/// Weight of the newest reply in a follower's latency estimate.
const LATENCY_WEIGHT: f64 = 0.25;
/// A member of the quorum set is replaced by a spare follower when its score
/// exceeds the spare one's times this factor plus the batch interval.
const SWAP_FACTOR: f64 = 2.0;
/// Spare followers' interval in multiples of the quorum set's mean reply
/// latency, when that is longer than the batch interval.
const SPACING_PER_LATENCY: f64 = 4.0;
/// The longest spare followers' interval, in batch intervals.
const MAX_SPACING_BATCHES: u32 = 4;
/// An append to a member of the quorum set unanswered for this many times
/// the set's mean reply latency makes it late: spare followers then go at
/// once.
const LATE_PER_LATENCY: f64 = 3.0;
/// The least wait that makes a member late: below it, scheduling noise.
const MIN_LATE: Duration = Duration::from_millis(1);
/// An append unanswered for this many batch intervals marks its follower as
/// stalled: it scores by that wait instead of its smoothed latency.
const STALL_BATCHES: u32 = 4;

pub struct Pacer {
    /// Least time between two appends to a spare follower; zero sends every
    /// append at once to every follower.
    batch: Duration,
    /// The most entries openraft puts in one append (`raft.max-payload-entries`).
    /// A spare follower that many entries behind the newest sent gets its
    /// next append at once: otherwise it could take in at most this many
    /// entries per interval and fall ever further behind a faster write rate.
    max_payload_entries: u64,
    state: Mutex<State>,
    /// Bumped whenever the quorum set changes or a spare follower is
    /// hurried, so spare streams re-check their spacing.
    changes: watch::Sender<u64>,
    /// Wakes spare streams that wait for the quorum set to have answered
    /// everything sent to it.
    quiet: Notify,
}

#[derive(Default)]
struct State {
    followers: BTreeMap<NodeId, Follower>,
    /// Followers that get every append at once.
    quorum_set: BTreeSet<NodeId>,
    /// Counts the moments the quorum set became quiet.
    quiet_moments: u64,
    /// The quiet moment a spare follower last went in: one per moment.
    quiet_taken: Option<u64>,
    /// The highest log index sent to any follower.
    newest_sent: u64,
}

#[derive(Default)]
struct Follower {
    /// Open connections to it (openraft may hold an old one while it opens
    /// a new one).
    connections: usize,
    /// Smoothed time from sending an append to its reply, in seconds.
    latency: f64,
    /// When the oldest append it has not answered was sent.
    oldest_unanswered: Option<Instant>,
    /// Its oldest unanswered append went when it had answered everything
    /// before it: not one of a pipelined run.
    oldest_alone: bool,
    /// Its last RPC failed (refused, unreachable, timed out) and it has not
    /// answered since: a follower that is down never gets far enough to
    /// leave an append unanswered.
    down: bool,
    /// A read on it waits for its next append: that one goes at once.
    hurried: bool,
    /// The highest commit index sent to it.
    told_commit: Option<u64>,
    /// The highest log index sent to it.
    sent_up_to: u64,
    /// It is a full append or more behind the newest entry sent: its next
    /// append goes at once.
    behind: bool,
}

impl Follower {
    /// Its smoothed latency, or how long its oldest append has waited once
    /// that is past `stall`.
    fn score(&self, now: Instant, stall: Duration) -> f64 {
        if self.down {
            return f64::INFINITY;
        }
        let waiting = self
            .oldest_unanswered
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        if waiting > stall {
            waiting.as_secs_f64()
        } else {
            self.latency
        }
    }
}

impl State {
    /// Entries up to `last` went to `target`; marks every follower a full
    /// append (`cap` entries) or more behind the newest sent. True when a
    /// spare follower just became so, and its stream must be woken.
    fn sent_entries(&mut self, target: NodeId, last: u64, cap: u64) -> bool {
        self.newest_sent = self.newest_sent.max(last);
        if let Some(follower) = self.followers.get_mut(&target) {
            follower.sent_up_to = follower.sent_up_to.max(last);
        }
        let mut woken = false;
        for (id, f) in self.followers.iter_mut() {
            let behind = self.newest_sent.saturating_sub(f.sent_up_to) >= cap;
            woken |= behind && !f.behind && !self.quorum_set.contains(id);
            f.behind = behind;
        }
        woken
    }

    /// Brings the quorum set to the followers needed for a majority, keeping
    /// its members unless one is clearly slower than a spare follower.
    /// Returns whether it changed.
    fn rebalance(&mut self, now: Instant, batch: Duration) -> bool {
        let followers = &self.followers;
        let members = self.quorum_set.len();
        self.quorum_set.retain(|id| followers.contains_key(id));
        let mut changed = self.quorum_set.len() != members;
        // Followers that, with the leader, make a majority when every one of
        // them votes. Learners make this larger, never smaller.
        let needed = followers.len().div_ceil(2);
        let stall = batch * STALL_BATCHES;
        let score = |id: &NodeId| followers.get(id).map_or(f64::MAX, |f| f.score(now, stall));
        let by_score = |a: &NodeId, b: &NodeId| score(a).total_cmp(&score(b)).then(a.cmp(b));
        let best_spare = |set: &BTreeSet<NodeId>, answered_only: bool| {
            followers
                .iter()
                .filter(|(id, f)| !set.contains(id) && (!answered_only || f.latency > 0.0))
                .map(|(id, _)| *id)
                .min_by(by_score)
        };
        while self.quorum_set.len() > needed {
            let Some(worst) = self.quorum_set.iter().copied().max_by(by_score) else {
                break;
            };
            changed |= self.quorum_set.remove(&worst);
        }
        while self.quorum_set.len() < needed {
            let Some(id) = best_spare(&self.quorum_set, false) else {
                break;
            };
            changed |= self.quorum_set.insert(id);
        }
        // Only a spare follower that has answered can prove itself faster.
        let worst = self.quorum_set.iter().copied().max_by(by_score);
        if let (Some(worst), Some(spare)) = (worst, best_spare(&self.quorum_set, true)) {
            if score(&worst) > SWAP_FACTOR * score(&spare) + batch.as_secs_f64() {
                self.quorum_set.remove(&worst);
                self.quorum_set.insert(spare);
                changed = true;
            }
        }
        if changed {
            tracing::debug!(quorum_set = ?self.quorum_set, "followers that get every append at once");
        }
        changed
    }

    /// Every member of the quorum set has answered everything sent to it.
    fn quorum_quiet(&self) -> bool {
        self.quorum_set.iter().all(|id| {
            self.followers
                .get(id)
                .is_none_or(|f| f.oldest_unanswered.is_none())
        })
    }

    /// The interval for spare followers: the batch interval, or more when the
    /// quorum set's replies take long (a loaded leader), up to
    /// [`MAX_SPACING_BATCHES`] intervals.
    fn spacing(&self, batch: Duration) -> Duration {
        let Some(mean) = self.mean_latency() else {
            return batch;
        };
        let loaded = Duration::try_from_secs_f64(mean * SPACING_PER_LATENCY).unwrap_or(batch);
        loaded.clamp(batch, batch * MAX_SPACING_BATCHES)
    }

    /// The quorum set's mean smoothed reply latency in seconds, if it has
    /// members.
    fn mean_latency(&self) -> Option<f64> {
        let (sum, count) = self
            .quorum_set
            .iter()
            .filter_map(|id| self.followers.get(id))
            .fold((0.0, 0u32), |(sum, n), f| (sum + f.latency, n + 1));
        (count > 0).then(|| sum / f64::from(count))
    }

    /// When the oldest append still unanswered by a member of the quorum set
    /// makes that member late. Only an append sent when the member had
    /// answered everything counts: one sent behind another is pipelined
    /// (load), where reply times spread, spare appends are large batches
    /// anyway, and a stalled member is found by the stall rule.
    fn late_at(&self) -> Option<Instant> {
        let mean = self.mean_latency()?;
        let wait = Duration::try_from_secs_f64(mean * LATE_PER_LATENCY)
            .unwrap_or(MIN_LATE)
            .max(MIN_LATE);
        self.quorum_set
            .iter()
            .filter_map(|id| self.followers.get(id))
            .filter(|f| f.oldest_alone)
            .filter_map(|f| f.oldest_unanswered)
            .min()
            .map(|oldest| oldest + wait)
    }
}

impl Pacer {
    pub fn new(batch: Duration, max_payload_entries: u64) -> Pacer {
        Pacer {
            batch,
            max_payload_entries,
            state: Mutex::new(State::default()),
            changes: watch::Sender::new(0),
            quiet: Notify::new(),
        }
    }

    /// Resolves changes to the quorum set.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn update(&self, now: Instant, f: impl FnOnce(&mut State)) {
        let changed = match self.state.lock() {
            Ok(mut state) => {
                f(&mut state);
                state.rebalance(now, self.batch)
            }
            Err(_) => false,
        };
        self.announce(changed);
    }

    /// A connection to `target` opened: it is one of the followers this
    /// node replicates to while it leads.
    pub fn join(&self, target: NodeId) {
        self.update(Instant::now(), |s| {
            s.followers.entry(target).or_default().connections += 1;
        });
    }

    /// A connection to `target` closed.
    pub fn leave(&self, target: NodeId) {
        self.update(Instant::now(), |s| {
            if let Some(follower) = s.followers.get_mut(&target) {
                follower.connections = follower.connections.saturating_sub(1);
                if follower.connections == 0 {
                    s.followers.remove(&target);
                }
            }
            // Another term may bring a shorter log: count afresh.
            if s.followers.is_empty() {
                s.newest_sent = 0;
            }
        });
    }

    /// An append telling commit index `commit`, and carrying entries up to
    /// log index `last` if any, went to `target` at `at`. A spare follower
    /// that the newest entries leave a full append or more behind is woken
    /// to take its next append at once.
    pub fn sent(&self, target: NodeId, at: Instant, commit: Option<u64>, last: Option<u64>) {
        let woken = match self.state.lock() {
            Ok(mut s) => {
                if let Some(follower) = s.followers.get_mut(&target) {
                    if follower.oldest_unanswered.is_none() {
                        follower.oldest_unanswered = Some(at);
                        follower.oldest_alone = true;
                    }
                    follower.hurried = false;
                    follower.told_commit = follower.told_commit.max(commit);
                }
                last.is_some_and(|last| s.sent_entries(target, last, self.max_payload_entries))
            }
            Err(_) => false,
        };
        self.announce(woken);
    }

    /// Entries up to `last` went to `target`, and nothing else about the
    /// append counts: sets up how far behind followers are.
    #[cfg(test)]
    pub(crate) fn sent_entries(&self, target: NodeId, last: u64) {
        let woken = match self.state.lock() {
            Ok(mut s) => s.sent_entries(target, last, self.max_payload_entries),
            Err(_) => false,
        };
        self.announce(woken);
    }

    /// `target` answered an append after `took`; `next_unanswered` is when
    /// the oldest append still unanswered on that stream was sent.
    pub fn answered(&self, target: NodeId, took: Duration, next_unanswered: Option<Instant>) {
        let mut quiet = false;
        self.update(Instant::now(), |s| {
            if let Some(follower) = s.followers.get_mut(&target) {
                let took = took.as_secs_f64();
                follower.latency = if follower.latency == 0.0 {
                    took
                } else {
                    follower.latency + LATENCY_WEIGHT * (took - follower.latency)
                };
                follower.oldest_unanswered = next_unanswered;
                // The next one went while this one was in flight.
                follower.oldest_alone = false;
                follower.down = false;
            }
            quiet = s.quorum_set.contains(&target) && s.quorum_quiet();
            if quiet {
                s.quiet_moments = s.quiet_moments.wrapping_add(1);
            }
        });
        if quiet {
            self.quiet.notify_waiters();
        }
    }

    /// An RPC to `target` failed.
    pub fn failed(&self, target: NodeId) {
        self.update(Instant::now(), |s| {
            if let Some(follower) = s.followers.get_mut(&target) {
                follower.down = true;
            }
        });
    }

    /// How long after its previous append the next append to `target` may
    /// go: `None` for a member of the quorum set (at once).
    pub fn spacing(&self, target: NodeId, now: Instant) -> Option<Duration> {
        if self.batch.is_zero() {
            return None;
        }
        let (changed, spacing) = match self.state.lock() {
            Ok(mut s) => {
                let changed = s.rebalance(now, self.batch);
                let spare = s
                    .followers
                    .get(&target)
                    .is_some_and(|f| !f.hurried && !f.behind)
                    && !s.quorum_set.contains(&target);
                (changed, spare.then(|| s.spacing(self.batch)))
            }
            Err(_) => (false, None),
        };
        self.announce(changed);
        spacing
    }

    /// A linearizable read on `target` waits for it to apply up to `index`:
    /// if it is a spare follower that has not been sent that commit index,
    /// its next append goes without waiting out its interval.
    pub fn hurry(&self, target: NodeId, index: u64) {
        let hurried = match self.state.lock() {
            Ok(mut s) => {
                let spare = !s.quorum_set.contains(&target);
                match s.followers.get_mut(&target) {
                    Some(f) if spare && f.told_commit < Some(index) => {
                        f.hurried = true;
                        true
                    }
                    _ => false,
                }
            }
            Err(_) => false,
        };
        self.announce(hurried);
    }

    /// When a member of the quorum set will be late with the append it
    /// has left unanswered longest; spare followers go at once from then.
    /// `None` while the set has answered everything.
    pub fn late_at(&self) -> Option<Instant> {
        if self.batch.is_zero() {
            return None;
        }
        self.state.lock().ok().and_then(|s| s.late_at())
    }

    /// Whether the quorum set has answered everything sent to it.
    #[cfg(test)]
    fn quorum_quiet(&self) -> bool {
        self.state.lock().map_or(true, |s| s.quorum_quiet())
    }

    /// Takes the current quiet moment for one spare follower's append: true
    /// when the quorum set is quiet and no other spare follower went in
    /// this moment. Two spare followers syncing beside the same write cost
    /// it about three times what one does on two vCPUs (ab-runs, session
    /// 12), so their batches go one per moment and fall beside different
    /// writes.
    pub fn take_quiet(&self) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return true;
        };
        if !s.quorum_quiet() || s.quiet_taken == Some(s.quiet_moments) {
            return false;
        }
        s.quiet_taken = Some(s.quiet_moments);
        true
    }

    /// Resolves when the quorum set next becomes quiet. Enable it (see
    /// [`Notify::notified`]) before [`take_quiet`](Self::take_quiet) so that
    /// a reply in between is not missed.
    pub fn quieted(&self) -> tokio::sync::futures::Notified<'_> {
        self.quiet.notified()
    }

    fn announce(&self, changed: bool) {
        if changed {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: Duration = Duration::from_millis(5);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A leader's pacer: every follower connects, then each answers once in
    /// the given time.
    fn pacer_with(latencies: &[(NodeId, u64)]) -> Pacer {
        let p = Pacer::new(BATCH, 256);
        for &(id, _) in latencies {
            p.join(id);
        }
        for &(id, took) in latencies {
            p.answered(id, ms(took), None);
        }
        p
    }

    fn spare(p: &Pacer, now: Instant) -> Vec<NodeId> {
        (1..=9).filter(|&id| p.spacing(id, now).is_some()).collect()
    }

    #[test]
    fn a_spare_follower_a_full_append_behind_goes_at_once_until_it_catches_up() {
        let p = Pacer::new(BATCH, 100);
        for id in 1..=4 {
            p.join(id);
            p.answered(id, ms(1), None);
        }
        let spare = 4;
        assert!(p.spacing(spare, Instant::now()).is_some(), "4 is spare");
        let mut changes = p.changes();
        changes.mark_unchanged();
        // The members get entries up to 150; 4 has had up to 50.
        p.sent_entries(spare, 50);
        p.sent_entries(1, 150);
        assert!(
            changes.has_changed().unwrap_or(false),
            "the spare stream is woken"
        );
        assert_eq!(p.spacing(spare, Instant::now()), None, "100 behind");
        // Sent fewer than a full append's entries behind, it waits out its
        // interval again.
        p.sent_entries(spare, 60);
        assert!(
            p.spacing(spare, Instant::now()).is_some(),
            "90 behind: paced"
        );
    }

    #[test]
    fn of_four_followers_two_get_appends_at_once_and_noise_does_not_move_them() {
        // 5 is a little faster than 2, not enough to take its place.
        let p = pacer_with(&[(2, 3), (3, 1), (4, 4), (5, 2)]);
        assert_eq!(spare(&p, Instant::now()), [4, 5]);
        assert_eq!(p.spacing(2, Instant::now()), None);
    }

    #[test]
    fn a_hurried_spare_follower_gets_its_next_append_at_once_and_then_waits_again() {
        let p = pacer_with(&[(2, 1), (3, 2), (4, 3), (5, 4)]);
        let mut changes = p.changes();
        changes.mark_unchanged();
        p.hurry(2, 7);
        assert!(!changes.has_changed().unwrap_or(true), "2 is a member");
        assert_eq!(spare(&p, Instant::now()), [4, 5]);
        p.hurry(4, 7);
        assert!(
            changes.has_changed().unwrap_or(false),
            "4's stream is woken"
        );
        assert_eq!(spare(&p, Instant::now()), [5]);
        p.sent(4, Instant::now(), Some(7), None);
        assert_eq!(spare(&p, Instant::now()), [4, 5]);
        changes.mark_unchanged();
        // It has been sent commit index 7: a read up to 7 needs no hurry.
        p.hurry(4, 7);
        assert!(!changes.has_changed().unwrap_or(true));
        assert_eq!(spare(&p, Instant::now()), [4, 5]);
        p.hurry(4, 8);
        assert_eq!(spare(&p, Instant::now()), [5]);
    }

    #[test]
    fn a_clearly_slower_member_is_replaced_by_the_fastest_spare_follower() {
        let p = pacer_with(&[(2, 3), (3, 1), (4, 4), (5, 2)]);
        let changes = p.changes();
        p.answered(2, ms(40), None);
        assert_eq!(spare(&p, Instant::now()), [2, 4]);
        assert!(
            changes.has_changed().unwrap_or(false),
            "spare streams are told"
        );
    }

    #[test]
    fn a_follower_that_stops_answering_becomes_spare_and_a_spare_one_takes_its_place() {
        let p = pacer_with(&[(2, 1), (3, 2), (4, 3), (5, 4)]);
        let sent = Instant::now();
        p.sent(2, sent, None, None);
        assert_eq!(spare(&p, sent + ms(1)), [4, 5]);
        // Waiting a few milliseconds is noise on a busy machine.
        assert_eq!(spare(&p, sent + ms(12)), [4, 5]);
        // Four batch intervals without an answer: follower 2 has stalled.
        assert_eq!(spare(&p, sent + ms(21)), [2, 5]);
        // It answers, slowly: 4 keeps the place it took.
        p.answered(2, ms(21), None);
        assert_eq!(spare(&p, sent + ms(21)), [2, 5]);
    }

    #[test]
    fn a_member_that_cannot_be_reached_is_replaced_until_it_answers_again() {
        let p = pacer_with(&[(2, 1), (3, 2), (4, 3), (5, 4)]);
        // A member that is down has no append in flight to age: its RPCs fail.
        p.failed(2);
        assert_eq!(spare(&p, Instant::now()), [2, 5]);
        // Back, and answering fast: a spare follower until a member slows.
        p.answered(2, ms(1), None);
        assert_eq!(spare(&p, Instant::now()), [2, 5]);
        p.failed(3);
        assert_eq!(spare(&p, Instant::now()), [3, 5]);
    }

    #[test]
    fn the_interval_grows_with_the_quorum_sets_latency_up_to_four_batches() {
        let p = pacer_with(&[(2, 1), (3, 1), (4, 1), (5, 1)]);
        assert_eq!(p.spacing(5, Instant::now()), Some(BATCH));
        // Loaded: members answer in 2 ms on average, spares wait 8 ms.
        for _ in 0..40 {
            p.answered(2, Duration::from_micros(1500), None);
            p.answered(3, Duration::from_micros(2500), None);
        }
        let spacing = p.spacing(5, Instant::now()).unwrap_or_default();
        assert!(
            (7..=9).contains(&spacing.as_millis()),
            "{spacing:?} for a 2 ms mean"
        );
        for _ in 0..40 {
            for id in 2..=5 {
                p.answered(id, ms(30), None);
            }
        }
        let now = Instant::now();
        let spare_ones = spare(&p, now);
        assert_eq!(spare_ones.len(), 2, "{spare_ones:?}");
        assert_eq!(p.spacing(spare_ones[0], now), Some(BATCH * 4));
    }

    #[test]
    fn small_clusters_keep_a_quorum_of_followers_at_once() {
        // Three members: one follower of two is needed.
        let p = pacer_with(&[(2, 1), (3, 2)]);
        assert_eq!(spare(&p, Instant::now()), [3]);
        // Two members: the only follower is needed.
        let p = pacer_with(&[(2, 5)]);
        assert_eq!(spare(&p, Instant::now()), Vec::<NodeId>::new());
        // Four members: two of three followers are needed.
        let p = pacer_with(&[(2, 1), (3, 2), (4, 3)]);
        assert_eq!(spare(&p, Instant::now()), [4]);
    }

    #[test]
    fn equal_scores_are_ranked_by_id_and_unknown_targets_go_at_once() {
        let p = pacer_with(&[(2, 1), (3, 1), (4, 1), (5, 1)]);
        assert_eq!(spare(&p, Instant::now()), [4, 5]);
        assert_eq!(p.spacing(7, Instant::now()), None);
    }

    #[test]
    fn a_follower_stays_known_until_its_last_connection_closes() {
        let p = pacer_with(&[(2, 1), (3, 2), (4, 3), (5, 4)]);
        p.join(3);
        p.leave(3);
        assert_eq!(spare(&p, Instant::now()), [4, 5]);
        p.leave(3);
        // Three followers left, two of them needed: 4 joins 2.
        assert_eq!(spare(&p, Instant::now()), [5]);
    }

    #[tokio::test]
    async fn the_quorum_set_is_quiet_once_its_members_answered_everything() {
        let p = pacer_with(&[(1, 1), (2, 1), (3, 1), (4, 1)]);
        let now = Instant::now();
        assert_eq!(spare(&p, now), vec![3, 4]);
        assert!(p.quorum_quiet());
        p.sent(3, now, None, None);
        assert!(p.quorum_quiet(), "a spare follower's append does not count");
        p.sent(1, now, None, None);
        p.sent(2, now, None, None);
        assert!(!p.quorum_quiet());
        let quieted = p.quieted();
        tokio::pin!(quieted);
        quieted.as_mut().enable();
        p.answered(1, ms(1), None);
        assert!(!p.quorum_quiet(), "member 2 has not answered");
        p.answered(2, ms(1), Some(now));
        assert!(!p.quorum_quiet(), "member 2 has a later append unanswered");
        p.answered(2, ms(1), None);
        assert!(p.quorum_quiet());
        tokio::time::timeout(Duration::from_secs(5), quieted)
            .await
            .expect("waiters are woken when the set goes quiet");
    }

    #[test]
    fn one_spare_follower_goes_per_quiet_moment() {
        let p = pacer_with(&[(1, 1), (2, 1), (3, 1), (4, 1)]);
        let now = Instant::now();
        assert!(p.take_quiet(), "the set is quiet: a spare follower goes");
        assert!(!p.take_quiet(), "the other waits for the next moment");
        p.sent(1, now, None, None);
        p.sent(2, now, None, None);
        p.answered(1, ms(1), None);
        assert!(!p.take_quiet(), "member 2 has not answered");
        p.answered(2, ms(1), None);
        assert!(p.take_quiet(), "a new quiet moment");
        assert!(!p.take_quiet());
        // A spare follower's reply is not a moment of the quorum set.
        p.sent(3, now, None, None);
        p.answered(3, ms(1), None);
        assert!(!p.take_quiet());
    }

    #[test]
    fn a_member_is_late_after_three_times_the_sets_mean_latency() {
        let p = pacer_with(&[(2, 2), (3, 4), (4, 1), (5, 1)]);
        assert_eq!(p.late_at(), None, "nothing unanswered");
        let at = Instant::now();
        p.sent(4, at, None, None);
        assert_eq!(
            p.late_at(),
            None,
            "a spare follower's append does not count"
        );
        p.sent(3, at + ms(2), None, None);
        p.sent(2, at + ms(5), None, None);
        // The set answers in 3 ms on average; 3's append is the oldest.
        assert_eq!(p.late_at(), Some(at + ms(2) + ms(9)));
        p.answered(3, ms(4), None);
        assert_eq!(p.late_at(), Some(at + ms(5) + ms(9)));
        // Never sooner than a millisecond, whatever the latency.
        let p = pacer_with(&[(2, 0), (3, 0), (4, 1), (5, 1)]);
        p.answered(2, Duration::from_micros(100), None);
        p.answered(3, Duration::from_micros(100), None);
        p.sent(2, at, None, None);
        assert_eq!(p.late_at(), Some(at + MIN_LATE));
        assert_eq!(Pacer::new(Duration::ZERO, 256).late_at(), None);
    }

    #[test]
    fn an_append_sent_behind_another_does_not_make_its_member_late() {
        let p = pacer_with(&[(2, 1), (3, 1), (4, 1), (5, 1)]);
        let at = Instant::now();
        p.sent(2, at, None, None);
        assert_eq!(p.late_at(), Some(at + ms(3)), "3 × the 1 ms mean");
        // Writes queue behind an append that stalls: it stays late.
        p.sent(2, at + ms(1), None, None);
        assert_eq!(p.late_at(), Some(at + ms(3)));
        // Answered; the one now oldest went while it was in flight (load).
        p.answered(2, ms(1), Some(at + ms(1)));
        assert_eq!(p.late_at(), None);
        p.answered(2, ms(1), None);
        p.sent(2, at + ms(4), None, None);
        assert_eq!(p.late_at(), Some(at + ms(7)), "alone again");
    }

    #[test]
    fn a_zero_batch_sends_everything_at_once() {
        let p = Pacer::new(Duration::ZERO, 256);
        for id in 2..=5 {
            p.join(id);
            p.answered(id, ms(id), None);
        }
        assert_eq!(spare(&p, Instant::now()), Vec::<NodeId>::new());
    }
}
