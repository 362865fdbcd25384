//! The agent's configuration file (/etc/tend/agent.yaml).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = tend_agent::config::AgentConfig::parse(text, std::path::Path::new("agent.yaml"));
});
