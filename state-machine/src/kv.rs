//! The versioned key-value store: per-key history of values and
//! tombstones, trimmed to a replicated per-key retention.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::shared_bytes;
use crate::store_key::StoreKey;
use crate::types::{KeyValue, RangeResult, SmError};

pub const DEFAULT_MAX_VERSIONS: u64 = 100;

/// One version of a key: a value, or a tombstone (`value == None`).
///
/// The value is shared, not owned: a snapshot encodes a copy of the whole
/// state taken under the lock apply needs. A copy that counts references
/// instead of allocating and copying every retained value holds that lock
/// for less time and does not double the values in memory. The put's watch
/// event and any reply share it too (`KeyValue::value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub mod_revision: u64,
    pub create_revision: u64,
    pub version: u64,
    pub session_id: u64,
    #[serde(with = "shared_bytes::optional")]
    pub value: Option<Arc<[u8]>>,
}

/// The store's map decoded with one allocation per history, and one per key
/// too long to be kept inline. serde's own `Arc<KeyHistory>` decodes into a
/// `Box` first and then copies it into the `Arc`.
mod shared_keys {
    use std::collections::BTreeMap;
    use std::fmt;
    use std::sync::Arc;

    use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde::Deserializer;

    use super::{KeyHistory, StoreKey};

    type Keys = BTreeMap<StoreKey, Arc<KeyHistory>>;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
        d.deserialize_map(KeysVisitor)
    }

    struct KeysVisitor;

    impl<'de> Visitor<'de> for KeysVisitor {
        type Value = Keys;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of keys to histories")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
            // Gathered first and built in one go: the keys come in order, and
            // a tree built from sorted pairs needs no search per key.
            let mut keys = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(key) = map.next_key_seed(Key)? {
                keys.push((key, Arc::new(map.next_value::<KeyHistory>()?)));
            }
            Ok(keys.into_iter().collect())
        }
    }

    pub(super) struct Key;

    impl<'de> DeserializeSeed<'de> for Key {
        type Value = StoreKey;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<StoreKey, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Key {
        type Value = StoreKey;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a key: a sequence of bytes")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<StoreKey, A::Error> {
            crate::shared_bytes::bytes_from_seq(seq, StoreKey::new)
        }
    }
}

/// A put as the store applies it.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub session_id: u64,
    pub revision: u64,
    /// Copy the replaced value out (the put's `prev_kv`).
    pub want_prev: bool,
}

/// The live version a put replaced. The value itself is there only if the
/// put asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub session_id: u64,
    pub create_revision: u64,
    pub version: u64,
    pub kv: Option<KeyValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHistory {
    /// Oldest first; mod_revision never decreases.
    entries: VecDeque<Entry>,
    /// Highest mod_revision dropped by retention; 0 if none.
    compacted_to: u64,
}

/// Histories are shared as well, and keys too long to be kept inline
/// (`StoreKey`): the snapshot's copy of the store is then the tree's nodes
/// and a reference count per key, and a write copies a key's history only
/// while a copy still holds it (`Arc::make_mut`). Encoded exactly as a map
/// of `Vec<u8>` to histories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    #[serde(deserialize_with = "shared_keys::deserialize")]
    keys: BTreeMap<StoreKey, Arc<KeyHistory>>,
    max_versions: u64,
    live_keys: u64,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore {
            keys: BTreeMap::new(),
            max_versions: DEFAULT_MAX_VERSIONS,
            live_keys: 0,
        }
    }
}

fn to_kv(key: &[u8], e: &Entry, keys_only: bool) -> Option<KeyValue> {
    let value = e.value.as_ref()?;
    Some(KeyValue {
        key: key.to_vec(),
        // An empty `Arc<[u8]>` from `default()` allocates nothing; one made
        // from an empty slice would allocate its counts for every key listed.
        value: if keys_only {
            Arc::default()
        } else {
            Arc::clone(value)
        },
        create_revision: e.create_revision,
        mod_revision: e.mod_revision,
        version: e.version,
        session_id: e.session_id,
    })
}

impl KeyHistory {
    fn latest(&self) -> Option<&Entry> {
        self.entries.back()
    }

