//! On-disk record framing.
//!
//! ```text
//! [len u32 LE][crc u32 LE][kind u8][index u64 LE][payload: len bytes]
//! ```
//! `len` is the payload length. The CRC-32 covers `len`, `kind`, `index` and `payload`:
//! covering `len` too means a flipped length bit is caught by the checksum instead of
//! silently re-slicing the stream.

/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 4 + 4 + 1 + 8;

/// The length field is a u32; keep one bit of headroom so a frame size always fits in memory
/// arithmetic on 32-bit targets too.
pub const MAX_PAYLOAD: usize = (u32::MAX >> 1) as usize;

const KIND_ENTRY: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const KIND_PURGE: u8 = 3;

/// One logical record. Truncate and purge are records too, so replaying the segments in order
/// rebuilds exactly the state the writer had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Entry {
        index: u64,
        payload: &'a [u8],
    },
    /// Remove entries with index >= `from`.
    Truncate {
        from: u64,
    },
    /// Entries <= `upto` are purged; `meta` is opaque caller data (e.g. the purged log id).
    Purge {
        upto: u64,
        meta: &'a [u8],
    },
}

impl Record<'_> {
    fn parts(&self) -> (u8, u64, &[u8]) {
        match *self {
            Record::Entry { index, payload } => (KIND_ENTRY, index, payload),
            Record::Truncate { from } => (KIND_TRUNCATE, from, &[]),
            Record::Purge { upto, meta } => (KIND_PURGE, upto, meta),
        }
    }

    /// Appends the encoded frame to `out`. The caller has checked the payload against
    /// [`MAX_PAYLOAD`].
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        let (kind, index, payload) = self.parts();
        let len = u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes();
        let crc = checksum(len, kind, index, payload);
        out.reserve(HEADER_LEN + payload.len());
        out.extend_from_slice(&len);
        out.extend_from_slice(&crc.to_le_bytes());
        out.push(kind);
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(payload);
    }
}

fn checksum(len: [u8; 4], kind: u8, index: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(&[kind]);
    h.update(&index.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Result of decoding the frame at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    Frame {
        record: Record<'a>,
        len: usize,
    },
    /// The buffer ends before the frame does (a torn write, if at the end of the last segment).
    Incomplete,
    /// Header and payload are all there but the checksum does not match.
    BadChecksum,
    /// The checksum matches but the kind is unknown: written by something else, not torn.
    UnknownKind,
}

pub(crate) fn decode(buf: &[u8]) -> Decoded<'_> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Decoded::Incomplete;
    };
    let len_bytes = [header[0], header[1], header[2], header[3]];
    let stored_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let kind = header[8];
    let mut index_bytes = [0u8; 8];
    index_bytes.copy_from_slice(&header[9..17]);
    let index = u64::from_le_bytes(index_bytes);
    let payload_len = u32::from_le_bytes(len_bytes) as usize;
    let Some(end) = HEADER_LEN.checked_add(payload_len) else {
        return Decoded::Incomplete;
    };
    let Some(payload) = buf.get(HEADER_LEN..end) else {
        return Decoded::Incomplete;
    };
    if checksum(len_bytes, kind, index, payload) != stored_crc {
        return Decoded::BadChecksum;
    }
    let record = match kind {
        KIND_ENTRY => Record::Entry { index, payload },
        KIND_TRUNCATE if payload.is_empty() => Record::Truncate { from: index },
        KIND_PURGE => Record::Purge {
            upto: index,
            meta: payload,
        },
        _ => return Decoded::UnknownKind,
    };
    Decoded::Frame { record, len: end }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(r: &Record<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        r.encode_into(&mut v);
        v
    }

    #[test]
    fn round_trips_every_kind() {
        let records = [
            Record::Entry {
                index: 7,
                payload: b"hello",
            },
            Record::Entry {
                index: u64::MAX,
                payload: b"",
            },
            Record::Truncate { from: 3 },
            Record::Purge {
                upto: 9,
                meta: b"term=4",
            },
        ];
        for r in &records {
            let bytes = encoded(r);
            assert_eq!(
                decode(&bytes),
                Decoded::Frame {
                    record: r.clone(),
                    len: bytes.len()
                }
            );
        }
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let bytes = encoded(&Record::Entry {
            index: 1,
            payload: b"abcdef",
        });
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Decoded::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let bytes = encoded(&Record::Entry {
            index: 42,
            payload: b"payload bytes",
        });
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[byte] ^= 1 << bit;
                let d = decode(&damaged);
                assert!(
                    !matches!(d, Decoded::Frame { .. }),
                    "flip of byte {byte} bit {bit} decoded as {d:?}"
                );
            }
        }
    }

    #[test]
    fn zero_filled_tail_is_not_a_frame() {
        assert_eq!(decode(&[0u8; 64]), Decoded::BadChecksum);
    }

    #[test]
    fn valid_checksum_with_unknown_kind_is_reported() {
        let len = 0u32.to_le_bytes();
        let crc = checksum(len, 99, 1, &[]);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&len);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.push(99);
        bytes.extend_from_slice(&1u64.to_le_bytes());
        assert_eq!(decode(&bytes), Decoded::UnknownKind);
    }
}
