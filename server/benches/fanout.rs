//! Run-command benchmark against a real tend-server over HTTPS with mTLS.
//!
//! 1. Fan-out: N simulated agents hold their long-polls; a command to all
//!    of them (max concurrency 100%). Measured from just before
//!    `POST /v1/commands`: until every agent has received its invocation
//!    (delivered), and until the command is finished with every result
//!    stored (completed). Each simulated agent acknowledges and answers at
//!    once, as an agent running a trivial script would.
//! 2. Latency: one real, idle `tend-agent` daemon; `tend run … -- 'date
//!    +%s%N > FILE'` (the CLI process included) until the script starts.
//!
//! `cargo build --release -p tend-agent && cargo bench -p tend-server --bench fanout`.
//! Environment: `TEND_FANOUT_AGENTS` (1000), `TEND_FANOUT_ROUNDS` (5),
//! `TEND_LATENCY_RUNS` (100), `TEND_LOAD_DATABASE` (a postgres:// URL of an
//! empty database, for PostgreSQL).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Mutex;

#[path = "sim/mod.rs"]
mod sim;

use sim::{env_num, percentile, start_server};

/// When each simulated agent received each command.
type Received = Arc<Mutex<Vec<(String, Instant)>>>;

/// A simulated agent: long-poll, acknowledge, answer Success, again.
async fn simulated_agent(c: reqwest::Client, url: String, received: Received) {
    loop {
        let Ok(r) = c.get(format!("{url}/v1/agent/commands?wait=25")).send().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Ok(poll) = r.json::<serde_json::Value>().await else { continue };
        for d in poll["deliveries"].as_array().cloned().unwrap_or_default() {
            let id = d["command_id"].as_str().unwrap_or_default().to_string();
            received.lock().await.push((id.clone(), Instant::now()));
            let _ = c.post(format!("{url}/v1/agent/commands/{id}/ack")).send().await;
            let result = serde_json::json!({
                "status": "Success", "exit_code": 0, "stdout": "ok\n", "stderr": "",
                "started_at": null, "ended_at": null, "duration_ms": 1, "reason": null
            });
            let _ = c.post(format!("{url}/v1/agent/commands/{id}/result")).json(&result).send().await;
        }
    }
}

