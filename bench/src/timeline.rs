//! Where one-client puts spend their time, from the marks an AEGIS cluster
//! built with the `timeline` feature writes (`aegis-node`'s `timeline`
//! module, `scripts/put-timeline.sh`).
//!
//! Each file `<pid>.tl` holds one node's marks, `ns event n` per line. The
//! leader is the node that saw `put_in`; the followers that received the
//! most appends are the quorum set's members, the rest spare. With one put
//! in flight, every mark between one `put_in` and the next belongs to that
//! put, whichever node made it. Task-poll marks (`task:<where spawned>`,
//! from `AEGIS_TIMELINE_TASKS`) are not steps: their time is summed per
//! kind of node instead ([`TaskTime`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the file name is not <pid>.tl")]
    FileName { path: PathBuf },
    #[error("{path}:{line}: expected `ns event n`")]
    Malformed { path: PathBuf, line: usize },
    #[error(
        "no put_in marks in {0}: build aegis-node with --features timeline, set AEGIS_TIMELINE, \
         and run puts through the leader"
    )]
    NoPuts(PathBuf),
    #[error("only {found} complete puts after skipping {skipped}")]
    TooFew { found: usize, skipped: usize },
}

/// When each (node, event) first happened in a put, ns after its `put_in`.
type FirstSeen = BTreeMap<(String, String), u64>;

/// Task polls that started in a put, per (pid, task): total ns and polls.
type TaskPolls = BTreeMap<(u32, String), (u64, u64)>;

/// The prefix of a task-poll mark (`aegis-node`'s `AEGIS_TIMELINE_TASKS`).
const TASK: &str = "task:";

/// A put with a `put_out` and a next `put_in`: when it started (ns), its
/// handler time and the gap to the next put (ns), and its steps.
struct Complete {
    start: u64,
    out: u64,
    gap: u64,
    seen: FirstSeen,
    tasks: TaskPolls,
}

/// One node's mark.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub ns: u64,
    pub pid: u32,
    pub event: String,
    pub n: u64,
}

/// A step of a put: who, what, and when after the leader's `put_in`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    pub node: String,
    pub event: String,
    pub median_us: f64,
    /// Puts in which the step happened.
    pub puts: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Timeline {
    pub puts: usize,
    /// The leader's handler time (`put_in` to `put_out`), µs.
    pub handler_p50_us: f64,
    pub handler_p90_us: f64,
    pub handler_mean_us: f64,
    /// From the leader's `put_out` to the next `put_in`: the response's and
    /// the next request's trip, µs.
    pub outside_mean_us: f64,
    /// Of that trip, with the client-socket marks (`c_write`, `c_read`): from
    /// `put_out` until the answer's write on the socket returned, and from
    /// the next request's read to its `put_in`, µs; the rest is the client
    /// and the loopback. `None` without the marks.
    pub answer_written_p50_us: Option<f64>,
    pub request_read_p50_us: Option<f64>,
    /// Steps seen in at least half of the puts, in order of their median.
    pub steps: Vec<Step>,
    /// Steps both quorum members took, per put the earlier and the later of
    /// the two: the commit waits for the later one, and the per-node
    /// medians above hide which member was late.
    pub members: Vec<PairStep>,
    /// Handler time of puts during which a spare follower did anything, and
    /// of the others: (puts, mean µs).
    pub with_spare: (usize, f64),
    pub without_spare: (usize, f64),
    /// Per follower, how long after the leader it applied each entry both
    /// applied: what a watcher or a linearizable read served there waits.
    pub apply_lag: Vec<Lag>,
    /// With task-poll marks: per kind of node, which runtime tasks its
    /// worker polled per put and for how long. Empty without them.
    pub tasks: Vec<TaskTime>,
}

/// One kind of node's polls of the tasks spawned at one place, per put: the
/// mean over the puts and over the nodes of that kind.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskTime {
    /// `leader`, `member` or `spare`.
    pub node: String,
    /// Where the task was spawned (`crate/file:line`).
    pub task: String,
    pub us_per_put: f64,
    pub polls_per_put: f64,
}

