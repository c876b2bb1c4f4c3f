//! An AEGIS replica. `raft` owns consensus and storage (and alone knows
//! openraft), `api` serves the public gRPC services, `metrics` the
//! telemetry port, `ticker` the leader's periodic duties.

#[macro_use]
pub mod failpoint;
#[macro_use]
pub mod timeline;
pub mod api;
pub mod cli;
pub mod leader_spin;
pub mod metrics;
pub mod raft;
pub mod server;
mod thread_priority;
mod ticker;

/// Request validation and conversion for the fuzz targets (fuzz/); not an
/// API. The handlers run exactly these functions before proposing.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::api::request::{
        acquire, close_session, delete, get, inspect, keep_alive, open_session, put, release, txn,
        watch,
    };
}