async fn fan_out(admin: &reqwest::Client, url: &str, token: &str, agents: usize, rounds: usize, received: Received) {
    let mut delivered = Vec::new();
    let mut completed = Vec::new();
    for round in 0..rounds {
        received.lock().await.clear();
        let t0 = Instant::now();
        let created: serde_json::Value = admin
            .post(format!("{url}/v1/commands"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "document": "RunShellScript", "raw_params": [["commands", "true"]],
                "targets": ["tag:role=load"], "max_concurrency": "100%"
            }))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        let id = created["id"].as_str().expect("command id").to_string();
        let mut all_delivered = None;
        let done = loop {
            if all_delivered.is_none() {
                let r = received.lock().await;
                let mine: Vec<Instant> = r.iter().filter(|(c, _)| *c == id).map(|(_, t)| *t).collect();
                if mine.len() >= agents {
                    all_delivered = mine.iter().max().map(|t| t.duration_since(t0));
                }
            }
            let v: serde_json::Value = admin
                .get(format!("{url}/v1/commands/{id}"))
                .bearer_auth(token)
                .send()
                .await
                .expect("show")
                .json()
                .await
                .expect("json");
            let status = v["status"].as_str().unwrap_or_default();
            if !["Pending", "InProgress"].contains(&status) {
                assert_eq!(status, "Success", "{v}");
                break t0.elapsed();
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "the command did not finish");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let d = all_delivered.unwrap_or(done);
        println!(
            "round {}: delivered to {agents} agents in {:.0} ms, completed in {:.0} ms",
            round + 1,
            d.as_secs_f64() * 1e3,
            done.as_secs_f64() * 1e3
        );
        delivered.push(d.as_secs_f64() * 1e3);
        completed.push(done.as_secs_f64() * 1e3);
    }
    delivered.sort_by(f64::total_cmp);
    completed.sort_by(f64::total_cmp);
    println!(
        "fan-out to {agents}: delivered median {:.0} ms (worst {:.0}), completed median {:.0} ms (worst {:.0})",
        percentile(&delivered, 0.5),
        delivered.last().copied().unwrap_or(f64::NAN),
        percentile(&completed, 0.5),
        completed.last().copied().unwrap_or(f64::NAN)
    );
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// One real agent daemon, idle; `tend run` until its script starts.
fn latency(server: &sim::Server, token: &str, runs: usize) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tend-server")).parent().expect("bin dir").to_path_buf();
    let agent = bin_dir.join("tend-agent");
    assert!(agent.exists(), "{} is missing: `cargo build --release -p tend-agent` first", agent.display());
    let tend = bin_dir.join("tend");
    let work = tempfile::tempdir().expect("tempdir");
    let cfg = work.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {}\nfacts_dir: {}\ninterval: 1h\nsplay: 0s\nec2: \"off\"\nreboot: false\n",
            work.path().join("state").display(),
            work.path().join("facts.d").display()
        ),
    )
    .expect("config");
    let data = server.dir.path().join("data");
    let cli = |args: &[&str]| {
        Command::new(&tend)
            .args(["--server", &server.url, "--ca"])
            .arg(data.join("ca.pem"))
            .args(["--token", token])
            .args(args)
            .output()
            .expect("tend")
    };
    let act: serde_json::Value =
        serde_json::from_slice(&cli(&["activation", "create", "--tags", "role=latency", "--output", "json"]).stdout)
            .expect("activation");
    let out = Command::new(&agent)
        .args(["register", "--config", cfg.to_str().expect("p"), "--server", &server.url, "--ca"])
        .arg(data.join("ca.pem"))
        .args([
            "--activation-id",
            act["id"].as_str().expect("id"),
            "--activation-code",
            act["code"].as_str().expect("code"),
        ])
        .args(["--tags", "role=latency"])
        .output()
        .expect("register");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut daemon = Command::new(&agent)
        .args(["run", "--config", cfg.to_str().expect("p")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent");
    std::thread::sleep(Duration::from_secs(2));
    let mut lat = Vec::new();
    let mut cli_ms = Vec::new();
    for i in 0..runs {
        let mark = work.path().join(format!("start.{i}"));
        let script = format!("date +%s%N > {}", mark.display());
        let t0 = now_ns();
        let out = cli(&["run", "--targets", "tag:role=latency", "--", &script]);
        cli_ms.push((now_ns() - t0) as f64 / 1e6);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let end = Instant::now() + Duration::from_secs(10);
        let started: u128 = loop {
            if let Some(t) = std::fs::read_to_string(&mark).ok().and_then(|t| t.trim().parse().ok()) {
                break t;
            }
            assert!(Instant::now() < end, "the script did not start");
            std::thread::sleep(Duration::from_millis(2));
        };
        lat.push((started.saturating_sub(t0)) as f64 / 1e6);
        // Idle again before the next one.
        std::thread::sleep(Duration::from_millis(150));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    lat.sort_by(f64::total_cmp);
    cli_ms.sort_by(f64::total_cmp);
    println!("the `tend run` process itself (start, TLS, create, exit): p50 {:.1} ms", percentile(&cli_ms, 0.5));
    println!(
        "`tend run` to script start on an idle agent, {runs} runs: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let agents = env_num("TEND_FANOUT_AGENTS", 1000) as usize;
    let rounds = env_num("TEND_FANOUT_ROUNDS", 5) as usize;
    let runs = env_num("TEND_LATENCY_RUNS", 100) as usize;
    let database = std::env::var("TEND_LOAD_DATABASE").ok();
    let server = start_server(database.as_deref());
    let data = server.dir.path().join("data");
    let token = std::fs::read_to_string(data.join("admin.token")).expect("token").trim().to_string();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(data.join("ca.pem")).expect("ca")).expect("ca");
    let admin = reqwest::Client::builder().no_proxy().tls_certs_only([ca.clone()]).build().expect("client");
    let url = server.url.clone();
    println!("tend-server at {url} ({})", if database.is_some() { "PostgreSQL" } else { "SQLite" });

    let clients = sim::register_agents(&admin, &url, &token, &ca, agents).await;
    let received: Received = Arc::default();
    let shared = received.clone();
    for c in clients {
        tokio::spawn(simulated_agent(c, url.clone(), shared.clone()));
    }
    // Let every long-poll open (TLS handshakes first).
    tokio::time::sleep(Duration::from_secs(3)).await;
    fan_out(&admin, &url, &token, agents, rounds, received).await;

    let (s, t) = (server, token);
    tokio::task::spawn_blocking(move || latency(&s, &t, runs)).await.expect("latency");
}
