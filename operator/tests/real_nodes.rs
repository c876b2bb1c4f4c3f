//! The membership and rotation planners driving real `aegis-node` processes on loopback
//! through `GrpcClusterAdmin`. A small pod runtime (`real_nodes/runtime.rs`) plays the
//! StatefulSet and the kubelet; every decision comes from `membership::plan` and
//! `rotation::plan`, executed the way the reconciler executes them.
//!
//! Needs the node binary: `cargo build -p aegis-node --bin aegis-node` (or AEGIS_NODE_BIN).

#[path = "real_nodes/runtime.rs"]
mod runtime;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aegis_client::{Client, ClientConfig};
use aegis_operator::admin::{ClusterAdmin, Member, NodeStatus};
use aegis_operator::membership::{self, MembershipInputs, MembershipStep};
use aegis_operator::rotation::{self, GateFailure, Gates, RotationInputs, RotationStep};
use runtime::{config_hash, pod_name, PodRuntime, CLUSTER, NAMESPACE};

/// The tests start many processes on a small machine: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MAX_LAG: u64 = 100;
const BASE_CONFIG: &str = "raft:\n  heartbeat-interval-ms: 50\n  election-timeout-min-ms: 250\n  election-timeout-max-ms: 500\n";
const TUNED_CONFIG: &str = "raft:\n  heartbeat-interval-ms: 40\n  election-timeout-min-ms: 200\n  election-timeout-max-ms: 400\n";
const CRASHING_CONFIG: &str = "raft:\n  heartbeat-interval-ms: 60\n  election-timeout-min-ms: 300\n  election-timeout-max-ms: 600\n";

fn pause() -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(200))
}

// ---------------------------------------------------------------- writes

/// Writes a key every 100 ms through the SDK until stopped. A write whose node is
/// restarted under it fails with an unknown outcome (the SDK never repeats a write on
/// its own); the writer repeats the same put, which is idempotent, for up to 10 s. A
/// write that cannot land within that is a failure: the cluster stopped serving.
struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, Vec<String>, Client)>,
}

/// Writes a `Writer` lands before it honours a stop (unless one failed): a change can be
/// over in less than five writes' time.
const MIN_WRITES: u64 = 5;

impl Writer {
    fn start(endpoints: Vec<String>) -> Writer {
        let client = Client::new_lazy(endpoints, ClientConfig::default()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut ok = 0u64;
            let mut errors = Vec::new();
            while !flag.load(Ordering::SeqCst) || (ok < MIN_WRITES && errors.is_empty()) {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    match client.put("opreal/counter", ok.to_string()).await {
                        Ok(_) => {
                            ok += 1;
                            break;
                        }
                        Err(e) if Instant::now() >= deadline => {
                            errors.push(format!("write {ok}: {e}"));
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (ok, errors, client)
        });
        Writer { stop, task }
    }

    /// Stops writing, asserts no write failed and the last one is readable.
    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let (ok, errors, client) = self.task.await.unwrap();
        assert!(errors.is_empty(), "writes did not land: {errors:?}");
        assert!(ok >= MIN_WRITES, "only {ok} writes went through");
        let got = client.get("opreal/counter").await.unwrap();
        let value = got.kv.map(|kv| kv.value).unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&value), (ok - 1).to_string());
        ok
    }
}

// ---------------------------------------------------------------- membership

fn kind(step: &MembershipStep) -> String {
    match step {
        MembershipStep::AddLearner(m) => format!("AddLearner {}", m.id),
        MembershipStep::Wait(_) => "Wait".into(),
        other => format!("{other:?}"),
    }
}

/// (id → voter) as the leader reports it.
fn shape(members: &[Member]) -> BTreeMap<u64, bool> {
    members.iter().map(|m| (m.id, m.voter)).collect()
}

/// Members whose presence or voting right differs between two views.
fn changed(a: &BTreeMap<u64, bool>, b: &BTreeMap<u64, bool>) -> usize {
    let ids: std::collections::BTreeSet<u64> = a.keys().chain(b.keys()).copied().collect();
    ids.iter().filter(|id| a.get(id) != b.get(id)).count()
}

struct Operator {
    rt: PodRuntime,
    initialized: bool,
    bootstrapped: bool,
    /// The leader's membership after every change the operator made.
    history: Vec<BTreeMap<u64, bool>>,
}

