//! The base-layer resources on booted Debian 12 hosts with their own network
//! namespace (so that `net.*` sysctls are theirs to set): in-place edits
//! (`setting`, `file_line`), `validate`, links, sysctl, time zone and host
//! name, each applied twice and checked with the system's own tools.

use serde_json::Value;
use tend_e2e::agent::{apply, boot, by_status, resource};
use tend_e2e::{Host, Network};

const BASE: &str = "/etc/tend/recipes/examples/base/base.yaml";
const SSHD: &str = "/etc/tend/recipes/examples/base/sshd.yaml";
const BASE_PARAMS: &str = "--param timezone=Europe/Paris --param hostname=web1.example.net";

fn no_failures(r: &Value) {
    assert_eq!(r["summary"]["failed"], 0, "failures: {}", serde_json::to_string_pretty(r).unwrap_or_default());
}

/// Applies again: nothing changes, exit 0.
fn idempotent(host: &Host, recipe: &str, extra: &str) {
    let (code, again) = apply(host, recipe, extra);
    assert_eq!(by_status(&again, "changed"), Vec::<&str>::new(), "{recipe}: the second run changed something");
    assert_eq!(code, 0);
}

fn error_of<'a>(r: &'a Value, id: &str) -> &'a str {
    let res = resource(r, id);
    assert_eq!(res["status"], "failed", "{res}");
    res["error"].as_str().unwrap_or_default()
}

