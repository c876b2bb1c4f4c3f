//! Checkers over a recorded history. Each returns the violations it found;
//! an empty list means the history is allowed.

pub mod digest;
pub mod linear;
pub mod lock;
pub mod watch;

use serde::Serialize;

use crate::history::Record;

/// One way the history breaks a property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub checker: &'static str,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}: {}", self.checker, self.key, self.message)
    }
}

/// Linearizability, lock safety and watch delivery over one history.
pub fn check_history(records: &[Record], search_limit: u64) -> Vec<Violation> {
    let mut v = linear::check(records, search_limit);
    v.extend(lock::check(records));
    v.extend(watch::check(records));
    v
}