/// A step both quorum members took: medians of the earlier and the later
/// of the two, µs after `put_in`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairStep {
    pub event: String,
    pub earlier_us: f64,
    pub later_us: f64,
    /// Puts in which both members took it.
    pub puts: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Lag {
    pub node: String,
    pub entries: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

/// Reads every `<pid>.tl` in `dir`.
pub fn read_dir(dir: &Path) -> Result<Vec<Mark>, TimelineError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TimelineError::Read { path, source }
    };
    let mut marks = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let path = entry.map_err(read_err(dir))?.path();
        if path.extension().is_none_or(|e| e != "tl") {
            continue;
        }
        let pid = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| TimelineError::FileName { path: path.clone() })?;
        let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
        marks.extend(parse(&text, pid).map_err(|line| TimelineError::Malformed {
            path: path.clone(),
            line,
        })?);
    }
    Ok(marks)
}

/// Parses one file's marks; on error, the 1-based line that is not one.
pub fn parse(text: &str, pid: u32) -> Result<Vec<Mark>, usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let mut f = l.split_whitespace();
            let (Some(ns), Some(event), Some(n), None) = (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(i + 1);
            };
            Ok(Mark {
                ns: ns.parse().map_err(|_| i + 1)?,
                pid,
                event: event.to_string(),
                n: n.parse().map_err(|_| i + 1)?,
            })
        })
        .collect()
}

