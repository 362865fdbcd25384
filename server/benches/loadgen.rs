//! Load generator: N simulated agents over real HTTPS with mTLS against a
//! real tend-server. Each agent runs on a fixed interval (spread over the
//! interval like splay does): a recipe fetch that gets 304, a report, and a
//! heartbeat. Prints request latency percentiles and the server's peak RSS.
//!
//! `cargo bench -p tend-server --bench loadgen` (SQLite). Environment:
//! `TEND_LOAD_AGENTS` (default 5000), `TEND_LOAD_INTERVAL` seconds (60),
//! `TEND_LOAD_SECONDS` measured (60), `TEND_LOAD_DATABASE` (a postgres:// URL
//! of an empty database, for PostgreSQL). All traffic stays on loopback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

#[path = "sim/mod.rs"]
mod sim;

use sim::{env_num, percentile, rss_kib, start_server};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let agents = env_num("TEND_LOAD_AGENTS", 5000) as usize;
    let interval = Duration::from_secs(env_num("TEND_LOAD_INTERVAL", 60));
    let measured = Duration::from_secs(env_num("TEND_LOAD_SECONDS", 60));
    let database = std::env::var("TEND_LOAD_DATABASE").ok();
    let server = start_server(database.as_deref());
    let pid = server.child.id();
    let ca_pem = std::fs::read(server.dir.path().join("data/ca.pem")).expect("ca");
    let token = std::fs::read_to_string(server.dir.path().join("data/admin.token")).expect("token").trim().to_string();
    let ca = reqwest::Certificate::from_pem(&ca_pem).expect("ca");
    let admin = reqwest::Client::builder().no_proxy().tls_certs_only([ca.clone()]).build().expect("client");
    let url = server.url.clone();
    println!(
        "tend-server at {url} ({}), {agents} agents, interval {interval:?}",
        if database.is_some() { "PostgreSQL" } else { "SQLite" }
    );

    // A recipe assigned to all of them.
    let bundle = serde_json::json!({
        "name": "load", "root": "load.yaml",
        "files": { "load.yaml": "name: load\nresources:\n  - file: /tmp/tend-load-never-applied\n    content: \"x\\n\"\n" }
    });
    admin.post(format!("{url}/v1/recipes")).bearer_auth(&token).json(&bundle).send().await.expect("push");
    admin
        .post(format!("{url}/v1/assignments"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "recipe": "load", "targets": ["tag:role=load"] }))
        .send()
        .await
        .expect("assign");

    let t = Instant::now();
    let clients = sim::register_agents(&admin, &url, &token, &ca, agents).await;
    println!("registered {} agents in {:.1} s", clients.len(), t.elapsed().as_secs_f64());

    // Each agent: first fetch (200, learn the ETag), then every interval:
    // fetch (304), report, heartbeat. Start times spread over the interval.
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + interval + measured;
    let mut tasks = tokio::task::JoinSet::new();
    let report = serde_json::json!({
        "version": 1, "host": "load", "started_at": "2026-01-01T00:00:00Z", "dry_run": false, "cached": false,
        "recipes": ["load"], "summary": { "total": 1, "changed": 0, "unchanged": 1, "failed": 0, "skipped": 0, "corrective": 0, "duration_ms": 3.0 },
        "resources": [{ "id": "file:/tmp/x", "type": "file", "status": "unchanged", "changes": [], "duration_ms": 0.1 }]
    });
    for (i, c) in clients.into_iter().enumerate() {
        let (url, lat, errors, report) = (url.clone(), latencies.clone(), errors.clone(), report.clone());
        let offset = interval.mul_f64(i as f64 / agents as f64);
        tasks.spawn(async move {
            tokio::time::sleep(offset).await;
            let mut etag: Option<String> = None;
            let mut mine = Vec::new();
            let mut next = Instant::now();
            while Instant::now() < deadline {
                let timed = Instant::now() >= start + interval;
                let t = Instant::now();
                let mut req = c.get(format!("{url}/v1/agent/recipes"));
                if let Some(e) = &etag {
                    req = req.header("if-none-match", e.as_str());
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() || r.status().as_u16() == 304 => {
                        if let Some(e) = r.headers().get("etag").and_then(|v| v.to_str().ok()) {
                            etag = Some(e.to_string());
                        }
                        let _ = r.bytes().await;
                    }
                    _ => {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                if timed {
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                for (method, path) in [("POST", "/v1/agent/reports"), ("GET", "/v1/agent/whoami")] {
                    let t = Instant::now();
                    let req = if method == "POST" {
                        c.post(format!("{url}{path}")).json(&report)
                    } else {
                        c.get(format!("{url}{path}"))
                    };
                    match req.send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                        }
                        _ => {
                            errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    if timed {
                        mine.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                next += interval;
                tokio::time::sleep_until(next.into()).await;
            }
            lat.lock().await.extend(mine);
        });
    }
    let mut peak = 0;
    let sampler = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            peak = peak.max(rss_kib(pid, "VmRSS:"));
            if Instant::now() > deadline {
                return peak;
            }
        }
    });
    while tasks.join_next().await.is_some() {}
    let peak = sampler.await.unwrap_or(0).max(rss_kib(pid, "VmHWM:"));
    let mut lat = std::mem::take(&mut *latencies.lock().await);
    lat.sort_by(f64::total_cmp);
    println!(
        "{} requests in the measured {:?} ({:.0}/s): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} errors; server peak RSS {:.0} MiB",
        lat.len(),
        measured,
        lat.len() as f64 / measured.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        peak as f64 / 1024.0
    );
}
