//! Replays the agent-configuration fuzzer's saved inputs
//! (`tests/fixtures/fuzz/agent_config/`) through `AgentConfig::parse`, as the
//! fuzz target does: each must come back without a panic. See docs/fuzzing.md.

use std::path::Path;

#[test]
fn agent_config_inputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fuzz/agent_config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read");
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = tend_agent::config::AgentConfig::parse(text, Path::new("agent.yaml"));
        }
        n += 1;
    }
    assert!(n > 0, "no saved inputs in {}", dir.display());
}
