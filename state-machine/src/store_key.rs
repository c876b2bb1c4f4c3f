//! A key as the KV store's tree holds it.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// The longest key kept in the tree's own nodes.
const INLINE: usize = 22;

/// Short keys (most lock names and configuration paths) are kept inline, in
/// the tree's nodes: a lookup then compares bytes it has already loaded,
/// where a key behind a pointer costs a cache miss at every comparison on
/// the way down, and on a machine whose replicas crowd each other out of
/// the caches those misses were most of a put's apply. Longer keys are
/// shared, so the snapshot's copy of the tree counts references for them
/// instead of copying them; an inline key is copied with the node it is in.
#[derive(Clone)]
pub(crate) enum StoreKey {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<[u8]>),
}

// Three words: one more than an `Arc<[u8]>` alone, for the tag and length.
const _: () = assert!(std::mem::size_of::<StoreKey>() == 24);

impl StoreKey {
    pub(crate) fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            StoreKey::Inline {
                // Fits: at most INLINE, which is below 256.
                len: key.len() as u8,
                bytes,
            }
        } else {
            StoreKey::Shared(Arc::from(key))
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            StoreKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            StoreKey::Shared(key) => key,
        }
    }
}

impl Deref for StoreKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Lookups take `&[u8]`; the order below is the bytes' order, as `Borrow`
/// requires.
impl Borrow<[u8]> for StoreKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for StoreKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for StoreKey {}

impl PartialOrd for StoreKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StoreKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes().fmt(f)
    }
}

/// Encoded as a `Vec<u8>` is (a sequence of bytes), so snapshots and
/// digests do not depend on where a key is kept.
impl Serialize for StoreKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_on_both_sides_of_the_inline_limit_keep_their_bytes_and_order() {
        let keys: Vec<Vec<u8>> = [0, 1, INLINE - 1, INLINE, INLINE + 1, 300]
            .iter()
            .flat_map(|&len| [vec![b'a'; len], vec![b'b'; len]])
            .collect();
        for key in &keys {
            let stored = StoreKey::new(key);
            assert_eq!(&stored[..], &key[..]);
            assert_eq!(
                matches!(stored, StoreKey::Inline { .. }),
                key.len() <= INLINE
            );
            for other in &keys {
                assert_eq!(stored.cmp(&StoreKey::new(other)), key.cmp(other));
            }
        }
    }

    #[test]
    fn a_key_encodes_as_a_byte_vector_does() {
        for len in [0, INLINE, INLINE + 1] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(
                postcard::to_stdvec(&StoreKey::new(&key)).expect("encode"),
                postcard::to_stdvec(&key).expect("encode")
            );
        }
    }
}
