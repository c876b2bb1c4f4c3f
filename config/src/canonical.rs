//! Canonical text and content hash. Written from the field table rather than through serde so the
//! output has no fallible step and its order is fixed by the table.

use sha2::{Digest, Sha256};

use crate::model::ClusterConfig;
use crate::rules::FIELDS;

pub(crate) fn to_yaml(cfg: &ClusterConfig) -> String {
    let mut out = String::new();
    let mut group = "";
    for f in FIELDS {
        if f.group != group {
            group = f.group;
            out.push_str(group);
            out.push_str(":\n");
        }
        out.push_str(&format!("  {}: {}\n", f.key, (f.get)(cfg)));
    }
    out
}

pub(crate) fn hash(cfg: &ClusterConfig) -> String {
    hex::encode(Sha256::digest(to_yaml(cfg).as_bytes()))
}
