// Shared helpers for the integration tests.
#![allow(dead_code)]

use aegis_config::{ClusterConfig, ConfigError};

/// Rule ids from parsing `text`, sorted, failing the test if it was accepted.
pub fn rejected_ids(text: &str) -> Vec<&'static str> {
    match ClusterConfig::from_yaml(text) {
        Ok(cfg) => panic!("expected rejection of {text:?}, got {cfg:?}"),
        Err(e) => {
            let mut ids = e.rule_ids();
            ids.sort();
            ids
        }
    }
}

pub fn rejected(text: &str) -> ConfigError {
    match ClusterConfig::from_yaml(text) {
        Ok(cfg) => panic!("expected rejection of {text:?}, got {cfg:?}"),
        Err(e) => e,
    }
}

pub fn sorted_ids(cfg: &ClusterConfig) -> Vec<&'static str> {
    let mut ids: Vec<_> = cfg.check().iter().map(|v| v.rule).collect();
    ids.sort();
    ids
}
