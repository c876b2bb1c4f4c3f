//! Deterministic variants of the seed incidents (no RNG): each variant moves the fault to
//! another node, scales its magnitude, shifts it in time and adds bounded jitter derived from
//! a hash of its position, so the same corpus is generated on every machine.

use super::incident::Incident;
use crate::telemetry::window::{FOLLOWER_LABEL, INSTANCE_LABEL};

/// How one variant departs from its seed.
#[derive(Debug, Clone, Copy)]
pub struct VariantSpec {
    pub seed: &'static str,
    pub suffix: &'static str,
    /// Node `aegis-i` becomes `aegis-(i + rotate) mod n`.
    pub rotate: usize,
    /// Multiplies the fault: log lag, the part of fsync p99 above the healthy floor, clock
    /// offsets, and lease-expiration increments.
    pub fault_scale: f64,
    /// Bounded multiplicative jitter on gauges and counter increments, percent.
    pub jitter_pct: f64,
    pub shift_ms: i64,
    /// Samples dropped from the start of the window: the incident is seen later in its course
    /// (fewer leadership changes counted, onsets nearer the window start).
    pub trim_samples: usize,
}

const fn v(
    seed: &'static str,
    suffix: &'static str,
    rotate: usize,
    fault_scale: f64,
    jitter_pct: f64,
    shift_ms: i64,
    trim_samples: usize,
) -> VariantSpec {
    VariantSpec {
        seed,
        suffix,
        rotate,
        fault_scale,
        jitter_pct,
        shift_ms,
        trim_samples,
    }
}

const HOUR: i64 = 3_600_000;

/// 26 variants: with the 7 seeds, 33 incidents in the paper's label proportions.
pub const VARIANTS: &[VariantSpec] = &[
    v("seed-slow_follower", "mild", 1, 0.4, 5.0, HOUR, 2),
    v("seed-slow_follower", "severe", 2, 2.5, 8.0, 2 * HOUR, 0),
    v("seed-slow_follower", "moderate", 3, 0.7, 3.0, 3 * HOUR, 0),
    v("seed-slow_follower", "noisy", 4, 1.2, 15.0, 4 * HOUR, 0),
    v("seed-critical_cascade", "early", 2, 0.6, 6.0, 5 * HOUR, 0),
    v("seed-critical_cascade", "deep", 3, 1.5, 10.0, 6 * HOUR, 0),
    v("seed-split_brain_risk", "a", 1, 0.5, 5.0, HOUR, 0),
    v("seed-split_brain_risk", "b", 2, 1.5, 10.0, 2 * HOUR, 0),
    v("seed-split_brain_risk", "c", 3, 0.8, 3.0, 3 * HOUR, 3),
    v("seed-split_brain_risk", "d", 4, 2.0, 12.0, 4 * HOUR, 0),
    v("seed-clock_skew", "slight", 1, 0.45, 5.0, HOUR, 0),
    v("seed-clock_skew", "large", 2, 2.5, 8.0, 2 * HOUR, 0),
    v("seed-clock_skew", "behind", 3, -1.0, 4.0, 3 * HOUR, 0),
    v("seed-clock_skew", "noisy", 4, 1.3, 15.0, 4 * HOUR, 4),
    v("seed-election_churn", "a", 1, 1.0, 5.0, HOUR, 0),
    v("seed-election_churn", "b", 2, 1.5, 10.0, 2 * HOUR, 1),
    v("seed-election_churn", "c", 3, 0.5, 3.0, 3 * HOUR, 4),
    v("seed-election_churn", "d", 4, 2.0, 12.0, 4 * HOUR, 2),
    v("seed-lease_starvation", "mild", 1, 0.6, 5.0, HOUR, 0),
    v("seed-lease_starvation", "severe", 2, 2.0, 8.0, 2 * HOUR, 0),
    v(
        "seed-lease_starvation",
        "moderate",
        3,
        0.8,
        3.0,
        3 * HOUR,
        2,
    ),
    v("seed-lease_starvation", "noisy", 4, 1.2, 15.0, 4 * HOUR, 0),
    v("seed-healthy", "quiet", 1, 0.5, 5.0, HOUR, 3),
    v("seed-healthy", "busy", 2, 2.0, 10.0, 2 * HOUR, 0),
    v("seed-healthy", "jittery", 3, 1.0, 20.0, 3 * HOUR, 0),
    v("seed-healthy", "shifted", 4, 1.5, 8.0, 4 * HOUR, 7),
];

/// Healthy fsync p99: the part above it is "the fault" that `fault_scale` multiplies.
const FSYNC_HEALTHY_S: f64 = 0.004;

