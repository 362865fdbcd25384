//! Run command end to end: a real tend-server, agent daemons holding their
//! long-polls (processes with their own state), and the `tend` CLI.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// `tend run --targets TARGET --wait --output json ARGS…`: the exit code and the JSON.
fn run_wait(s: &Server, token: &str, target: &str, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["run", "--targets", target, "--wait", "--output", "json"];
    all.extend_from_slice(args);
    let out = s.tend(token, &all);
    (out.status.code(), json(&out))
}

fn by_status(v: &serde_json::Value, status: &str) -> usize {
    v["invocations"].as_array().map(|a| a.iter().filter(|i| i["status"] == status).count()).unwrap_or(0)
}

fn fans_out_by_tag_with_outputs_and_exit_codes(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let web = daemons(&s, work.path(), 3, "role=web,env=prod");
    let db = daemons(&s, &work.path().join("db"), 1, "role=db,env=prod");

    let (code, v) = run_wait(&s, &admin, "tag:role=web,env=prod", &["--", "echo hello; echo oops >&2; exit 7"]);
    assert_eq!(code, Some(2), "a failed invocation makes `tend run --wait` fail");
    assert_eq!(v["status"], "Failed", "{v}");
    let inv = v["invocations"].as_array().expect("invocations");
    assert_eq!(inv.len(), 3, "only the web nodes: {v}");
    for i in inv {
        assert_eq!(i["status"], "Failed", "{i}");
        assert_eq!(i["exit_code"], 7);
        assert_eq!(i["stdout"], "hello\n");
        assert_eq!(i["stderr"], "oops\n");
    }

    let out = s.tend(
        &admin,
        &["run", "--targets", "tag:role=web", "--wait", "--output", "json", "--", "echo $TEND_COMMAND_ID"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(v["status"], "Success");
    assert_eq!(by_status(&v, "Success"), 3);
    let node = v["invocations"][0]["node"].as_str().expect("node").to_string();
    let full = s.tend(&admin, &["command", "output", &id, &node]);
    assert_eq!(String::from_utf8_lossy(&full.stdout), format!("{id}\n"));
    let listed = s.tend_json(&admin, &["command", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2));

    // Exit 194: success, and a reboot asked for (disabled in these agents).
    let out = s.tend(&admin, &["run", "--targets", "tag:role=db", "--wait", "--output", "json", "--", "exit 194"]);
    let v = json(&out);
    assert_eq!(v["status"], "Success", "{v}");
    assert_eq!(v["invocations"][0]["reboot"], true);
    wait_for("the agent to decline the reboot", Duration::from_secs(5), || {
        db[0].log().contains("reboots are disabled")
    });

    // ApplyRecipe: a recipe on the server, converged now through the engine.
    let recipe = work.path().join("motd.yaml");
    std::fs::write(
        &recipe,
        "name: motd\nparameters:\n  text: { type: string, default: hello }\nresources:\n  - file: \"{{facts.custom.root}}/motd\"\n    content: \"{{params.text}}\\n\"\n",
    )
    .expect("write");
    assert!(s.tend(&admin, &["recipe", "push", recipe.to_str().expect("p")]).status.success());
    let (code, v) = run_wait(&s, &admin, "tag:role=web", &["--document", "ApplyRecipe", "--param", "recipe=motd"]);
    assert_eq!(code, Some(0), "{v}");
    for (i, d) in web.iter().enumerate() {
        assert_eq!(std::fs::read_to_string(d.root.join("motd")).expect("converged"), "hello\n");
        assert!(v["invocations"][i]["stdout"].as_str().unwrap_or_default().contains("changed"), "{v}");
    }
    let out =
        s.tend(&admin, &["run", "--targets", "tag:role=web", "--document", "ApplyRecipe", "--param", "recipe=nope"]);
    assert!(stderr(&out).contains("no recipe nope"), "{}", stderr(&out));
}

fn max_concurrency_and_max_errors_are_honoured(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let _agents = daemons(&s, work.path(), 6, "role=web");
    let marks = work.path().join("marks");
    std::fs::create_dir_all(&marks).expect("mkdir");

    // Each invocation notes its start and end (nanoseconds) in its own file.
    let script = format!("f=$(mktemp -p {}); date +%s%N >> $f; sleep 0.6; date +%s%N >> $f", marks.display());
    let out = s.tend(
        &admin,
        &["run", "--targets", "tag:role=web", "--max-concurrency", "2", "--wait", "--output", "json", "--", &script],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut events: Vec<(u128, i32)> = Vec::new();
    for e in std::fs::read_dir(&marks).expect("marks") {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("read");
        let t: Vec<u128> = text.lines().map(|l| l.trim().parse().expect("ns")).collect();
        assert_eq!(t.len(), 2, "{text}");
        events.push((t[0], 1));
        events.push((t[1], -1));
    }
    assert_eq!(events.len(), 12, "six invocations, each started once");
    events.sort_by_key(|&(t, d)| (t, d));
    let (mut now, mut peak) = (0, 0);
    for (_, d) in events {
        now += d;
        peak = peak.max(now);
    }
    assert_eq!(peak, 2, "at most two at once, and the two slots were used");

    // Max errors 1, one at a time: the second failure stops the dispatch.
    let out = s.tend(
        &admin,
        &[
            "run",
            "--targets",
            "tag:role=web",
            "--max-concurrency",
            "1",
            "--max-errors",
            "1",
            "--wait",
            "--output",
            "json",
            "--",
            "exit 1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["status"], "Failed", "{v}");
    assert_eq!(by_status(&v, "Failed"), 2, "{v}");
    assert_eq!(by_status(&v, "Cancelled"), 4, "{v}");
}

/// A script that leaves a `sleep` grandchild and notes its pid.
fn grandchild_script(dir: &Path) -> String {
    format!("sh -c 'sleep 300 & echo $! > {}/pid.$TEND_COMMAND_ID; wait' & wait", dir.display())
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{}", pid.trim())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default().contains(") Z ")
}

fn timeout_and_cancel_kill_the_whole_process_group(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let agents = daemons(&s, work.path(), 1, "role=web");
    let pids = work.path().join("pids");
    std::fs::create_dir_all(&pids).expect("mkdir");

    let out = s.tend(
        &admin,
        &[
            "run",
            "--targets",
            &agents[0].id,
            "--timeout",
            "2",
            "--wait",
            "--output",
            "json",
            "--",
            &grandchild_script(&pids),
        ],
    );
    let v = json(&out);
    assert_eq!(v["status"], "TimedOut", "{v}");
    let id = v["id"].as_str().expect("id");
    let pid = std::fs::read_to_string(pids.join(format!("pid.{id}"))).expect("pid file");
    wait_for("the timed-out grandchild to be gone", Duration::from_secs(5), || !alive(&pid));

    let out = s.tend(&admin, &["run", "--targets", &agents[0].id, "--output", "json", "--", &grandchild_script(&pids)]);
    let id = json(&out)["id"].as_str().expect("id").to_string();
    let pid_file = pids.join(format!("pid.{id}"));
    wait_for("the script to start", Duration::from_secs(10), || pid_file.exists());
    let pid = std::fs::read_to_string(&pid_file).expect("pid");
    assert!(alive(&pid));
    let c = s.tend(&admin, &["command", "cancel", &id]);
    assert!(c.status.success(), "{}", stderr(&c));
    let v = wait_finished(&s, &admin, &id, Duration::from_secs(10));
    assert_eq!(v["status"], "Cancelled", "{v}");
    assert_eq!(v["invocations"][0]["status"], "Cancelled");
    wait_for("the cancelled grandchild to be gone", Duration::from_secs(5), || !alive(&pid));
}

const ECHO_DOC: &str = "name: Echo\nkind: Command\nparameters:\n  value: { type: string }\n  secret: { type: string, default: \"\", sensitive: true }\n  service: { type: string, default: nginx, allowed: [nginx, app] }\nsteps:\n  - name: echo\n    action: runShellScript\n    run: |\n      printf '%s\\n' \"$TEND_PARAM_VALUE\"\n      printf 'secret=%s\\n' \"$TEND_PARAM_SECRET\"\n";

fn parameters_are_validated_and_injection_is_inert(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let _agents = daemons(&s, work.path(), 1, "role=web");
    let doc = work.path().join("echo.yaml");
    std::fs::write(&doc, ECHO_DOC).expect("write");
    let pushed = s.tend_json(&admin, &["document", "push", doc.to_str().expect("p")]);
    assert_eq!(pushed[0]["name"], "Echo", "{pushed}");

    let t = work.path().join("pwned");
    let t = t.display();
    let attempts = [
        format!("; touch {t}.1"),
        format!("$(touch {t}.2)"),
        format!("`touch {t}.3`"),
        format!("x\ntouch {t}.4"),
        format!("'; touch {t}.5; '"),
        format!("\"; touch {t}.6; \""),
        format!("&& touch {t}.7 || touch {t}.8"),
    ];
    for a in &attempts {
        let param = format!("value={a}");
        let out = s.tend(
            &admin,
            &[
                "run",
                "--targets",
                "tag:role=web",
                "--document",
                "Echo",
                "--param",
                &param,
                "--param",
                "secret=hunter2",
                "--wait",
                "--output",
                "json",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json(&out);
        assert_eq!(v["invocations"][0]["stdout"], format!("{a}\nsecret=(sensitive)\n"), "printed as data");
        assert_eq!(v["params"]["secret"], "(sensitive)");
    }
    for n in 1..=8 {
        assert!(!Path::new(&format!("{t}.{n}")).exists(), "injection {n} ran");
    }

    // Bad values are refused before anything is sent.
    let before = s.tend_json(&admin, &["command", "list"]).as_array().map(Vec::len);
    let out = s.tend(
        &admin,
        &["run", "--targets", "tag:role=web", "--document", "Echo", "--param", "value=x", "--param", "service=sshd"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("service"), "{}", stderr(&out));
    let out = s.tend(&admin, &["run", "--targets", "tag:role=web", "--document", "Echo"]);
    assert!(stderr(&out).contains("missing value for parameter `value`"), "{}", stderr(&out));
    assert_eq!(s.tend_json(&admin, &["command", "list"]).as_array().map(Vec::len), before);

    // The audit log has the command, with the secret redacted.
    let audit = s.tend(&admin, &["audit", "--output", "json"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(text.contains("command.run") && !text.contains("hunter2"), "{text}");
}

fn a_killed_agent_never_runs_a_command_twice(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let mut agents = daemons(&s, work.path(), 1, "role=web");
    let counter = work.path().join("counter");
    let script = format!("echo run >> {}; sleep 3; echo done", counter.display());
    let out = s.tend(&admin, &["run", "--targets", "tag:role=web", "--output", "json", "--", &script]);
    let id = json(&out)["id"].as_str().expect("id").to_string();
    wait_for("the script to start", Duration::from_secs(10), || counter.exists());
    agents[0].kill9();
    agents[0].start();
    let v = wait_finished(&s, &admin, &id, Duration::from_secs(20));
    assert_eq!(v["status"], "Failed", "{v}");
    let reason = v["invocations"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("agent stopped while this command was running"), "{v}");
    // Long enough for a second run to have shown itself.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(std::fs::read_to_string(&counter).expect("counter"), "run\n", "ran exactly once");
    assert!(agents[0].log().contains("was not run again"), "{}", agents[0].log());
}

fn a_server_restart_mid_fan_out_loses_and_repeats_nothing(backend: Backend) {
    let mut s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let _agents = daemons(&s, work.path(), 3, "role=web");
    let counter = work.path().join("counter");
    let script = format!("echo $TEND_COMMAND_ID >> {}; sleep 1", counter.display());
    let out = s.tend(
        &admin,
        &["run", "--targets", "tag:role=web", "--max-concurrency", "1", "--output", "json", "--", &script],
    );
    let id = json(&out)["id"].as_str().expect("id").to_string();
    wait_for("the first invocation", Duration::from_secs(10), || counter.exists());
    s.stop();
    std::thread::sleep(Duration::from_millis(1500));
    s.restart();
    let v = wait_finished(&s, &admin, &id, Duration::from_secs(60));
    assert_eq!(v["status"], "Success", "{v}");
    assert_eq!(by_status(&v, "Success"), 3);
    let lines = std::fs::read_to_string(&counter).expect("counter");
    assert_eq!(lines.lines().count(), 3, "each node ran it exactly once: {lines}");
}

fn an_offline_node_reaches_delivery_timed_out(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let mut agents = daemons(&s, work.path(), 2, "role=web");
    agents[1].kill9();
    let out = s.tend(
        &admin,
        &["run", "--targets", "tag:role=web", "--delivery-timeout", "2", "--wait", "--output", "json", "--", "true"],
    );
    let v = json(&out);
    assert_eq!(by_status(&v, "Success"), 1, "{v}");
    assert_eq!(by_status(&v, "DeliveryTimedOut"), 1, "{v}");
    assert_eq!(v["status"], "DeliveryTimedOut");
    // A deregistered node named by id is Undeliverable.
    let gone = agents[1].id.clone();
    assert!(s.tend(&admin, &["node", "deregister", &gone]).status.success());
    let v = json(&s.tend(&admin, &["run", "--targets", &gone, "--wait", "--output", "json", "--", "true"]));
    assert_eq!(v["invocations"][0]["status"], "Undeliverable", "{v}");
}

fn roles_and_scopes_limit_who_runs_what_where(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let prod = daemons(&s, work.path(), 1, "env=prod");
    let _staging = daemons(&s, &work.path().join("stg"), 1, "env=staging");
    let token = |role: &str, scope: Option<&str>| {
        let mut args = vec!["token", "create", "--name", role, "--role", role];
        if let Some(sc) = scope {
            args.extend(["--scope", sc]);
        }
        s.tend_json(&admin, &args)["token"].as_str().expect("secret").to_string()
    };
    let viewer = token("viewer", None);
    let out = s.tend(&viewer, &["run", "--targets", "tag:env=staging", "--", "true"]);
    assert!(!out.status.success() && stderr(&out).contains("operator"), "{}", stderr(&out));
    let stg = token("operator", Some("tag:env=staging"));
    for target in ["tag:env=prod", prod[0].id.as_str()] {
        let out = s.tend(&stg, &["run", "--targets", target, "--", "true"]);
        assert!(!out.status.success() && stderr(&out).contains("scoped"), "{target}: {}", stderr(&out));
    }
    let out = s.tend(&stg, &["run", "--targets", "tag:env=staging", "--wait", "--output", "json", "--", "echo ok"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["invocations"].as_array().map(Vec::len), Some(1));
}

on_both_stores!(
    fans_out_by_tag_with_outputs_and_exit_codes,
    max_concurrency_and_max_errors_are_honoured,
    timeout_and_cancel_kill_the_whole_process_group,
    parameters_are_validated_and_injection_is_inert,
    a_killed_agent_never_runs_a_command_twice,
    a_server_restart_mid_fan_out_loses_and_repeats_nothing,
    an_offline_node_reaches_delivery_timed_out,
    roles_and_scopes_limit_who_runs_what_where,
);
