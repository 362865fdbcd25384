//! The CLI's work that needs no server: signing keys, S3 recipe sets
//! (validated exactly as the agent does, with located errors) and its own
//! configuration. This test binary also makes `cargo test --workspace` build
//! `target/debug/tend`, which the server's end-to-end tests drive.

use std::path::Path;
use std::process::{Command, Output};

fn tend(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tend"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("TEND_CONFIG")
        .env_remove("TEND_SERVER")
        .env_remove("TEND_TOKEN")
        .output()
        .expect("run tend")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tend-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn a_signed_recipe_set_is_written_with_a_private_key_kept_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("bundle");
    std::fs::write(d.join("motd.yaml"), "name: motd\nresources:\n  - file: /etc/motd\n    content: \"hello\\n\"\n")
        .expect("recipe");
    let key = tend(&["recipe", "keygen", "--out", "key"], &d);
    assert!(key.status.success(), "{}", text(&key.stderr));
    let public = text(&key.stdout).trim().to_string();
    assert_eq!(public.len(), 64, "an ed25519 public key in hex: {public}");
    let mode = std::fs::metadata(d.join("key")).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let out = tend(&["recipe", "bundle", "motd.yaml", "--sign", "key", "--out", "set.json"], &d);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let set: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("set.json")).expect("set")).expect("JSON");
    let recipe = &set["recipes"][0];
    assert_eq!(recipe["bundle"]["signature"]["public_key"], public.as_str());
    assert_eq!(recipe["version"].as_str().map(str::len), Some(16));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_bad_recipe_is_refused_with_its_location_and_nothing_is_written() {
    let d = tmp("bad");
    std::fs::write(d.join("bad.yaml"), "name: bad\nresources:\n  - file: /etc/motd\n    mode: sideways\n")
        .expect("recipe");
    let out = tend(&["recipe", "bundle", "bad.yaml", "--out", "set.json"], &d);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("bad.yaml:4:"), "located: {err}");
    assert!(!d.join("set.json").exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_unknown_key_in_the_cli_config_is_refused() {
    let d = tmp("config");
    std::fs::write(d.join("cli.yaml"), "server: https://127.0.0.1:1\ntokn: x\n").expect("config");
    let out = tend(&["--config", "cli.yaml", "nodes", "list"], &d);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cli.yaml") && err.contains("tokn"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn version_and_help_need_no_server() {
    let d = tmp("help");
    let v = tend(&["--version"], &d);
    assert!(v.status.success());
    assert!(text(&v.stdout).starts_with("tend "), "{}", text(&v.stdout));
    let h = tend(&["--help"], &d);
    assert!(h.status.success());
    for sub in ["nodes", "recipe", "run", "automation", "association"] {
        assert!(text(&h.stdout).contains(sub), "help lists {sub}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