impl Operator {
    fn new(config: &str) -> Self {
        Operator {
            rt: PodRuntime::new(config),
            initialized: false,
            bootstrapped: false,
            history: Vec::new(),
        }
    }

    fn leader_of(nodes: &BTreeMap<u64, NodeStatus>) -> Option<NodeStatus> {
        membership::leader(nodes).cloned()
    }

    fn record(&mut self, members: &[Member]) {
        let now = shape(members);
        if let Some(prev) = self.history.last() {
            assert_eq!(
                changed(prev, &now),
                1,
                "more than one membership change at once: {prev:?} -> {now:?}"
            );
        }
        self.history.push(now);
    }

    /// Runs `membership::plan` and executes its step until it reports `Stable`;
    /// returns the steps taken (consecutive waits folded into one).
    async fn reconcile_membership(&mut self, desired: u32, budget: Duration) -> Vec<String> {
        let deadline = Instant::now() + budget;
        let mut steps: Vec<String> = Vec::new();
        loop {
            assert!(
                Instant::now() < deadline,
                "membership did not settle; steps so far: {steps:?}\nlast log of pod 0:\n{}",
                self.rt.log_tail(0)
            );
            let pods = self.rt.pod_views().await;
            let nodes = self.rt.statuses().await;
            let step = membership::plan(&MembershipInputs {
                cluster: CLUSTER,
                namespace: NAMESPACE,
                desired,
                statefulset_replicas: self.bootstrapped.then(|| self.rt.replicas()),
                initialized: self.initialized,
                pods: &pods,
                nodes: &nodes,
                max_lag: MAX_LAG,
            });
            let k = kind(&step);
            if !(k == "Wait" || k == "AwaitBootstrap") || steps.last() != Some(&k) {
                steps.push(k);
            }
            let lead = Self::leader_of(&nodes);
            let lead_ep = lead.as_ref().map(|l| self.rt.endpoint(l.node_id));
            let result = match (&step, &lead_ep) {
                (MembershipStep::Stable, _) => return steps,
                (MembershipStep::Bootstrap { replicas }, _) => {
                    self.rt.bootstrap(*replicas);
                    self.bootstrapped = true;
                    Ok(None)
                }
                (MembershipStep::MarkInitialized, _) => {
                    self.rt.mark_initialized();
                    self.initialized = true;
                    self.history.push(shape(&lead.as_ref().unwrap().members));
                    Ok(None)
                }
                (MembershipStep::ResizeStatefulSet { replicas }, _) => {
                    if *replicas < self.rt.replicas() {
                        // The property scale-in promises: nothing leaves the group by
                        // having its process stopped.
                        let l = lead.as_ref().unwrap();
                        let fresh = self.rt.admin.status(&self.rt.endpoint(l.node_id)).await;
                        let fresh = fresh.unwrap();
                        for m in &fresh.members {
                            assert!(
                                m.id <= u64::from(*replicas),
                                "node {} still a member when its pod is stopped",
                                m.id
                            );
                        }
                    }
                    self.rt.resize(*replicas);
                    Ok(None)
                }
                (MembershipStep::AddLearner(m), Some(ep)) => {
                    let m = self.rt.loopback_member(m);
                    self.rt.admin.add_learner(ep, &m).await.map(Some)
                }
                (MembershipStep::Promote { id }, Some(ep)) => {
                    self.rt.admin.promote(ep, *id).await.map(Some)
                }
                (MembershipStep::RemoveMember { id, .. }, Some(ep)) => {
                    self.rt.admin.remove_member(ep, *id).await.map(Some)
                }
                (MembershipStep::TransferLeader { to, .. }, Some(ep)) => {
                    self.rt.admin.transfer_leader(ep, *to).await.map(|_| None)
                }
                _ => {
                    pause().await;
                    Ok(None)
                }
            }
            .map(|members| {
                if let Some(members) = members {
                    self.record(&members);
                }
            });
            if let Err(e) = result {
                // The reconciler requeues on an error; so does this loop.
                steps.push(format!("error: {e}"));
                pause().await;
            }
        }
    }