/// Lays the marks out put by put, skipping the first `skip` puts (warm-up)
/// and the last one (cut off by the end of the run).
pub fn analyse(mut marks: Vec<Mark>, skip: usize, dir: &Path) -> Result<Timeline, TimelineError> {
    let count = |event: &str| {
        let mut by_pid: BTreeMap<u32, usize> = BTreeMap::new();
        for m in marks.iter().filter(|m| m.event == event) {
            *by_pid.entry(m.pid).or_default() += 1;
        }
        by_pid
    };
    let leader = count("put_in")
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .map(|(pid, _)| pid)
        .ok_or_else(|| TimelineError::NoPuts(dir.to_path_buf()))?;
    let mut followers: Vec<(u32, usize)> = count("f_recv")
        .into_iter()
        .filter(|&(pid, _)| pid != leader)
        .collect();
    followers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let members = followers.len().div_ceil(2);
    let role: BTreeMap<u32, String> = followers
        .iter()
        .enumerate()
        .map(|(i, &(pid, _))| {
            let kind = if i < members { "member" } else { "spare" };
            (pid, format!("{kind} {pid}"))
        })
        .chain([(leader, "leader".to_string())])
        .collect();
    marks.sort_by_key(|m| m.ns);

    // Per put: its start, the first time each (node, event) happened in it,
    // and the task polls that started in it.
    let mut puts: Vec<(u64, FirstSeen, TaskPolls)> = Vec::new();
    let mut polling: BTreeMap<(u32, &str), u64> = BTreeMap::new();
    for m in &marks {
        if m.pid == leader && m.event == "put_in" {
            puts.push((m.ns, BTreeMap::new(), BTreeMap::new()));
            continue;
        }
        if let Some(task) = m.event.strip_prefix(TASK) {
            if m.n == 1 {
                polling.insert((m.pid, task), m.ns);
            } else if let (Some(from), Some((start, _, tasks))) =
                (polling.remove(&(m.pid, task)), puts.last_mut())
            {
                if from >= *start {
                    let t = tasks.entry((m.pid, task.to_string())).or_default();
                    t.0 += m.ns - from;
                    t.1 += 1;
                }
            }
            continue;
        }
        let (Some((start, seen, _)), Some(node)) = (puts.last_mut(), role.get(&m.pid)) else {
            continue;
        };
        let event = match m.event.as_str() {
            "send" | "reply" if m.pid == leader => format!("{} {}", m.event, m.n),
            other => other.to_string(),
        };
        seen.entry((node.clone(), event))
            .or_insert(m.ns.saturating_sub(*start));
    }
    let starts: Vec<u64> = puts.iter().map(|(s, _, _)| *s).collect();
    let complete: Vec<_> = puts
        .into_iter()
        .enumerate()
        .skip(skip)
        .filter(|(i, _)| i + 1 < starts.len())
        .filter_map(|(i, (start, seen, tasks))| {
            let out = *seen.get(&("leader".to_string(), "put_out".to_string()))?;
            Some(Complete {
                start,
                out,
                gap: starts[i + 1] - start - out,
                seen,
                tasks,
            })
        })
        .collect();
    if complete.len() < 2 {
        return Err(TimelineError::TooFew {
            found: complete.len(),
            skipped: skip,
        });
    }

    let mut offsets: BTreeMap<&(String, String), Vec<u64>> = BTreeMap::new();
    for put in &complete {
        for (key, at) in &put.seen {
            offsets.entry(key).or_default().push(*at);
        }
    }
    let mut steps: Vec<Step> = offsets
        .into_iter()
        .filter(|(_, v)| in_half(v.len(), complete.len()))
        .map(|((node, event), mut v)| Step {
            node: node.clone(),
            event: event.clone(),
            median_us: median_us(&mut v),
            puts: v.len(),
        })
        .collect();
    steps.sort_by(|a, b| a.median_us.total_cmp(&b.median_us));
    let members = member_pairs(&complete);

    let mut handler: Vec<u64> = complete.iter().map(|p| p.out).collect();
    let outside: Vec<u64> = complete.iter().map(|p| p.gap).collect();
    let socket = |event: &str| -> Vec<u64> {
        marks
            .iter()
            .filter(|m| m.pid == leader && m.event == event)
            .map(|m| m.ns)
            .collect()
    };
    let (writes, reads) = (socket("c_write"), socket("c_read"));
    // Between one put's answer and the next put: the first write on the
    // client's socket after `put_out`, the last read before the next `put_in`.
    let (mut answer_written, mut request_read) = (Vec::new(), Vec::new());
    for p in &complete {
        let (answered, next) = (p.start + p.out, p.start + p.out + p.gap);
        let first_write = writes.partition_point(|&ns| ns < answered);
        if let Some(&w) = writes.get(first_write).filter(|&&w| w < next) {
            answer_written.push(w - answered);
        }
        let after_last_read = reads.partition_point(|&ns| ns < next);
        if let Some(&r) = after_last_read
            .checked_sub(1)
            .and_then(|i| reads.get(i))
            .filter(|&&r| r >= answered)
        {
            request_read.push(next - r);
        }
    }
    let enough = |mut v: Vec<u64>| in_half(v.len(), complete.len()).then(|| median_us(&mut v));
    let (with, without): (Vec<_>, Vec<_>) = complete
        .iter()
        .partition(|p| p.seen.keys().any(|(node, _)| node.starts_with("spare")));
    let applied = |pid: u32| -> BTreeMap<u64, u64> {
        let mut at = BTreeMap::new();
        for m in marks.iter().filter(|m| m.pid == pid && m.event == "apply") {
            at.entry(m.n).or_insert(m.ns);
        }
        at
    };
    let leader_applied = applied(leader);
    let apply_lag = followers
        .iter()
        .filter_map(|&(pid, _)| {
            let mut lags: Vec<u64> = applied(pid)
                .into_iter()
                .filter_map(|(i, at)| Some(at.saturating_sub(*leader_applied.get(&i)?)))
                .collect();
            lags.sort_unstable();
            Some(Lag {
                node: role.get(&pid)?.clone(),
                entries: lags.len(),
                p50_us: quantile_us(&lags, 0.5),
                p99_us: quantile_us(&lags, 0.99),
                max_us: quantile_us(&lags, 1.0),
            })
        })
        .filter(|l| l.entries > 0)
        .collect();
    let summary = |v: Vec<&Complete>| {
        let us: Vec<u64> = v.iter().map(|p| p.out).collect();
        (us.len(), mean_us(&us))
    };
    Ok(Timeline {
        puts: complete.len(),
        handler_p50_us: median_us(&mut handler),
        handler_p90_us: quantile_us(&handler, 0.9),
        handler_mean_us: mean_us(&handler),
        outside_mean_us: mean_us(&outside),
        answer_written_p50_us: enough(answer_written),
        request_read_p50_us: enough(request_read),
        steps,
        members,
        with_spare: summary(with),
        without_spare: summary(without),
        apply_lag,
        tasks: task_times(&complete, &role),
    })
}

