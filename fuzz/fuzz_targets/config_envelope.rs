//! Config parsing and the safety envelope: any text either fails with an
//! error or yields a config that passes the envelope and survives a
//! round trip through its own YAML unchanged.
#![no_main]

use aegis_config::ClusterConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(cfg) = ClusterConfig::from_yaml(text) else { return };
    assert!(cfg.validate().is_ok(), "an accepted config fails the envelope");
    let again = ClusterConfig::from_yaml(&cfg.to_yaml()).expect("own YAML parses");
    assert_eq!(cfg.hash(), again.hash(), "round trip changed the config");
});