    /// Bootstraps a five-member group from the planner's own bootstrap steps.
    async fn bootstrap(&mut self) {
        let steps = self.reconcile_membership(5, Duration::from_secs(30)).await;
        let expected = ["Bootstrap { replicas: 5 }", "MarkInitialized", "Stable"];
        let got: Vec<&str> = steps
            .iter()
            .map(String::as_str)
            .filter(|s| *s != "AwaitBootstrap" && *s != "Wait")
            .collect();
        assert_eq!(got, expected, "bootstrap steps: {steps:?}");
    }

    async fn leader(&self) -> NodeStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(l) = Self::leader_of(&self.rt.statuses().await) {
                return l;
            }
            assert!(Instant::now() < deadline, "no leader");
            pause().await;
        }
    }
}

fn without_waits(steps: &[String]) -> Vec<&str> {
    steps
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "Wait" && !s.starts_with("error"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_five_to_seven_and_back_one_change_at_a_time() {
    let _serial = SERIAL.lock().await;
    let mut op = Operator::new(BASE_CONFIG);
    op.bootstrap().await;
    let writer = Writer::start(op.rt.client_addrs(0..5));

    let out = op.reconcile_membership(7, Duration::from_secs(25)).await;
    assert_eq!(
        without_waits(&out),
        vec![
            "ResizeStatefulSet { replicas: 6 }",
            "AddLearner 6",
            "Promote { id: 6 }",
            "ResizeStatefulSet { replicas: 7 }",
            "AddLearner 7",
            "Promote { id: 7 }",
            "Stable"
        ],
        "scale-out steps: {out:?}"
    );
    let lead = op.leader().await;
    let voters: Vec<u64> = lead.voters().map(|m| m.id).collect();
    assert_eq!(voters, vec![1, 2, 3, 4, 5, 6, 7]);

    let back = op.reconcile_membership(5, Duration::from_secs(20)).await;
    let back: Vec<&str> = without_waits(&back)
        .into_iter()
        .filter(|s| !s.starts_with("TransferLeader"))
        .collect();
    assert_eq!(
        back,
        vec![
            "RemoveMember { id: 7, reason: ScaleIn }",
            "RemoveMember { id: 6, reason: ScaleIn }",
            "ResizeStatefulSet { replicas: 5 }",
            "Stable"
        ]
    );
    let lead = op.leader().await;
    let voters: Vec<u64> = lead.voters().map(|m| m.id).collect();
    assert_eq!(voters, vec![1, 2, 3, 4, 5]);
    assert_eq!(op.rt.replicas(), 5);
    // Every change was a single step; 5 + 2 adds + 2 promotes + 2 removes.
    assert_eq!(op.history.len(), 7, "{:?}", op.history);
    writer.finish().await;
}

/// A pod's volume is lost and the pod comes back empty (without `--members`). The node
/// starts with a new incarnation, so the leader's RPCs, addressed to the incarnation the
/// group admitted, are refused: it neither acknowledges nor votes, the leader does not
/// refill it (docs/adr/0009-node-incarnation.md), and it reports the empty membership
/// `membership::plan` repairs: remove, re-add as a learner (recording the new
/// incarnation), promote once caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_member_is_removed_re_added_and_caught_up() {
    let _serial = SERIAL.lock().await;
    let mut op = Operator::new(BASE_CONFIG);
    op.bootstrap().await;
    let writer = Writer::start(op.rt.client_addrs(0..5));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let lead = op.leader().await;
    let victim = (1..=5u64).rev().find(|id| *id != lead.node_id).unwrap();
    let admitted = lead.member(victim).unwrap().incarnation;
    assert_ne!(admitted, 0);
    op.rt.lose_volume(u32::try_from(victim - 1).unwrap());

    // Until the pod's node answers, the planner has nothing to repair (a real operator
    // would simply reconcile again); it comes back as a new incarnation.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = op.rt.admin.status(&op.rt.endpoint(victim)).await {
            assert_ne!(s.incarnation, admitted);
            break;
        }
        assert!(Instant::now() < deadline, "node {victim} did not come back");
        pause().await;
    }

    let steps = op.reconcile_membership(5, Duration::from_secs(30)).await;
    let got = without_waits(&steps);
    assert_eq!(
        got,
        vec![
            format!("RemoveMember {{ id: {victim}, reason: VolumeLost }}").as_str(),
            format!("AddLearner {victim}").as_str(),
            format!("Promote {{ id: {victim} }}").as_str(),
            "Stable"
        ],
        "repair steps: {steps:?}\n{}",
        op.rt.log_lines("panicked at")
    );

    // Caught up: the repaired node is a voter in its own view and has applied what the
    // leader has (writes continue, so compare against a leader index read before).
    let before = op.leader().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = op.rt.admin.status(&op.rt.endpoint(victim)).await.unwrap();
        if s.applied_index >= before.commit_index && s.member(victim).is_some_and(|m| m.voter) {
            assert_eq!(s.voters().count(), 5);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {victim} did not catch up: {s:?}"
        );
        pause().await;
    }
    let lead = op.leader().await;
    assert_eq!(
        lead.voters().map(|m| m.id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    writer.finish().await;
}

// ---------------------------------------------------------------- rotation

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Complete,
    RolledBack,
}

