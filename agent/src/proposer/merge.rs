//! Deep merge of a YAML patch onto the deployed document, and the before/after diff.

use serde_norway::Value;

/// Mappings merge key by key, recursively; anything else in the patch replaces what was there.
/// The result is checked as a whole by the envelope, so a patch cannot smuggle anything past
/// it by shape.
pub fn deep_merge(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Mapping(b), Value::Mapping(p)) => {
            let mut out = b.clone();
            for (k, pv) in p {
                let merged = match out.get(k) {
                    Some(bv) => deep_merge(bv, pv),
                    None => pv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Mapping(out)
        }
        (_, p) => p.clone(),
    }
}

/// Line diff of two canonical YAML renderings. Canonical output has the same keys in the same
/// order, so aligned lines are the right pairing; extra lines on either side are shown too.
pub fn line_diff(before: &str, after: &str) -> String {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    let mut out = String::new();
    for i in 0..b.len().max(a.len()) {
        match (b.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {
                out.push_str("  ");
                out.push_str(x);
                out.push('\n');
            }
            (x, y) => {
                if let Some(x) = x {
                    out.push_str("- ");
                    out.push_str(x);
                    out.push('\n');
                }
                if let Some(y) = y {
                    out.push_str("+ ");
                    out.push_str(y);
                    out.push('\n');
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn merge_is_deep_and_patch_wins() {
        let base = y(
            "raft: {heartbeat-interval-ms: 50, rpc-timeout-ms: 1000}\nlease: {min-ttl-ms: 3000}",
        );
        let patch = y("raft: {rpc-timeout-ms: 2000}");
        let merged = deep_merge(&base, &patch);
        assert_eq!(
            merged,
            y("raft: {heartbeat-interval-ms: 50, rpc-timeout-ms: 2000}\nlease: {min-ttl-ms: 3000}")
        );
    }

    #[test]
    fn a_scalar_patch_replaces_a_mapping() {
        let merged = deep_merge(&y("raft: {rpc-timeout-ms: 1}"), &y("raft: 7"));
        assert_eq!(merged, y("raft: 7"));
    }

    #[test]
    fn diff_marks_changed_lines_only() {
        let d = line_diff("a: 1\nb: 2\n", "a: 1\nb: 3\n");
        assert_eq!(d, "  a: 1\n- b: 2\n+ b: 3\n");
    }
}
