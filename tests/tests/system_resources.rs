//! System resources on real booted Debian 12 hosts: users, groups, packages,
//! services, unit files, cron and NTP, asserted with the system's own tools.

use serde_json::Value;
use tend_e2e::agent::{apply, boot, by_status, resource};
use tend_e2e::{Host, Network};

const SYSTEM: &str = "/etc/tend/recipes/system.yaml";

/// The system recipe starts nginx on port 80, and these hosts share this
/// machine's network (apt needs it): one such host at a time. Take it before
/// booting, so that it is released after the host is gone.
fn port_80() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Converges the system recipe and checks the result; shared by the tests
/// that start from a converged host.
fn converge_system(host: &Host) -> Value {
    // A line in root's crontab that tend does not own must survive.
    host.sh_ok("printf '0 1 * * * /bin/true # not managed by tend\\n' | crontab -u root -");
    let (code, r) = apply(host, SYSTEM, "");
    assert_eq!(r["summary"]["failed"], 0, "failures: {}", serde_json::to_string_pretty(&r).unwrap_or_default());
    assert_eq!(code, 2);
    r
}

#[test]
fn the_system_recipe_converges_a_fresh_host_and_the_second_run_changes_nothing() {
    let _port_80 = port_80();
    let host = boot("system", Network::Shared);
    let r = converge_system(&host);
    assert_eq!(resource(&r, "service:cron")["status"], "unchanged", "cron runs from the start");
    assert_eq!(resource(&r, "user:alice")["status"], "changed");

    // Accounts.
    assert_eq!(host.sh_ok("getent group ops").trim(), "ops:x:2001:");
    let passwd = host.sh_ok("getent passwd alice");
    assert_eq!(passwd.trim(), "alice:x:2001:2001:Alice Admin:/home/alice:/bin/bash");
    assert!(host.sh_ok("id -nG alice").split_whitespace().any(|g| g == "deploy"));
    let deploy_gid: u32 = host.sh_ok("getent group deploy | cut -d: -f3").trim().parse().expect("gid");
    assert!(deploy_gid < 1000, "deploy is a system group");
    assert!(host.sh_ok("getent shadow alice").starts_with("alice:$6$tendsalt$"));
    assert_eq!(
        host.sh_ok("stat -c '%a %U %G' /home/alice /home/alice/.ssh /home/alice/.ssh/authorized_keys"),
        "755 alice ops\n700 alice ops\n600 alice ops\n"
    );
    assert!(host.read("/home/alice/.ssh/authorized_keys").contains("admin@example"));
    assert!(host.root().join("home/alice/.bashrc").exists(), "home made from /etc/skel");

    // Packages and services.
    assert_eq!(
        host.sh_ok("dpkg-query -W -f '${Status}\\n' nginx-light tree"),
        "install ok installed\ninstall ok installed\n"
    );
    for unit in ["nginx", "cron", "hello"] {
        assert_eq!(host.sh_ok(&format!("systemctl is-enabled {unit}")).trim(), "enabled", "{unit}");
        assert_eq!(host.sh_ok(&format!("systemctl is-active {unit}")).trim(), "active", "{unit}");
    }
    assert!(host.sh_ok("systemctl cat hello.service").contains("Environment=GREETING=hello"));
    assert_eq!(host.read("/etc/hello.conf"), format!("# Managed by tend\ngreeting = hello\nhost = {}\n", host.name()));

    // Cron.
    let cron_d = host.read("/etc/cron.d/housekeeping");
    assert!(cron_d.starts_with("# Managed by tend (cron:housekeeping)"), "{cron_d}");
    assert!(cron_d.contains("MAILTO=\n*/15 * * * * root find /tmp -xdev -type f -mtime +7 -delete\n"), "{cron_d}");
    assert_eq!(host.sh_ok("stat -c '%a %U' /etc/cron.d/housekeeping").trim(), "644 root");
    let crontab = host.sh_ok("crontab -l -u root");
    assert!(crontab.contains("0 1 * * * /bin/true # not managed by tend\n"), "{crontab}");
    assert!(
        crontab.contains("# tend: nightly-report\n@daily /usr/bin/tree -L 1 /srv > /var/tmp/tree.txt\n"),
        "{crontab}"
    );

    // NTP: chrony's configuration (chrony itself cannot start in a container).
    let chrony = host.read("/etc/chrony/chrony.conf");
    assert!(chrony.contains("server time1.example.net iburst maxpoll 10\n"), "{chrony}");
    assert!(chrony.contains("pool pool.example.net iburst maxpoll 10\n") && chrony.contains("makestep 1 3\n"));

    // Idempotent: the second run changes nothing, and exits 0.
    let (code, again) = apply(&host, SYSTEM, "");
    assert_eq!(by_status(&again, "changed"), Vec::<&str>::new());
    assert_eq!(again["summary"]["unchanged"], again["summary"]["total"]);
    assert_eq!(code, 0);
}

