//! The deterministic state machine (ADR-001).
mod types;
pub use types::*;