    fn put(&mut self, put: &NewVersion<'_>, max_versions: u64) -> (Option<Replaced>, KeyValue) {
        let replaced = self
            .latest()
            .filter(|e| e.value.is_some())
            .map(|e| Replaced {
                session_id: e.session_id,
                create_revision: e.create_revision,
                version: e.version,
                kv: if put.want_prev {
                    to_kv(put.key, e, false)
                } else {
                    None
                },
            });
        let (create_revision, version) = match &replaced {
            Some(r) => (r.create_revision, r.version.saturating_add(1)),
            None => (put.revision, 1),
        };
        let value: Arc<[u8]> = Arc::from(put.value);
        self.entries.push_back(Entry {
            mod_revision: put.revision,
            create_revision,
            version,
            session_id: put.session_id,
            value: Some(Arc::clone(&value)),
        });
        self.trim(max_versions);
        let kv = KeyValue {
            key: put.key.to_vec(),
            value,
            create_revision,
            mod_revision: put.revision,
            version,
            session_id: put.session_id,
        };
        (replaced, kv)
    }

    /// The entry in force at `revision`, or None if the key did not exist.
    fn at(&self, revision: u64) -> Result<Option<&Entry>, SmError> {
        let n = self.entries.partition_point(|e| e.mod_revision <= revision);
        if n > 0 {
            return Ok(self.entries.get(n - 1));
        }
        // Older than everything retained: if anything was dropped, the answer
        // may have been in it.
        if self.compacted_to > 0 {
            return Err(SmError::Compacted {
                revision,
                compact_revision: self.compacted_to,
            });
        }
        Ok(None)
    }

    fn trim(&mut self, max_versions: u64) {
        while self.entries.len() as u64 > max_versions {
            match self.entries.pop_front() {
                Some(old) => self.compacted_to = self.compacted_to.max(old.mod_revision),
                None => break,
            }
        }
    }
}

impl KvStore {
    pub fn latest(&self, key: &[u8]) -> Option<KeyValue> {
        let e = self.keys.get(key)?.latest()?;
        to_kv(key, e, false)
    }

    /// `revision` must already be resolved (non-zero, not in the future).
    pub fn get_at(&self, key: &[u8], revision: u64) -> Result<Option<KeyValue>, SmError> {
        let Some(history) = self.keys.get(key) else {
            return Ok(None);
        };
        Ok(history.at(revision)?.and_then(|e| to_kv(key, e, false)))
    }

    pub fn range_at(
        &self,
        prefix: &[u8],
        limit: u32,
        revision: u64,
        keys_only: bool,
    ) -> Result<RangeResult, SmError> {
        self.range_with(prefix, limit, keys_only, |h| h.at(revision))
    }

    /// A range over the newest state; cannot hit compacted history.
    pub fn range_latest(&self, prefix: &[u8], limit: u32, keys_only: bool) -> RangeResult {
        let newest = self.range_with(prefix, limit, keys_only, |h| Ok(h.latest()));
        newest.unwrap_or(RangeResult {
            kvs: Vec::new(),
            more: false,
            count: 0,
        })
    }

    fn range_with<'a>(
        &'a self,
        prefix: &[u8],
        limit: u32,
        keys_only: bool,
        pick: impl Fn(&'a KeyHistory) -> Result<Option<&'a Entry>, SmError>,
    ) -> Result<RangeResult, SmError> {
        let mut kvs = Vec::new();
        let mut count = 0u64;
        for (key, history) in self.under(prefix) {
            let Some(kv) = pick(history)?.and_then(|e| to_kv(key, e, keys_only)) else {
                continue;
            };
            count += 1;
            if limit == 0 || kvs.len() < limit as usize {
                kvs.push(kv);
            }
        }
        let more = count > kvs.len() as u64;
        Ok(RangeResult { kvs, more, count })
    }

