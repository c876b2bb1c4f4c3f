//! Side-by-side tables from two result directories (one per system), each holding one JSON
//! file per row as written by `--out`. Rows pair up by file name and sort by it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::failover::FailoverReport;
use crate::report::Report;

/// Resident memory of every node, read from /proc.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemReport {
    pub target: String,
    pub label: String,
    /// (node number, RSS in KiB)
    pub nodes: Vec<(usize, u64)>,
    pub mean_mib: f64,
    pub max_mib: f64,
}

impl MemReport {
    pub fn new(target: &str, label: &str, nodes: Vec<(usize, u64)>) -> MemReport {
        let mib: Vec<f64> = nodes.iter().map(|(_, k)| *k as f64 / 1024.0).collect();
        let mean = if mib.is_empty() {
            0.0
        } else {
            mib.iter().sum::<f64>() / mib.len() as f64
        };
        MemReport {
            target: target.into(),
            label: label.into(),
            nodes,
            mean_mib: mean,
            max_mib: mib.iter().copied().fold(0.0, f64::max),
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("{} memory ({}):\n", self.target, self.label);
        for (n, k) in &self.nodes {
            let _ = writeln!(s, "  node {n}: {:.1} MiB", *k as f64 / 1024.0);
        }
        let _ = writeln!(
            s,
            "  mean {:.1} MiB, max {:.1} MiB",
            self.mean_mib, self.max_mib
        );
        s
    }
}

/// One result file, whichever kind it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Row {
    Load(Box<Report>),
    Failover(FailoverReport),
    Mem(MemReport),
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a result file: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: not a steal record (expected \"steal: <percent>% of a vCPU\"): {text:?}")]
    Steal { path: String, text: String },
}

/// The paths in `dir` (unsorted).
pub(crate) fn entries(dir: &Path) -> Result<Vec<PathBuf>, CompareError> {
    let io = |source| CompareError::Io {
        path: dir.display().to_string(),
        source,
    };
    fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()).map_err(io))
        .collect()
}

pub fn load_dir(dir: &Path) -> Result<BTreeMap<String, Row>, CompareError> {
    let mut out = BTreeMap::new();
    for path in entries(dir)? {
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let p = path.display().to_string();
        let text = fs::read_to_string(&path).map_err(|source| CompareError::Io {
            path: p.clone(),
            source,
        })?;
        let row = serde_json::from_str(&text)
            .map_err(|source| CompareError::Parse { path: p, source })?;
        out.insert(name, row);
    }
    Ok(out)
}

fn ms(secs: f64) -> String {
    format!("{:.2}", secs * 1e3)
}

fn ratio(num: f64, den: f64) -> String {
    if den > 0.0 && num.is_finite() {
        format!("{:.2}×", num / den)
    } else {
        "-".into()
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0}")).unwrap_or_else(|| "-".into())
}

