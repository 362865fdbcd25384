//! What the benchmarks share: a real tend-server on loopback, simulated
//! agents registered over HTTPS (each with its own key and certificate),
//! and measurements.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use tokio::sync::Mutex;

pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_server(database: Option<&str>) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tend-server"));
    cmd.args(["--log", "warn", "serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path().join("data"));
    if let Some(db) = database {
        cmd.args(["--database", db]);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("tend-server");
    let mut url = String::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("read");
        if let Some(u) = line.strip_prefix("tend-server listening on ") {
            url = u.trim().to_string();
            break;
        }
    }
    Server { child, url, dir }
}

pub fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Registers `agents` simulated agents tagged `role=load` (one activation
/// for all; its own key and certificate each), 32 at a time. Returns their
/// mTLS clients.
pub async fn register_agents(
    admin: &reqwest::Client,
    url: &str,
    token: &str,
    ca: &reqwest::Certificate,
    agents: usize,
) -> Vec<reqwest::Client> {
    let act: serde_json::Value = admin
        .post(format!("{url}/v1/activations"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "tags": { "role": "load" }, "limit": agents, "expires_in": 3600 }))
        .send()
        .await
        .expect("activation")
        .json()
        .await
        .expect("json");
    let clients = Arc::new(Mutex::new(Vec::with_capacity(agents)));
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..agents {
        let (admin, url, ca, act, clients, sem) =
            (admin.clone(), url.to_string(), ca.clone(), act.clone(), clients.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire().await.expect("semaphore");
            let key = rcgen::KeyPair::generate().expect("key");
            let csr = rcgen::CertificateParams::new(Vec::<String>::new())
                .expect("params")
                .serialize_request(&key)
                .expect("csr");
            let r: serde_json::Value = admin
                .post(format!("{url}/v1/register"))
                .json(&serde_json::json!({
                    "activation_id": act["id"], "activation_code": act["code"],
                    "csr_pem": csr.pem().expect("pem"), "hostname": format!("load-{i}"), "tags": {}
                }))
                .send()
                .await
                .expect("register")
                .json()
                .await
                .expect("json");
            let mut pem = r["cert_pem"].as_str().expect("cert").as_bytes().to_vec();
            pem.extend_from_slice(key.serialize_pem().as_bytes());
            let client = reqwest::Client::builder()
                .no_proxy()
                .tls_certs_only([ca])
                .identity(reqwest::Identity::from_pem(&pem).expect("identity"))
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            clients.lock().await.push(client);
        });
    }
    while tasks.join_next().await.is_some() {}
    std::mem::take(&mut *clients.lock().await)
}
