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
        let f = |w| {
            Row::Failover(FailoverReport::from_rounds(
                "x",
                vec![Round {
                    killed: 1,
                    old_term: 1,
                    new_term: 2,
                    to_leader_ms: Some(100.0),
                    to_write_ms: Some(w),
                }],
            ))
        };
        write(&e, "10-failover", &f(300.0));
        write(&a, "10-failover", &f(150.0));
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

    #[test]
    fn bad_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x.json"), "{\"nope\":1}").unwrap();
        let err = load_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a result file"), "{err}");
    }
}
