//! Walks a parsed YAML value against the field table instead of using serde's derive, so that
//! unknown keys, type errors and envelope rules on the remaining fields are reported together.

use serde_norway::Value;

use crate::envelope;
use crate::error::Violation;
use crate::model::ClusterConfig;
use crate::rules::{FieldSpec, FIELDS, GROUPS, SCHEMA_TYPE, SCHEMA_UNKNOWN_KEY, SCHEMA_YAML};

const ROOT: &str = "<root>";

/// Builds a config from `doc`, returning it with every schema and envelope violation found.
pub(crate) fn read(doc: &Value) -> (ClusterConfig, Vec<Violation>) {
    let mut cfg = ClusterConfig::default();
    let mut violations = Vec::new();
    let mut unreadable: Vec<&'static str> = Vec::new();

    match doc {
        // A document with only comments means "all defaults".
        Value::Null => {}
        Value::Mapping(groups) => {
            for (key, value) in groups {
                match key.as_str().and_then(|k| GROUPS.iter().find(|g| **g == k)) {
                    Some(group) => {
                        read_group(group, value, &mut cfg, &mut violations, &mut unreadable)
                    }
                    None => violations.push(Violation::new(
                        SCHEMA_UNKNOWN_KEY,
                        key_text(key),
                        format!("unknown group (known: {})", GROUPS.join(", ")),
                    )),
                }
            }
        }
        other => violations.push(Violation::new(
            SCHEMA_YAML,
            ROOT,
            format!(
                "the document must be a mapping of groups, got {}",
                kind(other)
            ),
        )),
    }

    violations.extend(envelope::check(&cfg, &unreadable));
    (cfg, violations)
}

fn read_group(
    group: &'static str,
    value: &Value,
    cfg: &mut ClusterConfig,
    violations: &mut Vec<Violation>,
    unreadable: &mut Vec<&'static str>,
) {
    let fields = match value {
        // `raft:` with every field commented out keeps the defaults.
        Value::Null => return,
        Value::Mapping(fields) => fields,
        other => {
            violations.push(Violation::new(
                SCHEMA_TYPE,
                group,
                format!("a group must be a mapping of fields, got {}", kind(other)),
            ));
            unreadable.extend(FIELDS.iter().filter(|f| f.group == group).map(|f| f.path));
            return;
        }
    };

    for (key, value) in fields {
        let spec = key
            .as_str()
            .and_then(|k| FIELDS.iter().find(|f| f.group == group && f.key == k));
        match spec {
            Some(spec) => match read_field(spec, value) {
                Ok(v) => (spec.set)(cfg, v),
                Err(v) => {
                    violations.push(v);
                    unreadable.push(spec.path);
                }
            },
            None => violations.push(Violation::new(
                SCHEMA_UNKNOWN_KEY,
                format!("{group}.{}", key_text(key)),
                format!(
                    "unknown field (known in {group}: {})",
                    FIELDS
                        .iter()
                        .filter(|f| f.group == group)
                        .map(|f| f.key)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

fn read_field(spec: &FieldSpec, value: &Value) -> Result<i64, Violation> {
    if let Value::Number(n) = value {
        if let Some(v) = n.as_i64() {
            return Ok(v);
        }
        // An integer beyond i64 is still an integer: it breaks the field's bound, not its type.
        if let Some(v) = n.as_u64() {
            return Err(Violation::new(
                spec.bounds_rule,
                spec.path,
                format!(
                    "{v} is outside the documented bounds {}..={}",
                    spec.min, spec.max
                ),
            ));
        }
    }
    Err(Violation::new(
        SCHEMA_TYPE,
        spec.path,
        format!("expected an integer, got {}", kind(value)),
    ))
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Number(n) if n.is_f64() => format!("float {n}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {:?}", clip(s)),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// How a mapping key is named in a path. Non-string keys are legal YAML, so they need a name too.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => clip(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "~".to_string(),
        other => format!("<{} key>", kind(other)),
    }
}

/// Keeps hostile input from turning one violation into a megabyte of log.
fn clip(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(100);
        let c = clip(&long);
        assert_eq!(c, format!("{}...", "é".repeat(64)));
    }

    #[test]
    fn key_text_names_every_kind_of_key() {
        assert_eq!(key_text(&Value::String("k".into())), "k");
        assert_eq!(key_text(&Value::Bool(false)), "false");
        assert_eq!(key_text(&Value::Null), "~");
        assert_eq!(key_text(&Value::Sequence(vec![])), "<a list key>");
    }

    #[test]
    fn read_marks_fields_of_a_broken_group_unreadable() {
        // With raft unreadable, no raft relation may fire even though defaults would pass anyway;
        // pin it with a lease relation that must still fire.
        let doc: Value =
            serde_norway::from_str("raft: 1\nlease: {tick-interval-ms: 5000}").unwrap();
        let (_, v) = read(&doc);
        let ids: Vec<_> = v.iter().map(|v| v.rule).collect();
        assert_eq!(
            ids,
            vec![SCHEMA_TYPE, crate::rules::LEASE_TICK_LE_THIRD_MIN_TTL]
        );
        assert_eq!(v[0].path, "raft");
    }
}