/// Markdown tables: load rows, failover, memory. `base` is the reference system (etcd).
pub fn markdown(
    base: &BTreeMap<String, Row>,
    cand: &BTreeMap<String, Row>,
    base_name: &str,
    cand_name: &str,
) -> String {
    let mut load = String::new();
    let mut fail = String::new();
    let mut mem = String::new();
    for (name, b) in base {
        let Some(c) = cand.get(name) else { continue };
        match (b, c) {
            (Row::Load(b), Row::Load(c)) => {
                let _ = writeln!(
                    load,
                    "| {} | {} | {} | {:.0} | {:.0} | **{}** | {} / {} | {} / {} | {} | {} / {} |",
                    name,
                    b.clients,
                    b.conns,
                    b.requests_per_sec,
                    c.requests_per_sec,
                    ratio(c.requests_per_sec, b.requests_per_sec),
                    ms(b.p50_secs),
                    ms(b.p99_secs),
                    ms(c.p50_secs),
                    ms(c.p99_secs),
                    ratio(c.p99_secs, b.p99_secs),
                    b.errors,
                    c.errors,
                );
            }
            (Row::Failover(b), Row::Failover(c)) => {
                let _ = writeln!(
                    fail,
                    "| {} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} |",
                    name,
                    b.rounds.len(),
                    c.rounds.len(),
                    opt_ms(b.leader_median_ms),
                    opt_ms(b.leader_max_ms),
                    opt_ms(c.leader_median_ms),
                    opt_ms(c.leader_max_ms),
                    opt_ms(b.write_median_ms),
                    opt_ms(b.write_max_ms),
                    opt_ms(c.write_median_ms),
                    opt_ms(c.write_max_ms),
                );
            }
            (Row::Mem(b), Row::Mem(c)) => {
                let _ = writeln!(
                    mem,
                    "| {} | {:.1} / {:.1} | {:.1} / {:.1} |",
                    name, b.mean_mib, b.max_mib, c.mean_mib, c.max_mib
                );
            }
            _ => {}
        }
    }
    let mut s = String::new();
    if !load.is_empty() {
        let _ = writeln!(
            s,
            "| row | clients | conns | {base_name} req/s | {cand_name} req/s | ratio | {base_name} p50 / p99 ms | {cand_name} p50 / p99 ms | p99 ratio | errors {base_name} / {cand_name} |"
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        s.push_str(&load);
        s.push('\n');
    }
    if !fail.is_empty() {
        let _ = writeln!(
            s,
            "| failover | rounds {base_name} / {cand_name} | {base_name} new leader median / max ms | {cand_name} new leader median / max ms | {base_name} first write median / max ms | {cand_name} first write median / max ms |"
        );
        s.push_str("|---|---:|---:|---:|---:|---:|\n");
        s.push_str(&fail);
        s.push('\n');
    }
    if !mem.is_empty() {
        let _ = writeln!(
            s,
            "| memory (RSS per node) | {base_name} mean / max MiB | {cand_name} mean / max MiB |"
        );
        s.push_str("|---|---:|---:|\n");
        s.push_str(&mem);
    }
    s
}

/// Why a comparison cannot be taken at its word, one line per gap: a row that one side lacks
/// (or holds as another kind of result), a load row with errors or without an answered
/// request, a failover round that saw no new leader or no write, a memory row without a node.
/// `required` names rows that must be there on both sides. Empty when the comparison is whole.
pub fn gaps(
    base: &BTreeMap<String, Row>,
    cand: &BTreeMap<String, Row>,
    base_name: &str,
    cand_name: &str,
    required: &[String],
) -> Vec<String> {
    let mut names: Vec<&str> = base.keys().chain(cand.keys()).map(String::as_str).collect();
    names.extend(required.iter().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let sides = [(base_name, base.get(name)), (cand_name, cand.get(name))];
        for (side, row) in sides {
            match row {
                None => out.push(format!("{name}: no {side} result")),
                Some(row) => out.extend(
                    row_gaps(row)
                        .into_iter()
                        .map(|g| format!("{name}: {side} {g}")),
                ),
            }
        }
        if let (Some(b), Some(c)) = (base.get(name), cand.get(name)) {
            if kind(b) != kind(c) {
                out.push(format!(
                    "{name}: {base_name} holds a {} result, {cand_name} a {} result",
                    kind(b),
                    kind(c)
                ));
            }
        }
    }
    out
}

fn kind(row: &Row) -> &'static str {
    match row {
        Row::Load(_) => "load",
        Row::Failover(_) => "failover",
        Row::Mem(_) => "memory",
    }
}