    /// Writes a new version; returns what it replaced, if the key was live,
    /// and the new value. The replaced value itself is copied out only when
    /// `want_prev`: most puts do not ask for it.
    pub fn put(&mut self, put: NewVersion<'_>) -> (Option<Replaced>, KeyValue) {
        let max_versions = self.max_versions;
        // An existing key (most puts) is found without copying it.
        if let Some(history) = self.keys.get_mut(put.key) {
            let (replaced, kv) = Arc::make_mut(history).put(&put, max_versions);
            if replaced.is_none() {
                self.live_keys += 1;
            }
            return (replaced, kv);
        }
        // A new key replaces nothing, asked or not.
        let mut history = KeyHistory::default();
        let (_, kv) = history.put(&put, max_versions);
        self.keys.insert(StoreKey::new(put.key), Arc::new(history));
        self.live_keys += 1;
        (None, kv)
    }

    /// Writes a tombstone if `key` is live; returns the value it ended.
    pub fn delete(&mut self, key: &[u8], revision: u64) -> Option<KeyValue> {
        let max_versions = self.max_versions;
        // Checked before `make_mut`, which would copy a shared history.
        let prev = to_kv(key, self.keys.get(key)?.latest()?, false)?;
        let history = Arc::make_mut(self.keys.get_mut(key)?);
        history.entries.push_back(Entry {
            mod_revision: revision,
            create_revision: 0,
            version: 0,
            session_id: 0,
            value: None,
        });
        history.trim(max_versions);
        self.live_keys = self.live_keys.saturating_sub(1);
        Some(prev)
    }

