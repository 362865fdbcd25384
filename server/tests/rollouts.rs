//! Change sets and rollouts end to end: a real tend-server (SQLite and
//! PostgreSQL), ten agent daemons on loopback, each with its own state
//! directory and files root (the custom facts `root` and `rel`, which the
//! recipe's paths use), and the `tend` CLI.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;

/// Two settings of one file under the host's root.
fn recipe(version: &str, extra: &str) -> String {
    format!(
        "name: app\nresources:\n  - setting: app version\n    path: \"/{{{{facts.custom.rel}}}}/app.conf\"\n    key: version\n    value: \"{version}\"\n  - setting: app mode\n    path: \"/{{{{facts.custom.rel}}}}/app.conf\"\n    key: mode\n    value: fast\n{extra}"
    )
}

/// v3: fails on a host holding `poison` in its root.
const POISON: &str = "  - exec: app check\n    command: test ! -e \"{{facts.custom.root}}/poison\"\n";

const HEALTH: &str = "name: app-health\nkind: Command\nsteps:\n  - name: check\n    action: runShellScript\n    run: test ! -e unhealthy\n";

struct Fleet {
    s: Server,
    admin: String,
    work: tempfile::TempDir,
    agents: Vec<Daemon>,
    v1: String,
}

impl Fleet {
    /// Pushes a version of `app`; returns its version.
    fn push(&self, text: &str) -> String {
        let file = self.work.path().join("app.yaml");
        std::fs::write(&file, text).expect("write");
        let v = self.s.tend_json(&self.admin, &["recipe", "push", file.to_str().expect("p")]);
        v[0]["version"].as_str().expect("version").to_string()
    }

    fn tend_json(&self, args: &[&str]) -> serde_json::Value {
        self.s.tend_json(&self.admin, args)
    }

    /// The agents in the order the server cuts batches (hostname, then id).
    fn in_order(&self) -> Vec<&Daemon> {
        let nodes = self.tend_json(&["nodes", "list"]);
        let ids: Vec<String> =
            nodes.as_array().expect("nodes").iter().map(|n| n["id"].as_str().expect("id").to_string()).collect();
        let mut agents: Vec<&Daemon> = self.agents.iter().collect();
        agents.sort_by_key(|a| ids.iter().position(|i| *i == a.id).unwrap_or(usize::MAX));
        agents
    }