struct Rollout {
    events: Vec<String>,
    halted_on: Option<GateFailure>,
}

/// Rolls `new_yaml` out the way the reconciler does: the template points at it, then
/// `rotation::plan` step by step; a halt points the template back at `old_yaml` and
/// rolls back without gates.
async fn roll_out(
    op: &mut Operator,
    old_yaml: &str,
    new_yaml: &str,
    gates: &Gates,
    budget: Duration,
) -> (Outcome, Rollout) {
    let started = Instant::now();
    let deadline = started + budget;
    let new_hash = config_hash(new_yaml);
    let old_hash = config_hash(old_yaml);
    op.rt.set_template(new_yaml);
    let start_term = op.leader().await.term;
    let mut planned = 0u64;
    let mut failing_since: Option<i64> = None;
    let mut rolling_back = false;
    let mut r = Rollout {
        events: Vec::new(),
        halted_on: None,
    };
    loop {
        assert!(Instant::now() < deadline, "rollout stuck: {:?}", r.events);
        let pods = op.rt.pod_views().await;
        let nodes = op.rt.statuses().await;
        let lead = membership::leader(&nodes);
        let now_s = i64::try_from(started.elapsed().as_secs()).unwrap();
        let mut inputs = RotationInputs {
            target_hash: if rolling_back { &old_hash } else { &new_hash },
            image: "aegis-node:test",
            pods: &pods,
            leader: lead,
            start_term,
            planned_transfers: planned,
            gate_failing_since: failing_since,
            now_s,
            gates,
            rolling_back,
        };
        let mut step = rotation::plan(&inputs);
        if let RotationStep::Halt { failure } = &step {
            r.events.push(format!("halt: {failure}"));
            r.halted_on = Some(failure.clone());
            rolling_back = true;
            failing_since = None;
            op.rt.set_template(old_yaml);
            inputs.target_hash = &old_hash;
            inputs.gate_failing_since = None;
            inputs.rolling_back = true;
            step = rotation::plan(&inputs);
        }
        match step {
            RotationStep::Complete => {
                r.events.push("complete".into());
                let outcome = if rolling_back {
                    Outcome::RolledBack
                } else {
                    Outcome::Complete
                };
                return (outcome, r);
            }
            RotationStep::DeletePod { name } => {
                failing_since = None;
                r.events.push(format!("delete {name}"));
                op.rt.delete_pod(&name);
            }
            RotationStep::TransferLeader { from, to } => {
                failing_since = None;
                planned += 1;
                r.events.push(format!("transfer {from}->{to}"));
                let ep = op.rt.endpoint(from);
                if let Err(e) = op.rt.admin.transfer_leader(&ep, to).await {
                    r.events.push(format!("error: {e}"));
                }
                pause().await;
            }
            RotationStep::GateWait { since, .. } => {
                failing_since = Some(since);
                pause().await;
            }
            RotationStep::Wait(_) => pause().await,
            RotationStep::Halt { .. } => unreachable!("a rollback never halts"),
        }
    }
}

