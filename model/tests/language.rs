//! The recipe language v2, compiled from in-memory bundles: typed references,
//! structured parameters, loops, components, layered data and conditional
//! includes, with the errors each can produce.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tend_model::bundle::Bundle;
use tend_model::params::Overrides;
use tend_model::resource::Spec;
use tend_model::{Diagnostics, Plan};

fn bundle(files: &[(&str, &str)]) -> Bundle {
    let files: BTreeMap<String, String> = files.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Bundle { name: "t".into(), root: "main.yaml".into(), files, signature: None }
}

fn facts() -> Value {
    let mut f = tend_model::facts::skeleton();
    f["hostname"] = json!("web-1");
    f["os"]["family"] = json!("debian");
    f["os"]["version_id"] = json!("12");
    f
}

fn compile(files: &[(&str, &str)]) -> Result<Plan, Diagnostics> {
    compile_with(files, &Overrides::default())
}

fn compile_with(files: &[(&str, &str)], o: &Overrides) -> Result<Plan, Diagnostics> {
    bundle(files).compile(&facts(), &tend_model::facts::skeleton(), o)
}

fn validate(files: &[(&str, &str)]) -> Result<Plan, Diagnostics> {
    bundle(files).validate(&tend_model::facts::skeleton())
}

fn ids(p: &Plan) -> Vec<String> {
    let mut v: Vec<String> = p.resources.iter().map(|r| r.id.to_string()).collect();
    v.sort();
    v
}

fn errors(d: Diagnostics) -> String {
    d.0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

fn spec<'a>(p: &'a Plan, id: &str) -> &'a Spec {
    &p.resources.iter().find(|r| r.id.to_string() == id).unwrap_or_else(|| panic!("{id} not in {:?}", ids(p))).spec
}

const USERS: &str = r#"
name: users
parameters:
  users:
    type: map
    values:
      type: object
      properties:
        uid: { type: integer, required: true }
        groups: { type: list, items: { type: string }, default: [] }
        keys: { type: list, items: { type: string }, default: [] }
        editor: { type: string }
    default:
      alice: { uid: 2001, groups: [adm, sudo], keys: ["ssh-ed25519 AAAA alice@x"], editor: vim }
      bob: { uid: 2002 }
resources:
  - for_each: "{{params.users}}"
    resources:
      - user: "{{key}}"
        uid: "{{item.uid}}"
        groups: "{{item.groups}}"
        ssh_authorized_keys: "{{item.keys}}"
      - file: "/home/{{key}}/.profile"
        content: "export EDITOR={{item.editor}}\n"
        requires: ["user:{{key}}"]
        when: { param: "users.{{key}}.editor", exists: true }
"#;

#[test]
fn typed_values_flow_from_a_map_of_objects_into_typed_properties() {
    let p = compile(&[("main.yaml", USERS)]).unwrap();
    assert_eq!(ids(&p), ["file:/home/alice/.profile", "file:/home/bob/.profile", "user:alice", "user:bob"]);
    let Spec::User(alice) = spec(&p, "user:alice") else { panic!() };
    assert_eq!(alice.uid, Some(2001));
    assert_eq!(alice.groups.as_deref(), Some(&["adm".to_string(), "sudo".to_string()][..]));
    assert_eq!(alice.ssh_authorized_keys.as_ref().map(Vec::len), Some(1));
    let bob_profile = p.resources.iter().find(|r| r.id.to_string() == "file:/home/bob/.profile").unwrap();
    assert!(!bob_profile.enabled, "bob has no editor: the file's condition is false");
    let alice_profile = p.resources.iter().find(|r| r.id.to_string() == "file:/home/alice/.profile").unwrap();
    assert_eq!(alice_profile.requires[0].to_string(), "user:alice");
    assert_eq!(alice_profile.payload.as_deref(), Some(&b"export EDITOR=vim\n"[..]));
}

