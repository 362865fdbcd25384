//! The fleet end to end: a real tend-server over HTTPS, the `tend` CLI, and
//! agents (processes with their own state directories) registering with
//! activations and talking mTLS.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn agents_register_with_activations_and_talk_mtls(backend: Backend) {
    let s = Server::start(backend);
    let agents = tempfile::tempdir().expect("tempdir");
    let a = agents.path().join("a");
    let b = agents.path().join("b");
    let c = agents.path().join("c");
    let (id, code) = s.activation("env=prod,role=web", 2, "1h");

    // The host may add tags, never override the activation's (env stays prod).
    let out = register(&s, &a, &id, &code, "rack=r1,env=dev");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(register(&s, &b, &id, &code, "").status.success());
    // The private key stays on the host, 0600.
    let key = a.join("identity/key.pem");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).expect("key").permissions()) & 0o777,
        0o600
    );

    // Refusals, each clear, each leaving nothing behind.
    let limit = register(&s, &c, &id, &code, "");
    assert!(!limit.status.success() && stderr(&limit).contains("limit is reached"), "{}", stderr(&limit));
    let wrong = register(&s, &c, &id, "0000", "");
    assert!(!wrong.status.success() && stderr(&wrong).contains("wrong activation code"), "{}", stderr(&wrong));
    let (short, short_code) = s.activation("env=prod", 5, "1s");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let expired = register(&s, &c, &short, &short_code, "");
    assert!(!expired.status.success() && stderr(&expired).contains("expired"), "{}", stderr(&expired));
    assert!(!c.join("identity").exists(), "a refused registration left an identity");

    // A second registration of the same host is refused locally.
    let again = register(&s, &a, &id, &code, "");
    assert!(stderr(&again).contains("already registered"), "{}", stderr(&again));

    // nodes list: both, with the activation's tags and their own.
    let nodes = s.tend_json(&s.admin_token(), &["nodes", "list"]);
    let nodes = nodes.as_array().expect("array");
    assert_eq!(nodes.len(), 2);
    let node_a = nodes.iter().find(|n| n["tags"]["rack"] == "r1").expect("node a");
    assert_eq!(node_a["tags"]["env"], "prod");
    assert_eq!(node_a["tags"]["role"], "web");
    for k in ["id", "hostname", "tags", "last_seen", "last_run"] {
        assert!(node_a.get(k).is_some(), "{k} in {node_a}");
    }

    // mTLS: the agent's certificate identifies it; deregistration is at once.
    let who = agent(&a, &["whoami"]);
    assert!(who.status.success(), "{}", stderr(&who));
    let me: serde_json::Value = serde_json::from_slice(&who.stdout).expect("JSON");
    assert_eq!(me["id"], node_a["id"]);
    let dereg = s.tend(&s.admin_token(), &["node", "deregister", me["id"].as_str().expect("id")]);
    assert!(dereg.status.success(), "{}", stderr(&dereg));
    let refused = agent(&a, &["whoami"]);
    assert!(!refused.status.success() && stderr(&refused).contains("no registered node"), "{}", stderr(&refused));
    assert!(agent(&b, &["whoami"]).status.success(), "the other node is unaffected");

    // Metrics: nodes by last run, requests by route.
    let metrics = get_text(&s, "/metrics");
    assert!(metrics.contains("tend_nodes{last_run=\"never\"} 1"), "{metrics}");
    assert!(metrics.contains("tend_http_requests_total{route=\"/v1/register\",status=\"200\"} 2"), "{metrics}");
    assert!(metrics.contains("tend_http_request_duration_seconds_bucket"), "{metrics}");
    assert_eq!(get_text(&s, "/healthz"), "ok\n");

    // The audit log has it all.
    let audit = s.tend_json(&s.admin_token(), &["audit"]);
    let actions: Vec<&str> = audit.as_array().expect("array").iter().filter_map(|e| e["action"].as_str()).collect();
    for want in ["activation.create", "node.register", "node.deregister", "node.register.refused.LimitReached"] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
}