    fn converge_all(&self) {
        let out = self.s.tend(
            &self.admin,
            &["run", "--targets", "tag:role=web", "--document", "Converge", "--wait", "--output", "json"],
        );
        assert!(out.status.success(), "{}\n{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    }

    fn reports_of(&self, node: &str) -> usize {
        self.tend_json(&["reports", "--node", node]).as_array().map(Vec::len).unwrap_or(0)
    }

    fn audit(&self, action: &str) -> Vec<serde_json::Value> {
        let mut all: Vec<serde_json::Value> = self.tend_json(&["audit"]).as_array().cloned().unwrap_or_default();
        all.reverse();
        all.into_iter().filter(|e| e["action"] == action).collect()
    }
}

/// A server, `n` daemons tagged role=web, `app` v1 assigned and converged.
fn fleet(backend: Backend, n: usize) -> Fleet {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let agents = daemons(&s, work.path(), n, "role=web");
    let mut f = Fleet { s, admin, work, agents, v1: String::new() };
    f.v1 = f.push(&recipe("1", ""));
    let out = f.s.tend(&f.admin, &["assign", &format!("app@{}", f.v1), "--targets", "tag:role=web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    f.converge_all();
    for a in &f.agents {
        assert_eq!(conf(a), "version = 1\nmode = fast\n");
    }
    f
}

fn conf(a: &Daemon) -> String {
    std::fs::read_to_string(a.root.join("app.conf")).unwrap_or_default()
}

fn version_of(a: &Daemon) -> String {
    a.last_report().and_then(|r| r["versions"]["app"].as_str().map(str::to_string)).unwrap_or_default()
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.display().to_string(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

fn rollout(f: &Fleet, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["rollout", "start"];
    all.extend_from_slice(args);
    all.extend(["--output", "json"]);
    let out = f.s.tend(&f.admin, &all);
    (out.status.code(), json(&out))
}

fn counts(r: &serde_json::Value) -> BTreeMap<String, u64> {
    r["counts"].as_object().expect("counts").iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect()
}

fn a_plan_groups_the_hosts_by_what_would_change_and_changes_nothing(backend: Backend) {
    let mut f = fleet(backend, 11);
    let order: Vec<usize> = (0..11).collect();
    // 4 hosts as v1 left them, 3 drifted, 3 without the file, 1 offline.
    for &i in &order[4..7] {
        std::fs::write(f.agents[i].root.join("app.conf"), "version = 7\nmode = fast\n").expect("drift");
    }
    for &i in &order[7..10] {
        std::fs::remove_file(f.agents[i].root.join("app.conf")).expect("remove");
    }
    f.agents[10].kill9();
    let silent = f.agents[10].id.clone();
    let v2 = f.push(&recipe("2", ""));
    let before: Vec<_> = f.agents.iter().map(|a| (tree(&a.root), a.last_report())).collect();
    let cs = f.tend_json(&["plan", &format!("app@{v2}"), "--targets", "tag:role=web", "--timeout", "8"]);
    assert_eq!(cs["status"], "Complete", "{cs:#}");
    assert_eq!((cs["hosts"].as_u64(), cs["answered"].as_u64()), (Some(11), Some(10)), "{cs:#}");
    assert_eq!(cs["silent"][0]["node"], silent.as_str(), "{cs:#}");
    assert_eq!(cs["failed_hosts"].as_array().map(Vec::len), Some(0), "{cs:#}");
    let resources = cs["resources"].as_array().expect("resources");
    let version = resources.iter().find(|r| r["id"] == "setting:app version").expect("the version setting");
    assert_eq!(counts(version), BTreeMap::from([("add".into(), 3), ("modify".into(), 7)]), "{version:#}");
    let groups: Vec<(String, usize)> = version["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (g["effect"].as_str().unwrap_or_default().to_string(), g["hosts"].as_array().map(Vec::len).unwrap_or(0))
        })
        .collect();
    assert_eq!(groups, [("add".into(), 3), ("modify".into(), 3), ("modify".into(), 4)], "outliers first: {version:#}");
    let diff = version["groups"][2]["changes"][0]["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("-version = 1") && diff.contains("+version = 2"), "{diff}");
    let mode = resources.iter().find(|r| r["id"] == "setting:app mode").expect("the mode setting");
    assert_eq!(counts(mode), BTreeMap::from([("add".into(), 3), ("unchanged".into(), 7)]), "{mode:#}");
    // Nothing changed: the files, and the agents' last runs.
    let after: Vec<_> = f.agents.iter().map(|a| (tree(&a.root), a.last_report())).collect();
    assert!(before == after, "a plan changed a host");
    // Stored: shown again, as a table too.
    let id = cs["id"].as_str().expect("id");
    let again = f.tend_json(&["plan", "show", id]);
    assert_eq!(again["resources"], cs["resources"]);
    let out = f.s.tend(&f.admin, &["plan", "show", id, "--diff"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("4 hosts: modify content, the same change") && text.contains("+version = 2"), "{text}");
    assert!(text.contains("no answer:"), "{text}");
}

fn a_failing_canary_is_rolled_back_and_the_rest_never_see_it(backend: Backend) {
    let f = fleet(backend, 10);
    let order = f.in_order();
    std::fs::write(order[0].root.join("poison"), "").expect("poison");
    let bad = f.push(&recipe("3", POISON));
    let files: Vec<String> = order.iter().map(|a| conf(a)).collect();
    let reports: Vec<usize> = order.iter().map(|a| f.reports_of(&a.id)).collect();
    let (code, v) = rollout(
        &f,
        &[
            &format!("app@{bad}"),
            "--targets",
            "tag:role=web",
            "--strategy",
            "canary:20%,bake=1s",
            "--batch",
            "50%",
            "--wait",
        ],
    );
    assert_eq!(code, Some(2), "{v:#}");
    assert_eq!(v["status"], "RolledBack", "{v:#}");
    let batches = v["batches"].as_array().expect("batches");
    assert_eq!(
        batches.iter().map(|b| b["nodes"].as_array().map(Vec::len).unwrap_or(0)).collect::<Vec<_>>(),
        [2, 5, 3],
        "a canary of 20%, then 50% of the fleet at a time"
    );
    assert_eq!(batches[0]["status"], "Failed");
    assert_eq!(batches[0]["gates"][0]["gate"], "converge");
    assert_eq!(batches[0]["gates"][0]["passed"], false);
    assert!(batches[1..].iter().all(|b| b["status"] == "NotRun"), "{v:#}");
    assert!(v["reason"].as_str().unwrap_or_default().contains("exec:app check"), "{v:#}");
    for n in batches[0]["nodes"].as_array().expect("nodes") {
        assert_eq!(n["state"], "RolledBack", "{v:#}");
    }
    for (i, a) in order.iter().enumerate() {
        assert_eq!(conf(a), files[i], "host {i}'s file is what it was");
        assert_eq!(version_of(a), f.v1, "host {i} runs v1 again");
        if i >= 2 {
            assert_eq!(f.reports_of(&a.id), reports[i], "host {i} outside the canary never ran");
        }
    }
    // The canary ran the bad version once, then v1 again: two new reports each.
    assert_eq!(f.reports_of(&order[1].id), reports[1] + 2);
}

fn a_linear_rollout_reaches_every_node_batch_by_batch(backend: Backend) {
    let f = fleet(backend, 10);
    let v2 = f.push(&recipe("2", ""));
    let (code, v) =
        rollout(&f, &[&format!("app@{v2}"), "--targets", "tag:role=web", "--strategy", "linear:30%,every=1s"]);
    assert_eq!(code, Some(0), "{v:#}");
    let id = v["id"].as_str().expect("id").to_string();
    // While it runs, another rollout or assignment of the recipe is refused, naming it.
    let out = f.s.tend(&f.admin, &["assign", "app", "--targets", "tag:role=web"]);
    assert!(!out.status.success() && stderr(&out).contains(&id), "{}", stderr(&out));
    let spec = format!("app@{v2}");
    let out =
        f.s.tend(&f.admin, &["rollout", "start", &spec, "--targets", "tag:role=web", "--strategy", "all-at-once"]);
    assert!(!out.status.success() && stderr(&out).contains(&id), "{}", stderr(&out));
    let out = f.s.tend(&f.admin, &["rollout", "show", &id, "--wait", "--output", "json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["status"], "Succeeded");
    let batches = v["batches"].as_array().expect("batches");
    let sizes: Vec<usize> = batches.iter().map(|b| b["nodes"].as_array().map(Vec::len).unwrap_or(0)).collect();
    assert_eq!(sizes, [3, 3, 3, 1]);
    // In order: each batch started after the one before had ended.
    let starts = f.audit("rollout.batch.start");
    assert_eq!(starts.iter().map(|e| e["detail"]["batch"].as_u64().unwrap_or(99)).collect::<Vec<_>>(), [0, 1, 2, 3]);
    for w in batches.windows(2) {
        assert!(w[1]["started_at"].as_str() >= w[0]["ended_at"].as_str(), "{v:#}");
    }
    for a in &f.agents {
        assert_eq!(conf(a), "version = 2\nmode = fast\n");
        assert_eq!(version_of(a), v2);
    }
    // Manual rollback after success takes every node back.
    let out = f.s.tend(&f.admin, &["rollout", "rollback", &id, "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = f.s.tend(&f.admin, &["rollout", "show", &id, "--wait", "--output", "json"]);
    assert_eq!(json(&out)["status"], "RolledBack", "{}", String::from_utf8_lossy(&out.stdout));
    for a in &f.agents {
        assert_eq!(conf(a), "version = 1\nmode = fast\n");
    }
}

fn a_failing_health_document_rolls_back_the_batches_that_ran(backend: Backend) {
    let f = fleet(backend, 10);
    let doc = f.work.path().join("health.yaml");
    std::fs::write(&doc, HEALTH).expect("write");
    assert!(f.s.tend(&f.admin, &["document", "push", doc.to_str().expect("p")]).status.success());
    let order = f.in_order();
    std::fs::write(order[4].root.join("unhealthy"), "").expect("mark");
    let v2 = f.push(&recipe("2", ""));
    let (code, v) = rollout(
        &f,
        &[
            &format!("app@{v2}"),
            "--targets",
            "tag:role=web",
            "--strategy",
            "batches:3",
            "--health-document",
            "app-health",
            "--wait",
        ],
    );
    assert_eq!(code, Some(2), "{v:#}");
    assert_eq!(v["status"], "RolledBack", "{v:#}");
    let batches = v["batches"].as_array().expect("batches");
    assert_eq!(batches[0]["status"], "Done");
    assert_eq!(batches[1]["status"], "Failed");
    let health = batches[1]["gates"].as_array().expect("gates").iter().find(|g| g["gate"] == "health").cloned();
    assert_eq!(health.map(|g| g["passed"].clone()), Some(serde_json::json!(false)), "{v:#}");
    let state = |b: usize| -> Vec<String> {
        batches[b]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["state"].as_str().unwrap_or("").into())
            .collect()
    };
    assert_eq!(state(0), ["RolledBack"; 3]);
    assert_eq!(state(1), ["RolledBack"; 3]);
    assert_eq!(state(2), ["Waiting"; 3]);
    let rolled = f.audit("rollout.rollback.start");
    assert_eq!(rolled[0]["detail"]["nodes"].as_array().map(Vec::len), Some(6), "the first two batches only");
    for a in &order {
        assert_eq!(conf(a), "version = 1\nmode = fast\n");
        assert_eq!(version_of(a), f.v1);
    }
}

fn min_healthy_refuses_a_batch_that_would_go_below_it(backend: Backend) {
    let f = fleet(backend, 10);
    let v2 = f.push(&recipe("2", ""));
    let spec = format!("app@{v2}");
    let (code, v) =
        rollout(&f, &[&spec, "--targets", "tag:role=web", "--strategy", "all-at-once", "--min-healthy", "9", "--wait"]);
    assert_eq!(code, Some(2), "{v:#}");
    assert_eq!(v["status"], "Failed", "{v:#}");
    assert!(v["reason"].as_str().unwrap_or_default().contains("below --min-healthy 9"), "{v:#}");
    assert_eq!(v["batches"][0]["gates"][0]["gate"], "min-healthy");
    for a in &f.agents {
        assert_eq!(version_of(a), f.v1, "nothing was pinned or woken");
    }
    let (code, v) = rollout(
        &f,
        &[&spec, "--targets", "tag:role=web", "--strategy", "batches:20%", "--min-healthy", "80%", "--wait"],
    );
    assert_eq!((code, v["status"].as_str()), (Some(0), Some("Succeeded")), "{v:#}");
}

fn a_killed_server_resumes_a_rollout_without_pinning_twice_or_skipping(backend: Backend) {
    let mut f = fleet(backend, 10);
    let v2 = f.push(&recipe("2", ""));
    let (code, v) = rollout(&f, &[&format!("app@{v2}"), "--targets", "tag:role=web", "--strategy", "one-at-a-time"]);
    assert_eq!(code, Some(0), "{v:#}");
    let id = v["id"].as_str().expect("id").to_string();
    wait_for("three batches", Duration::from_secs(60), || {
        let v = f.tend_json(&["rollout", "show", &id]);
        v["batches"].as_array().is_some_and(|b| b.iter().filter(|b| b["status"] == "Done").count() >= 3)
    });
    f.s.stop();
    std::thread::sleep(Duration::from_millis(500));
    f.s.restart();
    let out = f.s.tend(&f.admin, &["rollout", "show", &id, "--wait", "--output", "json"]);
    let v = json(&out);
    assert_eq!(v["status"], "Succeeded", "{v:#}");
    let starts = f.audit("rollout.batch.start");
    let batches: Vec<u64> = starts.iter().map(|e| e["detail"]["batch"].as_u64().unwrap_or(99)).collect();
    assert_eq!(batches, (0..10).collect::<Vec<u64>>(), "every batch once, in order");
    let mut pinned: Vec<String> = starts
        .iter()
        .flat_map(|e| e["detail"]["nodes"].as_array().cloned().unwrap_or_default())
        .map(|n| n.to_string())
        .collect();
    pinned.sort();
    pinned.dedup();
    assert_eq!(pinned.len(), 10, "each node pinned once");
    for a in &f.agents {
        assert_eq!(version_of(a), v2);
    }
}

fn pause_holds_the_next_batch_resume_goes_on_and_stop_ends_it(backend: Backend) {
    let f = fleet(backend, 10);
    let v2 = f.push(&recipe("2", ""));
    let (code, v) =
        rollout(&f, &[&format!("app@{v2}"), "--targets", "tag:role=web", "--strategy", "linear:20%,every=2s"]);
    assert_eq!(code, Some(0), "{v:#}");
    let id = v["id"].as_str().expect("id").to_string();
    let show = || f.tend_json(&["rollout", "show", &id]);
    let started = |v: &serde_json::Value| {
        v["batches"].as_array().map(|b| b.iter().filter(|b| b["status"] != "Pending").count()).unwrap_or(0)
    };
    assert!(f.s.tend(&f.admin, &["rollout", "pause", &id]).status.success());
    wait_for("the pause", Duration::from_secs(30), || show()["status"] == "Paused");
    let held = started(&show());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(started(&show()), held, "no batch starts while paused");
    assert!(f.s.tend(&f.admin, &["rollout", "resume", &id]).status.success());
    wait_for("the next batch", Duration::from_secs(30), || started(&show()) > held);
    assert!(f.s.tend(&f.admin, &["rollout", "stop", &id]).status.success());
    let out = f.s.tend(&f.admin, &["rollout", "show", &id, "--wait", "--output", "json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(2), "{v:#}");
    assert_eq!(v["status"], "Stopped", "{v:#}");
    assert!(v["batches"].as_array().is_some_and(|b| b.iter().any(|b| b["status"] == "NotRun")), "{v:#}");
    let actions: Vec<String> = f
        .audit("rollout.pause")
        .iter()
        .chain(&f.audit("rollout.resume"))
        .chain(&f.audit("rollout.stopped"))
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(actions, ["rollout.pause", "rollout.resume", "rollout.stopped"]);
    // A stopped rollout frees the recipe: assigning it again is allowed.
    let out = f.s.tend(&f.admin, &["assign", &format!("app@{v2}"), "--targets", "tag:role=web"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn by_fact_goes_one_zone_at_a_time_and_a_failed_rollback_names_its_nodes(backend: Backend) {
    let mut f = fleet(backend, 4);
    for (i, a) in f.agents.iter().enumerate() {
        let facts = a.cfg.parent().expect("dir").join("facts.d").join("zone.yaml");
        std::fs::write(facts, format!("zone: z{}\n", i % 2)).expect("zone");
    }
    f.converge_all();
    let bad = f.push(&recipe("3", POISON));
    let spec = format!("app@{bad}");
    let args =
        ["--targets", "tag:role=web", "--strategy", "all-at-once", "--by-fact", "custom.zone", "--batch-timeout", "4s"];
    let (code, v) = rollout(&f, &[&[spec.as_str()][..], &args[..]].concat());
    assert_eq!(code, Some(0), "{v:#}");
    let id = v["id"].as_str().expect("id").to_string();
    assert!(f.s.tend(&f.admin, &["rollout", "pause", &id]).status.success());
    wait_for("the pause after the first zone", Duration::from_secs(30), || {
        f.tend_json(&["rollout", "show", &id])["status"] == "Paused"
    });
    let v = f.tend_json(&["rollout", "show", &id]);
    let zone = |b: usize| -> Vec<String> {
        let mut n: Vec<String> = v["batches"][b]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["node"].as_str().unwrap_or("").to_string())
            .collect();
        n.sort();
        n
    };
    let ids = |z: usize| -> Vec<String> {
        let mut n: Vec<String> =
            f.agents.iter().enumerate().filter(|(i, _)| i % 2 == z).map(|(_, a)| a.id.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(
        (v["batches"][0]["group"].as_str(), v["batches"][1]["group"].as_str()),
        (Some("z0"), Some("z1")),
        "{v:#}"
    );
    assert_eq!((zone(0), zone(1)), (ids(0), ids(1)), "one zone per batch");
    assert_eq!(v["batches"][0]["status"], "Done", "{v:#}");
    // The second zone fails; one node of the first is gone, so its rollback cannot finish.
    std::fs::write(f.agents[1].root.join("poison"), "").expect("poison");
    f.agents[0].kill9();
    assert!(f.s.tend(&f.admin, &["rollout", "resume", &id]).status.success());
    let out = f.s.tend(&f.admin, &["rollout", "show", &id, "--wait", "--output", "json"]);
    let v = json(&out);
    assert_eq!(v["status"], "RollbackFailed", "{v:#}");
    assert!(v["reason"].as_str().unwrap_or_default().contains("the rollback failed on"), "{v:#}");
    let states: BTreeMap<String, String> = v["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .flat_map(|b| b["nodes"].as_array().cloned().unwrap_or_default())
        .map(|n| (n["node"].as_str().unwrap_or("").to_string(), n["state"].as_str().unwrap_or("").to_string()))
        .collect();
    for (i, a) in f.agents.iter().enumerate() {
        let want = if i == 0 { "RollbackFailed" } else { "RolledBack" };
        assert_eq!(states[&a.id], want, "agent {i}: {v:#}");
    }
}

/// Prints `{"errors": N}`: 9 where `unhealthy` is in the root, else 0; always succeeds.
const COUNTING: &str = "name: app-errors\nkind: Command\nsteps:\n  - name: count\n    action: runShellScript\n    run: |\n      if [ -e unhealthy ]; then echo '{\"errors\": 9}'; else echo '{\"errors\": 0}'; fi\n";

fn a_health_condition_on_the_documents_outputs_gates_a_batch(backend: Backend) {
    let f = fleet(backend, 4);
    let doc = f.work.path().join("errors.yaml");
    std::fs::write(&doc, COUNTING).expect("write");
    assert!(f.s.tend(&f.admin, &["document", "push", doc.to_str().expect("p")]).status.success());
    let order = f.in_order();
    std::fs::write(order[3].root.join("unhealthy"), "").expect("mark");
    let v2 = f.push(&recipe("2", ""));
    let spec = format!("app@{v2}");
    let base = ["--targets", "tag:role=web", "--strategy", "batches:2", "--health-document", "app-errors"];
    let out = f.s.tend(
        &f.admin,
        &[
            &["rollout", "start", spec.as_str()][..],
            &base[..],
            &["--health-condition", "{variable: \"{{outputs.nope}}\", equals: 1}"][..],
        ]
        .concat(),
    );
    assert!(
        !out.status.success() && stderr(&out).contains("--health-output"),
        "a condition with no output: {}",
        stderr(&out)
    );
    let gate = [
        "--health-output",
        "errors=json:errors",
        "--health-condition",
        "{variable: \"{{outputs.errors}}\", numericLess: 5}",
        "--wait",
    ];
    let (code, v) = rollout(&f, &[&[spec.as_str()][..], &base[..], &gate[..]].concat());
    assert_eq!(code, Some(2), "{v:#}");
    assert_eq!(v["status"], "RolledBack", "{v:#}");
    assert_eq!(
        (v["batches"][0]["status"].as_str(), v["batches"][1]["status"].as_str()),
        (Some("Done"), Some("Failed")),
        "{v:#}"
    );
    let failed = &v["batches"][1]["nodes"][1];
    assert_eq!(failed["node"], order[3].id.as_str(), "{v:#}");
    let detail = failed["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("the health condition is not met") && detail.contains("\"errors\":9"), "{v:#}");
    for a in &order {
        assert_eq!(version_of(a), f.v1);
    }
}

on_both_stores!(
    a_plan_groups_the_hosts_by_what_would_change_and_changes_nothing,
    a_failing_canary_is_rolled_back_and_the_rest_never_see_it,
    a_linear_rollout_reaches_every_node_batch_by_batch,
    a_failing_health_document_rolls_back_the_batches_that_ran,
    min_healthy_refuses_a_batch_that_would_go_below_it,
    a_killed_server_resumes_a_rollout_without_pinning_twice_or_skipping,
    pause_holds_the_next_batch_resume_goes_on_and_stop_ends_it,
    by_fact_goes_one_zone_at_a_time_and_a_failed_rollback_names_its_nodes,
    a_health_condition_on_the_documents_outputs_gates_a_batch,
);
