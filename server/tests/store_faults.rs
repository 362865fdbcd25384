//! Storage faults on PostgreSQL: the server's database connections are
//! killed again and again while agents report. Every report an agent ran is
//! stored once the faults stop (a refused report stays in the agent's queue
//! and is sent again), the server never needs a restart, and the fault shows
//! in `/metrics`. The SQLite case (a full disk) is in tests/tests/hostile.rs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;

const RECIPE: &str =
    "name: faults\nresources:\n  - file: \"{{facts.custom.root}}/etc/faults.conf\"\n    content: \"ok\\n\"\n";

/// Terminates every other connection to the server's database, every few
/// milliseconds for `seconds` (one psql session; a PL/pgSQL loop).
fn kill_connections_for(database: &str, seconds: u32) {
    let name = database.rsplit('/').next().expect("db name");
    let admin = std::env::var("TEND_TEST_POSTGRES").expect("TEND_TEST_POSTGRES");
    let sql = format!(
        "SET statement_timeout = '{seconds}s'; DO $$ BEGIN LOOP \
         PERFORM pg_stat_clear_snapshot(); \
         PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid(); \
         PERFORM pg_sleep(0.002); END LOOP; END $$;"
    );
    let _ = std::process::Command::new("psql").args([&admin, "-qAt", "-c", &sql]).output();
}

#[test]
fn killed_database_connections_lose_no_report() {
    let s = Server::start(Backend::Postgres);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let agent = agent_with_recipe(&s, work.path(), "role=faults", "faults.yaml", RECIPE);
    assert!(s.tend(&admin, &["assign", "faults", "--targets", "tag:role=faults"]).status.success());

    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let (done, db) = (done.clone(), s.database.clone().expect("postgres"));
        std::thread::spawn(move || {
            kill_connections_for(&db, 4);
            done.store(true, Ordering::SeqCst);
        })
    };
    let (mut runs, mut refused) = (0, 0);
    // Fewer runs than the reports a node keeps (100), so every one must be there.
    while !done.load(Ordering::SeqCst) && runs < 80 {
        let out = agent.run(&["run", "--once"]);
        runs += 1;
        if !matches!(out.status.code(), Some(0 | 2)) || stderr(&out).contains("queued") {
            refused += 1;
        }
    }
    killer.join().expect("killer");
    assert!(refused > 0, "no run of {runs} met a killed connection");
    std::thread::sleep(Duration::from_millis(200));
    // The server answers without a restart; one more run sends what is queued.
    let health = get(&s, "/healthz");
    assert_eq!(health.trim(), "ok");
    let out = agent.run(&["run", "--once"]);
    assert!(out.status.success() || out.status.code() == Some(2), "{}", stderr(&out));
    let node = s.tend_json(&admin, &["nodes", "list"])[0]["id"].as_str().expect("id").to_string();
    let reports = s.tend_json(&admin, &["reports", "--node", &node]);
    assert_eq!(
        reports.as_array().expect("reports").len(),
        runs + 1,
        "{refused} run(s) met a fault; every run's report must be stored once: {reports}"
    );
}

fn get(s: &Server, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(s.data("ca.pem"))
        .arg(format!("{}{path}", s.url))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
