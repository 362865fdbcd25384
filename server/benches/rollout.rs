//! Change-set and rollout benchmark against a real tend-server over HTTPS
//! with mTLS, with N simulated agents (as the fan-out benchmark's).
//!
//! Each simulated agent long-polls; a `Converge` dry-run (a plan) answers
//! at once with a 20-resource report, one resource changed with a diff; a
//! real `Converge` (a rollout's wake-up) fetches its recipe set (with the
//! rollout's pin), posts a report naming the version it got, and answers.
//! The agents take no time of their own, so what is measured is the
//! server's: for a plan, the time until every answer is in and the time of
//! `GET /v1/plans/ID` (the aggregation); for a rollout, the whole run of a
//! 10-batch rollout (`batches:10%`) from start to `Succeeded`, and of its
//! manual rollback.
//!
//! `cargo bench -p tend-server --bench rollout`.
//! Environment: `TEND_ROLLOUT_AGENTS` (1000), `TEND_PLAN_ROUNDS` (5),
//! `TEND_LOAD_DATABASE` (a postgres:// URL of an empty database).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "sim/mod.rs"]
mod sim;

use sim::{env_num, percentile, start_server};

/// A dry-run report: 20 resources, the first changed with a diff.
fn report(version: &str, dry_run: bool) -> Value {
    let mut resources = vec![json!({
        "id": "setting:app version", "type": "setting", "status": if dry_run { "changed" } else { "unchanged" },
        "changes": if dry_run { json!([{ "property": "content", "diff": "--- /etc/app.conf\n+++ /etc/app.conf\n@@ -1 +1 @@\n-version = 1\n+version = 2\n" }]) } else { json!([]) },
        "duration_ms": 0.1
    })];
    for i in 1..20 {
        resources.push(json!({ "id": format!("file:/etc/app/{i}.conf"), "type": "file", "status": "unchanged", "changes": [], "duration_ms": 0.1 }));
    }
    json!({
        "version": 1, "host": "sim", "started_at": "2026-12-03T00:00:00Z", "dry_run": dry_run, "cached": false,
        "recipes": ["app"], "versions": { "app": version },
        "summary": { "total": 20, "changed": u64::from(dry_run), "unchanged": 20 - u64::from(dry_run), "failed": 0, "skipped": 0, "corrective": 0, "duration_ms": 1.0 },
        "resources": resources
    })
}

/// Long-poll, acknowledge, answer; for a real converge, fetch the set first.
async fn simulated_agent(c: reqwest::Client, url: String) {
    loop {
        let Ok(r) = c.get(format!("{url}/v1/agent/commands?wait=25")).send().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Ok(poll) = r.json::<Value>().await else { continue };
        for d in poll["deliveries"].as_array().cloned().unwrap_or_default() {
            let id = d["command_id"].as_str().unwrap_or_default().to_string();
            let _ = c.post(format!("{url}/v1/agent/commands/{id}/ack")).send().await;
            let spec = &d["steps"][0]["converge"];
            let dry_run = spec["dry_run"].as_bool().unwrap_or(false);
            let rep = if dry_run {
                let replace = spec["replace"].as_str().unwrap_or_default();
                report(replace.split_once('@').map(|(_, v)| v).unwrap_or_default(), true)
            } else {
                let set: Value = match c.get(format!("{url}/v1/agent/recipes")).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => Value::Null,
                };
                let version = set["recipes"]
                    .as_array()
                    .and_then(|a| a.iter().find(|r| r["bundle"]["name"] == "app"))
                    .and_then(|r| r["version"].as_str())
                    .unwrap_or_default()
                    .to_string();
                let rep = report(&version, false);
                let _ = c.post(format!("{url}/v1/agent/reports")).json(&rep).send().await;
                rep
            };
            let result = json!({
                "status": "Success", "exit_code": 0, "stdout": "", "stderr": "",
                "started_at": null, "ended_at": null, "duration_ms": 1, "reason": null, "report": rep
            });
            let _ = c.post(format!("{url}/v1/agent/commands/{id}/result")).json(&result).send().await;
        }
    }
}

async fn push(admin: &reqwest::Client, url: &str, token: &str, text: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, text).expect("write");
    let bundle = tend_model::bundle::Bundle::from_file(&file, &tend_model::facts::skeleton()).expect("bundle");
    let v: Value = admin
        .post(format!("{url}/v1/recipes"))
        .bearer_auth(token)
        .json(&bundle)
        .send()
        .await
        .expect("push")
        .json()
        .await
        .expect("json");
    v["version"].as_str().expect("version").to_string()
}

async fn get(admin: &reqwest::Client, url: &str, token: &str, path: &str) -> Value {
    admin.get(format!("{url}{path}")).bearer_auth(token).send().await.expect("get").json().await.expect("json")
}

