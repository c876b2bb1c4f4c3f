//! Violations and the error type every caller sees.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// One broken rule. `rule` is a stable id from [`crate::RULES`]; `path` names the offending
/// key as `group.field` (or `<root>` for document-level problems).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: &'static str,
    pub path: String,
    pub message: String,
}

impl Violation {
    pub fn new(rule: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            rule,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.rule, self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config rejected: {}", join(.0))]
    Rejected(Vec<Violation>),
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn join(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConfigError {
    /// Rule ids of every violation, in report order; empty for I/O errors, which break no rule.
    pub fn rule_ids(&self) -> Vec<&'static str> {
        self.violations().iter().map(|v| v.rule).collect()
    }

    /// The violations behind a rejection; empty for I/O errors.
    pub fn violations(&self) -> &[Violation] {
        match self {
            ConfigError::Rejected(v) => v,
            ConfigError::Io { .. } => &[],
        }
    }
}
