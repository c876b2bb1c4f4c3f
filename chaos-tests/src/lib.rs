//! The AEGIS reliability harness.
//!
//! Test clients record every operation they issue into a [`history`] (JSON
//! lines, see docs/HISTORY-FORMAT.md); the [`check`]ers then decide whether
//! that history is allowed: per-key linearizability of the KV register,
//! lock safety with fencing tokens, watch delivery, and replica
//! determinism. [`workload`] drives a cluster while [`faults`] break it;
//! [`scenario`] ties one run together and [`netns`] places real nodes in
//! network namespaces to cut, delay and flap their links.

pub mod check;
pub mod delay_proxy;
pub mod faults;
pub mod history;
pub mod netns;
pub mod node_bin;
pub mod rng;
pub mod scenario;
pub mod workload;
