//! Latency statistics and their two renderings: the text layout of etcd's own benchmark
//! tool (summary, histogram, latency distribution) and JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The percentiles etcd's tool prints, in its order.
pub const PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

const HISTOGRAM_BUCKETS: usize = 10;
const BAR_WIDTH: u64 = 40;

/// Everything one load run produced, in seconds (latencies) and requests per second.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub target: String,
    pub op: String,
    pub clients: usize,
    pub conns: usize,
    pub value_size: usize,
    /// Successful requests (the ones whose latency is counted).
    pub requests: u64,
    pub errors: u64,
    pub total_secs: f64,
    pub requests_per_sec: f64,
    pub min_secs: f64,
    pub max_secs: f64,
    pub mean_secs: f64,
    pub stddev_secs: f64,
    pub p50_secs: f64,
    pub p90_secs: f64,
    pub p99_secs: f64,
    pub p999_secs: f64,
    /// (percentile, seconds) for every entry of [`PERCENTILES`].
    pub percentiles: Vec<(f64, f64)>,
    /// (upper bound in seconds, count) for ten equal-width buckets from fastest to slowest.
    pub histogram: Vec<(f64, u64)>,
    /// Error message -> count.
    pub error_kinds: BTreeMap<String, u64>,
}

/// What a run measured, before summarising.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// Latencies of successful requests, in nanoseconds.
    pub nanos: Vec<u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Samples {
    pub fn record(&mut self, d: Duration) {
        self.nanos
            .push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn error(&mut self, msg: &str) {
        // Error texts often embed addresses or ids; the first line is enough to group them.
        let key: String = msg.lines().next().unwrap_or("").chars().take(160).collect();
        *self.errors.entry(key).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
    }
}

/// Labels of a run, carried into the report.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub target: String,
    pub op: String,
    pub clients: usize,
    pub conns: usize,
    pub value_size: usize,
}

/// The value at percentile `p` (0..=100) of sorted `v`, nearest-rank.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The epsilon keeps float noise (99.9% of 1000 = 999.0000001) from skipping a rank.
    let rank = ((p * sorted.len() as f64) / 100.0 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn secs(n: u64) -> f64 {
    n as f64 / 1e9
}

impl Report {
    pub fn build(info: &RunInfo, mut samples: Samples, elapsed: Duration) -> Report {
        samples.nanos.sort_unstable();
        let v = &samples.nanos;
        let n = v.len() as u64;
        let total = elapsed.as_secs_f64();
        let mean = if n == 0 {
            0.0
        } else {
            v.iter().map(|x| *x as f64).sum::<f64>() / n as f64
        };
        let var = if n == 0 {
            0.0
        } else {
            v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / n as f64
        };
        let min = v.first().copied().unwrap_or(0);
        let max = v.last().copied().unwrap_or(0);
        let percentiles = PERCENTILES
            .iter()
            .map(|p| (*p, secs(percentile(v, *p))))
            .collect();
        Report {
            target: info.target.clone(),
            op: info.op.clone(),
            clients: info.clients,
            conns: info.conns,
            value_size: info.value_size,
            requests: n,
            errors: samples.errors.values().sum(),
            total_secs: total,
            requests_per_sec: if total > 0.0 { n as f64 / total } else { 0.0 },
            min_secs: secs(min),
            max_secs: secs(max),
            mean_secs: mean / 1e9,
            stddev_secs: var.sqrt() / 1e9,
            p50_secs: secs(percentile(v, 50.0)),
            p90_secs: secs(percentile(v, 90.0)),
            p99_secs: secs(percentile(v, 99.0)),
            p999_secs: secs(percentile(v, 99.9)),
            percentiles,
            histogram: histogram(v, min, max),
            error_kinds: samples.errors,
        }
    }

    /// The text layout of etcd's benchmark tool, preceded by one line naming the run.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {}: {} clients over {} connections, {}-byte values",
            self.target, self.op, self.clients, self.conns, self.value_size
        );
        let _ = writeln!(s, "\nSummary:");
        let _ = writeln!(s, "  Total:\t{:.4} secs.", self.total_secs);
        let _ = writeln!(s, "  Slowest:\t{:.4} secs.", self.max_secs);
        let _ = writeln!(s, "  Fastest:\t{:.4} secs.", self.min_secs);
        let _ = writeln!(s, "  Average:\t{:.4} secs.", self.mean_secs);
        let _ = writeln!(s, "  Stddev:\t{:.4} secs.", self.stddev_secs);
        let _ = writeln!(s, "  Requests/sec:\t{:.4}", self.requests_per_sec);
        if self.requests > 0 {
            let _ = writeln!(s, "\nResponse time histogram:");
            let top = self.histogram.iter().map(|(_, c)| *c).max().unwrap_or(0);
            for (mark, count) in &self.histogram {
                let bar = (count * BAR_WIDTH).checked_div(top).unwrap_or(0) as usize;
                let _ = writeln!(s, "  {mark:.4} [{count}]\t|{}", "∎".repeat(bar));
            }
            let _ = writeln!(s, "\nLatency distribution:");
            for (p, v) in &self.percentiles {
                let _ = writeln!(s, "  {p}% in {v:.4} secs.");
            }
        }
        if !self.error_kinds.is_empty() {
            let _ = writeln!(s, "\nError distribution:");
            for (msg, count) in &self.error_kinds {
                let _ = writeln!(s, "  [{count}]\t{msg}");
            }
        }
        s
    }
}

