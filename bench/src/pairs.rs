//! Alternating pairs: the same load rows run several times, each time on a fresh cluster of
//! one system and then of the other, so that both halves of a pair see the machine of the
//! same minute. On a shared machine whose speed drifts over minutes, the spread of the
//! per-pair ratios says more than one ratio between two halves measured minutes apart.
//!
//! Layout: `DIR/<pair>/<base_name>/<row>.json` and `DIR/<pair>/<cand_name>/<row>.json`, each
//! row optionally with `<row>.steal`: the host's steal time while it ran, as
//! `scripts/bench-compare.sh` records it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::compare::{entries, load_dir, CompareError, Row};

/// One side of a pair: its rows, and the host's steal time during each (percent of a vCPU)
/// where it was recorded.
#[derive(Debug, Default)]
pub struct Side {
    pub rows: BTreeMap<String, Row>,
    pub steal: BTreeMap<String, f64>,
}

/// One pair: its directory name and each side.
pub type Pair = (String, Side, Side);

fn load_side(dir: &Path) -> Result<Side, CompareError> {
    let rows = load_dir(dir)?;
    let mut steal = BTreeMap::new();
    for path in entries(dir)? {
        if path.extension().and_then(|e| e.to_str()) != Some("steal") {
            continue;
        }
        let p = path.display().to_string();
        let text = fs::read_to_string(&path).map_err(|source| CompareError::Io {
            path: p.clone(),
            source,
        })?;
        let percent = parse_steal(&text).ok_or_else(|| CompareError::Steal {
            path: p,
            text: text.trim().to_owned(),
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        steal.insert(name.to_owned(), percent);
    }
    Ok(Side { rows, steal })
}

/// `steal: 17.5% of a vCPU` → 17.5.
fn parse_steal(text: &str) -> Option<f64> {
    let n = text
        .trim()
        .strip_prefix("steal:")?
        .trim_start()
        .strip_suffix("% of a vCPU")?;
    n.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// Reads every pair under `dir`, in the order of their directory names.
pub fn load_pairs(dir: &Path, base_name: &str, cand_name: &str) -> Result<Vec<Pair>, CompareError> {
    let mut dirs: Vec<_> = entries(dir)?.into_iter().filter(|p| p.is_dir()).collect();
    // Numeric names sort as numbers (10 after 9).
    dirs.sort_by_key(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        (name.parse::<u64>().unwrap_or(u64::MAX), name.to_owned())
    });
    let mut pairs = Vec::new();
    for p in dirs {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let base = load_side(&p.join(base_name))?;
        let cand = load_side(&p.join(cand_name))?;
        pairs.push((name, base, cand));
    }
    Ok(pairs)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|r| format!("{r:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row of one pair: each side's req/s and p99, and the host's steal time during each.
struct PairRow {
    base_rps: f64,
    cand_rps: f64,
    base_p99: f64,
    cand_p99: f64,
    steal: (Option<f64>, Option<f64>),
}

/// Each pair's steal, `base / cand` percent of a vCPU, "?" where it was not recorded.
fn steal_list(v: &[PairRow]) -> String {
    let one = |s: Option<f64>| s.map_or_else(|| "?".to_owned(), |p| format!("{p:.1}"));
    v.iter()
        .map(|r| format!("{} / {}", one(r.steal.0), one(r.steal.1)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One table line per load row found on both sides of at least one pair: the medians of
/// each side's req/s, every pair's ratio (candidate / base) in run order, their median and
/// range, every pair's p99 ratio, and the host's steal time during each side of each pair
/// (a pair whose sides lost different shares of the machine to other guests compares less).
pub fn markdown(pairs: &[Pair], base_name: &str, cand_name: &str) -> String {
    let mut rows: BTreeMap<&str, Vec<PairRow>> = BTreeMap::new();
    for (_, base, cand) in pairs {
        for (name, b) in &base.rows {
            if let (Row::Load(b), Some(Row::Load(c))) = (b, cand.rows.get(name)) {
                rows.entry(name).or_default().push(PairRow {
                    base_rps: b.requests_per_sec,
                    cand_rps: c.requests_per_sec,
                    base_p99: b.p99_secs,
                    cand_p99: c.p99_secs,
                    steal: (base.steal.get(name).copied(), cand.steal.get(name).copied()),
                });
            }
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| row | pairs | {base_name} req/s (median) | {cand_name} req/s (median) | ratio per pair | median ratio | min / max | p99 ratio per pair | steal per pair, % of a vCPU ({base_name} / {cand_name}) |"
    );
    s.push_str("|---|---:|---:|---:|---|---:|---:|---|---|\n");
    for (name, v) in rows {
        let ratios: Vec<f64> = v.iter().map(|r| r.cand_rps / r.base_rps).collect();
        let p99: Vec<f64> = v.iter().map(|r| r.cand_p99 / r.base_p99).collect();
        let base: Vec<f64> = v.iter().map(|r| r.base_rps).collect();
        let cand: Vec<f64> = v.iter().map(|r| r.cand_rps).collect();
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            s,
            "| {name} | {} | {:.0} | {:.0} | {} | **{:.2}×** | {min:.2} / {max:.2} | {} | {} |",
            v.len(),
            median(&base),
            median(&cand),
            list(&ratios),
            median(&ratios),
            list(&p99),
            steal_list(&v),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Report, RunInfo, Samples};
    use std::fs;
    use std::time::Duration;

    /// A put row of `n` requests in one second, each taking `ms`.
    fn row(n: u64, ms: u64) -> Row {
        let mut s = Samples::default();
        for _ in 0..n {
            s.record(Duration::from_millis(ms));
        }
        let info = RunInfo {
            target: "x".into(),
            op: "put".into(),
            clients: 1,
            conns: 1,
            value_size: 256,
        };
        Row::Load(Box::new(Report::build(&info, s, Duration::from_secs(1))))
    }

    fn write(dir: &Path, pair: &str, side: &str, name: &str, r: &Row) {
        let d = dir.join(pair).join(side);
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join(format!("{name}.json")),
            serde_json::to_string(r).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn ratios_per_pair_in_run_order_with_median_and_range() {
        let dir = tempfile::tempdir().unwrap();
        // Ten pairs so that "10" must sort after "9".
        for k in 1..=10u64 {
            let pair = k.to_string();
            write(dir.path(), &pair, "etcd", "01-put-c1", &row(100, 4));
            // Pair k runs at (k + 1) / 2 times etcd: 1.00, 1.50, ..., 5.50.
            write(
                dir.path(),
                &pair,
                "aegis",
                "01-put-c1",
                &row(50 * (k + 1), 2),
            );
        }
        // A row only one side has in one pair is left out.
        write(dir.path(), "3", "etcd", "02-put-c64", &row(10, 1));
        // The steal of the first two pairs is recorded, on one side only in the second.
        write_steal(
            dir.path(),
            "1",
            "etcd",
            "01-put-c1",
            "steal: 0.5% of a vCPU\n",
        );
        write_steal(
            dir.path(),
            "1",
            "aegis",
            "01-put-c1",
            "steal: 23.5% of a vCPU\n",
        );
        write_steal(
            dir.path(),
            "2",
            "aegis",
            "01-put-c1",
            "steal: 4% of a vCPU\n",
        );
        let pairs = load_pairs(dir.path(), "etcd", "aegis").unwrap();
        assert_eq!(pairs.len(), 10);
        assert_eq!(pairs[9].0, "10");
        let md = markdown(&pairs, "etcd", "aegis");
        assert!(
            md.contains(
                "| 01-put-c1 | 10 | 100 | 325 | 1.00, 1.50, 2.00, 2.50, 3.00, 3.50, 4.00, 4.50, 5.00, 5.50 | **3.25×** | 1.00 / 5.50 | 0.50, 0.50,"
            ),
            "{md}"
        );
        assert!(md.contains("| 0.5 / 23.5, ? / 4.0, ? / ?, ? / ?,"), "{md}");
        assert!(!md.contains("02-put-c64"), "{md}");
    }

    fn write_steal(dir: &Path, pair: &str, side: &str, name: &str, text: &str) {
        fs::write(
            dir.join(pair).join(side).join(format!("{name}.steal")),
            text,
        )
        .unwrap();
    }

    #[test]
    fn a_malformed_steal_record_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "1", "etcd", "01-put-c1", &row(10, 1));
        write(dir.path(), "1", "aegis", "01-put-c1", &row(10, 1));
        write_steal(dir.path(), "1", "aegis", "01-put-c1", "steal: lots\n");
        let err = load_pairs(dir.path(), "etcd", "aegis").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("01-put-c1.steal"), "{msg}");
        assert!(msg.contains("not a steal record"), "{msg}");
    }

    #[test]
    fn steal_records_parse_only_in_their_own_form() {
        assert_eq!(parse_steal("steal: 17.5% of a vCPU\n"), Some(17.5));
        assert_eq!(parse_steal("steal:0% of a vCPU"), Some(0.0));
        assert_eq!(parse_steal("steal: -1% of a vCPU"), None);
        assert_eq!(parse_steal("steal: NaN% of a vCPU"), None);
        assert_eq!(parse_steal("17.5"), None);
        assert_eq!(parse_steal(""), None);
    }

    #[test]
    fn a_pair_without_one_side_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "1", "etcd", "01-put-c1", &row(10, 1));
        let err = load_pairs(dir.path(), "etcd", "aegis").unwrap_err();
        assert!(err.to_string().contains("aegis"), "{err}");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
