//! Shared byte strings (`Arc<[u8]>`) encoded exactly as `serde_bytes`
//! encodes a `Vec<u8>`, so snapshots and digests do not depend on whether a
//! value is shared. Decoding from a buffer copies the bytes once, straight
//! into their `Arc`, instead of into a `Vec` first that the `Arc` then
//! copies again.
//!
//! Values are shared because one value is held in several places: the
//! key's history, the watch history's event, a reply, and the snapshot's
//! copy of the state. Each holds a reference instead of a copy.

use std::fmt;
use std::sync::Arc;

use serde::de::{Error, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

pub fn serialize<S: Serializer>(v: &Arc<[u8]>, s: S) -> Result<S::Ok, S::Error> {
    serde_bytes::serialize(&**v, s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[u8]>, D::Error> {
    d.deserialize_bytes(SharedBytes)
}

/// `Option<Arc<[u8]>>`, encoded as `serde_bytes` encodes `Option<Vec<u8>>`.
pub mod optional {
    use std::fmt;
    use std::sync::Arc;

    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Arc<[u8]>>, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(&v.as_deref(), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<[u8]>>, D::Error> {
        d.deserialize_option(MaybeBytes)
    }

    struct MaybeBytes;

    impl<'de> Visitor<'de> for MaybeBytes {
        type Value = Option<Arc<[u8]>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an optional byte string")
        }

        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

/// Accepts what `serde_bytes::ByteBuf` accepts: bytes, borrowed or not, a
/// sequence of bytes (self-describing formats such as JSON), or a string.
pub(crate) struct SharedBytes;

impl<'de> Visitor<'de> for SharedBytes {
    type Value = Arc<[u8]>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(Arc::from(v))
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(Arc::from(v))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Arc::from(v.as_bytes()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        bytes_from_seq(seq, |b: &[u8]| Arc::from(b))
    }
}

/// Bytes encoded as a sequence, gathered on the stack when short and copied
/// once into what `make` builds from them. Keys are encoded so, as a
/// `Vec<u8>` is.
pub(crate) fn bytes_from_seq<'de, A, T>(
    mut seq: A,
    make: impl FnOnce(&[u8]) -> T,
) -> Result<T, A::Error>
where
    A: SeqAccess<'de>,
{
    const ON_STACK: usize = 64;
    let mut stack = [0u8; ON_STACK];
    for (len, slot) in stack.iter_mut().enumerate() {
        match seq.next_element::<u8>()? {
            Some(b) => *slot = b,
            None => return Ok(make(&stack[..len])),
        }
    }
    let mut long = stack.to_vec();
    while let Some(b) = seq.next_element::<u8>()? {
        long.push(b);
    }
    Ok(make(&long))
}
