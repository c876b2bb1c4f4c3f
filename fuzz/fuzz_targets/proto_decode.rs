//! gRPC request decoding: arbitrary bytes through the prost decoders of
//! every public request and the peer envelope must fail cleanly or decode
//! into messages that re-encode and decode to themselves.
#![no_main]

use aegis_proto::{raft, v1 as pb};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn roundtrip<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(m) = M::decode(data) {
        let again = M::decode(m.encode_to_vec().as_slice()).expect("re-encoded message decodes");
        assert_eq!(m, again);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    match which % 8 {
        0 => roundtrip::<pb::PutRequest>(body),
        1 => roundtrip::<pb::TxnRequest>(body),
        2 => roundtrip::<pb::DeleteRequest>(body),
        3 => roundtrip::<pb::WatchRequest>(body),
        4 => roundtrip::<pb::AcquireRequest>(body),
        5 => roundtrip::<pb::RangeRequest>(body),
        6 => roundtrip::<raft::RaftPayload>(body),
        _ => roundtrip::<raft::SnapshotChunk>(body),
    }
});