#[test]
fn the_base_example_converges_in_place_and_drift_is_repaired_as_corrective() {
    let host = boot("base", Network::Private);
    host.sh_ok("cp /etc/login.defs /root/login.defs.orig && cp /etc/systemd/journald.conf /root/journald.orig");
    let (code, r) = apply(&host, BASE, BASE_PARAMS);
    no_failures(&r);
    assert_eq!(code, 2);
    // Already 1 live: only its file is written.
    let syncookies = resource(&r, "sysctl:net.ipv4.tcp_syncookies")["changes"].as_array().expect("changes").clone();
    assert!(syncookies.iter().all(|c| c["property"] != "value"), "{syncookies:?}");

    // Time zone: the link timedatectl would write, and Debian's /etc/timezone.
    assert_eq!(host.sh_ok("readlink /etc/localtime").trim(), "../usr/share/zoneinfo/Europe/Paris");
    assert_eq!(host.read("/etc/timezone"), "Europe/Paris\n");
    assert!(["CET", "CEST"].contains(&host.sh_ok("date +%Z").trim()));

    // Host name: running, static, and resolvable without DNS.
    assert_eq!(host.sh_ok("hostname").trim(), "web1.example.net");
    assert_eq!(host.read("/etc/hostname"), "web1.example.net\n");
    let hosts = host.sh_ok("getent hosts web1");
    assert_eq!(hosts.split_whitespace().collect::<Vec<_>>(), ["127.0.1.1", "web1.example.net", "web1"]);

    // Kernel parameters: live, and persisted in a file sysctl itself accepts.
    let live = host.sh_ok(
        "sysctl -n net.ipv4.conf.all.accept_redirects net.ipv4.conf.all.send_redirects net.ipv4.conf.all.log_martians",
    );
    assert_eq!(live, "0\n0\n1\n");
    assert_eq!(
        host.read("/etc/sysctl.d/99-tend-net.ipv4.conf.all.log_martians.conf"),
        "# Managed by tend (sysctl:net.ipv4.conf.all.log_martians).\nnet.ipv4.conf.all.log_martians = 1\n"
    );
    host.sh_ok("sysctl -p /etc/sysctl.d/99-tend-net.ipv4.conf.all.accept_redirects.conf");

    // login.defs: exactly the three lines that differed changed, where they were (PASS_WARN_AGE
    // was 7 already); the rest byte for byte.
    let diff = host.sh("diff /root/login.defs.orig /etc/login.defs");
    let diff = String::from_utf8_lossy(&diff.stdout);
    let added: Vec<&str> = diff.lines().filter(|l| l.starts_with("> ")).collect();
    assert_eq!(added, ["> UMASK\t027", "> PASS_MAX_DAYS\t60", "> PASS_MIN_DAYS\t7"], "{diff}");
    assert_eq!(diff.lines().filter(|l| l.starts_with("< ")).count(), 3, "{diff}");
    assert_eq!(host.sh_ok("grep -c '^PASS_MAX_DAYS' /etc/login.defs").trim(), "1");
    assert_eq!(host.sh_ok("stat -c '%a %U' /etc/login.defs").trim(), "644 root", "owner and mode kept");

    // limits.conf: the new lines above "# End of file".
    let tail = host.sh_ok("tail -n 4 /etc/security/limits.conf");
    assert_eq!(tail, "*\tsoft\tnofile\t65536\n*\thard\tnofile\t65536\n*\thard\tcore\t0\n# End of file\n");

    // journald.conf: the commented default became the setting in [Journal].
    let diff = host.sh("diff /root/journald.orig /etc/systemd/journald.conf");
    let diff = String::from_utf8_lossy(&diff.stdout);
    let lines: Vec<&str> = diff.lines().filter(|l| l.starts_with(['<', '>'])).collect();
    assert_eq!(lines, ["< #Storage=auto", "> Storage=persistent"], "{diff}");

    idempotent(&host, BASE, BASE_PARAMS);

    // Drift, then dry-run (reports, with a diff, and changes nothing), then repair.
    host.sh_ok(
        "sysctl -qw net.ipv4.conf.all.log_martians=0 && sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS 99999/' /etc/login.defs \
         && ln -sfn /usr/share/zoneinfo/Etc/UTC /etc/localtime && hostname drifted && \
         sed -i '/hard\tcore/d' /etc/security/limits.conf",
    );
    let state = "sysctl -n net.ipv4.conf.all.log_martians; grep ^PASS_MAX /etc/login.defs; readlink /etc/localtime; \
                 hostname; grep -c core /etc/security/limits.conf || true";
    let before = host.sh_ok(state);
    let drifted = [
        "file_line:limits no core dumps",
        "hostname:web1.example.net",
        "setting:login.defs PASS_MAX_DAYS",
        "sysctl:net.ipv4.conf.all.log_martians",
        "timezone:Europe/Paris",
    ];
    let (code, dry) = apply(&host, BASE, &format!("{BASE_PARAMS} --dry-run"));
    no_failures(&dry);
    assert_eq!(code, 2);
    assert_eq!(by_status(&dry, "changed"), drifted);
    let diff = resource(&dry, "setting:login.defs PASS_MAX_DAYS")["changes"][0]["diff"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(diff.contains("-PASS_MAX_DAYS 99999\n+PASS_MAX_DAYS\t60\n"), "{diff}");
    let change = &resource(&dry, "sysctl:net.ipv4.conf.all.log_martians")["changes"][0];
    assert_eq!(
        (change["property"].as_str(), change["from"].as_str(), change["to"].as_str()),
        (Some("value"), Some("0"), Some("1"))
    );
    assert_eq!(host.sh_ok(state), before, "dry-run changed something");

    let (code, real) = apply(&host, BASE, BASE_PARAMS);
    no_failures(&real);
    assert_eq!(code, 2);
    assert_eq!(by_status(&real, "changed"), drifted);
    for id in drifted {
        assert_eq!(resource(&real, id)["corrective"], true, "{id} is drift repair");
    }
    assert_eq!(host.sh_ok("sysctl -n net.ipv4.conf.all.log_martians").trim(), "1");
    assert_eq!(host.sh_ok("hostname").trim(), "web1.example.net");
    idempotent(&host, BASE, BASE_PARAMS);
}

/// sshd_config edited in place, every edit checked by `sshd -t` first; a bad
/// value fails its resource and leaves the file as it was.
#[test]
fn sshd_settings_are_validated_before_they_replace_the_file() {
    let host = boot("sshd", Network::Private);
    let (code, r) = apply(&host, SSHD, "");
    no_failures(&r);
    assert_eq!(code, 2);
    let effective = host.sh_ok(
        "sshd -T | grep -E '^(permitrootlogin|passwordauthentication|x11forwarding|maxauthtries|clientaliveinterval) ' | sort",
    );
    assert_eq!(
        effective,
        "clientaliveinterval 300\nmaxauthtries 3\npasswordauthentication no\npermitrootlogin no\nx11forwarding no\n"
    );
    // Commented defaults replaced where they stood: each keyword once.
    for key in ["PermitRootLogin", "MaxAuthTries", "X11Forwarding", "PasswordAuthentication"] {
        assert_eq!(host.sh_ok(&format!("grep -ciE '^#?{key} ' /etc/ssh/sshd_config")).trim(), "1", "{key}");
    }
    assert_eq!(host.sh_ok("systemctl is-active ssh").trim(), "active");
    idempotent(&host, SSHD, "");

    // A value sshd refuses: validate fails, the file stays, sshd still accepts it.
    let sum = host.sh_ok("sha256sum /etc/ssh/sshd_config");
    host.write(
        "/root/bad-sshd.yaml",
        "name: bad-sshd\nresources:\n  - setting: sshd MaxAuthTries\n    path: /etc/ssh/sshd_config\n    key: MaxAuthTries\n    \
         value: lots\n    separator: ' '\n    validate: /usr/sbin/sshd -t -f %s\n",
    );
    let (code, r) = apply(&host, "/root/bad-sshd.yaml", "");
    assert_eq!(code, 4, "failures only");
    let err = error_of(&r, "setting:sshd MaxAuthTries");
    assert!(
        err.contains("validate") && err.contains("MaxAuthTries integer value invalid") && err.contains("unchanged"),
        "{err}"
    );
    assert_eq!(host.sh_ok("sha256sum /etc/ssh/sshd_config"), sum);
    host.sh_ok("sshd -t");
    assert_eq!(host.sh_ok("ls -a /etc/ssh | grep -c tend || true").trim(), "0", "no staged file left");
}

/// Links, file over link, `create: false`, `file_line` removal, `validate` on
/// a file, and bad input.
#[test]
fn links_edits_and_bad_input() {
    let host = boot("edits", Network::Private);
    host.sh_ok("mkdir -p /opt/app/releases/1.0 /opt/app/releases/2.0 && ln -s /etc/hostname /etc/tend-link && touch /etc/existing");
    let recipe = |release: &str, sudoers: &str| {
        format!(
            r#"name: edits
resources:
  - link: /opt/app/current
    target: releases/{release}
  - link: /usr/local/bin/app
    target: /opt/app/current/bin/app
  - file: /etc/tend-link
    content: "now a file\n"
    force: true
  - file: /etc/existing
    create: false
    mode: "0600"
  - file: /etc/never-created
    create: false
    mode: "0600"
  - file_line: no motd over ssh
    path: /etc/pam.d/sshd
    match: '^session\s+optional\s+pam_motd\.so'
    state: absent
  - file: /etc/sudoers.d/ops
    content: "{sudoers}\n"
    mode: "0440"
    validate: visudo -cf %s
"#
        )
    };
    host.write("/root/edits.yaml", recipe("1.0", "%sudo ALL=(ALL:ALL) NOPASSWD: /usr/bin/systemctl"));
    let (code, r) = apply(&host, "/root/edits.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    assert_eq!(host.sh_ok("readlink /opt/app/current /usr/local/bin/app"), "releases/1.0\n/opt/app/current/bin/app\n");
    assert_eq!(host.sh_ok("stat -c %F /etc/tend-link").trim(), "regular file");
    assert_eq!(host.read("/etc/hostname").trim(), host.sh_ok("hostname").trim(), "the link's target is untouched");
    assert_eq!(host.sh_ok("stat -c %a /etc/existing").trim(), "600");
    assert!(!host.root().join("etc/never-created").exists());
    assert_eq!(host.sh_ok("grep -c pam_motd /etc/pam.d/sshd || true").trim(), "0");
    assert!(host.read("/etc/pam.d/sshd").contains("@include common-auth"), "the rest is kept");
    host.sh_ok("visudo -c");
    idempotent(&host, "/root/edits.yaml", "");

    // Drift: the link pointed elsewhere by hand; dry-run reports it and changes nothing.
    host.sh_ok("ln -sfn releases/2.0 /opt/app/current");
    let (code, dry) = apply(&host, "/root/edits.yaml", "--dry-run");
    assert_eq!((code, by_status(&dry, "changed")), (2, vec!["link:/opt/app/current"]));
    assert_eq!(host.sh_ok("readlink /opt/app/current").trim(), "releases/2.0", "dry-run changed nothing");
    let (code, r) = apply(&host, "/root/edits.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(resource(&r, "link:/opt/app/current")["corrective"], true);
    assert_eq!(host.sh_ok("readlink /opt/app/current").trim(), "releases/1.0");

    // A new release switches the link atomically; a sudoers line visudo refuses is not written.
    host.write("/root/edits.yaml", recipe("2.0", "%sudo ALL=(ALL:ALL) NOPASSWD /usr/bin/systemctl"));
    let (code, r) = apply(&host, "/root/edits.yaml", "");
    assert_eq!(code, 6, "a change and a failure");
    let link = &resource(&r, "link:/opt/app/current")["changes"][0];
    assert_eq!(
        (link["property"].as_str(), link["from"].as_str(), link["to"].as_str()),
        (Some("target"), Some("releases/1.0"), Some("releases/2.0"))
    );
    assert_eq!(host.sh_ok("readlink /opt/app/current").trim(), "releases/2.0");
    let err = error_of(&r, "file:/etc/sudoers.d/ops");
    assert!(err.contains("visudo -cf") && err.contains("syntax error"), "{err}");
    assert!(host.read("/etc/sudoers.d/ops").contains("NOPASSWD: /usr/bin/systemctl"), "the old file stays");

    // A file never silently replaces a link; a link never replaces a file without force.
    host.sh_ok("ln -sfn /etc/hostname /etc/tend-link2 && echo keep > /etc/tend-file");
    host.write(
        "/root/refused.yaml",
        "name: refused\nresources:\n  - file: /etc/tend-link2\n    content: x\n  - link: /etc/tend-file\n    target: /etc/hostname\n  \
         - timezone: Mars/Olympus_Mons\n  - sysctl: vm.swappiness\n    value: '10'\n  - sysctl: net.ipv4.no_such_key\n    value: '1'\n  \
         - setting: binary\n    path: /usr/bin/true\n    key: x\n    value: y\n",
    );
    let (code, r) = apply(&host, "/root/refused.yaml", "");
    assert_eq!(code, 4);
    assert!(error_of(&r, "file:/etc/tend-link2").contains("symbolic link; set `force: true`"));
    assert!(error_of(&r, "link:/etc/tend-file").contains("set `force: true`"));
    assert!(error_of(&r, "timezone:Mars/Olympus_Mons").contains("unknown time zone"));
    // /proc/sys/vm is read-only in a container: the failure says so and nothing is persisted.
    let err = error_of(&r, "sysctl:vm.swappiness");
    assert!(err.contains("read-only") && err.contains("nothing was persisted"), "{err}");
    assert!(!host.root().join("etc/sysctl.d/99-tend-vm.swappiness.conf").exists());
    assert!(error_of(&r, "sysctl:net.ipv4.no_such_key").contains("no such kernel parameter"));
    assert!(error_of(&r, "setting:binary").contains("not a text file"));
    assert_eq!(host.sh_ok("readlink /etc/tend-link2; cat /etc/tend-file"), "/etc/hostname\nkeep\n");

    // Edits that could never converge are refused before anything runs, located.
    host.write(
        "/root/invalid.yaml",
        "name: invalid\nresources:\n  - file: /etc/should-not-exist\n    content: x\n  - file_line: wrong\n    path: /etc/x\n    \
         line: PermitRootLogin no\n    match: '^Port'\n  - file_line: bad regex\n    path: /etc/x\n    line: x\n    match: '(x'\n",
    );
    let out = host.sh("tend-agent apply /root/invalid.yaml --ec2 off");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid.yaml:8:") && err.contains("never converge"), "{err}");
    assert!(err.contains("invalid.yaml:12:") && err.contains("invalid regular expression"), "{err}");
    assert!(!host.root().join("etc/should-not-exist").exists());
}

/// Password aging in /etc/shadow, and single keys added to (and removed
/// from) authorized_keys files without touching the other lines.
#[test]
fn password_aging_and_single_authorized_keys() {
    let host = boot("keys", Network::Private);
    host.sh_ok("for k in laptop ci; do ssh-keygen -q -t ed25519 -N '' -C alice@$k -f /root/$k; done");
    let laptop = host.sh_ok("cat /root/laptop.pub").trim().to_string();
    let ci = host.sh_ok("cat /root/ci.pub").trim().to_string();
    let recipe = |state: &str| {
        format!(
            r#"name: accounts
resources:
  - user: alice
    uid: 2101
    home: /home/alice
    password_max_age: 90
    password_min_age: 1
    password_warn_age: 14
    expires: "2030-12-31"
  - directory: /etc/ssh/authorized_keys
  - authorized_key: alice laptop
    user: alice
    key: {laptop}
    options: 'from="10.0.0.0/8",no-agent-forwarding'
    state: {state}
  - authorized_key: alice ci
    user: alice
    key: {ci}
    path: /etc/ssh/authorized_keys/alice
"#
        )
    };
    host.write("/root/accounts.yaml", recipe("present"));
    let (code, r) = apply(&host, "/root/accounts.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    let shadow = host.sh_ok("getent shadow alice | cut -d: -f4,5,6,8");
    let expire: i64 = host.sh_ok("echo $(( $(date -ud 2030-12-31 +%s) / 86400 ))").trim().parse().expect("days");
    assert_eq!(shadow.trim(), format!("1:90:14:{expire}"));
    assert!(host.sh_ok("chage -l alice").contains("Account expires\t\t\t\t\t\t: Dec 31, 2030"));
    let keys = host.read("/home/alice/.ssh/authorized_keys");
    assert_eq!(keys, format!("from=\"10.0.0.0/8\",no-agent-forwarding {laptop}\n"));
    assert_eq!(
        host.sh_ok("stat -c '%a %U' /home/alice/.ssh /home/alice/.ssh/authorized_keys /etc/ssh/authorized_keys/alice"),
        "700 alice\n600 alice\n600 alice\n"
    );
    host.sh_ok("ssh-keygen -l -f /home/alice/.ssh/authorized_keys && ssh-keygen -l -f /etc/ssh/authorized_keys/alice");
    idempotent(&host, "/root/accounts.yaml", "");

    // A key added by hand stays; drift in aging is repaired; removing ours leaves theirs.
    host.sh_ok("echo 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 hand@made' >> /home/alice/.ssh/authorized_keys && chage -M 99999 alice");
    host.sh_ok("sed -i '/alice@ci/d' /etc/ssh/authorized_keys/alice");
    let (code, dry) = apply(&host, "/root/accounts.yaml", "--dry-run");
    assert_eq!((code, by_status(&dry, "changed")), (2, vec!["authorized_key:alice ci", "user:alice"]));
    assert_eq!(host.sh_ok("getent shadow alice | cut -d: -f5").trim(), "99999", "dry-run changed nothing");
    let (code, r) = apply(&host, "/root/accounts.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(by_status(&r, "changed"), ["authorized_key:alice ci", "user:alice"]);
    assert_eq!(resource(&r, "authorized_key:alice ci")["corrective"], true);
    assert_eq!(resource(&r, "user:alice")["corrective"], true);
    assert_eq!(host.read("/etc/ssh/authorized_keys/alice"), format!("{ci}\n"));
    let change = &resource(&r, "user:alice")["changes"][0];
    assert_eq!(
        (change["property"].as_str(), change["from"].as_str(), change["to"].as_str()),
        (Some("password_max_age"), Some("99999"), Some("90"))
    );
    host.write("/root/accounts.yaml", recipe("absent"));
    let (code, r) = apply(&host, "/root/accounts.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(by_status(&r, "changed"), ["authorized_key:alice laptop"]);
    assert_eq!(host.read("/home/alice/.ssh/authorized_keys"), "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 hand@made\n");
    idempotent(&host, "/root/accounts.yaml", "");

    // A key to remove from a user who does not exist: nothing to do.
    host.write(
        "/root/ghost.yaml",
        format!("name: ghost\nresources:\n  - authorized_key: ghost laptop\n    user: ghost\n    key: {laptop}\n    state: absent\n"),
    );
    idempotent(&host, "/root/ghost.yaml", "");
}

/// Kernel modules: a container shares this machine's kernel, so loading and
/// unloading cannot be tested here (the resource manages only its files
/// inside a container, and says so in the docs); persistence, options and
/// the blacklist are checked with the files modprobe and systemd read.
#[test]
fn kernel_modules_are_persisted_and_blacklisted() {
    let host = boot("modules", Network::Private);
    let recipe = |cramfs: &str| {
        format!(
            "name: modules\nresources:\n  - directory: /etc/modprobe.d\n  - kernel_module: br_netfilter\n  \
             - kernel_module: nf_conntrack\n    options: hashsize=65536\n  - kernel_module: cramfs\n    state: {cramfs}\n  \
             - kernel_module: usb-storage\n    state: blacklisted\n"
        )
    };
    host.write("/root/modules.yaml", recipe("blacklisted"));
    let (code, r) = apply(&host, "/root/modules.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    for m in ["br_netfilter", "cramfs", "nf_conntrack", "usb-storage"] {
        let changes = resource(&r, &format!("kernel_module:{m}"))["changes"].as_array().expect("changes").clone();
        assert!(changes.iter().all(|c| c["property"] != "running"), "a container's kernel is not its own: {changes:?}");
    }
    assert_eq!(
        host.sh_ok("grep -hv '^#' /etc/modules-load.d/br_netfilter.conf /etc/modules-load.d/nf_conntrack.conf /etc/modprobe.d/tend-nf_conntrack.conf /etc/modprobe.d/tend-cramfs.conf"),
        "br_netfilter\nnf_conntrack\noptions nf_conntrack hashsize=65536\nblacklist cramfs\ninstall cramfs /bin/false\n"
    );
    assert!(!host.root().join("etc/modules-load.d/cramfs.conf").exists());
    idempotent(&host, "/root/modules.yaml", "");

    // Drift: the blacklist removed by hand; dry-run reports it, the run puts it back.
    host.sh_ok("rm /etc/modprobe.d/tend-usb-storage.conf");
    let (code, dry) = apply(&host, "/root/modules.yaml", "--dry-run");
    assert_eq!((code, by_status(&dry, "changed")), (2, vec!["kernel_module:usb-storage"]));
    assert!(!host.root().join("etc/modprobe.d/tend-usb-storage.conf").exists(), "dry-run changed nothing");
    let (code, r) = apply(&host, "/root/modules.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(resource(&r, "kernel_module:usb-storage")["corrective"], true);
    assert!(host.read("/etc/modprobe.d/tend-usb-storage.conf").contains("blacklist usb-storage\n"));

    host.write("/root/modules.yaml", recipe("absent"));
    let (code, r) = apply(&host, "/root/modules.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(by_status(&r, "changed"), ["kernel_module:cramfs"]);
    assert!(!host.root().join("etc/modprobe.d/tend-cramfs.conf").exists());
    idempotent(&host, "/root/modules.yaml", "");
}

/// `directory` with `recurse`: owner, group and modes over a whole tree in
/// one walk, never following a symlink; symbolic modes; `create: false`.
#[test]
fn a_tree_gets_owner_group_and_modes_without_following_links() {
    let host = boot("tree", Network::Private);
    host.sh_ok(
        "mkdir -p /srv/data/a/b /srv/data/c && for f in /srv/data/x /srv/data/a/y /srv/data/a/b/z; do echo $f > $f; done \
         && chmod 0777 /srv/data/a/y && chmod 0700 /srv/data/c && ln -s /etc/shadow /srv/data/link && mkfifo /srv/data/fifo \
         && printf '#!/bin/sh\\n' > /usr/local/bin/tool && chmod 0600 /usr/local/bin/tool",
    );
    host.write(
        "/root/tree.yaml",
        r#"name: tree
resources:
  - group: www
  - user: www
    group: www
    system: true
    manage_home: false
    home: /srv/data
  - directory: /srv/data
    owner: www
    group: www
    mode: "0750"
    recurse: true
    file_mode: "u=rw,g=r,o="
  - file: /usr/local/bin/tool
    mode: "a+rx,go-w"
  - directory: /srv/not-here
    create: false
    mode: "0700"
"#,
    );
    let state =
        "find /srv/data -printf '%u:%g %m %y %p\\n' | sort -k4; stat -c '%U:%G %a' /etc/shadow /usr/local/bin/tool";
    let before = host.sh_ok(state);
    let (code, dry) = apply(&host, "/root/tree.yaml", "--dry-run");
    no_failures(&dry);
    assert_eq!(code, 2);
    let dir = resource(&dry, "directory:/srv/data");
    let recurse = dir["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["property"] == "recurse")
        .expect("recurse change");
    let from = recurse["from"].as_str().unwrap_or_default();
    assert!(from.starts_with("6 of 6 entries below differ: "), "{from}");
    assert_eq!(host.sh_ok(state), before, "dry-run changed something");

    let (code, r) = apply(&host, "/root/tree.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    let after = host.sh_ok("find /srv/data \\( -type d -o -type f \\) -printf '%u:%g %m %p\\n' | sort -k3");
    assert_eq!(
        after,
        "www:www 750 /srv/data\nwww:www 750 /srv/data/a\nwww:www 750 /srv/data/a/b\nwww:www 640 /srv/data/a/b/z\n\
         www:www 640 /srv/data/a/y\nwww:www 750 /srv/data/c\nwww:www 640 /srv/data/x\n"
    );
    assert_eq!(
        host.sh_ok("stat -c '%U:%G %a' /etc/shadow /usr/local/bin/tool"),
        "root:shadow 640\nroot:root 755\n",
        "the link was not followed"
    );
    assert_eq!(
        host.sh_ok("stat -c %U /srv/data/link /srv/data/fifo"),
        "root\nroot\n",
        "links and special files are left alone"
    );
    assert!(!host.root().join("srv/not-here").exists());
    idempotent(&host, "/root/tree.yaml", "");
}

/// A tiny HTTPS server on this machine's loopback for the download test
/// (the host shares this machine's network): fixed bodies by path, a path
/// that stalls after its headers, and a count of requests per path.
mod https {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    pub struct Server {
        pub port: u16,
        pub ca_pem: String,
        bodies: Map<Vec<u8>>,
        hits: Map<usize>,
    }

    impl Server {
        /// Plain HTTP (an apt repository: its Release signature is what apt trusts).
        pub fn start_plain() -> Server {
            Server::listen(String::new(), |mut tcp, bodies, hits| serve(&mut tcp, bodies, hits))
        }

        /// Accepts connections on loopback, each handled on its own thread.
        fn listen(
            ca_pem: String,
            handle: impl Fn(TcpStream, &Map<Vec<u8>>, &Map<usize>) + Send + Sync + 'static,
        ) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let bodies: Map<Vec<u8>> = Arc::default();
            let hits: Map<usize> = Arc::default();
            let (b, h, handle) = (bodies.clone(), hits.clone(), Arc::new(handle));
            std::thread::spawn(move || {
                for tcp in listener.incoming().flatten() {
                    let (b, h, handle) = (b.clone(), h.clone(), handle.clone());
                    std::thread::spawn(move || handle(tcp, &b, &h));
                }
            });
            Server { port, ca_pem, bodies, hits }
        }

        pub fn start() -> Server {
            let ca_key = rcgen::KeyPair::generate().expect("key");
            let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca_cert = ca.self_signed(&ca_key).expect("ca");
            let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key).expect("issuer");
            let key = rcgen::KeyPair::generate().expect("key");
            let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
                .expect("params")
                .signed_by(&key, &issuer)
                .expect("cert");
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .expect("config");
            let config = Arc::new(config);
            Server::listen(ca_cert.pem(), move |tcp, bodies, hits| {
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else { return };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                serve(&mut tls, bodies, hits);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            })
        }

        pub fn put(&self, path: &str, body: &[u8]) {
            self.bodies.lock().expect("bodies").insert(path.to_string(), body.to_vec());
        }

        pub fn hits(&self, path: &str) -> usize {
            self.hits.lock().expect("hits").get(path).copied().unwrap_or(0)
        }
    }

    type Map<T> = Arc<Mutex<HashMap<String, T>>>;

    /// One request: the body for its path, a stall for `/stall`, else 404.
    fn serve(stream: &mut (impl std::io::Read + Write), bodies: &Map<Vec<u8>>, hits: &Map<usize>) {
        let mut reader = BufReader::new(&mut *stream);
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        // apt asks a flat repository (`Suites: ./`) for `/./InRelease`.
        let path = line.split_whitespace().nth(1).unwrap_or("/").replace("/./", "/");
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).map_or(true, |n| n == 0) || header.trim().is_empty() {
                break;
            }
        }
        *hits.lock().expect("hits").entry(path.clone()).or_default() += 1;
        let body = bodies.lock().expect("bodies").get(&path).cloned();
        let _ = match body {
            _ if path == "/stall" => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nstart");
                let _ = stream.flush();
                std::thread::sleep(std::time::Duration::from_secs(20));
                Ok(())
            }
            Some(body) => stream
                .write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                        .as_bytes(),
                )
                .and_then(|_| stream.write_all(&body)),
            None => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        };
        let _ = stream.flush();
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// `download` over HTTPS on loopback: verified by checksum (given, or from a
/// checksum list), never fetched again once it matches, fetched again when
/// the checksum changes; a mismatch and a stalled server fail and leave the
/// file as it was.
#[test]
fn downloads_are_verified_and_never_fetched_twice() {
    let server = https::Server::start();
    let v1: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let v2: Vec<u8> = (0..150_000u32).map(|i| (i % 241) as u8).collect();
    server.put("/tool.bin", &v1);
    server.put("/SHA256SUMS", format!("{}  other.bin\n{}  tool.bin\n", sha256_hex(&v2), sha256_hex(&v1)).as_bytes());
    let host = boot("download", Network::Shared);
    host.write("/root/ca.pem", &server.ca_pem);
    let port = server.port;
    let recipe = |sha: &str, extra: &str| {
        format!(
            "name: downloads\nresources:\n  - directory: /opt/tools\n  - download: /opt/tools/tool.bin\n    \
             source: https://localhost:{port}/tool.bin\n    sha256: {sha}\n    ca: /root/ca.pem\n    mode: \"0755\"\n  \
             - download: /opt/tools/listed.bin\n    source: https://localhost:{port}/tool.bin\n    \
             sha256_url: https://localhost:{port}/SHA256SUMS\n    ca: /root/ca.pem\n{extra}"
        )
    };
    host.write("/root/dl.yaml", recipe(&sha256_hex(&v1), ""));
    let (code, r) = apply(&host, "/root/dl.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    let sums = host.sh_ok("cd /opt/tools && sha256sum tool.bin listed.bin && stat -c '%a %U' tool.bin listed.bin");
    assert_eq!(sums, format!("{0}  tool.bin\n{0}  listed.bin\n755 root\n644 root\n", sha256_hex(&v1)));
    assert_eq!(server.hits("/tool.bin"), 2);
    idempotent(&host, "/root/dl.yaml", "");
    assert_eq!(server.hits("/tool.bin"), 2, "a matching file is never fetched again");

    // Drift: the file edited by hand; dry-run fetches nothing, the run fetches it again.
    host.sh_ok("echo tampered >> /opt/tools/tool.bin");
    let (code, dry) = apply(&host, "/root/dl.yaml", "--dry-run");
    assert_eq!((code, by_status(&dry, "changed")), (2, vec!["download:/opt/tools/tool.bin"]));
    assert_eq!(server.hits("/tool.bin"), 2, "dry-run fetched nothing");
    let (code, r) = apply(&host, "/root/dl.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(resource(&r, "download:/opt/tools/tool.bin")["corrective"], true);
    assert_eq!(host.sh_ok("sha256sum /opt/tools/tool.bin").split_whitespace().next(), Some(sha256_hex(&v1).as_str()));

    // A new version: the changed checksum fetches it.
    // The list now names a third version that the server does not send.
    server.put("/tool.bin", &v2);
    server.put("/SHA256SUMS", format!("{}  tool.bin\n", sha256_hex(b"v3")).as_bytes());
    host.write("/root/dl.yaml", recipe(&sha256_hex(&v2), ""));
    let (code, r) = apply(&host, "/root/dl.yaml", "");
    assert_eq!(code, 6, "one fetched, one refused");
    let c = &resource(&r, "download:/opt/tools/tool.bin")["changes"][0];
    assert_eq!((c["property"].as_str(), c["to"].as_str()), (Some("sha256"), Some(sha256_hex(&v2).as_str())));
    assert_eq!(host.sh_ok("sha256sum /opt/tools/tool.bin").split_whitespace().next(), Some(sha256_hex(&v2).as_str()));
    // listed.bin wants v3 (from the list), the server sends v2: refused, the old file kept.
    let err = error_of(&r, "download:/opt/tools/listed.bin");
    assert!(err.contains("checksum mismatch") && err.contains("is unchanged"), "{err}");
    assert_eq!(host.sh_ok("sha256sum /opt/tools/listed.bin").split_whitespace().next(), Some(sha256_hex(&v1).as_str()));

    // A stalled server: the timeout fails the resource, nothing is left behind.
    host.write(
        "/root/stall.yaml",
        format!(
            "name: stall\nresources:\n  - download: /opt/tools/stalled.bin\n    source: https://localhost:{port}/stall\n    \
             sha256: {}\n    ca: /root/ca.pem\n    timeout: 2\n  - download: /opt/tools/untrusted.bin\n    \
             source: https://localhost:{port}/tool.bin\n    sha256: {}\n",
            sha256_hex(&v2),
            sha256_hex(&v2)
        ),
    );
    let (code, r) = apply(&host, "/root/stall.yaml", "");
    assert_eq!(code, 4);
    assert!(error_of(&r, "download:/opt/tools/stalled.bin").contains("timed out after 2 s"));
    let err = error_of(&r, "download:/opt/tools/untrusted.bin");
    assert!(err.to_lowercase().contains("certificate"), "without `ca` the test CA is not trusted: {err}");
    assert_eq!(host.sh_ok("ls -A /opt/tools"), "listed.bin\ntool.bin\n", "no temporary file left");

    // A download without a checksum is refused before anything runs.
    host.write(
        "/root/nosum.yaml",
        "name: nosum\nresources:\n  - download: /opt/x\n    source: https://example.org/x\n",
    );
    let out = host.sh("tend-agent apply /root/nosum.yaml --ec2 off");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nosum.yaml:3:") && err.contains("needs `sha256`"), "{err}");
}

/// `apt_repository`: a signed flat repository served over HTTP on loopback
/// (apt trusts its signed InRelease, not the transport), its deb822 file
/// and key written, the lists refreshed once before the package from it is
/// installed; `apt-get update` accepts it; a wrong fingerprint installs
/// nothing; removal takes both files away.
#[test]
fn an_apt_repository_with_its_key_serves_packages() {
    let repo = tend_e2e::apt_repo::build(&[("tend-hello", "1.0")]);
    let server = https::Server::start_plain();
    for (name, body) in &repo.files {
        server.put(&format!("/{name}"), body);
    }
    let host = boot("aptrepo", Network::Shared);
    // Only this repository: the test needs no Debian mirror.
    host.sh_ok("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources");
    let key: String = repo.key.lines().map(|l| format!("      {l}\n")).collect();
    let recipe = |fingerprint: &str, state: &str| {
        format!(
            "name: aptrepo\nresources:\n  - apt_repository: tend-test\n    state: {state}\n    \
             uris: [\"http://127.0.0.1:{}/\"]\n    suites: [\"./\"]\n    key_fingerprint: \"{fingerprint}\"\n    \
             key: |\n{key}",
            server.port
        )
    };
    let with_package = |fingerprint: &str| format!("{}  - package: tend-hello\n", recipe(fingerprint, "present"));

    // A wrong fingerprint: nothing written, the package is not tried.
    host.write("/root/apt.yaml", with_package(&"0".repeat(40)));
    let (code, r) = apply(&host, "/root/apt.yaml", "");
    assert_eq!(code, 4, "{r}");
    let err = error_of(&r, "apt_repository:tend-test");
    assert!(err.contains("not the trusted") && err.contains(&repo.fingerprint), "{err}");
    assert!(!host.root().join("etc/apt/sources.list.d/tend-test.sources").exists());
    assert!(!host.root().join("etc/apt/keyrings/tend-test.asc").exists());

    host.write("/root/apt.yaml", with_package(&repo.fingerprint));
    let (dry, r) = apply(&host, "/root/apt.yaml", "--dry-run");
    assert_eq!(dry, 2, "{r}");
    assert!(!host.root().join("etc/apt/sources.list.d/tend-test.sources").exists(), "dry-run wrote nothing");
    let (code, r) = apply(&host, "/root/apt.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    assert_eq!(by_status(&r, "changed"), ["apt_repository:tend-test", "package:tend-hello"]);
    let sources = host.read("/etc/apt/sources.list.d/tend-test.sources");
    assert!(sources.contains("Signed-By: /etc/apt/keyrings/tend-test.asc\n"), "{sources}");
    assert!(host.read("/etc/apt/keyrings/tend-test.asc").starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert_eq!(host.sh_ok("dpkg-query -W -f '${Version}' tend-hello"), "1.0");
    assert_eq!(host.read("/usr/share/tend-hello/version"), "1.0\n");
    let update = host.sh("apt-get update 2>&1");
    let text = String::from_utf8_lossy(&update.stdout);
    assert!(update.status.success() && !text.contains("W:") && !text.contains("E:"), "{text}");
    idempotent(&host, "/root/apt.yaml", "");

    // Drift: the key edited away is put back, reported as corrective.
    host.write("/etc/apt/keyrings/tend-test.asc", "junk\n");
    let (code, r) = apply(&host, "/root/apt.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(resource(&r, "apt_repository:tend-test")["corrective"], true, "{r}");
    assert!(host.read("/etc/apt/keyrings/tend-test.asc").starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));

    host.write("/root/apt.yaml", recipe(&repo.fingerprint, "absent"));
    assert_eq!(apply(&host, "/root/apt.yaml", "").0, 2);
    assert!(!host.root().join("etc/apt/sources.list.d/tend-test.sources").exists());
    assert!(!host.root().join("etc/apt/keyrings/tend-test.asc").exists());
    idempotent(&host, "/root/apt.yaml", "");
}

/// Package versions the way apt orders them, on a booted host against a
/// signed repository on loopback that offers tend-hello 1.0, 1.5 and 2.0
/// and tend-multi for amd64 and i386: a glob pin, `latest`, a candidate
/// older than the installed version (an apt pin below a local build) that
/// is left alone, and architecture-qualified names matched as such.
#[test]
fn package_versions_follow_apt_ordering_globs_and_architectures() {
    let repo = tend_e2e::apt_repo::build_for(&[
        ("tend-hello", "1.0", "all"),
        ("tend-hello", "1.5", "all"),
        ("tend-hello", "2.0", "all"),
        ("tend-multi", "1.0", "amd64"),
        ("tend-multi", "1.0", "i386"),
    ]);
    let local = tend_e2e::apt_repo::build(&[("tend-hello", "3.0")]);
    let server = https::Server::start_plain();
    for (name, body) in &repo.files {
        server.put(&format!("/{name}"), body);
    }
    let host = boot("pkgver", Network::Shared);
    host.sh_ok("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources && dpkg --add-architecture i386");
    let key: String = repo.key.lines().map(|l| format!("      {l}\n")).collect();
    let recipe = |packages: &str| {
        format!(
            "name: pkgver\nresources:\n  - apt_repository: tend-test\n    uris: [\"http://127.0.0.1:{}/\"]\n    \
             suites: [\"./\"]\n    key_fingerprint: \"{}\"\n    key: |\n{key}{packages}",
            server.port, repo.fingerprint
        )
    };
    let version = |name: &str| host.sh_ok(&format!("dpkg-query -W -f '${{Version}}' {name} 2>/dev/null; true"));

    // A glob pin: the newest version that matches.
    host.write("/root/pkg.yaml", recipe("  - package: tend-hello\n    version: \"1.*\"\n"));
    let (code, r) = apply(&host, "/root/pkg.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    assert_eq!(version("tend-hello"), "1.5");
    idempotent(&host, "/root/pkg.yaml", "");

    // latest: 2.0.
    host.write("/root/pkg.yaml", recipe("  - package: tend-hello\n    state: latest\n"));
    let (code, r) = apply(&host, "/root/pkg.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    assert_eq!(resource(&r, "package:tend-hello")["changes"][0]["to"], "2.0");
    assert_eq!(version("tend-hello"), "2.0");
    idempotent(&host, "/root/pkg.yaml", "");

    // A local build (3.0) above an apt pin that makes 2.0 the candidate:
    // the candidate is older, so `latest` leaves 3.0 alone.
    let deb = local.files.iter().find(|(n, _)| n.ends_with(".deb")).expect("the 3.0 package");
    host.write("/root/tend-hello_3.0_all.deb", &deb.1);
    host.sh_ok("dpkg -i /root/tend-hello_3.0_all.deb >/dev/null");
    host.write("/etc/apt/preferences.d/tend-hello", "Package: tend-hello\nPin: version 2.0\nPin-Priority: 1001\n");
    assert!(host.sh_ok("apt-cache policy tend-hello").contains("Candidate: 2.0"));
    idempotent(&host, "/root/pkg.yaml", "");
    assert_eq!(version("tend-hello"), "3.0", "not downgraded");
    host.sh_ok("rm /etc/apt/preferences.d/tend-hello");

    // Architectures: `tend-multi:i386` is that instance only; the bare name
    // is the native one, which the i386 instance does not stand for.
    host.write("/root/pkg.yaml", recipe("  - package: tend-multi:i386\n"));
    let (code, r) = apply(&host, "/root/pkg.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    assert_eq!(host.sh_ok("dpkg-query -W -f '${Architecture} ' tend-multi").trim(), "i386");
    idempotent(&host, "/root/pkg.yaml", "");
    host.write("/root/pkg.yaml", recipe("  - package: tend-multi\n"));
    let (code, r) = apply(&host, "/root/pkg.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2, "the native instance is missing");
    assert_eq!(version("tend-multi:amd64"), "1.0");
    assert_eq!(version("tend-multi:i386"), "1.0");
    idempotent(&host, "/root/pkg.yaml", "");
}

/// `mount`: the fstab line and the live mount (a tmpfs: the one filesystem a
/// container can mount without a block device), remounted when its options
/// change, unmounted, removed; a missing device fails before fstab changes.
#[test]
fn mounts_follow_fstab_and_remount_on_change() {
    let host = boot("mount", Network::Private);
    let recipe = |state: &str, size: &str| {
        format!(
            "name: mounts\nresources:\n  - directory: /srv/cache\n  - mount: /srv/cache\n    device: tmpfs\n    \
             fstype: tmpfs\n    options: size={size},mode=0750\n    state: {state}\n"
        )
    };
    let live =
        "findmnt -n -o FSTYPE,OPTIONS /srv/cache | tr ',' '\\n' | grep -E '^(tmpfs|size|mode)' | tr '\\n' ' '; true";
    host.write("/root/mount.yaml", recipe("mounted", "16m"));
    let (code, r) = apply(&host, "/root/mount.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    assert_eq!(host.sh_ok(live).split_whitespace().collect::<Vec<_>>(), ["tmpfs", "rw", "size=16384k", "mode=750"]);
    assert!(host.read("/etc/fstab").ends_with("tmpfs\t/srv/cache\ttmpfs\tsize=16m,mode=0750\t0\t0\n"));
    idempotent(&host, "/root/mount.yaml", "");

    // Drift: unmounted by hand; dry-run reports it, the run mounts it again.
    host.sh_ok("umount /srv/cache");
    let (code, dry) = apply(&host, "/root/mount.yaml", "--dry-run");
    assert_eq!((code, by_status(&dry, "changed")), (2, vec!["mount:/srv/cache"]));
    assert!(host.sh("findmnt /srv/cache").stdout.is_empty(), "dry-run changed nothing");
    let (code, r) = apply(&host, "/root/mount.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(resource(&r, "mount:/srv/cache")["corrective"], true);
    assert!(host.sh_ok(live).contains("size=16384k"), "mounted again");

    host.write("/root/mount.yaml", recipe("mounted", "32m"));
    let (code, r) = apply(&host, "/root/mount.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    let props: Vec<&str> = resource(&r, "mount:/srv/cache")["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["property"].as_str())
        .collect();
    assert_eq!(props, ["/etc/fstab content", "remount"]);
    assert!(host.sh_ok(live).contains("size=32768k"), "remounted");
    idempotent(&host, "/root/mount.yaml", "");

    host.write("/root/mount.yaml", recipe("unmounted", "32m"));
    assert_eq!(apply(&host, "/root/mount.yaml", "").0, 2);
    assert!(host.sh("findmnt /srv/cache").stdout.is_empty(), "unmounted");
    assert!(host.read("/etc/fstab").contains("/srv/cache"), "the line stays");
    idempotent(&host, "/root/mount.yaml", "");
    host.write("/root/mount.yaml", recipe("absent", "32m"));
    host.sh_ok("mount /srv/cache");
    assert_eq!(apply(&host, "/root/mount.yaml", "").0, 2);
    assert!(host.sh("findmnt /srv/cache").stdout.is_empty() && !host.read("/etc/fstab").contains("/srv/cache"));

    // A device that does not exist: refused before fstab changes.
    let fstab = host.read("/etc/fstab");
    host.write(
        "/root/nodev.yaml",
        "name: nodev\nresources:\n  - mount: /mnt\n    device: /dev/disk/by-uuid/0000-none\n    fstype: ext4\n",
    );
    let (code, r) = apply(&host, "/root/nodev.yaml", "");
    assert_eq!(code, 4);
    assert!(error_of(&r, "mount:/mnt").contains("does not exist"));
    assert_eq!(host.read("/etc/fstab"), fstab);
}

/// Builds the archives of the archive test in `dir` with Python's tarfile
/// and zipfile (and the zstd tool): `app.tar.gz`, `.tar.xz`, `.tar.zst` and
/// `.zip` holding the same `app-1.0/` tree (an executable, a config file, a
/// library, a symbolic link to it, a hard link in the tars), and two hostile
/// tarballs: one with a `../` entry, one with a symbolic link to `/etc`
/// followed by a file written through it.
const MAKE_ARCHIVES: &str = r##"
import io, os, sys, tarfile, zipfile, subprocess
d = sys.argv[1]
files = [("app-1.0/bin/app", b"#!/bin/sh\necho app\n", 0o755),
         ("app-1.0/etc/app.conf", b"port = 8080\n", 0o644),
         ("app-1.0/lib/libx.so.1", bytes(range(256)) * 512, 0o644)]
def tar(name, mode, extra=()):
    with tarfile.open(os.path.join(d, name), mode, format=tarfile.GNU_FORMAT) as t:
        for dn in ("app-1.0", "app-1.0/bin", "app-1.0/etc", "app-1.0/lib"):
            i = tarfile.TarInfo(dn); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
        for n, data, m in files:
            i = tarfile.TarInfo(n); i.size = len(data); i.mode = m; i.mtime = 1700000000; t.addfile(i, io.BytesIO(data))
        i = tarfile.TarInfo("app-1.0/lib/libx.so"); i.type = tarfile.SYMTYPE; i.linkname = "libx.so.1"; t.addfile(i)
        i = tarfile.TarInfo("app-1.0/bin/app-link"); i.type = tarfile.LNKTYPE; i.linkname = "app-1.0/bin/app"; t.addfile(i)
        for i, data in extra:
            t.addfile(i, io.BytesIO(data) if data else None)
tar("app.tar.gz", "w:gz"); tar("app.tar.xz", "w:xz"); tar("app.tar", "w")
subprocess.run(["zstd", "-q", "-f", os.path.join(d, "app.tar"), "-o", os.path.join(d, "app.tar.zst")], check=True)
with zipfile.ZipFile(os.path.join(d, "app.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for n, data, m in files:
        i = zipfile.ZipInfo(n); i.external_attr = (0o100000 | m) << 16; i.compress_type = zipfile.ZIP_DEFLATED; z.writestr(i, data)
    i = zipfile.ZipInfo("app-1.0/lib/libx.so"); i.external_attr = (0o120777) << 16; z.writestr(i, "libx.so.1")
def evil(name, entries):
    with tarfile.open(os.path.join(d, name), "w:gz") as t:
        for i, data in entries:
            t.addfile(i, io.BytesIO(data) if data else None)
ok = tarfile.TarInfo("fine.txt"); ok.size = 3
up = tarfile.TarInfo("../escaped.txt"); up.size = 3
evil("dotdot.tar.gz", [(ok, b"ok\n"), (up, b"no\n")])
ln = tarfile.TarInfo("etc"); ln.type = tarfile.SYMTYPE; ln.linkname = "/etc"
through = tarfile.TarInfo("etc/evil.conf"); through.size = 3
evil("abslink.tar.gz", [(ok, b"ok\n"), (ln, None), (through, b"no\n")])
"##;

/// `archive`: the same tree from tar.gz, tar.xz, tar.zst and zip, stripped
/// of its top directory, owned as asked; a second run reads the archive
/// and changes nothing; drift below the destination is repaired as
/// corrective; `creates` skips the archive; a checksum mismatch and two
/// hostile tarballs (`../`, a link to `/etc`) are refused with nothing
/// extracted.
#[test]
fn archives_are_extracted_safely_and_drift_is_repaired() {
    let host = boot("archive", Network::Private);
    let out = |script: &str| host.sh_ok(script).trim().to_string();
    let dir = host.root().join("root/arch");
    std::fs::create_dir_all(&dir).expect("archive dir");
    let made = std::process::Command::new("python3").arg("-c").arg(MAKE_ARCHIVES).arg(&dir).output().expect("python3");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let gz_sha = sha256_hex(&std::fs::read(dir.join("app.tar.gz")).expect("read"));
    let mut recipe = String::from("name: archives\nresources:\n  - group: app\n  - user: app\n    group: app\n");
    for (ext, dest) in [("tar.gz", "gz"), ("tar.xz", "xz"), ("tar.zst", "zst"), ("zip", "zip")] {
        let sha = if ext == "tar.gz" { format!("    sha256: {gz_sha}\n") } else { String::new() };
        let owner = if ext == "tar.xz" { "    owner: app\n    group: app\n" } else { "" };
        recipe.push_str(&format!(
            "  - directory: /opt/{dest}\n  - archive: /opt/{dest}\n    source: /root/arch/app.{ext}\n    \
             strip_components: 1\n{sha}{owner}"
        ));
    }
    host.write("/root/archive.yaml", &recipe);
    let (dry, r) = apply(&host, "/root/archive.yaml", "--dry-run");
    assert_eq!(dry, 2, "{r}");
    assert!(!host.root().join("opt/gz").exists(), "dry-run extracted nothing");
    let (code, r) = apply(&host, "/root/archive.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    for dest in ["gz", "xz", "zst", "zip"] {
        let sums = out(&format!("cd /opt/{dest} && sha256sum bin/app etc/app.conf lib/libx.so.1 | cut -c1-12"));
        assert_eq!(sums.lines().count(), 3, "{dest}: {sums}");
        assert_eq!(out(&format!("readlink /opt/{dest}/lib/libx.so")), "libx.so.1", "{dest}");
        assert_eq!(out(&format!("stat -c %a /opt/{dest}/bin/app /opt/{dest}/etc/app.conf")), "755\n644", "{dest}");
        assert_eq!(out(&format!("/opt/{dest}/bin/app")), "app", "{dest}");
    }
    assert_eq!(out("stat -c %i /opt/gz/bin/app /opt/gz/bin/app-link | uniq | wc -l"), "1", "a hard link");
    assert_eq!(out("stat -c %U:%G /opt/xz/bin/app /opt/xz/lib /opt/xz/lib/libx.so"), "app:app\napp:app\napp:app");
    assert_eq!(out("stat -c %U /opt/gz/bin/app"), "root");
    assert!(host.sh("ls /opt/gz/app-1.0").stdout.is_empty(), "stripped");
    idempotent(&host, "/root/archive.yaml", "");

    // Drift below the destination: reported (dry-run changes nothing), then repaired.
    let inode = out("stat -c %i /opt/gz/lib/libx.so.1");
    out("echo 'port = 1' > /opt/zst/etc/app.conf && chmod 600 /opt/zst/bin/app && rm /opt/zip/lib/libx.so");
    let (dry, r) = apply(&host, "/root/archive.yaml", "--dry-run");
    assert_eq!(dry, 2);
    let change = &resource(&r, "archive:/opt/zst")["changes"][0];
    assert_eq!(change["from"], "2 of 8 entries differ: bin/app, etc/app.conf", "{change}");
    assert_eq!(out("cat /opt/zst/etc/app.conf"), "port = 1", "dry-run wrote nothing");
    let (code, r) = apply(&host, "/root/archive.yaml", "");
    assert_eq!(code, 2);
    assert_eq!(by_status(&r, "changed"), ["archive:/opt/zip", "archive:/opt/zst"]);
    assert_eq!(resource(&r, "archive:/opt/zst")["corrective"], true);
    assert_eq!(out("cat /opt/zst/etc/app.conf; stat -c %a /opt/zst/bin/app"), "port = 8080\n755");
    assert_eq!(out("readlink /opt/zip/lib/libx.so"), "libx.so.1");
    assert_eq!(out("stat -c %i /opt/gz/lib/libx.so.1"), inode, "an unchanged file keeps its inode");
    idempotent(&host, "/root/archive.yaml", "");

    // `creates`: present, so the archive is not even read.
    host.write(
        "/root/creates.yaml",
        "name: creates\nresources:\n  - directory: /opt/c\n  - archive: /opt/c\n    source: /root/arch/app.tar.gz\n    \
         creates: /opt/c/bin/app\n    strip_components: 1\n",
    );
    assert_eq!(apply(&host, "/root/creates.yaml", "").0, 2);
    out("rm /opt/c/etc/app.conf");
    idempotent(&host, "/root/creates.yaml", "");
    assert!(!host.root().join("opt/c/etc/app.conf").exists(), "creates: not looked at again");

    // Refused, with nothing extracted: a wrong checksum, `../`, a link to /etc.
    let bad = |source: &str, sha: &str| {
        format!("name: bad\nresources:\n  - directory: /opt/bad\n  - archive: /opt/bad\n    source: {source}\n{sha}")
    };
    for (source, sha, expect) in [
        ("/root/arch/app.tar.gz", format!("    sha256: {}\n", "0".repeat(64)), "checksum mismatch"),
        ("/root/arch/dotdot.tar.gz", String::new(), "entry \"../escaped.txt\" leaves the destination"),
        ("/root/arch/abslink.tar.gz", String::new(), "entry \"etc\" is a symbolic link to the absolute path \"/etc\""),
    ] {
        host.write("/root/bad.yaml", bad(source, &sha));
        let (code, r) = apply(&host, "/root/bad.yaml", "");
        assert_eq!(code & 4, 4, "{r}");
        let err = error_of(&r, "archive:/opt/bad");
        assert!(err.contains(expect) && err.contains("nothing was extracted"), "{err}");
        assert_eq!(out("ls -A /opt/bad | wc -l"), "0", "{source}: nothing extracted");
    }
    assert!(!host.root().join("opt/escaped.txt").exists() && !host.root().join("etc/evil.conf").exists());
}

/// `yum_repository` on a Debian host: the `.repo` file is what can be
/// tested here (there is no dnf host to boot; dnf's metadata refresh after
/// a change is tested against a recorded dnf in the agent's unit tests).
#[test]
fn a_yum_repository_file_is_written_whole() {
    let host = boot("yumrepo", Network::Private);
    let recipe = |state: &str, priority: u32| {
        format!(
            "name: yum\nresources:\n  - directory: /etc/yum.repos.d\n  - yum_repository: example\n    state: {state}\n    \
             description: Example packages\n    baseurl: [\"https://dl.example.org/el/$releasever/$basearch/\"]\n    \
             gpgkey: [file:///etc/pki/rpm-gpg/RPM-GPG-KEY-example]\n    priority: {priority}\n    exclude: [\"kernel*\"]\n"
        )
    };
    host.write("/root/yum.yaml", recipe("present", 10));
    let (code, r) = apply(&host, "/root/yum.yaml", "");
    no_failures(&r);
    assert_eq!(code, 2);
    assert_eq!(
        host.read("/etc/yum.repos.d/example.repo"),
        "# Managed by tend (yum_repository:example).\n[example]\nname=Example packages\n\
         baseurl=https://dl.example.org/el/$releasever/$basearch/\nenabled=1\ngpgcheck=1\n\
         gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-example\npriority=10\nexclude=kernel*\n"
    );
    assert_eq!(host.sh_ok("stat -c %a:%U /etc/yum.repos.d/example.repo").trim(), "644:root");
    idempotent(&host, "/root/yum.yaml", "");
    host.sh_ok("sed -i 's/gpgcheck=1/gpgcheck=0/' /etc/yum.repos.d/example.repo");
    host.write("/root/yum.yaml", recipe("present", 20));
    let (dry, r) = apply(&host, "/root/yum.yaml", "--dry-run");
    assert_eq!(dry, 2);
    let diff = resource(&r, "yum_repository:example")["changes"][0]["diff"].as_str().unwrap_or_default().to_string();
    assert!(diff.contains("-gpgcheck=0\n+gpgcheck=1\n") && diff.contains("+priority=20\n"), "{diff}");
    assert_eq!(apply(&host, "/root/yum.yaml", "").0, 2);
    assert!(host.read("/etc/yum.repos.d/example.repo").contains("gpgcheck=1\ngpgkey="));
    idempotent(&host, "/root/yum.yaml", "");
    host.write("/root/yum.yaml", recipe("absent", 20));
    assert_eq!(apply(&host, "/root/yum.yaml", "").0, 2);
    assert!(!host.root().join("etc/yum.repos.d/example.repo").exists());
    idempotent(&host, "/root/yum.yaml", "");
}