/// What is wrong with one side's result on its own.
fn row_gaps(row: &Row) -> Vec<String> {
    let mut out = Vec::new();
    match row {
        Row::Load(r) => {
            if r.requests == 0 {
                out.push("answered no request".to_owned());
            }
            if r.errors > 0 {
                let kinds: Vec<String> = r
                    .error_kinds
                    .iter()
                    .map(|(k, n)| format!("{n}× {k}"))
                    .collect();
                out.push(format!("had {} errors ({})", r.errors, kinds.join("; ")));
            }
            let order = [
                r.min_secs,
                r.p50_secs,
                r.p90_secs,
                r.p99_secs,
                r.p999_secs,
                r.max_secs,
            ];
            let finite = order.iter().all(|x| x.is_finite() && *x >= 0.0);
            if r.requests > 0 && (!finite || order.windows(2).any(|w| w[0] > w[1])) {
                out.push(format!(
                    "latencies out of order (min, p50, p90, p99, p99.9, max: {order:?} s)"
                ));
            }
        }
        Row::Failover(f) => {
            let missed = f
                .rounds
                .iter()
                .filter(|r| r.to_leader_ms.is_none() || r.to_write_ms.is_none())
                .count();
            if f.rounds.is_empty() {
                out.push("ran no failover round".to_owned());
            } else if missed > 0 || f.incomplete_rounds > 0 {
                out.push(format!(
                    "saw no new leader or no write in {} of {} rounds",
                    missed.max(f.incomplete_rounds),
                    f.rounds.len()
                ));
            }
        }
        Row::Mem(m) => {
            if m.nodes.is_empty() || m.nodes.iter().any(|(_, kib)| *kib == 0) {
                out.push(format!("read no memory for some node ({:?})", m.nodes));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::Round;
    use crate::report::{RunInfo, Samples};
    use std::time::Duration;

    fn load_row(target: &str, rps_ms: u64) -> Row {
        let mut s = Samples::default();
        for _ in 0..rps_ms {
            s.record(Duration::from_millis(2));
        }
        let info = RunInfo {
            target: target.into(),
            op: "put".into(),
            clients: 1,
            conns: 1,
            value_size: 256,
        };
        Row::Load(Box::new(Report::build(&info, s, Duration::from_secs(1))))
    }

    #[test]
    fn pairs_rows_and_computes_ratios() {
        let dir = tempfile::tempdir().unwrap();
        let (e, a) = (dir.path().join("etcd"), dir.path().join("aegis"));
        fs::create_dir_all(&e).unwrap();
        fs::create_dir_all(&a).unwrap();
        let write = |d: &Path, name: &str, row: &Row| {
            fs::write(
                d.join(format!("{name}.json")),
                serde_json::to_string(row).unwrap(),
            )
            .unwrap()
        };
        write(&e, "01-put-c1", &load_row("etcd", 300));
        write(&a, "01-put-c1", &load_row("aegis", 600));
        write(&e, "02-only-etcd", &load_row("etcd", 1));
        write(&e, "10-failover", &failover_row(Some(300.0)));
        write(&a, "10-failover", &failover_row(Some(150.0)));
        write(
            &e,
            "20-mem-idle",
            &Row::Mem(MemReport::new("etcd", "idle", vec![(1, 20480)])),
        );
        write(
            &a,
            "20-mem-idle",
            &Row::Mem(MemReport::new("aegis", "idle", vec![(1, 10240)])),
        );
        fs::write(a.join("notes.txt"), "ignored").unwrap();

        let (be, ba) = (load_dir(&e).unwrap(), load_dir(&a).unwrap());
        assert!(matches!(be.get("10-failover"), Some(Row::Failover(_))));
        assert!(matches!(be.get("20-mem-idle"), Some(Row::Mem(_))));
        let md = markdown(&be, &ba, "etcd", "aegis");
        assert!(
            md.contains("| 01-put-c1 | 1 | 1 | 300 | 600 | **2.00×** |"),
            "{md}"
        );
        assert!(
            !md.contains("02-only-etcd"),
            "unpaired rows are left out: {md}"
        );
        assert!(
            md.contains("| 10-failover | 1 / 1 | 100 / 100 | 100 / 100 | 300 / 300 | 150 / 150 |"),
            "{md}"
        );
        assert!(
            md.contains("| 20-mem-idle | 20.0 / 20.0 | 10.0 / 10.0 |"),
            "{md}"
        );
    }

    fn failover_row(to_write_ms: Option<f64>) -> Row {
        Row::Failover(FailoverReport::from_rounds(
            "x",
            vec![Round {
                killed: 1,
                old_term: 1,
                new_term: 2,
                to_leader_ms: Some(100.0),
                to_write_ms,
            }],
        ))
    }

    fn whole_side(target: &str) -> BTreeMap<String, Row> {
        BTreeMap::from([
            ("01-put-c1".to_owned(), load_row(target, 300)),
            ("20-failover".to_owned(), failover_row(Some(150.0))),
            (
                "30-mem-idle".to_owned(),
                Row::Mem(MemReport::new(target, "idle", vec![(1, 20480), (2, 20000)])),
            ),
        ])
    }

    #[test]
    fn a_whole_comparison_has_no_gaps() {
        let (b, c) = (whole_side("etcd"), whole_side("aegis"));
        let required = ["01-put-c1".to_owned(), "20-failover".to_owned()];
        assert_eq!(
            gaps(&b, &c, "etcd", "aegis", &required),
            Vec::<String>::new()
        );
    }

    #[test]
    fn gaps_name_the_row_the_side_and_what_is_wrong() {
        let (mut b, mut c) = (whole_side("etcd"), whole_side("aegis"));
        // A row only one side ran, and a required row neither ran.
        b.insert("02-put-c64".to_owned(), load_row("etcd", 10));
        // Errors, and a row that answered nothing.
        if let Some(Row::Load(r)) = c.get_mut("01-put-c1") {
            r.errors = 3;
            r.error_kinds.insert("deadline exceeded".to_owned(), 3);
        }
        b.insert("04-get".to_owned(), load_row("etcd", 0));
        c.insert("04-get".to_owned(), load_row("aegis", 5));
        // A failover round that never saw a write, and memory not read.
        c.insert("20-failover".to_owned(), failover_row(None));
        b.insert(
            "30-mem-idle".to_owned(),
            Row::Mem(MemReport::new("etcd", "idle", vec![(1, 0)])),
        );
        // One name, two kinds of result.
        b.insert("40-mixed".to_owned(), load_row("etcd", 5));
        c.insert("40-mixed".to_owned(), failover_row(Some(1.0)));

        let got = gaps(&b, &c, "etcd", "aegis", &["09-keepalive".to_owned()]);
        let want = [
            "01-put-c1: aegis had 3 errors (3× deadline exceeded)",
            "02-put-c64: no aegis result",
            "04-get: etcd answered no request",
            "09-keepalive: no etcd result",
            "09-keepalive: no aegis result",
            "20-failover: aegis saw no new leader or no write in 1 of 1 rounds",
            "30-mem-idle: etcd read no memory for some node ([(1, 0)])",
            "40-mixed: etcd holds a load result, aegis a failover result",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn latencies_out_of_order_are_a_gap() {
        let mut b = whole_side("etcd");
        let c = whole_side("aegis");
        if let Some(Row::Load(r)) = b.get_mut("01-put-c1") {
            r.p99_secs = r.max_secs * 2.0;
        }
        let got = gaps(&b, &c, "etcd", "aegis", &[]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("01-put-c1: etcd latencies out of order"),
            "{got:?}"
        );
    }

    #[test]
    fn bad_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x.json"), "{\"nope\":1}").unwrap();
        let err = load_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a result file"), "{err}");
    }
}
