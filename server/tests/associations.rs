//! Associations end to end: schedules firing against a real tend-server
//! (started with `--min-rate 1`), agent daemons, compliance, and two
//! replicas on one PostgreSQL.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn history(s: &Server, token: &str, id: &str) -> Vec<serde_json::Value> {
    s.tend_json(token, &["association", "history", id]).as_array().cloned().unwrap_or_default()
}

fn create(s: &Server, token: &str, args: &[&str]) -> String {
    let mut all = vec!["association", "create"];
    all.extend_from_slice(args);
    let v = s.tend_json(token, &all);
    v["id"].as_str().unwrap_or_else(|| panic!("no id: {v}")).to_string()
}

/// An association running shell text (`--param commands=…`) on `tag:role=web`.
fn shell_association(s: &Server, token: &str, param: &str, schedule: &str, extra: &[&str]) -> String {
    let mut args =
        vec!["--document", "RunShellScript", "--param", param, "--targets", "tag:role=web", "--schedule", schedule];
    args.extend_from_slice(extra);
    create(s, token, &args)
}

const FILE_RECIPE: &str =
    "name: drifty\nresources:\n  - file: \"{{facts.custom.root}}/drifty.conf\"\n    content: \"managed\\n\"\n";

fn a_recipe_association_repairs_drift_and_compliance_shows_it(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let agents = daemons(&s, work.path(), 1, "role=web");
    let recipe = work.path().join("drifty.yaml");
    std::fs::write(&recipe, FILE_RECIPE).expect("write");
    assert!(s.tend(&admin, &["recipe", "push", recipe.to_str().expect("p")]).status.success());
    let id = create(&s, &admin, &["--recipe", "drifty", "--targets", "tag:role=web", "--schedule", "rate(3 seconds)"]);
    let file = agents[0].root.join("drifty.conf");
    // A new association runs at once.
    wait_for("the first run", Duration::from_secs(15), || {
        std::fs::read_to_string(&file).is_ok_and(|c| c == "managed\n")
    });
    wait_for("compliance", Duration::from_secs(15), || {
        s.tend_json(&admin, &["compliance", "--association", &id]).as_array().is_some_and(|a| a.len() == 1)
    });
    let c = s.tend_json(&admin, &["compliance"]);
    assert_eq!(c[0]["status"], "Compliant", "{c}");
    assert_eq!(c[0]["node"], agents[0].id.as_str());

    // Drift: the next scheduled run repairs it, and says so.
    std::fs::write(&file, "tampered\n").expect("drift");
    wait_for("the repair", Duration::from_secs(20), || std::fs::read_to_string(&file).is_ok_and(|c| c == "managed\n"));
    wait_for("the repair's compliance", Duration::from_secs(15), || {
        s.tend_json(&admin, &["compliance", "--history", "--association", &id])
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["status"] == "NonCompliant"))
    });
    let h = s.tend_json(&admin, &["compliance", "--history", "--association", &id]);
    let events: Vec<&serde_json::Value> = h.as_array().expect("array").iter().collect();
    let bad = events.iter().position(|e| e["status"] == "NonCompliant").expect("NonCompliant");
    assert!(bad > 0 && events[bad - 1]["status"] == "Compliant", "NonCompliant, then Compliant (newest first): {h}");
    let changes = events[bad - 1]["changes"].as_array().expect("changes");
    assert!(changes.iter().any(|c| c.as_str().unwrap_or_default().contains("drifty.conf")), "{h}");
    let now = s.tend_json(&admin, &["compliance", "--association", &id]);
    assert_eq!(now[0]["status"], "Compliant", "{now}");
    // A failing command document association is NonCompliant.
    let failing = shell_association(&s, &admin, "commands=exit 3", "rate(1 hour)", &[]);
    wait_for("the failed run's compliance", Duration::from_secs(15), || {
        s.tend_json(&admin, &["compliance", "--association", &failing]).as_array().is_some_and(|a| a.len() == 1)
    });
    let c = s.tend_json(&admin, &["compliance", "--association", &failing]);
    assert_eq!(c[0]["status"], "NonCompliant", "{c}");
}

