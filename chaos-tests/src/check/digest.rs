//! Replica determinism: replicas that report a state digest for the same
//! applied index must report the same digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Violation;

/// One observation of a replica's Admin status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestSample {
    pub node: u64,
    pub index: u64,
    pub digest: String,
    pub at_ns: u64,
}

pub fn check(samples: &[DigestSample]) -> Vec<Violation> {
    let mut by_index: BTreeMap<u64, BTreeMap<&str, Vec<u64>>> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.index > 0 && !s.digest.is_empty())
    {
        by_index
            .entry(s.index)
            .or_default()
            .entry(&s.digest)
            .or_default()
            .push(s.node);
    }
    by_index
        .into_iter()
        .filter(|(_, digests)| digests.len() > 1)
        .map(|(index, digests)| Violation {
            checker: "determinism",
            key: format!("index {index}"),
            message: format!("replicas disagree at applied index {index}: {digests:?}"),
        })
        .collect()
}

/// How many distinct indexes were seen on at least two replicas: the
/// comparisons the check actually made.
pub fn compared_indexes(samples: &[DigestSample]) -> usize {
    let mut nodes: BTreeMap<u64, std::collections::BTreeSet<u64>> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.index > 0 && !s.digest.is_empty())
    {
        nodes.entry(s.index).or_default().insert(s.node);
    }
    nodes.values().filter(|n| n.len() > 1).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(node: u64, index: u64, digest: &str) -> DigestSample {
        DigestSample {
            node,
            index,
            digest: digest.into(),
            at_ns: 0,
        }
    }

    #[test]
    fn agreeing_replicas_pass_and_disagreeing_ones_fail() {
        let ok = [
            s(1, 10, "aa"),
            s(2, 10, "aa"),
            s(3, 11, "bb"),
            s(1, 11, "bb"),
        ];
        assert_eq!(check(&ok), vec![]);
        assert_eq!(compared_indexes(&ok), 2);
        let bad = [s(1, 10, "aa"), s(2, 10, "ab"), s(3, 10, "aa")];
        let v = check(&bad);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("disagree"), "{v:?}");
        // Samples without a digest are ignored.
        assert_eq!(check(&[s(1, 10, ""), s(2, 10, "x")]), vec![]);
    }
}
