//! Pure validation: the spec (again, behind the CRD schema) and the config text
//! (through the `aegis-config` envelope, the same code the node and the agent run).

use aegis_config::ClusterConfig;
use sha2::{Digest, Sha256};

use crate::crd::AegisClusterSpec;

/// A spec problem, with a stable `field` path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {message}")]
pub struct SpecViolation {
    pub field: &'static str,
    pub message: String,
}

fn violation(field: &'static str, message: impl Into<String>) -> SpecViolation {
    SpecViolation {
        field,
        message: message.into(),
    }
}

/// Every problem of a spec, in one pass.
pub fn validate_spec(spec: &AegisClusterSpec) -> Vec<SpecViolation> {
    let mut out = Vec::new();
    if !(1..=9).contains(&spec.replicas) {
        out.push(violation("replicas", "must be between 1 and 9"));
    }
    if spec.replicas % 2 == 0 {
        out.push(violation("replicas", "must be odd"));
    }
    if spec.image.trim().is_empty() {
        out.push(violation("image", "must not be empty"));
    }
    if !is_quantity(&spec.storage.size) {
        out.push(violation(
            "storage.size",
            format!("{:?} is not a quantity", spec.storage.size),
        ));
    }
    if let Some(res) = &spec.resources {
        for (k, v) in res.requests.iter().chain(res.limits.iter()) {
            if !is_quantity(v) {
                out.push(violation(
                    "resources",
                    format!("{k}={v:?} is not a quantity"),
                ));
            }
        }
    }
    if spec.config.name.is_empty() {
        out.push(violation("config.name", "must not be empty"));
    }
    if spec.config.key.is_empty() {
        out.push(violation("config.key", "must not be empty"));
    }
    if let Some(git) = spec.config_source.as_ref().and_then(|s| s.git.as_ref()) {
        if !(git.url.starts_with("https://")
            || git.url.starts_with("ssh://")
            || git.url.starts_with("file://"))
        {
            out.push(violation(
                "configSource.git.url",
                "must be https://, ssh:// or file://",
            ));
        }
        if git.path.starts_with('/') || git.path.contains("..") || git.path.is_empty() {
            out.push(violation(
                "configSource.git.path",
                "must be relative and stay inside the repository",
            ));
        }
        if parse_interval(&git.interval).is_none() {
            out.push(violation(
                "configSource.git.interval",
                "must look like 30s, 5m or 1h",
            ));
        }
    }
    if parse_interval(&spec.telemetry.service_monitor.interval).is_none() {
        out.push(violation(
            "telemetry.serviceMonitor.interval",
            "must look like 15s or 1m",
        ));
    }
    if spec.rollout.max_lag < 0 {
        out.push(violation("rollout.maxLag", "must not be negative"));
    }
    if spec.rollout.gate_timeout_seconds < 0 {
        out.push(violation(
            "rollout.gateTimeoutSeconds",
            "must not be negative",
        ));
    }
    if spec.rollout.max_unplanned_leader_changes < 0 {
        out.push(violation(
            "rollout.maxUnplannedLeaderChanges",
            "must not be negative",
        ));
    }
    out
}

/// A Kubernetes quantity in the subset the CRD schema allows.
pub fn is_quantity(s: &str) -> bool {
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits_end);
    let num_ok = !num.is_empty()
        && !num.starts_with('.')
        && !num.ends_with('.')
        && num.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "Ki" | "Mi" | "Gi" | "Ti"
    );
    num_ok && suffix_ok
}

/// `30s`, `5m`, `1h` as seconds.
pub fn parse_interval(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    if num.is_empty() || num.starts_with('0') || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A config that passed the envelope, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedConfig {
    pub yaml: String,
    pub hash: String,
    pub short_hash: String,
}

/// What the envelope said about a config text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigVerdict {
    Accepted(AcceptedConfig),
    /// `hash` is of the raw text (there is no canonical form of an invalid config),
    /// so the same rejected text is reported once.
    Rejected {
        hash: String,
        rule_ids: Vec<String>,
        message: String,
    },
}

pub fn validate_config(text: &str) -> ConfigVerdict {
    match ClusterConfig::from_yaml(text) {
        Ok(cfg) => ConfigVerdict::Accepted(AcceptedConfig {
            yaml: cfg.to_yaml(),
            hash: cfg.hash(),
            short_hash: cfg.short_hash(),
        }),
        Err(e) => {
            let mut rule_ids: Vec<String> = e.rule_ids().iter().map(|r| r.to_string()).collect();
            rule_ids.dedup();
            ConfigVerdict::Rejected {
                hash: raw_hash(text),
                rule_ids,
                message: e.to_string(),
            }
        }
    }
}

fn raw_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut h = hex::encode(digest);
    h.truncate(12);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::*;

    fn spec() -> AegisClusterSpec {
        serde_json::from_value(serde_json::json!({
            "image": "aegis-node:dev",
            "config": {"name": "aegis-config"}
        }))
        .unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        let s = spec();
        assert_eq!(s.replicas, 5);
        assert_eq!(s.config.key, "aegis.yaml");
        assert!(validate_spec(&s).is_empty());
    }

    #[test]
    fn even_replicas_and_bad_quantities_are_all_reported() {
        let mut s = spec();
        s.replicas = 4;
        s.storage.size = "lots".into();
        s.image = " ".into();
        let v = validate_spec(&s);
        let fields: Vec<_> = v.iter().map(|v| v.field).collect();
        assert_eq!(fields, vec!["replicas", "image", "storage.size"]);
    }

    #[test]
    fn git_source_paths_cannot_escape() {
        let mut s = spec();
        s.config_source = Some(ConfigSource {
            git: Some(GitSource {
                url: "http://insecure".into(),
                branch: "main".into(),
                path: "../etc/passwd".into(),
                interval: "0s".into(),
            }),
        });
        let fields: Vec<_> = validate_spec(&s).iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            vec![
                "configSource.git.url",
                "configSource.git.path",
                "configSource.git.interval"
            ]
        );
    }

    #[test]
    fn quantities_and_intervals() {
        for ok in ["1Gi", "500m", "2", "1.5Gi", "100Mi"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "1.Gi", "1..2", "1GB", "-1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        assert_eq!(parse_interval("30s"), Some(30));
        assert_eq!(parse_interval("5m"), Some(300));
        assert_eq!(parse_interval("1h"), Some(3600));
        assert_eq!(parse_interval("05m"), None);
        assert_eq!(parse_interval("m"), None);
        assert_eq!(parse_interval(""), None);
    }

    #[test]
    fn envelope_violation_is_rejected_with_rule_ids() {
        let v = validate_config(
            "raft:\n  heartbeat-interval-ms: 100\n  election-timeout-min-ms: 200\n",
        );
        match v {
            ConfigVerdict::Rejected { rule_ids, .. } => {
                assert!(rule_ids.contains(&"raft.election-min-ge-3x-heartbeat".to_string()));
            }
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[test]
    fn valid_config_is_canonicalised() {
        let a = validate_config("raft:\n  heartbeat-interval-ms: 50\n");
        let b = validate_config("{}\n");
        match (a, b) {
            (ConfigVerdict::Accepted(a), ConfigVerdict::Accepted(b)) => {
                // 50 is the default, so both texts are the same config.
                assert_eq!(a.hash, b.hash);
                assert_eq!(a.short_hash.len(), 12);
                assert!(a.yaml.contains("heartbeat-interval-ms: 50"));
            }
            other => panic!("expected two acceptances, got {other:?}"),
        }
    }
}
