//! `tend-agent apply` end to end on scratch directories: convergence,
//! idempotence, dry-run honesty, notifications, failures, locking.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{Scratch, repo, report, stderr, stdout, tree};

fn hostname() -> String {
    nix::unistd::gethostname().unwrap().to_string_lossy().into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

fn changed_ids(r: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == "changed")
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn example_recipe_converges_then_second_run_changes_nothing() {
    let s = Scratch::new();
    let recipe = repo().join("recipes/web.yaml");
    let first = s.apply(&recipe, &["--output", "json"]);
    assert_eq!(first.status.code(), Some(2), "{}", stderr(&first));
    let r1 = report(&first);
    assert_eq!(r1["summary"]["changed"], 6);
    assert_eq!(r1["summary"]["failed"], 0);

    let root = s.root();
    let motd = root.join("etc/motd");
    assert_eq!(std::fs::read_to_string(&motd).unwrap(), format!("Managed by tend on {}\n", hostname()));
    assert_eq!(mode(&motd), 0o644);
    assert_eq!(std::fs::metadata(&motd).unwrap().uid(), 0);
    assert_eq!(std::fs::metadata(&motd).unwrap().gid(), 0);
    let conf = std::fs::read_to_string(root.join("etc/app.conf")).unwrap();
    assert!(conf.contains("name = example.org\n") && conf.contains("workers = 4\n"), "{conf}");
    assert_eq!(mode(&root.join("etc/app.conf")), 0o640);
    assert!(std::fs::metadata(root.join("srv/www")).unwrap().is_dir());
    assert_eq!(mode(&root.join("srv/www")), 0o755);
    assert_eq!(std::fs::read_to_string(root.join("srv/www/index.html")).unwrap(), "<h1>example.org</h1>\n");
    assert!(root.join("var/lib/setup.done").exists());
    let before = tree(&root);

    let second = s.apply(&recipe, &["--output", "json"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let r2 = report(&second);
    assert_eq!(r2["summary"]["changed"], 0);
    assert_eq!(r2["summary"]["unchanged"], 6);
    assert_eq!(tree(&root), before, "a no-op run touched the tree");
    // The reload ran once, on the first run only.
    let reloads = std::fs::read_to_string(root.join("var/log/app-reloads.log")).unwrap();
    assert_eq!(reloads.lines().count(), 1);
}

fn many_files_recipe(s: &Scratch, n: usize) -> std::path::PathBuf {
    let mut y = String::from(
        "name: many\nparameters:\n  root: { type: string }\nresources:\n  - directory: \"{{params.root}}/srv/many\"\n",
    );
    for i in 0..n {
        y.push_str(&format!(
            "  - file: \"{{{{params.root}}}}/srv/many/f{i:03}.conf\"\n    content: \"line one of {i}\\nline two\\nline three\\n\"\n    mode: \"0640\"\n"
        ));
    }
    s.recipe("many.yaml", &y)
}

#[test]
fn dry_run_after_drift_reports_exactly_the_drift_and_changes_nothing() {
    let s = Scratch::new();
    let recipe = many_files_recipe(&s, 40);
    assert_eq!(s.apply(&recipe, &[]).status.code(), Some(2));
    let dir = s.root().join("srv/many");
    std::fs::write(dir.join("f003.conf"), "line one of 3\nEDITED\nline three\n").unwrap();
    std::fs::set_permissions(dir.join("f017.conf"), std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    std::fs::remove_file(dir.join("f029.conf")).unwrap();
    let before = tree(&s.root());

    let dry = s.apply(&recipe, &["--dry-run", "--output", "json"]);
    assert_eq!(dry.status.code(), Some(2), "{}", stderr(&dry));
    let r = report(&dry);
    assert_eq!(r["dry_run"], true);
    let ids = changed_ids(&r);
    let want: Vec<String> =
        ["f003", "f017", "f029"].iter().map(|f| format!("file:{}/{f}.conf", dir.display())).collect();
    assert_eq!(ids, want);
    let res = r["resources"].as_array().unwrap();
    let f003 = res.iter().find(|x| x["id"] == want[0]).unwrap();
    let diff = f003["changes"][0]["diff"].as_str().unwrap();
    assert!(diff.contains("-EDITED\n") && diff.contains("+line two\n"), "{diff}");
    let f017 = res.iter().find(|x| x["id"] == want[1]).unwrap();
    assert_eq!(f017["changes"][0]["property"], "mode");
    assert_eq!(f017["changes"][0]["from"], "0666");
    assert_eq!(f017["changes"][0]["to"], "0640");
    assert_eq!(tree(&s.root()), before, "dry-run changed the tree");

    // The human form shows the same three, with the diff.
    let human = s.apply(&recipe, &["--dry-run"]);
    let out = stdout(&human);
    assert_eq!(out.lines().filter(|l| l.starts_with("would change")).count(), 3, "{out}");
    assert!(out.contains("-EDITED"), "{out}");
    assert!(out.contains("41 resources: 3 would change, 38 unchanged, 0 failed, 0 skipped"), "{out}");

    // A real run repairs exactly those, and marks them corrective.
    let real = s.apply(&recipe, &["--output", "json"]);
    let r = report(&real);
    assert_eq!(changed_ids(&r), want);
    assert_eq!(r["summary"]["corrective"], 3);
    assert_eq!(s.apply(&recipe, &[]).status.code(), Some(0));
}

#[test]
fn a_recipe_change_is_intentional_not_corrective() {
    let s = Scratch::new();
    let r1 = s.recipe("r.yaml", "name: r\nparameters: {root: {type: string}}\nresources:\n  - file: \"{{params.root}}/etc/a\"\n    content: \"one\\n\"\n");
    assert_eq!(s.apply(&r1, &[]).status.code(), Some(2));
    let r2 = s.recipe("r.yaml", "name: r\nparameters: {root: {type: string}}\nresources:\n  - file: \"{{params.root}}/etc/a\"\n    content: \"two\\n\"\n");
    let out = s.apply(&r2, &["--output", "json"]);
    let r = report(&out);
    assert_eq!(r["resources"][0]["status"], "changed");
    assert_eq!(r["resources"][0]["corrective"], false);
}

#[test]
fn failure_skips_dependents_and_independent_resources_go_on() {
    let s = Scratch::new();
    let recipe = s.recipe(
        "fail.yaml",
        r#"name: fail
parameters: {root: {type: string}}
resources:
  - exec: broken
    command: echo "disk on fire" >&2; exit 3
  - file: "{{params.root}}/etc/after-broken"
    content: "x\n"
    requires: [exec:broken]
  - file: "{{params.root}}/etc/after-after"
    content: "x\n"
    requires: ["file:{{params.root}}/etc/after-broken"]
  - file: "{{params.root}}/etc/independent"
    content: "y\n"
"#,
    );
    let out = s.apply(&recipe, &["--output", "json"]);
    assert_eq!(out.status.code(), Some(6), "changes and failures: {}", stderr(&out));
    let r = report(&out);
    let st: Vec<&str> = r["resources"].as_array().unwrap().iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(st, ["failed", "skipped", "skipped", "changed"]);
    let err = r["resources"][0]["error"].as_str().unwrap();
    assert!(err.contains("exit code 3") && err.contains("disk on fire"), "{err}");
    assert!(!s.root().join("etc/after-broken").exists());
    assert!(s.root().join("etc/independent").exists());
    assert_eq!((r["summary"]["failed"].as_u64(), r["summary"]["skipped"].as_u64()), (Some(1), Some(2)));
}

#[test]
fn notifications_are_coalesced_and_run_after_every_notifier() {
    let s = Scratch::new();
    let recipe = s.recipe(
        "notify.yaml",
        r#"name: notify
parameters: {root: {type: string}}
resources:
  - exec: restart-app
    command: test -f "{{params.root}}/etc/a" && test -f "{{params.root}}/etc/b" && echo ran >> "{{params.root}}/var/log/restarts"
    refreshonly: true
  - file: "{{params.root}}/etc/a"
    content: "a\n"
    notifies: [exec:restart-app]
  - file: "{{params.root}}/etc/b"
    content: "b\n"
    notifies: [exec:restart-app]
"#,
    );
    let dry = s.apply(&recipe, &["--dry-run", "--output", "json"]);
    let r = report(&dry);
    assert_eq!(changed_ids(&r).len(), 3, "dry-run shows the notified exec too");
    assert!(!s.root().join("var/log/restarts").exists());

    let out = s.apply(&recipe, &["--output", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["resources"][2]["id"], "exec:restart-app", "notified resource runs last");
    assert!(r["resources"][2]["reason"].as_str().unwrap().contains("notified by"));
    assert_eq!(std::fs::read_to_string(s.root().join("var/log/restarts")).unwrap(), "ran\n");
    // Nothing changed: nothing notified.
    assert_eq!(s.apply(&recipe, &[]).status.code(), Some(0));
    std::fs::write(s.root().join("etc/b"), "drift\n").unwrap();
    assert_eq!(s.apply(&recipe, &[]).status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(s.root().join("var/log/restarts")).unwrap(), "ran\nran\n");
}

#[test]
fn sensitive_values_never_reach_output_or_reports() {
    let s = Scratch::new();
    let recipe = s.recipe(
        "secret.yaml",
        r#"name: secret
parameters:
  root: {type: string}
  password: {type: string, sensitive: true}
resources:
  - file: "{{params.root}}/etc/secret.conf"
    content: "password={{params.password}}\n"
    mode: "0600"
    sensitive: true
  - exec: use-secret
    command: echo "{{params.password}}" > /dev/null
    unless: "false"
    sensitive: true
  - exec: not-marked-but-uses-a-sensitive-parameter
    command: echo "{{params.password}}" > /dev/null; exit 1
"#,
    );
    let report_file = s.path().join("report.json");
    for extra in [&["--dry-run"][..], &["--diff", "--report", report_file.to_str().unwrap()][..]] {
        let mut args = vec!["--param", "password=hunter2-s3cr3t"];
        args.extend_from_slice(extra);
        let out = s.apply(&recipe, &args);
        assert_eq!(out.status.code(), Some(if extra[0] == "--dry-run" { 2 } else { 6 }), "{}", stderr(&out));
        assert!(!stdout(&out).contains("s3cr3t") && !stderr(&out).contains("s3cr3t"), "{}", stdout(&out));
    }
    let saved = std::fs::read_to_string(&report_file).unwrap();
    assert!(!saved.contains("s3cr3t"));
    assert!(!std::fs::read_to_string(s.state().join("last_report.json")).unwrap().contains("s3cr3t"));
    assert_eq!(std::fs::read_to_string(s.root().join("etc/secret.conf")).unwrap(), "password=hunter2-s3cr3t\n");
}

#[test]
fn only_one_run_at_a_time() {
    use std::io::Write;
    let s = Scratch::new();
    std::fs::create_dir_all(s.state()).unwrap();
    let f =
        std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(s.state().join("run.lock")).unwrap();
    let mut held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    write!(held, "4242").unwrap();
    let out = s.apply(&repo().join("recipes/web.yaml"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pid 4242"), "{}", stderr(&out));
    assert!(!s.root().join("etc/motd").exists());
    drop(held);
    assert_eq!(s.apply(&repo().join("recipes/web.yaml"), &[]).status.code(), Some(2));
}

#[test]
fn disable_stops_converges_until_enable() {
    let s = Scratch::new();
    let d = s.agent().args(["disable", "--reason", "maintenance window CHG-1234"]).output().unwrap();
    assert!(d.status.success(), "{}", stderr(&d));
    let out = s.apply(&repo().join("recipes/web.yaml"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("maintenance window CHG-1234"), "{}", stderr(&out));
    assert!(!s.root().join("etc/motd").exists());
    assert!(s.agent().arg("enable").output().unwrap().status.success());
    assert_eq!(s.apply(&repo().join("recipes/web.yaml"), &[]).status.code(), Some(2));
}

#[test]
fn json_report_has_the_contract_fields() {
    let s = Scratch::new();
    let file = s.path().join("out.json");
    let out = s.apply(&repo().join("recipes/web.yaml"), &["--report", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for k in ["total", "changed", "unchanged", "failed", "skipped", "duration_ms"] {
        assert!(r["summary"][k].is_number(), "summary.{k}");
    }
    for res in r["resources"].as_array().unwrap() {
        for k in ["id", "type", "status", "changes", "duration_ms"] {
            assert!(!res[k].is_null(), "resource field {k} in {res}");
        }
    }
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.state().join("last_report.json")).unwrap()).unwrap();
    assert_eq!(last["summary"]["changed"], r["summary"]["changed"]);
    assert!(stdout(&out).contains("6 resources: 6 changed, 0 unchanged, 0 failed, 0 skipped in"));
}

#[test]
fn conditions_params_and_custom_facts() {
    let s = Scratch::new();
    std::fs::write(s.path().join("facts.d/site.yaml"), "rack: r12\nteam: web\n").unwrap();
    let recipe = s.recipe(
        "cond.yaml",
        r#"name: cond
parameters:
  root: {type: string}
  env: {type: string, default: dev, allowed: [dev, prod]}
  ports: {type: list, default: [80]}
resources:
  - file: "{{params.root}}/etc/prod-only"
    content: "prod\n"
    when: {param: env, equals: prod}
  - file: "{{params.root}}/etc/rack"
    content: "{{facts.custom.rack}} {{#each params.ports}}{{this}} {{/each}}\n"
    when: {all: [{fact: os.family, exists: true}, {not: {fact: custom.team, equals: db}}]}
"#,
    );
    let out = s.apply(&recipe, &["--output", "json", "--param", "ports=80,443"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["resources"][0]["status"], "skipped");
    assert!(!s.root().join("etc/prod-only").exists());
    assert_eq!(std::fs::read_to_string(s.root().join("etc/rack")).unwrap(), "r12 80 443 \n");

    let params = s.path().join("params.yaml");
    std::fs::write(&params, "env: prod\nports: [8080]\n").unwrap();
    let out = s.apply(&recipe, &["--params", params.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(s.root().join("etc/prod-only").exists());
    assert_eq!(std::fs::read_to_string(s.root().join("etc/rack")).unwrap(), "r12 8080 \n");

    let bad = s.apply(&recipe, &["--param", "env=staging"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("not one of the allowed values"), "{}", stderr(&bad));
}

#[test]
fn ownership_mode_and_absence_are_enforced() {
    let s = Scratch::new();
    let root = s.root();
    std::fs::create_dir_all(root.join("srv/old/sub")).unwrap();
    std::fs::write(root.join("srv/old/sub/x"), "x").unwrap();
    std::fs::write(root.join("etc/stale"), "x").unwrap();
    std::fs::write(root.join("etc/kept"), "old\n").unwrap();
    std::fs::set_permissions(root.join("etc/kept"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(root.join("etc/kept"), Some(65534), None).unwrap();
    let recipe = s.recipe(
        "own.yaml",
        r#"name: own
parameters: {root: {type: string}}
resources:
  - file: "{{params.root}}/etc/owned"
    content: "n\n"
    owner: nobody
    group: "65534"
    mode: "0400"
  - file: "{{params.root}}/etc/kept"
    content: "new\n"
  - file: "{{params.root}}/etc/stale"
    state: absent
  - directory: "{{params.root}}/srv/old"
    state: absent
    force: true
  - directory: "{{params.root}}/srv/data"
    owner: "65534"
    mode: "2750"
"#,
    );
    let out = s.apply(&recipe, &[]);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    let owned = std::fs::metadata(root.join("etc/owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid(), owned.mode() & 0o7777), (65534, 65534, 0o400));
    let kept = std::fs::metadata(root.join("etc/kept")).unwrap();
    assert_eq!((kept.uid(), kept.mode() & 0o7777), (65534, 0o600), "unset owner and mode are kept");
    assert_eq!(std::fs::read_to_string(root.join("etc/kept")).unwrap(), "new\n");
    assert!(!root.join("etc/stale").exists());
    assert!(!root.join("srv/old").exists());
    let data = std::fs::metadata(root.join("srv/data")).unwrap();
    assert_eq!((data.uid(), data.mode() & 0o7777), (65534, 0o2750));
    assert_eq!(s.apply(&recipe, &[]).status.code(), Some(0), "second run is a no-op");
}

#[test]
fn exec_guards_are_evaluated_in_dry_run_and_the_command_is_not() {
    let s = Scratch::new();
    let recipe = s.recipe(
        "guards.yaml",
        r#"name: guards
parameters: {root: {type: string}}
resources:
  - exec: make-marker
    command: touch "{{params.root}}/var/lib/ran"
    unless: test -f "{{params.root}}/var/lib/marker"
  - exec: never
    command: touch "{{params.root}}/var/lib/never"
    onlyif: "false"
  - exec: with-env
    command: echo "$GREETING from $(pwd)" > "{{params.root}}/var/lib/env"
    cwd: /tmp
    env: {GREETING: hello}
    creates: "{{params.root}}/var/lib/env"
"#,
    );
    let dry = s.apply(&recipe, &["--dry-run", "--output", "json"]);
    let r = report(&dry);
    assert_eq!(changed_ids(&r), ["exec:make-marker", "exec:with-env"]);
    assert!(!s.root().join("var/lib/ran").exists());
    std::fs::write(s.root().join("var/lib/marker"), "").unwrap();
    let dry = s.apply(&recipe, &["--dry-run", "--output", "json"]);
    assert_eq!(changed_ids(&report(&dry)), ["exec:with-env"]);
    let real = s.apply(&recipe, &[]);
    assert_eq!(real.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(s.root().join("var/lib/env")).unwrap(), "hello from /tmp\n");
    assert!(!s.root().join("var/lib/never").exists() && !s.root().join("var/lib/ran").exists());
    assert_eq!(s.apply(&recipe, &[]).status.code(), Some(0));
}

#[test]
fn facts_command_prints_json() {
    let s = Scratch::new();
    std::fs::write(s.path().join("facts.d/x.yaml"), "datacenter: fra1\n").unwrap();
    let out = s.agent().arg("facts").output().unwrap();
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["hostname"], hostname());
    assert!(!f["os"]["family"].as_str().unwrap().is_empty());
    assert!(f["cpu"]["count"].as_u64().unwrap() >= 1);
    assert!(f["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(f["interfaces"]["lo"]["ipv4"].as_array().unwrap().iter().any(|a| a == "127.0.0.1"));
    assert_eq!(f["custom"]["datacenter"], "fra1");
    assert!(f["ntp"]["synchronized"].is_boolean(), "time sync status from the kernel clock");
    assert!(f.get("ec2").is_none());
}

#[test]
fn validate_needs_no_host_and_accepts_the_examples() {
    let s = Scratch::new();
    for r in ["recipes/web.yaml", "recipes/base.yaml"] {
        let out = s.agent().arg("validate").arg(repo().join(r)).output().unwrap();
        assert!(out.status.success(), "{r}: {}", stderr(&out));
    }
}
