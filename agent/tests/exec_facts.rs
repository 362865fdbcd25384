//! Executable custom facts through `tend-agent facts` and `apply`: programs
//! in the facts directory that print JSON or YAML, one that fails, one that
//! outlives its timeout, and the cache in the state directory.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Scratch, report, stderr};

fn program(dir: &Path, name: &str, script: &str) {
    let p = dir.join(name);
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn facts(s: &Scratch, extra: &[&str]) -> (serde_json::Value, String) {
    let out = s.agent().arg("facts").args(extra).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let f = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(&out)));
    (f, stderr(&out))
}

/// How many times a counting program (see `counting`) has run.
fn runs(s: &Scratch) -> usize {
    std::fs::read_to_string(s.path().join("runs")).unwrap_or_default().lines().count()
}

fn counting(s: &Scratch, extra: &str) -> String {
    format!("#!/bin/sh\necho run >> '{}'\necho 'counted: true'\n{extra}", s.path().join("runs").display())
}

#[test]
fn json_and_yaml_programs_join_the_yaml_files_in_name_order() {
    let s = Scratch::new();
    let d = s.path().join("facts.d");
    std::fs::write(d.join("10-site.yaml"), "rack: r12\nrole: base\n").unwrap();
    program(&d, "20-cmdb", "#!/bin/sh\necho '{\"role\": \"web\", \"owners\": [\"ops\"]}'\n");
    program(&d, "30-hw", "#!/bin/sh\nprintf 'disks: 2\\nraid: {level: 1}\\n'\n");
    std::fs::write(d.join("40-override.yaml"), "raid: none\n").unwrap();
    let (f, err) = facts(&s, &[]);
    assert_eq!(
        f["custom"],
        serde_json::json!({ "rack": "r12", "role": "web", "owners": ["ops"], "disks": 2, "raid": "none" })
    );
    assert!(!err.contains("WARN"), "{err}");
}

#[test]
fn a_failing_program_is_a_warning_and_the_other_facts_stay() {
    let s = Scratch::new();
    let d = s.path().join("facts.d");
    std::fs::write(d.join("site.yaml"), "rack: r12\n").unwrap();
    program(&d, "broken", "#!/bin/sh\necho 'cmdb unreachable' >&2\nexit 7\n");
    program(&d, "garbled", "#!/bin/sh\necho '{not: [valid'\n");
    let (f, err) = facts(&s, &[]);
    assert_eq!(f["custom"], serde_json::json!({ "rack": "r12" }));
    assert!(f["hostname"].is_string() && f["os"]["id"].is_string());
    assert!(err.contains("broken") && err.contains("exit code 7: cmdb unreachable"), "{err}");
    assert!(err.contains("garbled") && err.contains("printed neither JSON nor YAML"), "{err}");
}

#[test]
fn a_program_past_its_timeout_is_killed_with_its_children() {
    let s = Scratch::new();
    let d = s.path().join("facts.d");
    let pidfile = s.path().join("child.pid");
    program(&d, "slow", &format!("#!/bin/sh\nsleep 30 &\necho $! > '{}'\nwait\n", pidfile.display()));
    program(&d, "fast", "#!/bin/sh\necho 'fast: 1'\n");
    let t = Instant::now();
    let (f, err) = facts(&s, &["--fact-timeout", "300ms"]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(f["custom"], serde_json::json!({ "fast": 1 }));
    assert!(err.contains("slow") && err.contains("timed out"), "{err}");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z"), "the program's child survived: {stat}");
}

#[test]
fn output_is_cached_in_the_state_directory_until_the_program_changes() {
    let s = Scratch::new();
    let d = s.path().join("facts.d");
    std::fs::create_dir_all(s.state()).unwrap();
    program(&d, "count", &counting(&s, ""));
    assert_eq!(facts(&s, &[]).0["custom"]["counted"], true);
    assert_eq!(facts(&s, &[]).0["custom"]["counted"], true);
    assert_eq!(runs(&s), 1, "the second gathering used the cache");
    assert!(s.state().join("exec-facts.json").is_file());
    // A changed program runs again at once.
    program(&d, "count", &counting(&s, "echo 'version: 2'\n"));
    assert_eq!(facts(&s, &[]).0["custom"]["version"], 2);
    assert_eq!(runs(&s), 2);
    // No cache: every gathering runs it.
    facts(&s, &["--fact-cache", "0s"]);
    assert_eq!(runs(&s), 3);
    // An expired entry runs it again.
    std::thread::sleep(Duration::from_millis(300));
    facts(&s, &["--fact-cache", "200ms"]);
    assert_eq!(runs(&s), 4);
}

#[test]
fn no_state_directory_no_cache() {
    let s = Scratch::new();
    program(&s.path().join("facts.d"), "count", &counting(&s, ""));
    facts(&s, &[]);
    facts(&s, &[]);
    assert_eq!(runs(&s), 2);
    assert!(!s.state().exists());
}

#[test]
fn apply_reports_fact_warnings_without_failing() {
    let s = Scratch::new();
    program(&s.path().join("facts.d"), "broken", "#!/bin/sh\nexit 1\n");
    let recipe = s.recipe(
        "r.yaml",
        "name: r\nparameters:\n  root: {type: string}\nresources:\n  - file: \"{{params.root}}/etc/motd\"\n    content: \"hi\\n\"\n",
    );
    let out = s.apply(&recipe, &["--output", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let r = report(&out);
    let warnings = r["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{r}");
    assert!(warnings[0].as_str().unwrap().contains("broken: exit code 1"), "{r}");
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.state().join("last_report.json")).unwrap()).unwrap();
    assert_eq!(last["warnings"], r["warnings"]);
    // Without problems there is no `warnings` key.
    std::fs::remove_file(s.path().join("facts.d/broken")).unwrap();
    let again = s.apply(&recipe, &["--output", "json"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let clean = report(&again);
    assert!(clean.get("warnings").is_none(), "{clean}");
}