/// Each kind of node's task polls per put (see [`TaskTime`]), the busiest
/// first within a kind.
fn task_times(complete: &[Complete], role: &BTreeMap<u32, String>) -> Vec<TaskTime> {
    let kind = |pid: &u32| {
        role.get(pid)
            .and_then(|r| r.split(' ').next())
            .unwrap_or("other")
            .to_string()
    };
    let mut nodes: BTreeMap<String, usize> = BTreeMap::new();
    for pid in role.keys() {
        *nodes.entry(kind(pid)).or_default() += 1;
    }
    let mut sum: BTreeMap<(String, &str), (u64, u64)> = BTreeMap::new();
    for put in complete {
        for ((pid, task), (ns, polls)) in &put.tasks {
            let t = sum.entry((kind(pid), task.as_str())).or_default();
            t.0 += ns;
            t.1 += polls;
        }
    }
    let mut times: Vec<TaskTime> = sum
        .into_iter()
        .map(|((node, task), (ns, polls))| {
            let per = (complete.len() * nodes.get(&node).copied().unwrap_or(1).max(1)) as f64;
            TaskTime {
                task: task.to_string(),
                us_per_put: ns as f64 / 1e3 / per,
                polls_per_put: polls as f64 / per,
                node,
            }
        })
        .collect();
    let order = |n: &str| ["leader", "member", "spare"].iter().position(|k| *k == n);
    times.sort_by(|a, b| {
        order(&a.node)
            .cmp(&order(&b.node))
            .then(b.us_per_put.total_cmp(&a.us_per_put))
    });
    times
}

/// For each event both members marked in at least half of the puts, the
/// medians of the earlier and the later of the two.
fn member_pairs(complete: &[Complete]) -> Vec<PairStep> {
    let mut both: BTreeMap<&str, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    for put in complete {
        let mut at: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for ((node, event), &ns) in &put.seen {
            if node.starts_with("member") {
                at.entry(event.as_str()).or_default().push(ns);
            }
        }
        for (event, times) in at {
            if let [a, b] = times[..] {
                let pair = both.entry(event).or_default();
                pair.0.push(a.min(b));
                pair.1.push(a.max(b));
            }
        }
    }
    let mut pairs: Vec<PairStep> = both
        .into_iter()
        .filter(|(_, (earlier, _))| in_half(earlier.len(), complete.len()))
        .map(|(event, (mut earlier, mut later))| PairStep {
            event: event.to_string(),
            puts: earlier.len(),
            earlier_us: median_us(&mut earlier),
            later_us: median_us(&mut later),
        })
        .collect();
    pairs.sort_by(|a, b| a.later_us.total_cmp(&b.later_us));
    pairs
}

/// Whether something seen in `seen` of `puts` puts is reported: in at least
/// half of them, so a step that only some puts take is not shown as typical.
fn in_half(seen: usize, puts: usize) -> bool {
    seen * 2 >= puts
}

fn median_us(v: &mut [u64]) -> f64 {
    v.sort_unstable();
    quantile_us(v, 0.5)
}

/// `q` of sorted nanoseconds, in µs.
fn quantile_us(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).map_or(0.0, |&ns| ns as f64 / 1e3)
}

