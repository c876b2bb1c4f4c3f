//! The leader's background duties: advance replicated time with `Tick`
//! entries so sessions expire without client traffic, keep the replicated
//! retention in line with this node's config, and count leader changes.

use std::sync::Arc;
use std::time::Duration;

use aegis_state_machine::Op;

use crate::metrics::Metrics;
use crate::raft::Consensus;

pub async fn run(
    consensus: Arc<Consensus>,
    metrics: Metrics,
    tick: Duration,
    max_versions: u64,
    stopped: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopped);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_leader = None;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = interval.tick() => {}
        }
        let view = consensus.view();
        if view.leader != last_leader {
            if view.leader.is_some() {
                metrics.leader_changed();
            }
            last_leader = view.leader;
        }
        if view.role != "leader" {
            continue;
        }
        let retention = consensus.sm().read(|sm| sm.max_versions());
        let op = if retention != max_versions {
            Op::SetRetention { max_versions }
        } else {
            Op::Tick
        };
        if let Err(e) = consensus.propose(op).await {
            tracing::debug!("tick not applied: {e}");
        }
    }
}
