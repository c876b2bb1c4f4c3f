//! Generated types for the AEGIS gRPC APIs.

pub mod codec;

/// The public API: sessions, locks, KV, watch and admin.
pub mod v1 {
    tonic::include_proto!("aegis.v1");
}

/// The peer API that carries Raft RPCs between replicas.
pub mod raft {
    tonic::include_proto!("aegis.raft.v1");
}