    /// Keys starting with `prefix` and their histories, in order.
    fn under<'s: 'i, 'p: 'i, 'i>(
        &'s self,
        prefix: &'p [u8],
    ) -> impl Iterator<Item = (&'s StoreKey, &'s Arc<KeyHistory>)> + 'i {
        self.keys
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// Live keys under `prefix`, in order.
    pub fn live_keys_with_prefix(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.under(prefix)
            .filter(|(_, h)| h.latest().is_some_and(|e| e.value.is_some()))
            .map(|(k, _)| k.to_vec())
            .collect()
    }

    /// (key, session) for every live key bound to a session.
    pub fn bound_keys(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.keys.iter().filter_map(|(k, h)| {
            let e = h.latest()?;
            (e.value.is_some() && e.session_id != 0).then_some((&**k, e.session_id))
        })
    }

    pub fn set_max_versions(&mut self, max_versions: u64) {
        self.max_versions = max_versions;
        for history in self.keys.values_mut() {
            if history.entries.len() as u64 > max_versions {
                Arc::make_mut(history).trim(max_versions);
            }
        }
    }

    pub fn max_versions(&self) -> u64 {
        self.max_versions
    }

    pub fn live_count(&self) -> u64 {
        self.live_keys
    }

    /// Structural checks for a restored snapshot.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_versions == 0 {
            return Err("kv retention is 0".into());
        }
        let mut live = 0u64;
        for (key, h) in &self.keys {
            if key.is_empty() || h.entries.is_empty() {
                return Err("kv history malformed".into());
            }
            if h.entries.len() as u64 > self.max_versions {
                return Err("kv history longer than retention".into());
            }
            let ordered = h
                .entries
                .iter()
                .zip(h.entries.iter().skip(1))
                .all(|(a, b)| a.mod_revision <= b.mod_revision);
            if !ordered {
                return Err("kv history out of order".into());
            }
            if h.latest().is_some_and(|e| e.value.is_some()) {
                live += 1;
            }
        }
        if live != self.live_keys {
            return Err("kv live key count mismatch".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::{
        shared_bytes, shared_keys, Entry, KeyHistory, KvStore, NewVersion, DEFAULT_MAX_VERSIONS,
    };

    fn put<'a>(
        key: &'a [u8],
        value: &'a [u8],
        session_id: u64,
        revision: u64,
        want_prev: bool,
    ) -> NewVersion<'a> {
        NewVersion {
            key,
            value,
            session_id,
            revision,
            want_prev,
        }
    }

    #[test]
    fn a_put_copies_the_value_it_replaced_only_when_asked() {
        let mut kv = KvStore::default();
        let (replaced, first) = kv.put(put(b"k", b"a", 7, 1, true));
        assert!(replaced.is_none());
        assert_eq!((first.create_revision, first.version), (1, 1));

        let (replaced, second) = kv.put(put(b"k", b"b", 0, 2, false));
        let r = replaced.expect("the live value was replaced");
        assert_eq!((r.session_id, r.create_revision, r.version), (7, 1, 1));
        assert_eq!(r.kv, None);
        assert_eq!((second.create_revision, second.version), (1, 2));

        let (replaced, _) = kv.put(put(b"k", b"c", 0, 3, true));
        let prev = replaced.and_then(|r| r.kv).expect("asked for");
        assert_eq!((&prev.value[..], prev.mod_revision), (&b"b"[..], 2));
        assert_eq!(kv.live_keys, 1);
    }

    #[test]
    fn a_put_after_a_tombstone_starts_a_new_generation() {
        let mut kv = KvStore::default();
        kv.put(put(b"k", b"a", 0, 1, false));
        assert!(kv.delete(b"k", 2).is_some());
        assert_eq!(kv.live_keys, 0);
        let (replaced, kv3) = kv.put(put(b"k", b"b", 0, 3, true));
        assert!(replaced.is_none(), "a tombstone is not a live value");
        assert_eq!((kv3.create_revision, kv3.version), (3, 1));
        assert_eq!(kv.live_keys, 1);
    }

    /// The snapshot copies the store under the lock apply needs: the copy
    /// shares keys, histories and values, and a write afterwards changes the
    /// original only.
    #[test]
    fn a_copy_of_the_store_shares_until_written() {
        let mut kv = KvStore::default();
        kv.put(put(b"k", &[7; 300], 0, 1, false));
        kv.put(put(b"j", b"j1", 0, 2, false));
        let copy = kv.clone();
        let (orig, copied) = (&kv.keys[&b"k"[..]], &copy.keys[&b"k"[..]]);
        assert!(Arc::ptr_eq(orig, copied), "the history is shared");
        let value = |h: &KeyHistory| h.latest().and_then(|e| e.value.clone());
        let (a, b) = (value(orig), value(copied));
        assert!(a.zip(b).is_some_and(|(a, b)| Arc::ptr_eq(&a, &b)));

        kv.put(put(b"k", b"k2", 0, 3, false));
        assert!(kv.delete(b"j", 4).is_some());
        kv.set_max_versions(1);
        assert_eq!(
            kv.latest(b"k").map(|e| e.value.to_vec()),
            Some(b"k2".to_vec())
        );
        assert_eq!(
            copy.latest(b"k").map(|e| e.value.to_vec()),
            Some(vec![7; 300])
        );
        assert_eq!(
            copy.latest(b"j").map(|e| e.value.to_vec()),
            Some(b"j1".to_vec())
        );
        assert_eq!(copy.max_versions(), DEFAULT_MAX_VERSIONS);
        assert_eq!(kv.latest(b"j"), None);
    }

    /// Snapshots of earlier builds hold the store as a map of plain byte
    /// vectors to histories; sharing changed the types, not the encoding.
    #[test]
    fn shared_keys_keep_the_plain_map_encoding() {
        let mut kv = KvStore::default();
        kv.put(put(b"a", b"1", 0, 1, false));
        kv.put(put(b"b", &[9; 200], 3, 2, false));
        assert!(kv.delete(b"a", 3).is_some());
        // Keys as long as the stack buffer, and longer.
        kv.put(put(&[b'c'; 64], b"2", 0, 4, false));
        kv.put(put(&[b'd'; 65], b"3", 0, 5, false));
        kv.put(put(&[b'e'; 300], b"4", 0, 6, false));
        let plain: BTreeMap<Vec<u8>, KeyHistory> = kv
            .keys
            .iter()
            .map(|(k, h)| (k.to_vec(), KeyHistory::clone(h)))
            .collect();
        let old = postcard::to_stdvec(&(plain, kv.max_versions, kv.live_keys)).expect("encode");
        assert_eq!(postcard::to_stdvec(&kv).expect("encode"), old);
        assert_eq!(postcard::from_bytes::<KvStore>(&old).expect("decode"), kv);
    }

    /// The tree is built from the decoded pairs in one go; pairs out of
    /// order still land in order, and of a key given twice the later stays,
    /// as inserting them one by one would leave it.
    #[test]
    fn a_decoded_store_orders_its_keys_and_keeps_the_last_of_a_repeated_one() {
        let mut kv = KvStore::default();
        kv.put(put(b"b", b"2", 0, 1, false));
        kv.put(put(b"a", b"1", 0, 2, false));
        let history = |key: &[u8]| KeyHistory::clone(&kv.keys[key]);
        let mut stale = history(b"a");
        stale.compacted_to = 1;
        let pairs = vec![
            (b"b".to_vec(), history(b"b")),
            (b"a".to_vec(), stale),
            (b"a".to_vec(), history(b"a")),
        ];
        // postcard encodes a map as its length and the pairs, as a sequence
        // of pairs is encoded.
        let bytes = postcard::to_stdvec(&(pairs, kv.max_versions, kv.live_keys)).expect("encode");
        let decoded = postcard::from_bytes::<KvStore>(&bytes).expect("decode");
        assert_eq!(decoded, kv);
        assert_eq!(
            decoded.keys.keys().map(|k| k.to_vec()).collect::<Vec<_>>(),
            [b"a".to_vec(), b"b".to_vec()]
        );
    }

    /// A key is gathered on the stack up to its size and in a `Vec` beyond:
    /// every length around the boundary decodes to itself.
    #[test]
    fn a_key_decodes_at_every_length() {
        use serde::de::value::{Error, SeqDeserializer};
        use serde::de::DeserializeSeed;

        for len in [0, 1, 63, 64, 65, 300] {
            let key: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let seq = SeqDeserializer::<_, Error>::new(key.iter().copied());
            let decoded = shared_keys::Key.deserialize(seq).expect("decodes");
            assert_eq!(&decoded[..], &key[..], "length {len}");
        }
        let not_bytes = SeqDeserializer::<_, Error>::new([1u16, 300].into_iter());
        assert!(shared_keys::Key.deserialize(not_bytes).is_err());
    }

    /// A value decodes from whatever `serde_bytes::ByteBuf` accepts:
    /// postcard hands over borrowed bytes, a reader owned ones, and
    /// self-describing formats a sequence or a string.
    #[test]
    fn a_value_decodes_from_every_form_of_bytes() {
        use serde::de::value::{
            BorrowedBytesDeserializer, BytesDeserializer, Error, SeqDeserializer, StrDeserializer,
        };
        use serde::Deserializer;

        let want: &[u8] = &[0, 7, 255];
        let decode = |r: Result<Arc<[u8]>, Error>| r.expect("decodes").to_vec();
        let shared = || shared_bytes::SharedBytes;
        assert_eq!(
            decode(BorrowedBytesDeserializer::<Error>::new(want).deserialize_bytes(shared())),
            want
        );
        assert_eq!(
            decode(BytesDeserializer::<Error>::new(want).deserialize_bytes(shared())),
            want
        );
        assert_eq!(
            decode(
                SeqDeserializer::<_, Error>::new(want.iter().copied()).deserialize_bytes(shared())
            ),
            want
        );
        assert_eq!(
            decode(StrDeserializer::<Error>::new("ab").deserialize_bytes(shared())),
            b"ab"
        );
        let too_big = SeqDeserializer::<_, Error>::new([1u16, 256].into_iter());
        assert!(
            too_big.deserialize_bytes(shared()).is_err(),
            "256 is no byte"
        );

        // Through postcard, from a buffer and from a reader.
        for value in [None, Some(Arc::<[u8]>::from(vec![3; 300]))] {
            let e = Entry {
                mod_revision: 2,
                create_revision: 1,
                version: 1,
                session_id: 0,
                value,
            };
            let bytes = postcard::to_stdvec(&e).expect("encode");
            assert_eq!(postcard::from_bytes::<Entry>(&bytes).expect("decode"), e);
            let mut scratch = [0u8; 512];
            let (read, _) = postcard::from_io::<Entry, _>((&bytes[..], &mut scratch))
                .expect("decode from a reader");
            assert_eq!(read, e);
        }
    }
}
