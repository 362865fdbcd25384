//! Compiling a recipe whose loop expands to 10,000 resources: a map of 2,000
//! users, five resources each. Prints the median compile time over the runs
//! and the process's peak RSS.
//!
//! `cargo bench -p tend-model --bench expand` (target: ≤ 60 ms, ≤ 40 MiB).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use tend_model::bundle::Bundle;
use tend_model::params::Overrides;

const USERS: usize = 2_000;
fn runs() -> usize {
    std::env::var("EXPAND_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(15)
}

/// The users as a JSON parameter value (a server assignment or `--params`).
fn users_json() -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for i in 0..USERS {
        m.insert(
            format!("user{i}"),
            serde_json::json!({ "uid": 10_000 + i, "groups": ["staff", "dev"], "keys": [format!("ssh-ed25519 AAAAC3Nza{i} user{i}@example.org")] }),
        );
    }
    serde_json::Value::Object(m)
}

fn recipe(inline: bool) -> String {
    let mut r = String::from(
        r#"name: users
parameters:
  users:
    type: map
    values:
      type: object
      properties:
        uid: { type: integer, required: true }
        groups: { type: list, items: { type: string }, default: [] }
        editor: { type: string, default: vi }
        keys: { type: list, items: { type: string }, default: [] }
"#,
    );
    if inline {
        r.push_str("    default:\n");
    }
    for i in (0..USERS).filter(|_| inline) {
        let _ = writeln!(
            r,
            "      user{i}: {{ uid: {}, groups: [staff, dev], keys: [\"ssh-ed25519 AAAAC3Nza{i} user{i}@example.org\"] }}",
            10_000 + i
        );
    }
    r.push_str(
        r#"resources:
  - for_each: "{{params.users}}"
    resources:
      - group: "{{key}}"
        gid: "{{item.uid}}"
      - user: "{{key}}"
        uid: "{{item.uid}}"
        group: "{{key}}"
        groups: "{{item.groups}}"
        ssh_authorized_keys: "{{item.keys}}"
      - directory: "/home/{{key}}"
        owner: "{{key}}"
        mode: "0750"
      - directory: "/home/{{key}}/.config"
        owner: "{{key}}"
      - file: "/home/{{key}}/.profile"
        owner: "{{key}}"
        content: "export EDITOR={{item.editor}}\n"
"#,
    );
    r
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run(label: &str, inline: bool) {
    let text = recipe(inline);
    let size = text.len();
    let files: BTreeMap<String, String> = [("main.yaml".to_string(), text)].into_iter().collect();
    let bundle = Bundle { name: "users".into(), root: "main.yaml".into(), files, signature: None };
    let mut facts = tend_model::facts::skeleton();
    facts["hostname"] = "bench".into();
    let skeleton = tend_model::facts::skeleton();
    let mut overrides = Overrides::default();
    if !inline {
        overrides.typed.insert("users".into(), users_json());
    }
    let mut times = Vec::new();
    for _ in 0..runs() {
        let t = Instant::now();
        let plan = bundle.compile(&facts, &skeleton, &overrides).expect("the bench recipe compiles");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(plan.resources.len(), USERS * 5);
    }
    let mut loads = Vec::new();
    for _ in 0..runs() {
        let t = Instant::now();
        let set = tend_model::load(&bundle, &[std::path::PathBuf::from("main.yaml")]);
        loads.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(set.problems.is_empty());
    }
    println!(
        "expand ({label}, recipe {} KiB): {USERS} users x 5 = {} resources: median {:.1} ms (of which loading the YAML {:.1} ms) over {} runs",
        size / 1024,
        USERS * 5,
        median(times),
        median(loads),
        runs(),
    );
}

fn main() {
    run("users from the assignment, as JSON", false);
    if std::env::var_os("EXPAND_JSON_ONLY").is_none() {
        run("users inline in the recipe's YAML", true);
    }
    println!("peak RSS {:.1} MiB", peak_rss_mib());
}
