//! How the configured Raft timing becomes openraft's settings: the election
//! timeout range mapped onto openraft's lease-then-timeout wait (ADR-0010), and
//! each member's snapshot interval spread by node id (ADR-0011).

use super::NodeId;

/// openraft's `(election_timeout_min, election_timeout_max)` for AEGIS's
/// configured election timeout range.
///
/// In AEGIS, as in etcd and the Raft paper, the election timeout is how long a
/// follower goes without hearing from a leader before it campaigns. openraft
/// 0.10 waits out a leader lease of `election_timeout_max` first and only then
/// its randomised `[min, max)` timeout, so passing the configured values
/// through would make a follower wait `[max + min, 2 max)`: 750–1,000 ms for
/// the default 250..500 ms, three times what the operator asked for.
///
/// `min'` is also openraft's deadline for every vote and pre-vote request,
/// so it is kept at least `max' / 2`: with `min'` just past one heartbeat
/// (51 ms), a candidate on a loaded machine gave up on votes that were on
/// their way, every node kept campaigning, and no election completed for
/// 30 s (RELIABILITY.md). With that floor the wait is `max' + [max'/2, max')`,
/// and the lease `max'` is chosen so that it starts at the configured `min`:
/// `max' = 2 min / 3`, at most `max / 2` so that it ends by `max`. At the
/// default a follower campaigns within `[250, 332)` ms, with 84 ms for votes;
/// where `min` is far below `max`, the wait is narrower than the configured
/// range but never outside it. `min'` stays above one heartbeat (openraft
/// requires that); a range too narrow to express ends at `max`. Settings the
/// envelope would reject are passed through unchanged for openraft's own
/// validation to refuse.
pub(super) fn openraft_election_timeouts(heartbeat: u64, min: u64, max: u64) -> (u64, u64) {
    let lease = (max / 2).min(min.saturating_mul(2) / 3);
    let floor = heartbeat.saturating_add(1);
    if heartbeat == 0 || min >= max || floor >= lease.saturating_sub(1) {
        return (min, max);
    }
    let vote_deadline = lease / 2;
    // A range too narrow to express (min close to max) ends at max instead.
    let short = min
        .saturating_sub(lease)
        .max(vote_deadline)
        .max(floor)
        .min(lease - 1);
    (short, lease)
}

/// This node's snapshot interval: the configured one plus 0, 5, 10, 15 or 20 % by node id.
/// Every member applies the same entries, so with one interval all of them would encode and
/// fsync their whole state at the same index, together: on shared cores and disks that stalls
/// the quorum (the leader's heartbeats and the followers' log fsyncs) for the length of a
/// snapshot. Spread out, at most a member or two are busy at a time.
pub(super) fn snapshot_interval(configured: u64, id: NodeId) -> u64 {
    configured.saturating_add(configured / 20 * (id % 5))
}

#[cfg(test)]
mod tests {
    use super::openraft_election_timeouts as map;

    /// openraft waits `max'` (its leader lease) plus a random `[min', max')`.
    fn wait_range(hb: u64, min: u64, max: u64) -> (u64, u64) {
        let (lo, hi) = map(hb, min, max);
        assert!(lo > hb && lo < hi, "openraft would refuse ({lo}, {hi})");
        (hi + lo, 2 * hi)
    }

    #[test]
    fn a_follower_campaigns_within_the_configured_election_timeout() {
        for (hb, min, max) in [(50, 250, 500), (20, 100, 200), (10, 30, 40), (50, 400, 500)] {
            let (lo, hi) = wait_range(hb, min, max);
            assert!(
                lo >= min && hi <= max,
                "{hb}/{min}/{max} waits [{lo}, {hi})"
            );
        }
        // Where the range allows it, the wait is exactly the configured one.
        assert_eq!(wait_range(50, 400, 500), (400, 500));
        // A 1 ms wide range ends at its max rather than doubling.
        assert_eq!(wait_range(100, 300, 301), (299, 300));
    }

    #[test]
    fn five_members_snapshot_at_five_different_points_from_the_configured_one() {
        let points: Vec<u64> = (1..=5)
            .map(|id| super::snapshot_interval(100_000, id))
            .collect();
        assert_eq!(points, [105_000, 110_000, 115_000, 120_000, 100_000]);
        assert_eq!(super::snapshot_interval(100, 3), 115);
        assert_eq!(super::snapshot_interval(u64::MAX, 4), u64::MAX);
    }

    #[test]
    fn votes_get_at_least_half_the_lease() {
        // openraft's vote deadline is min'; the lease is max'.
        assert_eq!(map(50, 250, 500), (84, 166));
        assert_eq!(map(20, 80, 160), (27, 53));
        assert_eq!(map(20, 100, 200), (34, 66));
        // Still above one heartbeat where half the lease is not.
        assert_eq!(map(10, 30, 40), (11, 20));
    }

    #[test]
    fn the_wait_starts_at_the_configured_minimum() {
        // The default, the envelope-accepted timing of the failover benchmark, and others.
        assert_eq!(wait_range(50, 250, 500), (250, 332));
        assert_eq!(wait_range(20, 80, 160), (80, 106));
        assert_eq!(wait_range(20, 100, 200), (100, 132));
        // Every range the envelope accepts (min >= 3 heartbeats, min < max) that openraft can
        // express: the wait lies inside it and starts within a millisecond or two of its min
        // (integer halves and thirds), and votes keep half the lease.
        for hb in [10, 20, 50, 100] {
            for min in (3 * hb..=10 * hb).step_by(hb as usize / 2) {
                for max in [min + hb, 2 * min, 4 * min] {
                    let (vote, lease) = map(hb, min, max);
                    if (vote, lease) == (min, max) {
                        continue; // passed through: openraft cannot express it
                    }
                    let (lo, hi) = wait_range(hb, min, max);
                    assert!(
                        lo >= min && hi <= max,
                        "{hb}/{min}/{max} waits [{lo}, {hi})"
                    );
                    assert!(
                        vote >= lease / 2,
                        "{hb}/{min}/{max}: votes get {vote} of {lease}"
                    );
                    if lease < max / 2 {
                        assert!(lo <= min + 2, "{hb}/{min}/{max} waits [{lo}, {hi})");
                    }
                }
            }
        }
    }

    #[test]
    fn settings_openraft_cannot_express_pass_through() {
        assert_eq!(map(0, 250, 500), (250, 500));
        assert_eq!(map(50, 500, 250), (500, 250));
        assert_eq!(map(100, 150, 200), (150, 200));
    }
}