/// FNV-1a: a fixed, portable hash, so jitter is the same everywhere.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A factor in [1 − pct/100, 1 + pct/100].
fn jitter(spec: &VariantSpec, series: usize, sample: usize) -> f64 {
    let h = fnv(&[
        spec.seed.as_bytes(),
        spec.suffix.as_bytes(),
        &series.to_le_bytes(),
        &sample.to_le_bytes(),
    ]);
    let unit = (h % 20_001) as f64 / 10_000.0 - 1.0;
    1.0 + unit * spec.jitter_pct / 100.0
}

fn rotate_node(name: &str, by: usize, nodes: &[String]) -> String {
    match nodes.iter().position(|n| n == name) {
        Some(i) => nodes[(i + by) % nodes.len()].clone(),
        None => name.to_string(),
    }
}

pub fn derive(seed: &Incident, spec: &VariantSpec) -> Incident {
    let mut out = seed.clone();
    out.id = format!(
        "{}-{}",
        seed.id.replacen("seed-", "variant-", 1),
        spec.suffix
    );
    out.family = seed.family.clone();
    out.description = format!(
        "Variant of {} (node rotation {}, fault ×{}, jitter ±{}%, shifted {} h, first {} samples trimmed).",
        seed.id,
        spec.rotate,
        spec.fault_scale,
        spec.jitter_pct,
        spec.shift_ms / HOUR,
        spec.trim_samples
    );
    let w = &mut out.window;
    let nodes = w.nodes();
    if spec.trim_samples > 0 {
        w.start_ms += w.step_ms * spec.trim_samples as i64;
        let start = w.start_ms;
        for s in &mut w.metrics {
            s.samples.retain(|x| x.0 >= start);
        }
        w.metrics.retain(|s| !s.samples.is_empty());
        w.events.retain(|e| e.at_ms >= start);
    }
    w.start_ms += spec.shift_ms;
    w.end_ms += spec.shift_ms;
    for e in &mut w.events {
        e.at_ms += spec.shift_ms;
    }
    for (si, s) in w.metrics.iter_mut().enumerate() {
        for key in [INSTANCE_LABEL, FOLLOWER_LABEL] {
            if let Some(n) = s.labels.get(key).cloned() {
                s.labels
                    .insert(key.to_string(), rotate_node(&n, spec.rotate, &nodes));
            }
        }
        let name = s.name.as_str();
        let is_counter = name.ends_with("_total");
        let discrete = matches!(
            name,
            "aegis_raft_term" | "aegis_raft_is_leader" | "aegis_config_info"
        ) || name.ends_with("_index")
            || name == "aegis_raft_leader_changes_total";
        let mut prev_in: Option<f64> = None;
        let mut acc = 0.0;
        for (i, (t, val)) in s.samples.iter_mut().enumerate() {
            let j = jitter(spec, si, i);
            let x = *val;
            *val = match name {
                "aegis_raft_log_lag" => (x * spec.fault_scale.abs() * j).round(),
                "aegis_storage_fsync_seconds_p99" => {
                    let excess = (x - FSYNC_HEALTHY_S).max(0.0);
                    ((x.min(FSYNC_HEALTHY_S) + excess * spec.fault_scale.abs()) * j * 1e6).round()
                        / 1e6
                }
                "aegis_node_wall_clock_ms" => {
                    (*t as f64 + (x - *t as f64) * spec.fault_scale * j).round()
                }
                _ if discrete => x,
                _ if is_counter => {
                    // Re-accumulate jittered (and, for expirations, scaled) increments so the
                    // counter stays monotonic.
                    let inc = prev_in.map_or(0.0, |p| (x - p).max(0.0));
                    prev_in = Some(x);
                    let scale = if name == "aegis_lease_expirations_total" {
                        spec.fault_scale.abs()
                    } else {
                        1.0
                    };
                    if i == 0 {
                        acc = x;
                    } else {
                        acc += (inc * scale * j).round();
                    }
                    acc
                }
                _ => (x * j * 1e6).round() / 1e6,
            };
            *t += spec.shift_ms;
        }
    }
    w.metrics
        .sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    out
}

/// Seeds plus every variant whose seed is present, in a stable order.
pub fn expand(seeds: &[Incident]) -> Vec<Incident> {
    let mut out: Vec<Incident> = seeds.to_vec();
    for spec in VARIANTS {
        if let Some(seed) = seeds.iter().find(|s| s.id == spec.seed) {
            out.push(derive(seed, spec));
        }
    }
    out
}
