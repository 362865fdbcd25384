//! `tend-server serve --config FILE`: the file's settings, flags over them,
//! and a clear refusal of an unknown key.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_configuration_file_is_read_and_flags_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("server.yaml");
    let data = dir.path().join("from-file");
    std::fs::write(&cfg, format!("# comment\ndata_dir: {}\nlisten: 127.0.0.1:1\nreports_kept: 5\n", data.display()))
        .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tend-server"))
        .args(["serve", "--config", cfg.to_str().expect("p"), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let started = lines.any(|l| l.is_ok_and(|l| l.starts_with("tend-server listening on https://127.0.0.1:")));
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "the --listen flag wins over the file's port 1");
    assert!(data.join("ca.pem").exists(), "data_dir comes from the file");

    std::fs::write(&cfg, "listne: 127.0.0.1:8443\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_tend-server"))
        .args(["serve", "--config", cfg.to_str().expect("p")])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listne") && err.contains("server.yaml"), "{err}");
}
