//! Automation end to end: a real tend-server executing runbooks with
//! real agent daemons, through the `tend` CLI.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Pushes a document from text.
fn push(s: &Server, token: &str, dir: &Path, name: &str, text: &str) {
    let f = dir.join(format!("{name}.yaml"));
    std::fs::write(&f, text).expect("write");
    let out = s.tend(token, &["document", "push", f.to_str().expect("p")]);
    assert!(out.status.success(), "push {name}: {}", stderr(&out));
}

/// `tend automation start DOC ARGS… --wait --output json`: (exit code, view).
fn start_wait(s: &Server, token: &str, doc: &str, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["automation", "start", doc, "--wait", "--output", "json"];
    all.extend_from_slice(args);
    let out = s.tend(token, &all);
    (out.status.code(), json(&out))
}

/// Polls `tend automation show ID` until the execution has finished.
fn finished(s: &Server, token: &str, id: &str) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let v = s.tend_json(token, &["automation", "show", id]);
        if v["finished_at"].is_string() {
            return v;
        }
        assert!(Instant::now() < end, "{v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn path(v: &serde_json::Value) -> Vec<String> {
    v["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| format!("{}:{}", s["name"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

const HEALTH: &str = "name: Health\nkind: Command\nparameters:\n  value: { type: string, allowed: [\"true\", \"false\"] }\nsteps:\n  - name: report\n    action: runShellScript\n    run: |\n      printf '{\"healthy\": %s, \"count\": 3}\\n' \"$TEND_PARAM_VALUE\"\n";

const RUNBOOK: &str = "name: Runbook\nkind: Automation\nparameters:\n  healthy: { type: string, default: \"true\" }\nsteps:\n  - name: check\n    action: runCommand\n    inputs: { document: Health, targets: [\"tag:role=web\"], params: { value: \"{{params.healthy}}\" } }\n    outputs:\n      - { name: healthy, json: healthy }\n      - { name: count, regex: '\"count\": (\\d+)' }\n  - name: decide\n    action: branch\n    inputs:\n      choices:\n        - nextStep: good\n          condition: { and: [ { variable: \"{{steps.check.outputs.healthy}}\", equals: true }, { variable: \"{{steps.check.outputs.count}}\", numericGreaterOrEquals: 3 } ] }\n      default: bad\n  - name: good\n    action: runCommand\n    inputs: { document: RunShellScript, targets: [\"tag:role=web\"], params: { commands: \"echo good\" } }\n    isEnd: true\n  - name: bad\n    action: runCommand\n    inputs: { document: RunShellScript, targets: [\"tag:role=web\"], params: { commands: \"echo bad\" } }\n";

fn a_runbook_branches_on_a_step_output(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let _agents = daemons(&s, work.path(), 2, "role=web");
    push(&s, &admin, work.path(), "health", HEALTH);
    push(&s, &admin, work.path(), "runbook", RUNBOOK);

    let (code, v) = start_wait(&s, &admin, "Runbook", &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["status"], "Success");
    assert_eq!(path(&v), ["check:Success", "decide:Success", "good:Success"], "{v}");
    assert_eq!(v["steps"][0]["outputs"]["healthy"], true);
    assert_eq!(v["steps"][0]["outputs"]["count"], "3");
    assert_eq!(v["steps"][1]["outputs"]["nextStep"], "good");

    let (code, v) = start_wait(&s, &admin, "Runbook", &["--param", "healthy=false"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(path(&v), ["check:Success", "decide:Success", "bad:Success"], "{v}");
    // A bad document is refused with located errors.
    let bad = work.path().join("bad.yaml");
    std::fs::write(&bad, RUNBOOK.replace("nextStep: good", "nextStep: nowhere")).expect("write");
    let out = s.tend(&admin, &["document", "push", bad.to_str().expect("p")]);
    assert!(!out.status.success() && stderr(&out).contains("names no step `nowhere`"), "{}", stderr(&out));
}

fn on_failure_paths_and_retries(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let _agents = daemons(&s, work.path(), 1, "role=web");
    let counter = work.path().join("attempts");
    let flaky =
        format!("n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; [ $n -ge 2 ]", c = counter.display());
    let doc = format!(
        "name: Paths\nkind: Automation\nsteps:\n  - name: flaky\n    action: runCommand\n    maxAttempts: 3\n    inputs: {{ document: RunShellScript, targets: [\"tag:role=web\"], params: {{ commands: \"{flaky}\" }} }}\n  - name: fails\n    action: runCommand\n    onFailure: step:recover\n    inputs: {{ document: RunShellScript, targets: [\"tag:role=web\"], params: {{ commands: \"exit 3\" }} }}\n  - name: skipped\n    action: pause\n  - name: recover\n    action: runCommand\n    onFailure: continue\n    inputs: {{ document: RunShellScript, targets: [\"tag:role=web\"], params: {{ commands: \"exit 4\" }} }}\n  - name: last\n    action: runCommand\n    inputs: {{ document: RunShellScript, targets: [\"tag:role=web\"], params: {{ commands: \"exit 5\" }} }}\n"
    );
    push(&s, &admin, work.path(), "paths", &doc);
    let (code, v) = start_wait(&s, &admin, "Paths", &[]);
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(
        path(&v),
        ["flaky:Failed", "flaky:Success", "fails:Failed", "recover:Failed", "last:Failed"],
        "a retry, step:recover, continue, then abort: {v}"
    );
    assert_eq!(v["steps"][1]["attempt"], 2);
    assert_eq!(v["status"], "Failed");
    assert!(v["error"].as_str().unwrap_or_default().contains("last"), "{v}");
}

const APPROVAL: &str = "name: Approved\nkind: Automation\nsteps:\n  - name: ask\n    action: approve\n    inputs: { approvers: [alice, bob], minRequired: 1, message: patch now? }\n  - name: go\n    action: runCommand\n    inputs: { document: RunShellScript, targets: [\"tag:role=web\"], params: { commands: \"echo patched\" } }\n";

fn approvals_continue_refuse_and_reject(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let _agents = daemons(&s, work.path(), 1, "role=web");
    push(&s, &admin, work.path(), "approved", APPROVAL);
    let token = |name: &str| {
        s.tend_json(&admin, &["token", "create", "--name", name, "--role", "operator"])["token"]
            .as_str()
            .expect("secret")
            .to_string()
    };
    let (alice, bob, carol) = (token("alice"), token("bob"), token("carol"));

    let started = s.tend_json(&admin, &["automation", "start", "Approved"]);
    let id = started["id"].as_str().expect("id").to_string();
    let shown = s.tend_json(&admin, &["automation", "show", &id]);
    assert_eq!(shown["status"], "Waiting", "{shown}");
    assert!(shown["waiting"].as_str().unwrap_or_default().contains("approval"), "{shown}");
    let out = s.tend(&carol, &["automation", "approve", &id]);
    assert!(!out.status.success() && stderr(&out).contains("not an approver"), "{}", stderr(&out));
    let out = s.tend(&alice, &["automation", "approve", &id, "--comment", "go"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let done = finished(&s, &admin, &id);
    assert_eq!(done["status"], "Success", "{done}");

    let started = s.tend_json(&admin, &["automation", "start", "Approved"]);
    let id = started["id"].as_str().expect("id").to_string();
    let out = s.tend(&bob, &["automation", "reject", &id, "--comment", "not today"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = s.tend_json(&admin, &["automation", "show", &id]);
    assert_eq!(v["status"], "Failed", "{v}");
    assert!(v["error"].as_str().unwrap_or_default().contains("rejected by bob"), "{v}");
    assert_eq!(path(&v), ["ask:Failed"], "the command never ran: {v}");
}

fn a_server_killed_during_a_sleep_resumes_without_repeating_a_step(backend: Backend) {
    let mut s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let _agents = daemons(&s, work.path(), 1, "role=web");
    let log = work.path().join("ran");
    let doc = format!(
        "name: Sleepy\nkind: Automation\nsteps:\n  - name: before\n    action: runCommand\n    inputs: {{ document: RunShellScript, targets: [\"tag:role=web\"], params: {{ commands: \"echo before >> {l}\" }} }}\n  - name: nap\n    action: sleep\n    inputs: {{ duration: 4s }}\n  - name: after\n    action: runCommand\n    inputs: {{ document: RunShellScript, targets: [\"tag:role=web\"], params: {{ commands: \"echo after >> {l}\" }} }}\n",
        l = log.display()
    );
    push(&s, &admin, work.path(), "sleepy", &doc);
    let id = s.tend_json(&admin, &["automation", "start", "Sleepy"])["id"].as_str().expect("id").to_string();
    wait_for("the sleep to start", Duration::from_secs(20), || {
        let v = s.tend_json(&admin, &["automation", "show", &id]);
        v["current"] == "nap"
    });
    s.stop();
    std::thread::sleep(Duration::from_secs(2));
    s.restart();
    let v = finished(&s, &admin, &id);
    assert_eq!(v["status"], "Success", "{v}");
    assert_eq!(path(&v), ["before:Success", "nap:Success", "after:Success"], "no step repeated: {v}");
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "before\nafter\n");
    // The sleep kept its end time across the restart (not 4 s again after it).
    let t = |k: &str| v["steps"][1][k].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()).expect("time");
    let slept = t("ended_at").duration_since(t("started_at")).as_secs_f64();
    assert!((3.5..6.5).contains(&slept), "slept {slept} s");
}

on_both_stores!(
    a_runbook_branches_on_a_step_output,
    on_failure_paths_and_retries,
    approvals_continue_refuse_and_reject,
    a_server_killed_during_a_sleep_resumes_without_repeating_a_step,
);