#[test]
fn given_values_are_checked_with_their_exact_path() {
    let o = Overrides { raw: vec![("users".into(), r#"{"bob": {"uid": "x"}}"#.into())], ..Default::default() };
    let e = errors(compile_with(&[("main.yaml", USERS)], &o).unwrap_err());
    assert!(e.contains(r#"command line: params.users.bob.uid: expected an integer, got the string "x""#), "{e}");
}

#[test]
fn booleans_and_integers_from_parameters_keep_their_type() {
    let r = r#"
name: svc
parameters:
  enabled: { type: boolean, default: false }
  port: { type: integer, default: 8080 }
  opt: { type: string, default: null }
resources:
  - service: cron
    enabled: "{{params.enabled}}"
  - file: /etc/app.conf
    content: "port={{params.port}}\n"
    owner: "{{params.opt}}"
  - file: /etc/port
    content: "{{params.port}}\n"
"#;
    let p = compile(&[("main.yaml", r)]).unwrap();
    let Spec::Service(s) = spec(&p, "service:cron") else { panic!() };
    assert_eq!(s.enabled, Some(false));
    let Spec::File(f) = spec(&p, "file:/etc/app.conf") else { panic!() };
    assert_eq!(f.owner, None, "a reference to a value that is not set leaves the property unset");
    let port = p.resources.iter().find(|r| r.id.to_string() == "file:/etc/port").unwrap();
    assert_eq!(port.payload.as_deref(), Some(&b"8080\n"[..]), "text after the reference keeps it text");
    let bad = r#"
name: svc
parameters:
  enabled: { type: string, default: "yes" }
resources:
  - service: cron
    enabled: "{{params.enabled}}"
"#;
    let e = errors(compile(&[("main.yaml", bad)]).unwrap_err());
    assert!(e.contains("main.yaml:7:14: service:cron: invalid type: string \"yes\", expected a boolean"), "{e}");
}

#[test]
fn loops_over_lists_literals_and_nested_loops() {
    let r = r#"
name: loops
parameters:
  sites: { type: list, default: [a, b] }
resources:
  - directory: "/srv/{{item}}"
    for_each: "{{params.sites}}"
  - for_each: [x, y]
    as: outer
    resources:
      - for_each: [1, 2]
        resources:
          - file: "/srv/{{outer.item}}-{{item}}-{{index}}"
            content: "{{outer.index}}"
"#;
    let p = compile(&[("main.yaml", r)]).unwrap();
    assert_eq!(
        ids(&p),
        [
            "directory:/srv/a",
            "directory:/srv/b",
            "file:/srv/x-1-0",
            "file:/srv/x-2-1",
            "file:/srv/y-1-0",
            "file:/srv/y-2-1"
        ]
    );
}

#[test]
fn loop_errors_name_the_item() {
    let dup = r#"
name: dup
parameters:
  users: { type: map, default: { alice: { home: /h }, bob: { home: /h } } }
resources:
  - for_each: "{{params.users}}"
    resources:
      - file: "{{item.home}}"
        content: "{{key}}"
"#;
    let e = errors(compile(&[("main.yaml", dup)]).unwrap_err());
    assert!(
        e.contains("declared twice with different properties (first at main.yaml:8:9 in for_each item \"alice\")"),
        "{e}"
    );
    assert!(e.contains("[in for_each item \"bob\"]"), "{e}");

    let missing = r#"
name: missing
parameters:
  users: { type: map, default: { alice: { shell: /bin/sh }, bob: {} } }
resources:
  - user: "{{key}}"
    shell: "{{item.shell}}x"
    for_each: "{{params.users}}"
"#;
    let e = errors(compile(&[("main.yaml", missing)]).unwrap_err());
    assert!(e.contains("main.yaml:7:12: user:bob: template references `item.shell`, which has no value"), "{e}");
    assert!(e.contains("[in for_each item \"bob\"]"), "{e}");

    let scalar = "name: s\nparameters:\n  n: { type: integer, default: 3 }\nresources:\n  - file: /x\n    for_each: \"{{params.n}}\"\n";
    let e = errors(compile(&[("main.yaml", scalar)]).unwrap_err());
    assert!(e.contains("main.yaml:6:15: for_each needs a list or a map, got the number 3"), "{e}");
}

const VHOST: &str = r#"
kind: Component
name: vhost
parameters:
  server_name: { type: string, pattern: '^[a-z0-9.-]+$' }
  root: { type: string }
  port: { type: integer, default: 80 }
resources:
  - directory: "{{params.root}}"
  - file: "/etc/nginx/sites-enabled/{{name}}"
    content: "server { listen {{params.port}}; server_name {{params.server_name}}; root {{params.root}}; }\n"
    notifies: ["service:nginx"]
"#;

#[test]
fn components_are_instantiated_with_real_ids_and_can_be_required_as_a_whole() {
    let r = r#"
name: web
parameters:
  sites: { type: map, default: { shop: { root: /srv/shop }, blog: { root: /srv/blog } } }
resources:
  - service: nginx
  - use: vhost
    name: "{{key}}"
    with: { server_name: "{{key}}.example.org", root: "{{item.root}}" }
    for_each: "{{params.sites}}"
  - exec: reload-check
    command: /bin/true
    requires: ["use:vhost[shop]"]
"#;
    let p = compile(&[("main.yaml", r), ("components/vhost.yaml", VHOST)]).unwrap();
    assert_eq!(
        ids(&p),
        [
            "directory:/srv/blog",
            "directory:/srv/shop",
            "exec:reload-check",
            "file:/etc/nginx/sites-enabled/blog",
            "file:/etc/nginx/sites-enabled/shop",
            "service:nginx"
        ]
    );
    let shop = p.resources.iter().find(|r| r.id.to_string() == "file:/etc/nginx/sites-enabled/shop").unwrap();
    assert_eq!(shop.instance.as_deref(), Some("use:vhost[shop]"));
    assert_eq!(shop.notifies[0].to_string(), "service:nginx");
    let exec = p.resources.iter().find(|r| r.id.to_string() == "exec:reload-check").unwrap();
    let mut req: Vec<String> = exec.requires.iter().map(|r| r.to_string()).collect();
    req.sort();
    assert_eq!(req, ["directory:/srv/shop", "file:/etc/nginx/sites-enabled/shop"]);
}

#[test]
fn component_errors_are_located_and_name_the_instance() {
    let bad_param = r#"
name: web
resources:
  - use: vhost
    name: shop
    with: { server_name: "Not Valid", root: /srv/shop, port: eighty, extra: 1 }
  - use: vhots
    name: x
"#;
    let e = errors(compile(&[("main.yaml", bad_param), ("components/vhost.yaml", VHOST)]).unwrap_err());
    assert!(e.contains(r#"main.yaml:6:26: params.server_name: "Not Valid" does not match"#), "{e}");
    assert!(
        e.contains(r#"main.yaml:6:62: params.port: expected an integer, got the string "eighty" [in use:vhost[shop]]"#),
        "{e}"
    );
    assert!(e.contains("main.yaml:6:70: component `vhost` has no parameter `extra`"), "{e}");
    assert!(e.contains("main.yaml:7:10: unknown component `vhots`"), "{e}");
    assert!(e.contains("did you mean `vhost`?"), "{e}");

    let a = "kind: Component\nname: a\nresources:\n  - use: b\n    name: x\n";
    let b = "kind: Component\nname: b\nresources:\n  - use: a\n    name: y\n";
    let main = "name: m\nresources:\n  - use: a\n    name: top\n";
    let e = errors(compile(&[("main.yaml", main), ("components/a.yaml", a), ("components/b.yaml", b)]).unwrap_err());
    assert!(e.contains("component `a` uses itself: a → b → a"), "{e}");
}

#[test]
fn data_levels_by_facts_with_precedence_and_deep_merge() {
    let r = r#"
name: ntp
parameters:
  servers: { type: list, items: { type: string }, default: [pool.ntp.org] }
  options: { type: map, merge: deep, default: { makestep: "1 3" } }
  package: { type: string }
data:
  hierarchy:
    - "nodes/{{facts.hostname}}.yaml"
    - "os/{{facts.os.family}}-{{facts.os.version_id}}.yaml"
    - "os/{{facts.os.family}}.yaml"
    - common.yaml
resources:
  - package: "{{params.package}}"
  - file: /etc/chrony/conf.d/tend.conf
    content: "{{#each params.servers}}server {{this}} iburst\n{{/each}}{{#each params.options}}{{@key}} {{this}}\n{{/each}}"
"#;
    let files = [
        ("main.yaml", r),
        ("nodes/web-1.yaml", "options: { rtcsync: \"\" }\n"),
        ("os/debian.yaml", "package: chrony\nservers: [0.debian.pool.ntp.org]\noptions: { makestep: \"1 -1\" }\n"),
        ("common.yaml", "package: ntp\nservres: [typo]\n"),
    ];
    let p = compile(&files).unwrap();
    assert!(p.resources.iter().any(|r| r.id.to_string() == "package:chrony"), "os level beats common");
    let conf = p.resources.iter().find(|r| r.id.to_string() == "file:/etc/chrony/conf.d/tend.conf").unwrap();
    assert_eq!(
        String::from_utf8_lossy(conf.payload.as_deref().unwrap()),
        "server 0.debian.pool.ntp.org iburst\nmakestep 1 -1\nrtcsync \n"
    );
    assert_eq!(p.param_origins["package"], ["data os/debian.yaml (level 3: os/{{facts.os.family}}.yaml)"]);
    assert_eq!(p.param_origins["options"].len(), 3, "{:?}", p.param_origins["options"]);
    assert_eq!(p.param_origins["options"][0], "the default in main.yaml");
    let w: Vec<String> = p.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        ["common.yaml:2:1: `servres` is not a parameter any recipe declares; ignored (did you mean `servers`?)"]
    );
    // `--param` beats every level.
    let o = Overrides { raw: vec![("package".into(), "ntpsec".into())], ..Default::default() };
    assert!(compile_with(&files, &o).unwrap().resources.iter().any(|r| r.id.to_string() == "package:ntpsec"));

    let mut bad = files;
    bad[1] = ("nodes/web-1.yaml", "options: flat\n");
    let e = errors(compile(&bad).unwrap_err());
    assert!(
        e.contains("nodes/web-1.yaml:1:10: params.options: cannot deep-merge a mapping with the string \"flat\""),
        "{e}"
    );
}

#[test]
fn validation_checks_every_data_file_a_level_can_match() {
    let r = "name: d\nparameters:\n  port: { type: integer, default: 1 }\ndata:\n  hierarchy: [\"os/{{facts.os.family}}.yaml\"]\nresources:\n  - file: \"/srv/backups/{{facts.hostname}}\"\n    content: \"{{params.port}}\"\n";
    validate(&[("main.yaml", r), ("os/debian.yaml", "port: 2\n")]).unwrap();
    let e = errors(validate(&[("main.yaml", r), ("os/redhat.yaml", "port: many\n")]).unwrap_err());
    assert!(e.contains("os/redhat.yaml:1:7: params.port: expected an integer, got the string \"many\""), "{e}");
}

#[test]
fn includes_can_be_conditional() {
    let main = r#"
name: m
include:
  - { file: debian.yaml, when: { fact: os.family, equals: debian } }
  - { file: redhat.yaml, when: { fact: os.family, equals: redhat } }
"#;
    let deb = "name: deb\nresources:\n  - package: chrony\n    state: installed\n";
    let rh = "name: rh\nresources:\n  - package: chrony\n    state: latest\n";
    let files = [("main.yaml", main), ("debian.yaml", deb), ("redhat.yaml", rh)];
    let p = compile(&files).unwrap();
    assert_eq!(ids(&p), ["package:chrony"]);
    let Spec::Package(pk) = spec(&p, "package:chrony") else { panic!() };
    assert_eq!(format!("{:?}", pk.state), "Installed");
    // Without a host, both are checked, and their different declarations are not a conflict.
    validate(&files).unwrap();
}
