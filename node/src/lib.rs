//! An AEGIS replica. `raft` owns consensus and storage (and alone knows
//! openraft), `api` serves the public gRPC services, `metrics` the
//! telemetry port, `ticker` the leader's periodic duties.

#[macro_use]
pub mod failpoint;
pub mod api;
pub mod cli;
pub mod metrics;
pub mod raft;
pub mod server;
mod ticker;