/// Ten equal-width buckets between the fastest and slowest sample, as etcd prints them.
fn histogram(sorted: &[u64], min: u64, max: u64) -> Vec<(f64, u64)> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let width = (max - min) as f64 / HISTOGRAM_BUCKETS as f64;
    let marks: Vec<f64> = (0..=HISTOGRAM_BUCKETS)
        .map(|i| min as f64 + width * i as f64)
        .collect();
    let mut counts = vec![0u64; marks.len()];
    let mut b = 0;
    for x in sorted {
        while b < marks.len() - 1 && (*x as f64) > marks[b] {
            b += 1;
        }
        counts[b] += 1;
    }
    marks
        .into_iter()
        .zip(counts)
        .map(|(m, c)| (m / 1e9, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            target: "aegis".into(),
            op: "put".into(),
            clients: 2,
            conns: 1,
            value_size: 256,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), 500);
        assert_eq!(percentile(&v, 99.0), 990);
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(percentile(&v, 100.0), 1000);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn report_summarises_samples() {
        let mut s = Samples::default();
        for ms in 1..=100u64 {
            s.record(Duration::from_millis(ms));
        }
        s.error("boom: detail\nsecond line");
        s.error("boom: detail");
        let r = Report::build(&info(), s, Duration::from_secs(2));
        assert_eq!(r.requests, 100);
        assert_eq!(r.errors, 2);
        assert_eq!(r.error_kinds.get("boom: detail"), Some(&2));
        assert!((r.requests_per_sec - 50.0).abs() < 1e-9);
        assert!((r.min_secs - 0.001).abs() < 1e-12);
        assert!((r.max_secs - 0.100).abs() < 1e-12);
        assert!((r.p50_secs - 0.050).abs() < 1e-12);
        assert!((r.p99_secs - 0.099).abs() < 1e-12);
        assert!((r.mean_secs - 0.0505).abs() < 1e-9);
        let counted: u64 = r.histogram.iter().map(|(_, c)| c).sum();
        assert_eq!(counted, 100, "every sample lands in a bucket");
        assert_eq!(r.histogram.len(), 11);
    }

    #[test]
    fn text_layout_matches_etcd_tool() {
        let mut s = Samples::default();
        s.record(Duration::from_millis(3));
        s.record(Duration::from_millis(5));
        let t = Report::build(&info(), s, Duration::from_secs(1)).to_text();
        for needle in [
            "Summary:",
            "  Total:\t1.0000 secs.",
            "  Slowest:\t0.0050 secs.",
            "  Fastest:\t0.0030 secs.",
            "  Requests/sec:\t2.0000",
            "Response time histogram:",
            "Latency distribution:",
            "  99.9% in 0.0050 secs.",
            "  50% in 0.0030 secs.",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
        assert!(!t.contains("Error distribution"));
    }

    #[test]
    fn json_round_trips() {
        let mut s = Samples::default();
        s.record(Duration::from_micros(700));
        let r = Report::build(&info(), s, Duration::from_secs(1));
        let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