fn roles_and_scopes_are_enforced(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let viewer = s.tend_json(&admin, &["token", "create", "--name", "ro", "--role", "viewer"]);
    let viewer = viewer["token"].as_str().expect("secret").to_string();
    let staging =
        s.tend_json(&admin, &["token", "create", "--name", "stg", "--role", "operator", "--scope", "tag:env=staging"]);
    let staging = staging["token"].as_str().expect("secret").to_string();

    let out = s.tend(&viewer, &["activation", "create", "--tags", "env=prod"]);
    assert!(!out.status.success() && stderr(&out).contains("needs the operator role"), "{}", stderr(&out));
    let out = s.tend(&staging, &["activation", "create", "--tags", "env=prod"]);
    assert!(!out.status.success() && stderr(&out).contains("scoped to tag:env=staging"), "{}", stderr(&out));
    assert!(s.tend(&staging, &["activation", "create", "--tags", "env=staging"]).status.success());
    let out = s.tend(&viewer, &["token", "list"]);
    assert!(!out.status.success() && stderr(&out).contains("needs the admin role"));

    // A scoped operator sees only its nodes.
    let agents = tempfile::tempdir().expect("tempdir");
    let (p, pc) = s.activation("env=prod", 1, "1h");
    assert!(register(&s, &agents.path().join("p"), &p, &pc, "").status.success());
    assert_eq!(s.tend_json(&staging, &["nodes", "list"]).as_array().map(Vec::len), Some(0));
    assert_eq!(s.tend_json(&viewer, &["nodes", "list"]).as_array().map(Vec::len), Some(1));

    // Pushing and assigning need the operator role; a scoped operator
    // cannot assign outside its scope.
    let recipe = agents.path().join("fleet.yaml");
    std::fs::write(&recipe, FLEET_RECIPE.replace("VERSION", "roles")).expect("write");
    let out = s.tend(&viewer, &["recipe", "push", recipe.to_str().expect("path")]);
    assert!(!out.status.success() && stderr(&out).contains("needs the operator role"), "{}", stderr(&out));
    let out = s.tend(&staging, &["recipe", "push", recipe.to_str().expect("path")]);
    assert!(!out.status.success() && stderr(&out).contains("cannot push recipes"), "{}", stderr(&out));
    assert!(s.tend(&admin, &["recipe", "push", recipe.to_str().expect("path")]).status.success());
    let out = s.tend(&viewer, &["assign", "fleet", "--targets", "tag:env=prod"]);
    assert!(!out.status.success() && stderr(&out).contains("needs the operator role"), "{}", stderr(&out));
    let out = s.tend(&staging, &["assign", "fleet", "--targets", "tag:env=prod"]);
    assert!(!out.status.success() && stderr(&out).contains("cannot target tag:env=prod"), "{}", stderr(&out));
    let prod_node = s.tend_json(&admin, &["nodes", "list"])[0]["id"].as_str().expect("id").to_string();
    let out = s.tend(&staging, &["assign", "fleet", "--targets", &prod_node]);
    assert!(!out.status.success() && stderr(&out).contains("cannot target"), "{}", stderr(&out));
    let params = agents.path().join("p.yaml");
    std::fs::write(&params, "env: staging\n").expect("write");
    let out = s.tend(
        &staging,
        &["assign", "fleet", "--targets", "tag:env=staging", "--params", params.to_str().expect("path")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Bad parameter values are refused at assignment, before any node sees them.
    let out = s.tend(&admin, &["assign", "fleet", "--targets", "tag:env=prod"]);
    assert!(!out.status.success() && stderr(&out).contains("missing value for parameter `env`"), "{}", stderr(&out));

    // Unknown and revoked tokens.
    let out = s.tend("tend_nope", &["nodes", "list"]);
    assert!(stderr(&out).contains("unknown API token"));
    let tokens = s.tend_json(&admin, &["token", "list"]);
    let ro_id = tokens.as_array().expect("array").iter().find(|t| t["name"] == "ro").expect("ro")["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(tokens.to_string().find("tend_").is_none(), "token list leaks secrets");
    assert!(s.tend(&admin, &["token", "revoke", &ro_id]).status.success());
    assert!(stderr(&s.tend(&viewer, &["nodes", "list"])).contains("revoked"));

    // The CLI's configuration file stands in for the flags.
    let cli = agents.path().join("cli.yaml");
    std::fs::write(
        &cli,
        format!(
            "server: {}\nca: {}\ntoken_file: {}\n",
            s.url,
            s.data("ca.pem").display(),
            s.data("admin.token").display()
        ),
    )
    .expect("write");
    let out = Command::new(common::cli_bin())
        .args(["--config", cli.to_str().expect("path"), "nodes", "list", "--output", "json"])
        .env_remove("TEND_SERVER")
        .env_remove("TEND_TOKEN")
        .env_remove("TEND_CA")
        .output()
        .expect("tend");
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}

const FLEET_RECIPE: &str = "name: fleet\nparameters:\n  env: { type: string }\nresources:\n  - file: \"{{facts.custom.root}}/etc/fleet.conf\"\n    content: \"env={{params.env}} VERSION\\n\"\n";

fn assigned_recipes_converge_three_agents_and_survive_a_server_outage(backend: Backend) {
    let mut s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let (id, code) = s.activation("env=prod,role=web", 3, "1h");
    let agents: Vec<TestAgent> = ["a", "b", "c"].iter().map(|n| TestAgent::new(work.path(), n)).collect();
    for a in &agents {
        let out = register(&s, &a.state, &id, &code, "");
        assert!(out.status.success(), "{}", stderr(&out));
    }

    // Push (validated as the agent validates), assign by tag, run each agent once.
    let recipe = work.path().join("fleet.yaml");
    std::fs::write(&recipe, FLEET_RECIPE.replace("VERSION", "v1")).expect("write");
    let pushed = s.tend_json(&admin, &["recipe", "push", recipe.to_str().expect("path")]);
    assert_eq!(pushed[0]["name"], "fleet");
    let params = work.path().join("params.yaml");
    std::fs::write(&params, "env: prod\n").expect("write");
    let asg =
        s.tend(&admin, &["assign", "fleet", "--targets", "tag:role=web", "--params", params.to_str().expect("path")]);
    assert!(asg.status.success(), "{}", stderr(&asg));
    for a in &agents {
        let out = a.run(&["run", "--once"]);
        assert_eq!(out.status.code(), Some(2), "{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert_eq!(a.conf(), "env=prod v1\n");
    }
    let nodes = s.tend_json(&admin, &["nodes", "list"]);
    let nodes = nodes.as_array().expect("array");
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        assert_eq!(n["last_run"]["status"], "changed", "{n}");
        assert_eq!(n["last_run"]["changed"], 1);
        assert_eq!(n["last_run"]["failed"], 0);
        assert_eq!(n["last_run"]["cached"], false);
    }

    // node show: the uploaded facts and the last report, per resource.
    let shown = s.tend_json(&admin, &["node", "show", nodes[0]["id"].as_str().expect("id")]);
    assert!(shown["facts"]["os"]["family"].is_string(), "{shown}");
    assert_eq!(shown["facts"]["custom"]["root"].as_str().map(|r| r.ends_with("/root")), Some(true));
    let res = &shown["last_report"]["resources"][0];
    assert!(res["id"].as_str().unwrap_or_default().ends_with("/etc/fleet.conf"), "{shown}");
    assert_eq!(res["status"], "changed");

    // Unchanged: a 304, and nothing to do.
    let out = agents[0].run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("unchanged (304)"), "{}", stderr(&out));

    // A changed recipe is picked up on the next run.
    std::fs::write(&recipe, FLEET_RECIPE.replace("VERSION", "v2")).expect("write");
    assert!(s.tend(&admin, &["recipe", "push", recipe.to_str().expect("path")]).status.success());
    assert_eq!(agents[0].run(&["run", "--once"]).status.code(), Some(2));
    assert_eq!(agents[0].conf(), "env=prod v2\n");

    // The server goes away: the agent converges from its cache (drift
    // repaired), marks the report cached, and queues it.
    s.stop();
    std::fs::write(agents[1].root.join("etc/fleet.conf"), "tampered\n").expect("write");
    let out = agents[1].run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cached recipe set") && stderr(&out).contains("queued"), "{}", stderr(&out));
    assert_eq!(agents[1].conf(), "env=prod v1\n", "the cached set is the last good one");

    // Back: the queued report is sent in order, then the new one.
    s.restart();
    let out = agents[1].run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(agents[1].conf(), "env=prod v2\n");
    let b_id = agents[1].run(&["whoami"]);
    let b: serde_json::Value = serde_json::from_slice(&b_id.stdout).expect("JSON");
    let reports = s.tend_json(&admin, &["reports", "--node", b["id"].as_str().expect("id")]);
    let cached: Vec<bool> =
        reports.as_array().expect("array").iter().map(|r| r["cached"].as_bool().unwrap_or(false)).collect();
    assert_eq!(cached, [false, true, false], "newest first: this run, the queued cached run, the first run");

    // Several servers in the configuration: a dead one first, then this one.
    let cfg = work.path().join("failover.yaml");
    std::fs::write(&cfg, format!("servers: [\"https://127.0.0.1:9\", \"{}\"]\n", s.url)).expect("write");
    let out = agents[2].run(&["run", "--once", "--config", cfg.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(agents[2].conf(), "env=prod v2\n");
    assert!(!stderr(&out).contains("cached recipe set"), "{}", stderr(&out));
}

fn a_bad_recipe_is_refused_with_the_agents_own_errors(backend: Backend) {
    let s = Server::start(backend);
    let work = tempfile::tempdir().expect("tempdir");
    let bad = work.path().join("bad.yaml");
    std::fs::write(&bad, "name: bad\nresources:\n  - file: /etc/x\n    contnet: hi\n").expect("write");
    let out = s.tend(&s.admin_token(), &["recipe", "push", bad.to_str().expect("path")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bad.yaml:4:5") && stderr(&out).contains("did you mean `content`"),
        "{}",
        stderr(&out)
    );
    // The server checks too, with the same code: a hand-made bundle is refused.
    let bundle = serde_json::json!({ "name": "bad", "root": "bad.yaml", "files": { "bad.yaml": "name: bad\nresources:\n  - fiel: /x\n" } });
    let (status, body) = post_json(&s, "/v1/recipes", &bundle);
    assert_eq!(status, 422);
    assert!(body.contains("unknown resource type `fiel`") && body.contains("\"line\":3"), "{body}");
}

/// POSTs JSON with the admin token; returns the status and the body.
/// One HTTPS request to the server (trusting its CA); the admin token goes
/// with POSTs. Returns the status and the body.
fn request(s: &Server, post: Option<&serde_json::Value>, path: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(s.data("ca.pem")).expect("ca")).expect("pem");
        let c = reqwest::Client::builder().no_proxy().tls_certs_only([ca]).build().expect("client");
        let url = format!("{}{path}", s.url);
        let req = match post {
            Some(body) => c.post(url).bearer_auth(s.admin_token()).json(body),
            None => c.get(url),
        };
        let r = req.send().await.expect("send");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
}

fn post_json(s: &Server, path: &str, body: &serde_json::Value) -> (u16, String) {
    request(s, Some(body), path)
}

fn a_replayed_registration_is_refused_and_leaves_nothing_half_done(backend: Backend) {
    let s = Server::start(backend);
    let (id, code) = s.activation("env=prod", 5, "1h");
    let key = rcgen::KeyPair::generate().expect("key");
    let csr =
        rcgen::CertificateParams::new(Vec::<String>::new()).expect("params").serialize_request(&key).expect("csr");
    let req = serde_json::json!({
        "activation_id": id, "activation_code": code, "csr_pem": csr.pem().expect("pem"), "hostname": "replayed", "tags": {}
    });
    let (first, _) = post_json(&s, "/v1/register", &req);
    assert_eq!(first, 200);
    let (again, body) = post_json(&s, "/v1/register", &req);
    assert_eq!(again, 403);
    assert!(body.contains("already registered"), "{body}");
    // Garbage CSRs are refused clearly, and neither counts against the activation.
    let mut bad = req.clone();
    bad["csr_pem"] =
        serde_json::Value::from("-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----\n");
    let (status, body) = post_json(&s, "/v1/register", &bad);
    assert_eq!(status, 400, "{body}");
    let acts = s.tend_json(&s.admin_token(), &["activation", "list"]);
    assert_eq!(acts[0]["used"], 1);
    assert_eq!(s.tend_json(&s.admin_token(), &["nodes", "list"]).as_array().map(Vec::len), Some(1));
}

fn get_text(s: &Server, path: &str) -> String {
    request(s, None, path).1
}

fn the_daemon_runs_every_interval_and_stops_cleanly_on_sigterm(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let t = TestAgent::new(work.path(), "d");
    let cfg = work.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {}\ninterval: 1s\nsplay: 0s\nfacts_dir: {}\nec2: \"off\"\n",
            t.state.display(),
            t.facts.display()
        ),
    )
    .expect("config");
    let (id, code) = s.activation("role=daemon", 1, "1h");
    let ca = s.data("ca.pem");
    let reg = Command::new(agent_bin())
        .args([
            "register",
            "--config",
            cfg.to_str().expect("path"),
            "--server",
            &s.url,
            "--ca",
            ca.to_str().expect("path"),
        ])
        .args(["--activation-id", &id, "--activation-code", &code])
        .output()
        .expect("register");
    assert!(reg.status.success(), "{}", stderr(&reg));
    assert!(t.state.join("identity/node.json").exists(), "the config's state_dir holds the identity");

    let recipe = work.path().join("fleet.yaml");
    std::fs::write(&recipe, FLEET_RECIPE.replace("VERSION", "daemon")).expect("write");
    assert!(s.tend(&admin, &["recipe", "push", recipe.to_str().expect("path")]).status.success());
    let params = work.path().join("params.yaml");
    std::fs::write(&params, "env: test\n").expect("write");
    assert!(
        s.tend(
            &admin,
            &["assign", "fleet", "--targets", "tag:role=daemon", "--params", params.to_str().expect("path")]
        )
        .status
        .success()
    );

    let mut daemon = Command::new(agent_bin())
        .args(["run", "--config", cfg.to_str().expect("path")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon");
    // Wait (bounded) for at least two runs to be reported.
    let mut runs = 0;
    for _ in 0..120 {
        runs = s.tend_json(&admin, &["reports"]).as_array().map(Vec::len).unwrap_or(0);
        if runs >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(runs >= 2, "the daemon reported {runs} runs");
    assert_eq!(t.conf(), "env=test daemon\n");
    nix_kill(daemon.id(), "TERM");
    let mut status = None;
    for _ in 0..120 {
        if let Some(st) = daemon.try_wait().expect("wait") {
            status = Some(st);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let Some(status) = status else {
        let _ = daemon.kill();
        panic!("the daemon did not stop on SIGTERM");
    };
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut daemon.stdout.take().expect("stdout"), &mut out).expect("read");
    assert!(out.contains("tend-agent stopping"), "{out}");
}

fn nix_kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{sig} {pid}");
}

fn agents_with_trusted_keys_converge_only_signed_untampered_recipes(backend: Backend) {
    let s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let key = |n: &str| {
        let path = work.path().join(n);
        let out = s.tend(&admin, &["recipe", "keygen", "--out", path.to_str().expect("path")]);
        assert!(out.status.success(), "{}", stderr(&out));
        (path, String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let (trusted_key, trusted_pub) = key("trusted.key");
    let (other_key, _) = key("other.key");
    let t = TestAgent::new(work.path(), "s");
    let cfg = work.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {}\nfacts_dir: {}\nec2: \"off\"\ntrusted_keys: [{trusted_pub}]\n",
            t.state.display(),
            t.facts.display()
        ),
    )
    .expect("config");
    let (id, code) = s.activation("role=signed", 1, "1h");
    assert!(register(&s, &t.state, &id, &code, "").status.success());
    let recipe = work.path().join("fleet.yaml");
    let params = work.path().join("params.yaml");
    std::fs::write(&params, "env: signed\n").expect("write");
    let run = || {
        Command::new(agent_bin())
            .args(["run", "--once", "--config", cfg.to_str().expect("path")])
            .output()
            .expect("run")
    };
    let push = |version: &str, sign: Option<&Path>| {
        std::fs::write(&recipe, FLEET_RECIPE.replace("VERSION", version)).expect("write");
        let mut args = vec!["recipe", "push", recipe.to_str().expect("path")];
        if let Some(k) = sign {
            args.extend(["--sign", k.to_str().expect("path")]);
        }
        let out = s.tend(&admin, &args);
        assert!(out.status.success(), "{}", stderr(&out));
    };

    push("unsigned", None);
    assert!(
        s.tend(
            &admin,
            &["assign", "fleet", "--targets", "tag:role=signed", "--params", params.to_str().expect("path")]
        )
        .status
        .success()
    );
    let out = run();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not signed"), "{}", stderr(&out));
    assert_eq!(t.conf(), "", "nothing converged");

    push("other", Some(&other_key));
    let out = run();
    assert!(stderr(&out).contains("does not trust"), "{}", stderr(&out));
    assert_eq!(t.conf(), "");

    push("good", Some(&trusted_key));
    let out = run();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(t.conf(), "env=signed good\n");

    // Tampered after signing: the content changes, the signature stays.
    let shown = s.tend_json(&admin, &["recipe", "show", "fleet"]);
    let mut bundle = shown["bundle"].clone();
    bundle["files"]["fleet.yaml"] = serde_json::Value::from(FLEET_RECIPE.replace("VERSION", "evil"));
    let (status, body) = post_json(&s, "/v1/recipes", &bundle);
    assert_eq!(status, 201, "{body}");
    let out = run();
    assert!(stderr(&out).contains("does not match its content"), "{}", stderr(&out));
    assert_eq!(t.conf(), "env=signed good\n", "the tampered recipe changed nothing");
}

on_both_stores!(
    agents_register_with_activations_and_talk_mtls,
    roles_and_scopes_are_enforced,
    assigned_recipes_converge_three_agents_and_survive_a_server_outage,
    a_bad_recipe_is_refused_with_the_agents_own_errors,
    a_replayed_registration_is_refused_and_leaves_nothing_half_done,
    the_daemon_runs_every_interval_and_stops_cleanly_on_sigterm,
    agents_with_trusted_keys_converge_only_signed_untampered_recipes
);
