//! What the server's end-to-end tests share: a real tend-server (SQLite or
//! PostgreSQL), the `tend` CLI, and agent processes with their own state.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub database: Option<String>,
}

/// Which store the server runs on: every test runs on both.
#[derive(Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh PostgreSQL database on the server `TEND_TEST_POSTGRES` names
/// (`bash .ci/run` starts one and sets it).
pub fn fresh_postgres_database() -> String {
    let admin = std::env::var("TEND_TEST_POSTGRES")
        .expect("TEND_TEST_POSTGRES is not set: run the tests through `bash .ci/run`, which starts PostgreSQL");
    let name = format!(
        "tend_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos()
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await.expect("connect to PostgreSQL");
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
    });
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(backend: Backend) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres_database()),
        };
        let (child, url) = Self::spawn(dir.path(), "127.0.0.1:0", database.as_deref());
        Server { child, url, dir, database }
    }

    /// Stops the server (as a crash would) and starts it again on the same
    /// address with the same data.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) {
        self.stop();
        let addr = self.url.trim_start_matches("https://").to_string();
        let (child, url) = Self::spawn(self.dir.path(), &addr, self.database.as_deref());
        assert_eq!(url, self.url);
        self.child = child;
    }

    pub fn spawn(dir: &Path, listen: &str, database: Option<&str>) -> (Child, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tend-server"));
        cmd.args(["serve", "--listen", listen, "--min-rate", "1", "--data-dir"]).arg(dir.join("data"));
        if let Some(db) = database {
            cmd.args(["--database", db]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start tend-server");
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
        (child, url)
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join("data").join(name)
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data("admin.token")).expect("admin.token").trim().to_string()
    }

    /// `tend --server … --ca … --token TOKEN ARGS`
    pub fn tend(&self, token: &str, args: &[&str]) -> Output {
        Command::new(cli_bin())
            .args(["--server", &self.url, "--ca"])
            .arg(self.data("ca.pem"))
            .args(["--token", token])
            .args(args)
            .output()
            .expect("run tend")
    }

    pub fn tend_json(&self, token: &str, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.tend(token, &all);
        assert!(out.status.success(), "tend {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    pub fn activation(&self, tags: &str, limit: u32, expires: &str) -> (String, String) {
        let a = self.tend_json(
            &self.admin_token(),
            &["activation", "create", "--tags", tags, "--limit", &limit.to_string(), "--expires", expires],
        );
        (a["id"].as_str().expect("id").to_string(), a["code"].as_str().expect("code").to_string())
    }
}

/// A binary of another package of this build (target/<profile>/NAME).
pub fn sibling_bin(name: &str, package: &str) -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_tend-server")).with_file_name(name);
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p {package}`", bin.display());
    bin
}

/// The tend-agent binary of this build.
pub fn agent_bin() -> PathBuf {
    sibling_bin("tend-agent", "tend-agent")
}

/// The `tend` CLI of this build.
pub fn cli_bin() -> PathBuf {
    sibling_bin("tend", "tend-cli")
}

pub fn agent(state: &Path, args: &[&str]) -> Output {
    Command::new(agent_bin()).args(args).env("TEND_STATE_DIR", state).output().expect("run tend-agent")
}

pub fn register(s: &Server, state: &Path, id: &str, code: &str, tags: &str) -> Output {
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

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An agent process: its own state directory, custom facts (`root`, where
/// its recipes write) and no EC2 probe.
pub struct TestAgent {
    pub state: PathBuf,
    pub root: PathBuf,
    pub facts: PathBuf,
}

impl TestAgent {
    pub fn new(base: &Path, name: &str) -> TestAgent {
        let t = TestAgent {
            state: base.join(name).join("state"),
            root: base.join(name).join("root"),
            facts: base.join(name).join("facts.d"),
        };
        std::fs::create_dir_all(t.root.join("etc")).expect("mkdir");
        std::fs::create_dir_all(&t.facts).expect("mkdir");
        std::fs::write(t.facts.join("test.yaml"), format!("root: {}\n", t.root.display())).expect("facts");
        t
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(agent_bin())
            .args(args)
            .env("TEND_STATE_DIR", &self.state)
            .env("TEND_FACTS_DIR", &self.facts)
            .env("TEND_EC2", "off")
            .env("TEND_LOG", "info")
            .output()
            .expect("run tend-agent")
    }

    pub fn conf(&self) -> String {
        std::fs::read_to_string(self.root.join("etc/fleet.conf")).unwrap_or_default()
    }
}

/// A registered agent (tags `tags`) under `work`, and the recipe `text`
/// pushed by the admin (the caller assigns it).
pub fn agent_with_recipe(s: &Server, work: &Path, tags: &str, recipe_file: &str, text: &str) -> TestAgent {
    let (id, code) = s.activation(tags, 1, "1h");
    let agent = TestAgent::new(work, "a");
    let out = register(s, &agent.state, &id, &code, "");
    assert!(out.status.success(), "{}", stderr(&out));
    let recipe = work.join(recipe_file);
    std::fs::write(&recipe, text).expect("write");
    let out = s.tend(&s.admin_token(), &["recipe", "push", recipe.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    agent
}

/// Every test, once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Backend::Postgres) } )*
        }
    };
}

/// An agent daemon: registered, its own configuration and state.
pub struct Daemon {
    /// Where its recipes write (`facts.custom.root`).
    pub root: PathBuf,
    pub cfg: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub id: String,
}

impl Daemon {
    pub fn new(s: &Server, base: &Path, name: &str, tags: &str) -> Daemon {
        let dir = base.join(name);
        let (state, facts) = (dir.join("state"), dir.join("facts.d"));
        std::fs::create_dir_all(&facts).expect("mkdir");
        std::fs::create_dir_all(dir.join("root")).expect("mkdir");
        // `rel`: the root without its leading `/`, for properties that must
        // be an absolute path before facts are known (`path: "/{{facts.custom.rel}}/x"`).
        let root = dir.join("root").display().to_string();
        let rel = root.trim_start_matches('/');
        std::fs::write(facts.join("t.yaml"), format!("root: {root}\nrel: {rel}\n")).expect("facts");
        let cfg = dir.join("agent.yaml");
        std::fs::write(
            &cfg,
            format!(
                "state_dir: {}\nfacts_dir: {}\ninterval: 1h\nsplay: 0s\nec2: \"off\"\nreboot: false\n",
                state.display(),
                facts.display()
            ),
        )
        .expect("config");
        let (act, code) = s.activation(tags, 1, "1h");
        let ca = s.data("ca.pem");
        let out = Command::new(agent_bin())
            .args(["register", "--config", cfg.to_str().expect("p"), "--server", &s.url, "--ca"])
            .arg(&ca)
            .args(["--activation-id", &act, "--activation-code", &code, "--tags", tags])
            .output()
            .expect("register");
        assert!(out.status.success(), "{}", stderr(&out));
        let who = Command::new(agent_bin()).args(["whoami", "--config", cfg.to_str().expect("p")]).output().expect("w");
        let who: serde_json::Value = serde_json::from_slice(&who.stdout).expect("whoami JSON");
        let id = who["id"].as_str().expect("id").to_string();
        let mut d = Daemon { root: dir.join("root"), cfg, log: dir.join("agent.log"), child: None, id };
        d.start();
        d
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        // In its root: a script run without a working directory runs there.
        let child = Command::new(agent_bin())
            .args(["run", "--config", self.cfg.to_str().expect("p")])
            .current_dir(&self.root)
            .env("TEND_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its last run's report (`STATE/last_report.json`), if it ran.
    pub fn last_report(&self) -> Option<serde_json::Value> {
        let dir = self.cfg.parent().expect("the daemon's directory");
        let text = std::fs::read_to_string(dir.join("state").join("last_report.json")).ok()?;
        serde_json::from_str(&text).ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn daemons(s: &Server, base: &Path, n: usize, tags: &str) -> Vec<Daemon> {
    (0..n).map(|i| Daemon::new(s, base, &format!("agent{i}"), tags)).collect()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", String::from_utf8_lossy(&o.stdout), stderr(o)))
}

/// Polls `tend command show ID` until the command is finished.
pub fn wait_finished(s: &Server, token: &str, id: &str, max: Duration) -> serde_json::Value {
    let end = Instant::now() + max;
    loop {
        let v = s.tend_json(token, &["command", "show", id]);
        let st = v["status"].as_str().unwrap_or_default().to_string();
        if !["Pending", "InProgress", "Cancelling"].contains(&st.as_str()) {
            return v;
        }
        assert!(Instant::now() < end, "command {id} did not finish: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_for(what: &str, max: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + max;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
