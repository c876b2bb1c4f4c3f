//! Anomaly → YAML patch. Each patch is computed from the deployed values, so it says "from
//! what is running, move this far", and carries a one-line rationale per field.

use crate::anomaly::{Anomaly, SuggestedAction};
use aegis_config::ClusterConfig;
use serde_norway::{Mapping, Value};

/// Factor applied to the RPC timeout for a slow follower: one slow fsync must not make the
/// leader give up on an AppendEntries that would have succeeded.
pub const RPC_TIMEOUT_FACTOR: i64 = 2;
/// Entries kept after a snapshot, as a multiple of the observed lag, so the follower catches up
/// from the log instead of needing a full snapshot install.
pub const KEEP_LOGS_LAG_FACTOR: f64 = 1.5;
/// Election timeouts grow by half: fewer spurious timeouts, a wider randomisation range.
pub const ELECTION_WIDEN_NUM: i64 = 3;
pub const ELECTION_WIDEN_DEN: i64 = 2;
/// Skew grace covers the measured spread with half again as margin, rounded up to 100 ms.
pub const SKEW_GRACE_MARGIN: f64 = 1.5;
/// Minimum TTL doubles so a session survives a couple of late keep-alives.
pub const MIN_TTL_FACTOR: i64 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// Only the changed keys, as a nested mapping (`raft: {rpc-timeout-ms: 2000}`).
    pub value: Value,
    pub rationale: Vec<String>,
}

impl Patch {
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(&self.value).unwrap_or_default()
    }
}

fn set(root: &mut Mapping, group: &str, field: &str, v: i64) {
    let g = root
        .entry(Value::String(group.into()))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if let Value::Mapping(m) = g {
        m.insert(Value::String(field.into()), Value::Number(v.into()));
    }
}

fn round_up(x: f64, to: i64) -> i64 {
    let x = x.max(0.0).min(i64::MAX as f64 / 2.0) as i64;
    ((x + to - 1) / to).saturating_mul(to)
}

/// `None` when the anomaly calls for no config change.
pub fn for_anomaly(a: &Anomaly, deployed: &ClusterConfig) -> Option<Patch> {
    let mut root = Mapping::new();
    let mut why = Vec::new();
    let num = |k: &str| a.evidence.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
    match a.suggested_action {
        SuggestedAction::NoAction => return None,
        SuggestedAction::RelaxReplicationTimeouts => {
            let r = &deployed.raft;
            let rpc = r.rpc_timeout_ms.saturating_mul(RPC_TIMEOUT_FACTOR);
            set(&mut root, "raft", "rpc-timeout-ms", rpc);
            why.push(format!(
                "raft.rpc-timeout-ms {} → {}: the lagging follower's slow fsync should not time out AppendEntries that would succeed",
                r.rpc_timeout_ms, rpc
            ));
            let keep = round_up(num("sustained_lag_entries") * KEEP_LOGS_LAG_FACTOR, 1000);
            if keep > r.max_logs_kept_after_snapshot {
                set(&mut root, "raft", "max-logs-kept-after-snapshot", keep);
                why.push(format!(
                    "raft.max-logs-kept-after-snapshot {} → {}: keep {}x the observed lag so the follower catches up from the log, not a snapshot",
                    r.max_logs_kept_after_snapshot, keep, KEEP_LOGS_LAG_FACTOR
                ));
            }
        }
        SuggestedAction::WidenElectionTimeouts | SuggestedAction::InvestigatePartition => {
            let r = &deployed.raft;
            let min =
                r.election_timeout_min_ms.saturating_mul(ELECTION_WIDEN_NUM) / ELECTION_WIDEN_DEN;
            let max =
                r.election_timeout_max_ms.saturating_mul(ELECTION_WIDEN_NUM) / ELECTION_WIDEN_DEN;
            set(&mut root, "raft", "election-timeout-min-ms", min);
            set(&mut root, "raft", "election-timeout-max-ms", max);
            why.push(format!(
                "raft.election-timeout-{{min,max}}-ms {}–{} → {}–{}: fewer spurious elections and a wider randomisation range",
                r.election_timeout_min_ms, r.election_timeout_max_ms, min, max
            ));
            if a.suggested_action == SuggestedAction::InvestigatePartition {
                why.push(
                    "leadership was contested: check the network between replicas before merging"
                        .into(),
                );
            }
        }
        SuggestedAction::RaiseLeaseSkewGrace => {
            let spread = num("clock_spread_ms");
            let grace = round_up(spread * SKEW_GRACE_MARGIN, 100);
            if grace <= deployed.lease.skew_grace_ms {
                return None;
            }
            set(&mut root, "lease", "skew-grace-ms", grace);
            why.push(format!(
                "lease.skew-grace-ms {} → {}: cover the measured {:.0} ms clock spread with margin; also fix the node's time sync",
                deployed.lease.skew_grace_ms, grace, spread
            ));
        }
        SuggestedAction::RaiseLeaseMinTtl => {
            let ttl = deployed.lease.min_ttl_ms.saturating_mul(MIN_TTL_FACTOR);
            set(&mut root, "lease", "min-ttl-ms", ttl);
            why.push(format!(
                "lease.min-ttl-ms {} → {}: sessions survive a few late keep-alives",
                deployed.lease.min_ttl_ms, ttl
            ));
        }
    }
    Some(Patch {
        value: Value::Mapping(root),
        rationale: why,
    })
}
