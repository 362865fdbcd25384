//! Secrets at rest: a sensitive recipe parameter given to an assignment and
//! a sensitive command parameter are stored sealed (their text appears
//! nowhere in the database), shown as `(sensitive)` to every reader, and
//! still reach the agent that needs them; `tend-server rotate-secret-key`
//! seals them again under a new key and they still open. On both stores.

mod common;

use common::*;

const RECIPE: &str = "name: secretive\nparameters:\n  password: { type: string, sensitive: true }\n  port: { type: integer, default: 80 }\nresources:\n  - file: \"{{facts.custom.root}}/etc/app.conf\"\n    content: \"password={{params.password}} port={{params.port}}\\n\"\n    mode: \"0600\"\n";
const DOC: &str = "name: Secret\nkind: Command\nparameters:\n  token: { type: string, sensitive: true }\nsteps:\n  - name: use\n    action: runShellScript\n    run: test \"${#TEND_PARAM_TOKEN}\" = 16 && test \"${TEND_PARAM_TOKEN%%-*}\" = s3cr3t\n";

/// The raw stored text of a table's column (every row), as the database holds it.
fn stored(s: &Server, sql: &str) -> String {
    match &s.database {
        Some(url) => {
            let out = std::process::Command::new("psql").args([url.as_str(), "-qAtc", sql]).output().expect("psql");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
        None => {
            // Every byte SQLite has on disk: the database and its write-ahead log.
            let mut all = Vec::new();
            for f in ["tend.db", "tend.db-wal"] {
                all.extend(std::fs::read(s.data(f)).unwrap_or_default());
            }
            String::from_utf8_lossy(&all).into_owned()
        }
    }
}

fn sensitive_values_are_sealed_at_rest_and_opened_only_for_the_agent(backend: Backend) {
    let mut s = Server::start(backend);
    let admin = s.admin_token();
    let work = tempfile::tempdir().expect("tempdir");
    let agent = agent_with_recipe(&s, work.path(), "role=app", "secretive.yaml", RECIPE);
    let params = work.path().join("params.yaml");
    std::fs::write(&params, "password: hunter2-at-rest\nport: 8080\n").expect("write");
    let out =
        s.tend(&admin, &["assign", "secretive", "--targets", "tag:role=app", "--params", params.to_str().expect("p")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"), "the answer to assign shows the value");

    // Readers see (sensitive); the non-sensitive value as it is.
    let viewer = s.tend_json(&admin, &["token", "create", "--name", "viewer", "--role", "viewer"]);
    let viewer = viewer["token"].as_str().expect("token").to_string();
    for token in [&admin, &viewer] {
        let list = s.tend_json(token, &["assignments"]);
        assert_eq!(list[0]["params"]["password"], "(sensitive)", "{list}");
        assert_eq!(list[0]["params"]["port"], 8080, "{list}");
    }
    // The agent gets the value and converges with it.
    let run = agent.run(&["run", "--once"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    let conf = std::fs::read_to_string(agent.root.join("etc/app.conf")).expect("app.conf");
    assert_eq!(conf, "password=hunter2-at-rest port=8080\n");

    // A command with a sensitive parameter: it runs with the value.
    let doc = work.path().join("secret.yaml");
    std::fs::write(&doc, DOC).expect("write");
    assert!(s.tend(&admin, &["document", "push", doc.to_str().expect("p")]).status.success());
    let mut daemon = Daemon::new(&s, work.path(), "d", "role=cmd");
    let out = s.tend(
        &admin,
        &["run", "--targets", "tag:role=cmd", "--document", "Secret", "--param", "token=s3cr3t-cmd-value", "--wait"],
    );
    assert_eq!(out.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    // An association of the same document: its run opens the sealed value.
    let asc = s.tend_json(
        &admin,
        &[
            "association",
            "create",
            "--document",
            "Secret",
            "--param",
            "token=s3cr3t-cmd-value",
            "--targets",
            "tag:role=cmd",
            "--schedule",
            "rate(1 day)",
        ],
    );
    let asc = asc["id"].as_str().expect("id").to_string();
    wait_for("the association's run", std::time::Duration::from_secs(20), || {
        s.tend_json(&admin, &["compliance", "--association", &asc]).as_array().is_some_and(|a| a.len() == 1)
    });
    let c = s.tend_json(&admin, &["compliance", "--association", &asc]);
    assert_eq!(c[0]["status"], "Compliant", "{c}");
    let shown = s.tend_json(&viewer, &["association", "show", &asc]);
    assert_eq!(shown["params"]["token"], "(sensitive)", "{shown}");
    daemon.kill9();

    // At rest, neither value appears anywhere.
    let text = stored(
        &s,
        "SELECT params FROM assignments UNION ALL SELECT delivery FROM commands \
         UNION ALL SELECT params FROM associations UNION ALL SELECT raw_params FROM associations",
    );
    assert!(!text.is_empty());
    assert!(!text.contains("hunter2-at-rest"), "an assignment's sensitive value is stored in clear");
    assert!(!text.contains("s3cr3t-cmd-value"), "a command's sensitive value is stored in clear");
    let keys = std::fs::read_to_string(s.data("secrets.keys")).expect("secrets.keys");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(s.data("secrets.keys")).expect("stat").permissions().mode() & 0o777, 0o600);
    if s.database.is_none() {
        assert_eq!(std::fs::metadata(s.data("tend.db")).expect("stat").permissions().mode() & 0o777, 0o600);
    }

    // Rotation, with the server stopped: a new key, the values sealed again.
    s.stop();
    let mut rotate = std::process::Command::new(env!("CARGO_BIN_EXE_tend-server"));
    rotate.args(["rotate-secret-key", "--data-dir"]).arg(s.data(""));
    if let Some(db) = &s.database {
        rotate.args(["--database", db]);
    }
    let out = rotate.output().expect("rotate");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sealed again"), "{}", String::from_utf8_lossy(&out.stdout));
    let rotated = std::fs::read_to_string(s.data("secrets.keys")).expect("secrets.keys");
    assert_eq!(rotated.lines().count(), 1);
    assert_ne!(rotated, keys);
    s.restart();
    std::fs::remove_file(agent.root.join("etc/app.conf")).expect("rm");
    let run = agent.run(&["run", "--once"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    let conf = std::fs::read_to_string(agent.root.join("etc/app.conf")).expect("app.conf");
    assert_eq!(conf, "password=hunter2-at-rest port=8080\n", "the value opens under the new key");
}

on_both_stores!(sensitive_values_are_sealed_at_rest_and_opened_only_for_the_agent);
