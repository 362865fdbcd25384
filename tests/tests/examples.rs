//! The example roles under recipes/examples/ on booted Debian 12 hosts: each
//! converges, the second run changes nothing, and a change in one data level
//! (or one parameter) moves exactly the resources it should.

use serde_json::Value;
use tend_e2e::agent::{self, resource};
use tend_e2e::{Host, Network};

/// A host with the agent, and a writable copy of the examples at /root/examples.
fn boot(name: &str) -> Host {
    let host = agent::boot(name, Network::Shared);
    host.sh_ok("cp -r /etc/tend/recipes/examples /root/examples");
    host
}

fn apply(host: &Host, recipe: &str, extra: &str) -> (i32, Value) {
    let (code, report) = agent::apply(host, &format!("/root/examples/{recipe}"), extra);
    assert_eq!(
        report["summary"]["failed"],
        0,
        "{recipe}: {}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    (code, report)
}

fn changed(r: &Value) -> Vec<&str> {
    agent::by_status(r, "changed")
}

/// Applies again and asserts that nothing changed.
fn idempotent(host: &Host, recipe: &str, extra: &str) {
    let (code, again) = apply(host, recipe, extra);
    assert_eq!(changed(&again), Vec::<&str>::new(), "{recipe}: the second run changed something");
    assert_eq!(code, 0);
}

#[test]
fn users_from_a_map_with_keys_groups_and_a_node_level() {
    let host = boot("ex-users");
    let (code, r) = apply(&host, "users/users.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(resource(&r, "file:/etc/sudoers.d/bob")["status"], "skipped", "bob has no sudo");
    assert_eq!(host.sh_ok("getent passwd alice").trim(), "alice:x:2001:2001:Alice Admin:/home/alice:/bin/bash");
    assert_eq!(host.sh_ok("getent passwd bob").trim(), "bob:x:2002:2002::/home/bob:/bin/bash");
    let groups = host.sh_ok("id -nG alice");
    for g in ["alice", "adm", "sudo"] {
        assert!(groups.split_whitespace().any(|x| x == g), "alice in {g}: {groups}");
    }
    assert_eq!(host.sh_ok("id -nG bob").trim(), "bob developers");
    assert_eq!(host.sh_ok("wc -l < /home/bob/.ssh/authorized_keys").trim(), "2");
    assert_eq!(host.sh_ok("stat -c '%a %U' /etc/sudoers.d/alice").trim(), "440 root");
    assert!(!host.root().join("etc/sudoers.d/bob").exists());
    assert!(host.sh("getent passwd mallory").status.code() == Some(2), "mallory is absent");
    idempotent(&host, "users/users.yaml", "");

    // One more user in this host's level: exactly her group and account move.
    let hostname = host.sh_ok("hostname").trim().to_string();
    host.sh_ok(&format!(
        "printf 'users:\\n  carol: {{ uid: 2003, groups: [developers] }}\\n' > /root/examples/users/data/nodes/{hostname}.yaml"
    ));
    let explain = host.sh_ok("tend-agent explain users /root/examples/users/users.yaml --ec2 off");
    assert!(explain.contains(&format!("from data /root/examples/users/data/nodes/{hostname}.yaml")), "{explain}");
    assert!(explain.contains("from data /root/examples/users/data/common.yaml"), "{explain}");
    let (code, r) = apply(&host, "users/users.yaml", "");
    assert_eq!(changed(&r), ["group:carol", "user:carol"]);
    assert_eq!(code, 2);
    assert_eq!(host.sh_ok("id -nG carol").trim(), "carol developers");
    assert!(host.sh_ok("getent passwd alice").contains("Alice Admin"), "common users stay");
    idempotent(&host, "users/users.yaml", "");
}

#[test]
fn ntp_with_per_os_data_and_an_implementation_chosen_by_include() {
    let host = boot("ex-ntp");
    let (code, r) = apply(&host, "ntp/ntp.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(resource(&r, "template:/etc/chrony/chrony.conf")["status"], "changed");
    let conf = host.read("/etc/chrony/chrony.conf");
    assert_eq!(
        conf,
        "# Managed by tend (recipes/examples/ntp): local changes are overwritten.\n\
         server 0.pool.ntp.org iburst\nserver 1.pool.ntp.org iburst\n\
         driftfile /var/lib/chrony/chrony.drift\nmakestep 1 3\nrtcsync\n\
         sourcedir /etc/chrony/sources.d\n"
    );
    assert_eq!(host.sh_ok("systemctl is-enabled chrony").trim(), "enabled");
    assert!(host.sh("chronyd -p -f /etc/chrony/chrony.conf >/dev/null").status.success(), "chronyd parses it");
    idempotent(&host, "ntp/ntp.yaml", "");

    // This host's own servers: the configuration moves (and restarts chrony), nothing else.
    let hostname = host.sh_ok("hostname").trim().to_string();
    host.sh_ok(&format!("printf 'servers: [ntp1.internal]\\n' > /root/examples/ntp/data/nodes/{hostname}.yaml"));
    let (_, r) = apply(&host, "ntp/ntp.yaml", "");
    let moved = changed(&r);
    assert!(moved.contains(&"template:/etc/chrony/chrony.conf"), "{moved:?}");
    assert!(moved.iter().all(|m| *m == "template:/etc/chrony/chrony.conf" || *m == "service:chrony"), "{moved:?}");
    assert!(host.read("/etc/chrony/chrony.conf").contains("server ntp1.internal iburst\n"));
    assert!(!host.read("/etc/chrony/chrony.conf").contains("pool.ntp.org"));
    idempotent(&host, "ntp/ntp.yaml", "");

    // The other implementation is a different include: a dry run shows exactly its resources.
    let out = host.sh(
        "tend-agent apply /root/examples/ntp/ntp.yaml --ec2 off --output json --dry-run --param implementation=ntpsec",
    );
    let plan: Value = serde_json::from_slice(&out.stdout).expect("dry-run report");
    let mut ids: Vec<&str> =
        plan["resources"].as_array().expect("resources").iter().filter_map(|x| x["id"].as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["package:ntpsec", "service:ntpsec", "template:/etc/ntpsec/ntp.conf"]);
}

#[test]
fn nginx_vhosts_as_component_instances() {
    let host = boot("ex-nginx");
    let (code, r) = apply(&host, "nginx/site.yaml", "");
    assert_eq!(code, 2);
    let shop = resource(&r, "template:/etc/nginx/conf.d/shop.conf");
    assert_eq!(shop["instance"], "use:vhost[shop]");
    assert_eq!(resource(&r, "exec:nginx-config-test")["status"], "changed", "the config was tested");
    let conf = host.read("/etc/nginx/conf.d/shop.conf");
    assert!(conf.contains("    listen 8081;\n    server_name shop.example.org;\n    root /srv/www/shop;\n"), "{conf}");
    assert!(host.read("/etc/nginx/conf.d/blog.conf").contains("root /srv/www/blog;"));
    assert_eq!(host.read("/srv/www/shop/index.html"), "<h1>shop.example.org</h1>\n");
    assert!(!host.root().join("etc/nginx/sites-enabled/default").exists());
    assert_eq!(host.sh_ok("systemctl is-active nginx").trim(), "active");
    let listening = host.sh_ok("ss -Hltn");
    assert!(listening.contains(":8081") && listening.contains(":8082"), "{listening}");
    idempotent(&host, "nginx/site.yaml", "");

    // A third vhost from a params file: exactly its instance, the test and the reload.
    host.sh_ok(
        "printf 'vhosts:\\n  shop: { server_name: shop.example.org, listen: 8081 }\\n  blog: { server_name: blog.example.org, listen: 8082, root: /srv/www/blog }\\n  api: { server_name: api.example.org, listen: 8083, extra: \"client_max_body_size 1m;\" }\\n' > /root/vhosts.yaml",
    );
    let (code, r) = apply(&host, "nginx/site.yaml", "--params /root/vhosts.yaml");
    assert_eq!(code, 2);
    assert_eq!(
        changed(&r),
        [
            "directory:/srv/www/api",
            "exec:nginx-config-test",
            "file:/srv/www/api/index.html",
            "service:nginx",
            "template:/etc/nginx/conf.d/api.conf"
        ]
    );
    assert!(host.read("/etc/nginx/conf.d/api.conf").contains("    client_max_body_size 1m;\n"));
    assert!(host.sh_ok("ss -Hltn").contains(":8083"));
    idempotent(&host, "nginx/site.yaml", "--params /root/vhosts.yaml");
}