/// Waits until every node reports `hash` in its Status.
async fn all_report(op: &Operator, hash: &str) -> BTreeMap<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen: BTreeMap<u64, String> = op
            .rt
            .statuses()
            .await
            .into_iter()
            .map(|(id, s)| (id, s.config_hash))
            .collect();
        if seen.len() == 5 && seen.values().all(|h| h == hash) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "config hashes: {seen:?}, want {hash}"
        );
        pause().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_rotates_one_node_at_a_time_leader_last() {
    let _serial = SERIAL.lock().await;
    let mut op = Operator::new(BASE_CONFIG);
    op.bootstrap().await;
    all_report(&op, &config_hash(BASE_CONFIG)).await;
    let writer = Writer::start(op.rt.client_addrs(0..5));
    let first_leader = op.leader().await.node_id;

    let gates = Gates {
        max_lag: MAX_LAG,
        gate_timeout_s: 20,
        max_unplanned_leader_changes: 2,
    };
    let (outcome, r) = roll_out(
        &mut op,
        BASE_CONFIG,
        TUNED_CONFIG,
        &gates,
        Duration::from_secs(45),
    )
    .await;
    assert_eq!(outcome, Outcome::Complete, "{:?}", r.events);
    assert!(r.halted_on.is_none());

    let deletes: Vec<&str> = r
        .events
        .iter()
        .filter_map(|e| e.strip_prefix("delete "))
        .collect();
    let leader_pod = pod_name(u32::try_from(first_leader - 1).unwrap());
    let mut followers: Vec<String> = (0..5u32)
        .rev()
        .map(pod_name)
        .filter(|p| *p != leader_pod)
        .collect();
    followers.push(leader_pod.clone());
    assert_eq!(
        deletes, followers,
        "followers highest ordinal first, the leader last: {:?}",
        r.events
    );
    let n = r.events.len();
    assert!(
        r.events[n - 3].starts_with(&format!("transfer {first_leader}->")),
        "leadership moved away right before the leader's restart: {:?}",
        r.events
    );
    assert_eq!(r.events[n - 2], format!("delete {leader_pod}"));

    all_report(&op, &config_hash(TUNED_CONFIG)).await;
    assert_eq!(op.leader().await.voters().count(), 5);
    writer.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_config_halts_the_rollout_and_rolls_back() {
    let _serial = SERIAL.lock().await;
    let mut op = Operator::new(BASE_CONFIG);
    op.bootstrap().await;
    let writer = Writer::start(op.rt.client_addrs(0..5));
    let first_leader = op.leader().await.node_id;
    let bad = config_hash(CRASHING_CONFIG);
    op.rt.crash_on(&bad);

    let gates = Gates {
        max_lag: MAX_LAG,
        gate_timeout_s: 4,
        max_unplanned_leader_changes: 2,
    };
    let (outcome, r) = roll_out(
        &mut op,
        BASE_CONFIG,
        CRASHING_CONFIG,
        &gates,
        Duration::from_secs(40),
    )
    .await;
    assert_eq!(outcome, Outcome::RolledBack, "{:?}", r.events);

    // Exactly one pod got the bad config: the first follower; the gate then held the
    // rollout until it halted, and the rollback restarted that same pod.
    let first = (0..5u32)
        .rev()
        .map(pod_name)
        .find(|p| *p != pod_name(u32::try_from(first_leader - 1).unwrap()))
        .unwrap();
    assert_eq!(
        r.halted_on,
        Some(GateFailure::PodsNotReady(vec![first.clone()])),
        "{:?}",
        r.events
    );
    let deletes: Vec<&String> = r
        .events
        .iter()
        .filter(|e| e.starts_with("delete"))
        .collect();
    assert_eq!(
        deletes,
        vec![&format!("delete {first}"), &format!("delete {first}")],
        "{:?}",
        r.events
    );
    assert!(
        r.events[1].starts_with("halt: pods not ready"),
        "{:?}",
        r.events
    );
    assert_eq!(op.rt.template_hash(), config_hash(BASE_CONFIG));

    all_report(&op, &config_hash(BASE_CONFIG)).await;
    // The rollback does not wait on readiness; the restarted pod becomes Ready on its own.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pods = op.rt.pod_views().await;
        if pods.values().all(|p| p.ready) {
            break;
        }
        assert!(Instant::now() < deadline, "{pods:?}");
        pause().await;
    }
    assert_eq!(op.leader().await.voters().count(), 5);
    writer.finish().await;
}
