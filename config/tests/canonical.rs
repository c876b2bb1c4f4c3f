use std::path::Path;

use aegis_config::{ClusterConfig, ConfigError, FIELDS};
use sha2::{Digest, Sha256};

fn example_path() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/aegis.yaml"))
}

fn sample() -> ClusterConfig {
    let mut cfg = ClusterConfig::default();
    cfg.raft.heartbeat_interval_ms = 75;
    cfg.raft.max_batch_proposals = 64;
    cfg.lease.skew_grace_ms = 0;
    cfg.kv.max_txn_ops = 9;
    cfg
}

#[test]
fn example_file_equals_defaults_and_passes() {
    let cfg = ClusterConfig::from_file(example_path()).unwrap();
    assert_eq!(cfg, ClusterConfig::default());
}

#[test]
fn example_file_sets_every_field_with_a_comment_above_it() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for f in FIELDS {
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(&format!("{}:", f.key)))
            .unwrap_or_else(|| panic!("{} missing from example", f.path));
        assert!(
            lines[at - 1].trim_start().starts_with('#'),
            "{} has no comment",
            f.path
        );
        let default = (f.get)(&ClusterConfig::default());
        assert_eq!(lines[at].trim(), format!("{}: {default}", f.key));
    }
}

#[test]
fn to_yaml_round_trips() {
    for cfg in [ClusterConfig::default(), sample()] {
        assert_eq!(ClusterConfig::from_yaml(&cfg.to_yaml()).unwrap(), cfg);
    }
}

#[test]
fn to_yaml_round_trips_even_for_configs_outside_the_envelope() {
    let mut cfg = ClusterConfig::default();
    for f in FIELDS {
        (f.set)(&mut cfg, i64::MIN);
    }
    let doc: serde_norway::Value = serde_norway::from_str(&cfg.to_yaml()).unwrap();
    let back: ClusterConfig = serde_norway::from_value(doc).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn to_yaml_matches_the_serde_derive_names_and_order() {
    // The canonical writer is table-driven; this pins the table to the serde field names.
    for cfg in [ClusterConfig::default(), sample()] {
        assert_eq!(serde_norway::to_string(&cfg).unwrap(), cfg.to_yaml());
        let via_serde: ClusterConfig = serde_norway::from_str(&cfg.to_yaml()).unwrap();
        assert_eq!(via_serde, cfg);
    }
}

#[test]
fn to_yaml_lists_every_field() {
    let text = ClusterConfig::default().to_yaml();
    for f in FIELDS {
        assert!(text.contains(&format!("\n  {}: ", f.key)), "{}", f.path);
    }
    assert!(text.starts_with("raft:\n"));
}

#[test]
fn hash_ignores_key_order_comments_and_style() {
    let a = ClusterConfig::from_yaml(
        "raft:\n  heartbeat-interval-ms: 75\n  max-batch-proposals: 64\nlease:\n  skew-grace-ms: 0\nkv:\n  max-txn-ops: 9\n",
    )
    .unwrap();
    let b = ClusterConfig::from_yaml(
        "# reordered\nkv: {max-txn-ops: 9}\nlease: {skew-grace-ms: 0}\nraft:\n  max-batch-proposals: 64   # batch\n  heartbeat-interval-ms: 75\n  rpc-timeout-ms: 1000\n",
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.hash(), sample().hash());
}

#[test]
fn hash_is_sha256_of_canonical_yaml_and_changes_with_any_field() {
    let cfg = sample();
    let expected = hex::encode(Sha256::digest(cfg.to_yaml().as_bytes()));
    assert_eq!(cfg.hash(), expected);
    assert_eq!(cfg.hash().len(), 64);
    assert_eq!(cfg.short_hash(), expected[..12]);

    let base = ClusterConfig::default().hash();
    for f in FIELDS {
        let mut changed = ClusterConfig::default();
        let bumped = (f.get)(&changed) + 1;
        (f.set)(&mut changed, bumped);
        assert_ne!(changed.hash(), base, "{}", f.path);
    }
}

#[test]
fn from_file_reports_unreadable_files_as_io() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let err = ClusterConfig::from_file(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert!(err.rule_ids().is_empty());
    assert!(
        err.to_string().starts_with("cannot read config file "),
        "{err}"
    );
    assert!(err.to_string().contains("missing.yaml"), "{err}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kv:\n  max-versions: 0\n").unwrap();
    let err = ClusterConfig::from_file(&bad).unwrap_err();
    assert!(err.rule_ids().contains(&"kv.max-versions-ge-1"), "{err}");

    let good = dir.path().join("good.yaml");
    std::fs::write(&good, sample().to_yaml()).unwrap();
    assert_eq!(ClusterConfig::from_file(&good).unwrap(), sample());
}

#[test]
fn docs_tables_match_the_field_table() {
    let readme = include_str!("../README.md");
    let lib = include_str!("../src/lib.rs");
    for f in FIELDS {
        let default = (f.get)(&ClusterConfig::default());
        let row = format!("| `{}` | {default} | {}..={} |", f.path, f.min, f.max);
        assert!(readme.contains(&row), "README lacks {row}");
        assert!(
            lib.contains(&format!("//! {row}")),
            "lib.rs docs lack {row}"
        );
    }
    for r in aegis_config::RULES {
        if !r.id.starts_with("bounds.") {
            assert!(
                readme.contains(&format!("| `{}` |", r.id)),
                "README lacks {}",
                r.id
            );
            assert!(
                lib.contains(&format!("//! | `{}` |", r.id)),
                "lib.rs lacks {}",
                r.id
            );
        }
    }
}
