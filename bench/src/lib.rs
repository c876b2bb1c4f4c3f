//! `aegis-bench`: a closed-loop load generator and a leader-failover benchmark that drive
//! AEGIS (aegis.v1 gRPC) and etcd (v3 gRPC) with equivalent operations, so one run on one
//! machine yields a side-by-side comparison.

pub mod backend;
pub mod cli;
pub mod compare;
pub mod failover;
pub mod keys;
pub mod metrics_probe;
pub mod pairs;
pub mod procs;
pub mod progress;
pub mod report;
pub mod runner;
pub mod timeline;
pub mod watch;
