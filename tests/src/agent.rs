//! Running the agent on a booted host: the binary built for this test run,
//! the repository's recipes bound read-only at `/etc/tend/recipes`, and the
//! JSON report of `tend-agent apply`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{BootOptions, Host, Network};

/// The `tend-agent` built for this test run (target/<profile>/tend-agent).
pub fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe.parent().and_then(Path::parent).expect("target dir").join("tend-agent");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p tend-agent` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// The workspace's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// A host with the agent at /usr/local/sbin/tend-agent and the repository's
/// recipes at /etc/tend/recipes.
pub fn boot(name: &str, network: Network) -> Host {
    Host::boot(
        BootOptions::new(name)
            .network(network)
            .bind_ro(agent_bin(), "/usr/local/sbin/tend-agent")
            .bind_ro(repo().join("recipes"), "/etc/tend/recipes"),
    )
}

/// Runs `tend-agent apply RECIPE --output json EXTRA` inside; returns the
/// exit code and the report (panics, with the output, when there is none).
pub fn apply(host: &Host, recipe: &str, extra: &str) -> (i32, Value) {
    let out = host.sh(&format!("tend-agent apply {recipe} --ec2 off --output json {extra}"));
    let code = out.status.code().unwrap_or(-1);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}), exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, report)
}

/// The ids of the report's resources with this status, sorted.
pub fn by_status<'a>(r: &'a Value, status: &str) -> Vec<&'a str> {
    let mut v: Vec<&str> = r["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|x| x["status"] == status)
        .map(|x| x["id"].as_str().expect("id"))
        .collect();
    v.sort();
    v
}

/// One resource's entry in the report.
pub fn resource<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in report"))
}