async fn post(admin: &reqwest::Client, url: &str, token: &str, path: &str, body: &Value) -> Value {
    let r = admin.post(format!("{url}{path}")).bearer_auth(token).json(body).send().await.expect("post");
    let status = r.status();
    let v: Value = r.json().await.expect("json");
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// Polls a rollout until it ends; returns its final view.
async fn wait_rollout(admin: &reqwest::Client, url: &str, token: &str, id: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let v = get(admin, url, token, &format!("/v1/rollouts/{id}")).await;
        if !v["finished_at"].is_null() {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "the rollout did not end: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let agents = env_num("TEND_ROLLOUT_AGENTS", 1000) as usize;
    let rounds = env_num("TEND_PLAN_ROUNDS", 5) as usize;
    let database = std::env::var("TEND_LOAD_DATABASE").ok();
    let server = start_server(database.as_deref());
    let data = server.dir.path().join("data");
    let token = std::fs::read_to_string(data.join("admin.token")).expect("token").trim().to_string();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(data.join("ca.pem")).expect("ca")).expect("ca");
    let admin = reqwest::Client::builder().no_proxy().tls_certs_only([ca.clone()]).build().expect("client");
    let url = server.url.clone();
    println!("tend-server at {url} ({})", if database.is_some() { "PostgreSQL" } else { "SQLite" });

    let clients = sim::register_agents(&admin, &url, &token, &ca, agents).await;
    for c in clients {
        tokio::spawn(simulated_agent(c, url.clone()));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let recipe = |v: &str| {
        format!(
            "name: app\nresources:\n  - setting: app version\n    path: /etc/app.conf\n    key: version\n    value: \"{v}\"\n"
        )
    };
    let v1 = push(&admin, &url, &token, &recipe("1")).await;
    let v2 = push(&admin, &url, &token, &recipe("2")).await;
    post(
        &admin,
        &url,
        &token,
        "/v1/assignments",
        &json!({ "recipe": format!("app@{v1}"), "targets": ["tag:role=load"], "params": {} }),
    )
    .await;

    // Plans.
    let (mut answered, mut aggregate) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let t0 = Instant::now();
        let cs = post(
            &admin,
            &url,
            &token,
            "/v1/plans",
            &json!({ "recipe": format!("app@{v2}"), "targets": ["tag:role=load"], "timeout": 60 }),
        )
        .await;
        let id = cs["id"].as_str().expect("id").to_string();
        let done = loop {
            let v = get(&admin, &url, &token, &format!("/v1/plans/{id}")).await;
            if v["status"] == "Complete" {
                assert_eq!(v["answered"].as_u64(), Some(agents as u64), "{v}");
                break t0.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let t1 = Instant::now();
        let v = get(&admin, &url, &token, &format!("/v1/plans/{id}")).await;
        let agg = t1.elapsed();
        let groups = v["resources"][0]["groups"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(groups, 1, "one group of {agents} hosts: {}", v["resources"][0]);
        println!(
            "plan {}: every answer in after {:.0} ms; GET (aggregating {agents} reports) {:.0} ms",
            round + 1,
            done.as_secs_f64() * 1e3,
            agg.as_secs_f64() * 1e3
        );
        answered.push(done.as_secs_f64() * 1e3);
        aggregate.push(agg.as_secs_f64() * 1e3);
    }
    answered.sort_by(f64::total_cmp);
    aggregate.sort_by(f64::total_cmp);
    println!(
        "plan over {agents}: answers in median {:.0} ms; aggregation median {:.0} ms (worst {:.0})",
        percentile(&answered, 0.5),
        percentile(&aggregate, 0.5),
        aggregate.last().copied().unwrap_or(f64::NAN)
    );

    // The agents' own part: the same ten wake-ups of 100 nodes each as
    // plain commands, one after the other (fetch, report, result each).
    let nodes: Vec<String> = get(&admin, &url, &token, "/v1/nodes")
        .await
        .as_array()
        .map(|a| a.iter().filter_map(|n| n["id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let t0 = Instant::now();
    for chunk in nodes.chunks(agents.div_ceil(10).max(1)) {
        let c = post(
            &admin,
            &url,
            &token,
            "/v1/commands",
            &json!({
                "document": "Converge", "targets": chunk, "max_concurrency": "100%", "max_errors": "100%"
            }),
        )
        .await;
        let id = c["id"].as_str().expect("id").to_string();
        loop {
            let v = get(&admin, &url, &token, &format!("/v1/commands/{id}")).await;
            if !["Pending", "InProgress"].contains(&v["status"].as_str().unwrap_or_default()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let baseline = t0.elapsed();
    println!(
        "ten plain Converge commands of {} nodes each, one after the other: {:.2} s",
        agents.div_ceil(10),
        baseline.as_secs_f64()
    );

    // A 10-batch rollout, then its rollback.
    let t0 = Instant::now();
    let r = post(
        &admin,
        &url,
        &token,
        "/v1/rollouts",
        &json!({ "recipe": format!("app@{v2}"), "targets": ["tag:role=load"], "strategy": "batches:10%" }),
    )
    .await;
    let id = r["id"].as_str().expect("id").to_string();
    let v = wait_rollout(&admin, &url, &token, &id).await;
    let took = t0.elapsed();
    assert_eq!(v["status"], "Succeeded", "{v}");
    println!(
        "rollout of {agents} in 10 batches: {:.2} s in all; beyond the same wake-ups as plain commands: {:.2} s",
        took.as_secs_f64(),
        took.as_secs_f64() - baseline.as_secs_f64()
    );
    let t0 = Instant::now();
    post(&admin, &url, &token, &format!("/v1/rollouts/{id}/rollback"), &json!({})).await;
    let v = wait_rollout(&admin, &url, &token, &id).await;
    assert_eq!(v["status"], "RolledBack", "{v}");
    println!("rollback of {agents}: {:.2} s", t0.elapsed().as_secs_f64());
}