fn mean_us(v: &[u64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().map(|&ns| ns as f64).sum::<f64>() / v.len() as f64 / 1e3
}

impl Timeline {
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} puts; leader's handler p50 {:.0} µs, p90 {:.0} µs, mean {:.0} µs; \
             response and next request, mean {:.0} µs\n",
            self.puts,
            self.handler_p50_us,
            self.handler_p90_us,
            self.handler_mean_us,
            self.outside_mean_us,
        );
        if let (Some(w), Some(r)) = (self.answer_written_p50_us, self.request_read_p50_us) {
            s.push_str(&format!(
                "of that, medians: answer written {w:.0} µs after put_out, next request read \
                 {r:.0} µs before its put_in; the rest is the client and the loopback\n"
            ));
        }
        s.push_str(&format!(
            "\n  {:>9}  {:<12} event (median after put_in)\n",
            "µs", "node"
        ));
        for step in &self.steps {
            s.push_str(&format!(
                "  {:>9.1}  {:<12} {} ({} puts)\n",
                step.median_us, step.node, step.event, step.puts
            ));
        }
        if !self.members.is_empty() {
            s.push_str(&format!(
                "\n  {:>9}  {:>9}  the two members, per put the earlier and the later (medians)\n",
                "earlier", "later"
            ));
        }
        for pair in &self.members {
            s.push_str(&format!(
                "  {:>9.1}  {:>9.1}  {} ({} puts)\n",
                pair.earlier_us, pair.later_us, pair.event, pair.puts
            ));
        }
        s.push_str(&format!(
            "\nhandler mean with a spare follower busy: {:.0} µs ({} puts); without: {:.0} µs ({} puts)\n",
            self.with_spare.1, self.with_spare.0, self.without_spare.1, self.without_spare.0
        ));
        if !self.apply_lag.is_empty() {
            s.push_str("\napplied after the leader (µs):\n");
        }
        for l in &self.apply_lag {
            s.push_str(&format!(
                "  {:<12} p50 {:>8.0}  p99 {:>8.0}  max {:>8.0}  ({} entries)\n",
                l.node, l.p50_us, l.p99_us, l.max_us, l.entries
            ));
        }
        if !self.tasks.is_empty() {
            s.push_str(
                "\nruntime tasks polled per put, by where they were spawned (mean per node of \
                 each kind):\n",
            );
        }
        let mut kind = "";
        for t in &self.tasks {
            if t.node != kind {
                kind = &t.node;
                let (us, polls) = self
                    .tasks
                    .iter()
                    .filter(|o| o.node == t.node)
                    .fold((0.0, 0.0), |(u, p), o| {
                        (u + o.us_per_put, p + o.polls_per_put)
                    });
                s.push_str(&format!(
                    "  {:<8} {:>7.1} µs {:>6.2} polls  all tasks\n",
                    t.node, us, polls
                ));
            }
            s.push_str(&format!(
                "  {:<8} {:>7.1} µs {:>6.2} polls  {}\n",
                "", t.us_per_put, t.polls_per_put, t.task
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER: u32 = 10;

    fn mark(ns: u64, pid: u32, event: &str, n: u64) -> Mark {
        Mark {
            ns,
            pid,
            event: event.into(),
            n,
        }
    }

    /// A put at `t` µs: the leader sends to followers 2 and 3 (pids 20, 30),
    /// which reply; `spare` adds a receipt by pid 40 when set.
    fn put(t: u64, handler: u64, spare: bool) -> Vec<Mark> {
        let us = |x: u64| (t + x) * 1000;
        let mut v = vec![
            mark(us(0), LEADER, "put_in", 0),
            mark(us(50), LEADER, "send", 2),
            mark(us(60), LEADER, "send", 3),
            mark(us(200), 20, "f_recv", 1),
            mark(us(210), 30, "f_recv", 1),
            mark(us(500), 20, "f_reply", 0),
            mark(us(600), LEADER, "reply", 2),
            mark(us(650), LEADER, "apply", t),
            mark(us(680), 20, "apply", t),
            mark(us(handler), LEADER, "put_out", 7),
        ];
        if spare {
            v.push(mark(us(300), 40, "f_recv", 3));
        }
        v
    }

    #[test]
    fn steps_are_medians_after_put_in_with_roles_from_who_received_most() {
        let mut marks = Vec::new();
        // Put starts 0, 1000, 2000, 3000 µs; the last one only bounds the third.
        for (i, (handler, spare)) in [(700, false), (900, true), (800, false), (750, false)]
            .into_iter()
            .enumerate()
        {
            marks.extend(put(i as u64 * 1000, handler, spare));
        }
        let t = analyse(marks, 0, Path::new("x")).unwrap();
        assert_eq!(t.puts, 3);
        assert_eq!(t.handler_p50_us, 800.0);
        assert_eq!(t.handler_mean_us, 800.0);
        // 1000 - 700, 1000 - 900, 1000 - 800.
        assert_eq!(t.outside_mean_us, 200.0);
        let at = |node: &str, event: &str| {
            t.steps
                .iter()
                .find(|s| s.node == node && s.event == event)
                .map(|s| s.median_us)
        };
        assert_eq!(at("leader", "send 2"), Some(50.0));
        assert_eq!(at("member 20", "f_recv"), Some(200.0));
        assert_eq!(at("member 30", "f_recv"), Some(210.0));
        assert_eq!(at("member 20", "f_reply"), Some(500.0));
        // Seen in one put of three: not a step.
        assert_eq!(at("spare 40", "f_recv"), None);
        assert_eq!(t.with_spare, (1, 900.0));
        assert_eq!(t.without_spare, (2, 750.0));
        // Member 20 applied every entry 30 µs after the leader; the others
        // applied none.
        assert_eq!(
            t.apply_lag,
            vec![Lag {
                node: "member 20".into(),
                entries: 4,
                p50_us: 30.0,
                p99_us: 30.0,
                max_us: 30.0,
            }]
        );
        let order: Vec<f64> = t.steps.iter().map(|s| s.median_us).collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    }

    #[test]
    fn the_gap_between_puts_splits_at_the_client_socket_marks() {
        let mut marks = Vec::new();
        for (i, handler) in [700, 900, 800, 750].into_iter().enumerate() {
            let t = i as u64 * 1000;
            marks.extend(put(t, handler, false));
            let us = |x: u64| (t + x) * 1000;
            marks.extend([
                // A write before the answer (a window update) and a read
                // early in the gap must not be taken for the answer or the
                // next request.
                mark(us(100), LEADER, "c_write", 13),
                mark(us(handler + 40), LEADER, "c_write", 45),
                mark(us(handler + 60), LEADER, "c_read", 9),
                mark(us(975), LEADER, "c_read", 60),
            ]);
        }
        let t = analyse(marks.clone(), 0, Path::new("x")).unwrap();
        assert_eq!(t.answer_written_p50_us, Some(40.0));
        assert_eq!(t.request_read_p50_us, Some(25.0));
        assert!(t.to_text().contains(
            "answer written 40 µs after put_out, next request read 25 µs before its put_in"
        ));

        let without: Vec<Mark> = marks
            .into_iter()
            .filter(|m| !m.event.starts_with("c_"))
            .collect();
        let t = analyse(without, 0, Path::new("x")).unwrap();
        assert_eq!(
            (t.answer_written_p50_us, t.request_read_p50_us),
            (None, None)
        );
        assert!(!t.to_text().contains("answer written"));
    }

    #[test]
    fn the_late_member_is_taken_put_by_put() {
        let mut marks = Vec::new();
        // Four followers, as in a five-node cluster: 40 and 50 are spares,
        // having received less.
        marks.extend([
            mark(300_000, 40, "f_recv", 3),
            mark(310_000, 50, "f_recv", 3),
        ]);
        for i in 0..5u64 {
            let t = i * 1000;
            marks.extend(put(t, 700, false));
            let us = |x: u64| (t + x) * 1000;
            // The members take turns being late: each one's own median is
            // 180 µs, but in every put one read at 100 and the other at 180
            // (at 300 in the fourth).
            let late = if i == 3 { 300 } else { 180 };
            let (first, second) = if i % 2 == 0 { (20, 30) } else { (30, 20) };
            marks.extend([
                mark(us(100), first, "p_read", 315),
                mark(us(late), second, "p_read", 315),
            ]);
        }
        let t = analyse(marks, 0, Path::new("x")).unwrap();
        assert_eq!(t.puts, 4);
        assert_eq!(
            t.members,
            vec![
                PairStep {
                    event: "p_read".into(),
                    earlier_us: 100.0,
                    later_us: 180.0,
                    puts: 4,
                },
                // Both members received every append.
                PairStep {
                    event: "f_recv".into(),
                    earlier_us: 200.0,
                    later_us: 210.0,
                    puts: 4,
                },
            ]
        );
        assert!(t
            .to_text()
            .contains("      100.0      180.0  p_read (4 puts)"));
    }

    #[test]
    fn task_polls_are_summed_per_kind_of_node_and_kept_out_of_the_steps() {
        let mut marks = vec![
            // A poll running when the first put arrives belongs to no put.
            mark(0, LEADER, "task:openraft/core.rs:9", 1),
            mark(6_000, LEADER, "task:openraft/core.rs:9", 0),
        ];
        for t in [0, 1000, 2000] {
            // Each put starts 5 µs into its slot, after the poll above ended.
            let us = |x: u64| (t + 5 + x) * 1000;
            marks.extend(put(t + 5, 700, true));
            marks.extend([
                mark(us(10), LEADER, "task:openraft/core.rs:9", 1),
                mark(us(30), LEADER, "task:openraft/core.rs:9", 0),
                mark(us(600), LEADER, "task:openraft/core.rs:9", 1),
                mark(us(610), LEADER, "task:openraft/core.rs:9", 0),
                mark(us(620), LEADER, "task:hyper-util/rt/tokio.rs:1", 1),
                mark(us(624), LEADER, "task:hyper-util/rt/tokio.rs:1", 0),
                mark(us(200), 20, "task:node/x.rs:5", 1),
                mark(us(240), 20, "task:node/x.rs:5", 0),
                mark(us(210), 30, "task:node/x.rs:5", 1),
                mark(us(230), 30, "task:node/x.rs:5", 0),
                // An end without its start is left out.
                mark(us(300), 30, "task:node/y.rs:6", 0),
            ]);
        }
        let t = analyse(marks, 0, Path::new("x")).unwrap();
        assert_eq!(t.puts, 2);
        assert!(t.steps.iter().all(|s| !s.event.starts_with(TASK)));
        let got: Vec<(&str, &str, f64, f64)> = t
            .tasks
            .iter()
            .map(|t| {
                (
                    t.node.as_str(),
                    t.task.as_str(),
                    t.us_per_put,
                    t.polls_per_put,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("leader", "openraft/core.rs:9", 30.0, 2.0),
                ("leader", "hyper-util/rt/tokio.rs:1", 4.0, 1.0),
                // Two members: (40 + 20) / 2 per member.
                ("member", "node/x.rs:5", 30.0, 1.0),
            ]
        );
        let text = t.to_text();
        assert!(
            text.contains("leader      34.0 µs   3.00 polls  all tasks"),
            "{text}"
        );
        assert!(
            text.contains("member      30.0 µs   1.00 polls  all tasks"),
            "{text}"
        );
    }

    #[test]
    fn warm_up_puts_are_skipped_and_too_few_puts_is_an_error() {
        let mut marks = put(0, 700, false);
        marks.extend(put(1000, 900, false));
        marks.extend(put(2000, 800, false));
        marks.extend(put(3000, 800, false));
        let t = analyse(marks.clone(), 1, Path::new("x")).unwrap();
        assert_eq!((t.puts, t.handler_mean_us), (2, 850.0));
        assert!(matches!(
            analyse(marks, 2, Path::new("x")),
            Err(TimelineError::TooFew {
                found: 1,
                skipped: 2
            })
        ));
    }

    #[test]
    fn bad_files_are_named_errors() {
        assert_eq!(parse("1 put_in 0\n\n2 put_out 5\n", 7).unwrap().len(), 2);
        assert_eq!(parse("1 put_in 0\n2 put_out\n", 7), Err(2));
        assert_eq!(parse("x put_in 0\n", 7), Err(1));
        assert_eq!(parse("1 put_in 0 extra\n", 7), Err(1));

        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            analyse(read_dir(dir.path()).unwrap(), 0, dir.path()),
            Err(TimelineError::NoPuts(_))
        ));
        std::fs::write(dir.path().join("12.tl"), "5 put_in 0\n6 put_out\n").unwrap();
        let err = read_dir(dir.path()).unwrap_err().to_string();
        assert!(err.ends_with("12.tl:2: expected `ns event n`"), "{err}");
        std::fs::remove_file(dir.path().join("12.tl")).unwrap();
        std::fs::write(dir.path().join("node.tl"), "5 put_in 0\n").unwrap();
        assert!(matches!(
            read_dir(dir.path()),
            Err(TimelineError::FileName { .. })
        ));
    }
}
