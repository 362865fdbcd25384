//! Every recipe under tests/fixtures/bad/ is refused with located errors
//! (compared with a snapshot), and applying it changes nothing.

mod common;

use std::path::Path;

use common::{Scratch, repo, stderr, stdout};

const CANARY: &str = "/tmp/tend-bad-canary";

#[test]
fn bad_recipes_are_refused_with_every_problem_located() {
    let dir = repo().join("tests/fixtures/bad");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".yaml") && !n.ends_with("_included.yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "the corpus shrank: {names:?}");
    let s = Scratch::new();
    for name in names {
        let validate = s.agent().current_dir(&dir).args(["validate", &name]).output().unwrap();
        assert_eq!(validate.status.code(), Some(1), "{name}: {}", stdout(&validate));
        let text = stderr(&validate);
        assert!(text.starts_with("error: "), "{name}: {text}");
        insta::assert_snapshot!(name.trim_end_matches(".yaml").to_string(), text);

        let apply = s.agent().current_dir(&dir).args(["apply", &name]).output().unwrap();
        assert_eq!(apply.status.code(), Some(1), "{name}: apply must refuse: {}", stdout(&apply));
        assert!(stdout(&apply).is_empty(), "{name}: apply printed a run: {}", stdout(&apply));
        assert!(!Path::new(CANARY).exists(), "{name}: apply created {CANARY}");
        assert!(!s.state().join("last_report.json").exists(), "{name}: a report was written");
    }
}

#[test]
fn json_diagnostics_carry_file_line_column() {
    let dir = repo().join("tests/fixtures/bad");
    let s = Scratch::new();
    let out =
        s.agent().current_dir(&dir).args(["validate", "--output", "json", "unknown_fields.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v[1];
    assert_eq!(first["file"], "unknown_fields.yaml");
    assert_eq!((first["line"].as_u64(), first["col"].as_u64()), (Some(6), Some(5)));
    assert_eq!(first["resource"], "file:/tmp/tend-bad-canary/motd");
    assert_eq!(first["hint"], "did you mean `content`?");
}
