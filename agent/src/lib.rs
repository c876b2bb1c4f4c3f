//! AEGIS operations agent. Reads telemetry (Prometheus, or a window file), classifies it with
//! deterministic rules, ranks root causes, and advises only through GitHub pull requests and
//! issues. It never links the data plane (ADR-001; enforced by tests/adr001_boundary.rs).

pub mod anomaly;
pub mod bench;
pub mod classifier;
pub mod diagnoser;
pub mod github;
pub mod llm;
pub mod postmortem;
pub mod proposer;
pub mod run;
pub mod signals;
pub mod telemetry;