/// Audit mode: a dry-run on schedule. Drift is found, shown as
/// NonCompliant and as the node's pending changes, and never repaired.
fn an_audit_association_finds_drift_and_repairs_nothing(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let agents = daemons(&s, work.path(), 1, "role=web");
    let recipe = work.path().join("drifty.yaml");
    std::fs::write(&recipe, FILE_RECIPE).expect("write");
    assert!(s.tend(&admin, &["recipe", "push", recipe.to_str().expect("p")]).status.success());
    let out = s.tend(
        &admin,
        &[
            "association",
            "create",
            "--document",
            "RunShellScript",
            "--param",
            "commands=true",
            "--targets",
            "tag:role=web",
            "--schedule",
            "rate(1 hour)",
            "--mode",
            "audit",
        ],
    );
    assert!(!out.status.success() && stderr(&out).contains("needs --recipe"), "{}", stderr(&out));
    let file = agents[0].root.join("drifty.conf");
    std::fs::write(&file, "tampered\n").expect("drift");
    let id = create(
        &s,
        &admin,
        &["--recipe", "drifty", "--targets", "tag:role=web", "--schedule", "rate(2 seconds)", "--mode", "audit"],
    );
    wait_for("the audit's compliance", Duration::from_secs(20), || {
        s.tend_json(&admin, &["compliance", "--association", &id]).as_array().is_some_and(|a| a.len() == 1)
    });
    let c = s.tend_json(&admin, &["compliance", "--association", &id]);
    assert_eq!(c[0]["status"], "NonCompliant", "{c}");
    assert!(c[0]["reason"].as_str().unwrap_or_default().starts_with("drift found: 1 pending change"), "{c}");
    assert!(c[0]["changes"][0].as_str().unwrap_or_default().contains("drifty.conf (content)"), "{c}");
    assert_eq!(std::fs::read_to_string(&file).expect("file"), "tampered\n", "an audit repairs nothing");
    let nodes = s.tend_json(&admin, &["nodes", "list"]);
    assert_eq!(nodes[0]["pending"], 1, "{nodes}");
    let out = s.tend(&admin, &["nodes", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("PENDING"));
    // Put right by hand: the next audit finds nothing pending.
    std::fs::write(&file, "managed\n").expect("fix");
    wait_for("a clean audit", Duration::from_secs(20), || {
        s.tend_json(&admin, &["compliance", "--association", &id])[0]["status"] == "Compliant"
    });
    assert_eq!(s.tend_json(&admin, &["nodes", "list"])[0]["pending"], 0);
}

fn schedules_never_overlap_and_run_now_and_apply_only_work(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let _agents = daemons(&s, work.path(), 1, "role=web");
    let marks = work.path().join("marks");
    let script =
        format!("echo start $(date +%s%N) >> {m}; sleep 3; echo end $(date +%s%N) >> {m}", m = marks.display());
    let param = format!("commands={script}");
    let id = shell_association(&s, &admin, &param, "rate(1 second)", &[]);
    std::thread::sleep(Duration::from_secs(11));
    let runs = history(&s, &admin, &id);
    assert_eq!(s.tend(&admin, &["association", "delete", &id]).status.code(), Some(0));
    // Slots that came while a run was going were not run on top of it: the
    // next run caught them up, once.
    assert!(runs.len() >= 2, "{runs:?}");
    assert!(runs.iter().any(|r| r["trigger"] == "catch-up" && r["skipped"].as_i64() > Some(0)), "{runs:?}");
    // The marks alternate start/end: never two at once.
    std::thread::sleep(Duration::from_secs(4));
    let text = std::fs::read_to_string(&marks).expect("marks");
    let kinds: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(kinds.len() >= 4, "{text}");
    for pair in kinds.chunks(2) {
        assert_eq!(pair, ["start", "end"], "overlap:\n{text}");
    }

    // Only at the schedule's times: nothing now; run-now runs it once.
    let id = shell_association(&s, &admin, "commands=true", "cron(0 3 1 1 ? 2099)", &["--apply-only-at-cron-interval"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(history(&s, &admin, &id).is_empty());
    let shown = s.tend_json(&admin, &["association", "show", &id]);
    assert_eq!(shown["next_run"], "2099-01-01T03:00:00Z", "{shown}");
    assert!(s.tend(&admin, &["association", "run-now", &id]).status.success());
    wait_for("the run-now run", Duration::from_secs(15), || {
        history(&s, &admin, &id).first().is_some_and(|r| r["status"] == "Success")
    });
    assert_eq!(history(&s, &admin, &id)[0]["trigger"], "run-now");
    // Bad schedules are refused clearly.
    let out = s.tend(
        &admin,
        &[
            "association",
            "create",
            "--document",
            "RunShellScript",
            "--param",
            "commands=true",
            "--targets",
            "tag:role=web",
            "--schedule",
            "cron(0 2 * *)",
        ],
    );
    assert!(!out.status.success() && stderr(&out).contains("six fields"), "{}", stderr(&out));
}

/// A second replica of `s`: same CA and server certificate, same database.
fn replica(s: &Server, base: &Path) -> (std::process::Child, String) {
    let data = base.join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    for f in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        std::fs::copy(s.data(f), data.join(f)).expect("copy the server files");
    }
    Server::spawn(base, "127.0.0.1:0", s.database.as_deref())
}

#[test]
fn two_replicas_fire_each_slot_once_even_when_the_leader_dies() {
    let mut a = Server::start(Backend::Postgres);
    let admin = a.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let (mut b, b_url) = replica(&a, &work.path().join("b"));
    // The agent knows both replicas.
    let agents = daemons(&a, work.path(), 1, "role=web");
    let mut agent = agents;
    agent[0].kill9();
    let cfg = std::fs::read_to_string(&agent[0].cfg).expect("cfg");
    std::fs::write(&agent[0].cfg, format!("{cfg}servers: [\"{}\", \"{b_url}\"]\n", a.url)).expect("cfg");
    agent[0].start();
    let marks = work.path().join("runs");
    let param = format!("commands=echo $TEND_COMMAND_ID >> {}", marks.display());
    let id = shell_association(&a, &admin, &param, "rate(2 seconds)", &[]);
    std::thread::sleep(Duration::from_secs(7));
    // Kill the first replica (the leader: it held the lock before the
    // second existed), and keep going on the second.
    a.stop();
    let killed = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_secs(9));
    let out = Command::new(common::cli_bin())
        .args(["--server", &b_url, "--ca"])
        .arg(a.data("ca.pem"))
        .args(["--token", &admin, "association", "history", &id, "--output", "json"])
        .output()
        .expect("tend");
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    let runs = runs.as_array().expect("array");
    let slots: Vec<&str> = runs.iter().map(|r| r["slot"].as_str().unwrap_or("")).collect();
    let mut unique = slots.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), slots.len(), "a slot fired twice: {runs:?}");
    let after = slots.iter().filter(|s| s.parse::<jiff::Timestamp>().is_ok_and(|t| t > killed)).count();
    assert!(after >= 2, "the second replica took over and fired later slots: {runs:?}");
    let lines = std::fs::read_to_string(&marks).expect("marks");
    let mut ids: Vec<&str> = lines.lines().collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a command ran twice:\n{lines}");
    let _ = b.kill();
    let _ = b.wait();
}

on_both_stores!(
    a_recipe_association_repairs_drift_and_compliance_shows_it,
    an_audit_association_finds_drift_and_repairs_nothing,
    schedules_never_overlap_and_run_now_and_apply_only_work,
);
