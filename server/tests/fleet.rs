//! The fleet end to end: a real tend-server over HTTPS, the `tend` CLI, and
//! agents (processes with their own state directories) registering with
//! activations and talking mTLS.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tend-server"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tend-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut url = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read");
            if let Some(u) = line.strip_prefix("tend-server listening on ") {
                url = u.trim().to_string();
                break;
            }
        }
        assert!(!url.is_empty(), "the server did not start");
        Server { child, url, dir }
    }

    fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join("data").join(name)
    }

    fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data("admin.token")).expect("admin.token").trim().to_string()
    }

    /// `tend --server … --ca … --token TOKEN ARGS`
    fn tend(&self, token: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tend"))
            .args(["--server", &self.url, "--ca"])
            .arg(self.data("ca.pem"))
            .args(["--token", token])
            .args(args)
            .output()
            .expect("run tend")
    }

    fn tend_json(&self, token: &str, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.tend(token, &all);
        assert!(out.status.success(), "tend {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    fn activation(&self, tags: &str, limit: u32, expires: &str) -> (String, String) {
        let a = self.tend_json(
            &self.admin_token(),
            &["activation", "create", "--tags", tags, "--limit", &limit.to_string(), "--expires", expires],
        );
        (a["id"].as_str().expect("id").to_string(), a["code"].as_str().expect("code").to_string())
    }
}

/// The tend-agent binary of this build (target/<profile>/tend-agent).
fn agent_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_tend-server")).with_file_name("tend-agent");
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p tend-agent`", bin.display());
    bin
}

fn agent(state: &Path, args: &[&str]) -> Output {
    Command::new(agent_bin()).args(args).env("TEND_STATE_DIR", state).output().expect("run tend-agent")
}

fn register(s: &Server, state: &Path, id: &str, code: &str, tags: &str) -> Output {
    let ca = s.data("ca.pem");
    agent(
        state,
        &[
            "register",
            "--server",
            &s.url,
            "--ca",
            ca.to_str().expect("path"),
            "--activation-id",
            id,
            "--activation-code",
            code,
            "--tags",
            tags,
        ],
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn agents_register_with_activations_and_talk_mtls() {
    let s = Server::start();
    let agents = tempfile::tempdir().expect("tempdir");
    let a = agents.path().join("a");
    let b = agents.path().join("b");
    let c = agents.path().join("c");
    let (id, code) = s.activation("env=prod,role=web", 2, "1h");

    let out = register(&s, &a, &id, &code, "rack=r1");
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

    // The audit log has it all.
    let audit = s.tend_json(&s.admin_token(), &["audit"]);
    let actions: Vec<&str> = audit.as_array().expect("array").iter().filter_map(|e| e["action"].as_str()).collect();
    for want in ["activation.create", "node.register", "node.deregister", "node.register.refused.LimitReached"] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
}

#[test]
fn roles_and_scopes_are_enforced() {
    let s = Server::start();
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
}