#[test]
fn drift_is_reported_by_dry_run_and_repaired_as_corrective() {
    let _port_80 = port_80();
    let host = boot("drift", Network::Shared);
    converge_system(&host);
    host.sh_ok(
        "userdel alice && systemctl disable --now hello && \
         sed -i 's/\\*\\/15/*\\/5/' /etc/cron.d/housekeeping && \
         DEBIAN_FRONTEND=noninteractive apt-get remove -y -q tree >/dev/null",
    );
    let drifted = ["cron:housekeeping", "package:tree", "service:hello", "user:alice"];
    let before = host
        .sh_ok("getent passwd alice; systemctl is-active hello; cat /etc/cron.d/housekeeping; dpkg -l tree | tail -1");

    let (code, dry) = apply(&host, SYSTEM, "--dry-run");
    assert_eq!(code, 2);
    assert_eq!(by_status(&dry, "changed"), drifted);
    assert_eq!(by_status(&dry, "failed"), Vec::<&str>::new());
    let after = host
        .sh_ok("getent passwd alice; systemctl is-active hello; cat /etc/cron.d/housekeeping; dpkg -l tree | tail -1");
    assert_eq!(before, after, "dry-run repaired something");

    let (code, real) = apply(&host, SYSTEM, "");
    assert_eq!(code, 2);
    assert_eq!(by_status(&real, "changed"), drifted);
    for id in drifted {
        assert_eq!(resource(&real, id)["corrective"], true, "{id} is drift repair");
    }
    assert_eq!(host.sh_ok("systemctl is-active hello").trim(), "active");
    assert_eq!(host.sh_ok("getent passwd alice | cut -d: -f3").trim(), "2001");
    assert!(host.read("/etc/cron.d/housekeeping").contains("*/15 * * * *"));
    assert_eq!(host.sh_ok("dpkg-query -W -f '${Status}' tree"), "install ok installed");
    assert_eq!(apply(&host, SYSTEM, "").0, 0);
}

fn main_pid_and_start(host: &Host) -> String {
    host.sh_ok("systemctl show -p MainPID -p ActiveEnterTimestampMonotonic hello")
}

#[test]
fn a_changed_template_restarts_its_service_exactly_once() {
    let _port_80 = port_80();
    let host = boot("notify", Network::Shared);
    converge_system(&host);
    let first = main_pid_and_start(&host);

    // Both the template and the unit file change: one restart, after both.
    let (code, r) = apply(&host, SYSTEM, "--param greeting=bonjour");
    assert_eq!(code, 2);
    assert_eq!(by_status(&r, "changed"), ["service:hello", "systemd_unit:hello.service", "template:/etc/hello.conf"]);
    let hello = resource(&r, "service:hello");
    let refreshes: Vec<&Value> =
        hello["changes"].as_array().expect("changes").iter().filter(|c| c["property"] == "refresh").collect();
    assert_eq!(refreshes.len(), 1, "{hello}");
    let second = main_pid_and_start(&host);
    assert_ne!(first, second, "the service was not restarted");
    assert!(host.sh_ok("systemctl show -p Environment hello").contains("GREETING=bonjour"), "daemon-reload ran");
    assert!(host.sh_ok("journalctl -u hello -o cat --no-pager").contains("greeting = bonjour"));

    // Unchanged: no restart.
    let (code, _) = apply(&host, SYSTEM, "--param greeting=bonjour");
    assert_eq!(code, 0);
    assert_eq!(main_pid_and_start(&host), second, "restarted without a change");
}

#[test]
fn bad_inputs_fail_clearly_and_leave_nothing_half_done() {
    let host = boot("bad", Network::Shared);
    host.write(
        "/root/bad.yaml",
        r#"name: bad
resources:
  - user: carol
    groups: [nosuchgroup]
  - user: dave
    groups: [declared]
  - group: declared
  - package: tend-no-such-package-xyz
  - package: tree
  - systemd_unit: broken.service
    content: |
      [Service]
      Type=exec
      ExecStart=/usr/local/bin/does-not-exist
  - service: broken
    state: running
"#,
    );
    let (code, r) = apply(&host, "/root/bad.yaml", "");
    assert_eq!(code, 6, "changes and failures");
    let carol = resource(&r, "user:carol");
    assert_eq!(carol["status"], "failed");
    assert!(carol["error"].as_str().unwrap_or_default().contains("nosuchgroup"), "{carol}");
    assert!(host.sh("getent passwd carol").stdout.is_empty(), "carol half-created");
    // A group the recipe declares is created first, whatever the order.
    assert_eq!(resource(&r, "user:dave")["status"], "changed");
    assert!(host.sh_ok("id -nG dave").contains("declared"));
    let pkg = resource(&r, "package:tend-no-such-package-xyz");
    assert_eq!(pkg["status"], "failed");
    assert!(pkg["error"].as_str().unwrap_or_default().contains("tend-no-such-package-xyz"), "{pkg}");
    assert_eq!(resource(&r, "package:tree")["status"], "changed", "the rest of the batch still installs");
    let broken = resource(&r, "service:broken");
    assert_eq!(broken["status"], "failed");
    let err = broken["error"].as_str().unwrap_or_default();
    assert!(err.contains("journal") && (err.contains("does-not-exist") || err.contains("203/EXEC")), "{err}");

    // An invalid schedule is refused before anything runs.
    host.write(
        "/root/bad-cron.yaml",
        "name: bad-cron\nresources:\n  - file: /etc/should-not-exist\n    content: x\n  - cron: bad\n    schedule: '61 * * * *'\n    command: /bin/true\n",
    );
    let out = host.sh("tend-agent apply /root/bad-cron.yaml --ec2 off");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-cron.yaml:6:") && err.contains("invalid schedule"), "{err}");
    assert!(!host.root().join("etc/should-not-exist").exists());
}
