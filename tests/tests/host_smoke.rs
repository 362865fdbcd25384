//! Smoke tests of the harness itself: a host boots, runs systemd, and is private and disposable.

use tend_e2e::{BootOptions, Host, Network};

#[test]
fn a_host_boots_runs_cron_and_is_removed_on_drop() {
    let host = Host::boot(BootOptions::new("smoke").network(Network::Private));
    let state = host.sh("systemctl is-system-running");
    let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
    assert!(state == "running" || state == "degraded", "system state: {state}");
    assert_eq!(host.sh_ok("systemctl is-active cron").trim(), "active");
    assert!(host.sh_ok("getent passwd root").starts_with("root:x:0:0:"));
    assert_eq!(host.sh_ok("hostname").trim(), host.name());

    host.write("/etc/tend-smoke/hello.txt", "hello from outside\n");
    assert_eq!(host.sh_ok("cat /etc/tend-smoke/hello.txt"), "hello from outside\n");
    // /tmp is the guest's own tmpfs: written and read from inside.
    host.write("/tmp/inside.txt", b"tmpfs\n");
    assert_eq!(host.sh_ok("cat /tmp/inside.txt"), "tmpfs\n");
    assert_eq!(host.read("/tmp/inside.txt"), "tmpfs\n");
    host.sh_ok("echo made-inside > /root/made-inside");
    assert_eq!(host.read("/root/made-inside"), "made-inside\n");

    let root = host.root().to_path_buf();
    assert!(root.join("etc/tend-smoke/hello.txt").is_file());
    drop(host);
    assert!(!root.exists(), "{} is still there after drop", root.display());
}

#[test]
fn two_hosts_are_isolated_from_each_other() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Host::boot(BootOptions::new("iso-a")));
        let b = s.spawn(|| Host::boot(BootOptions::new("iso-b")));
        (a.join().expect("boot host a"), b.join().expect("boot host b"))
    });
    assert_ne!(a.pid(), b.pid());
    a.sh_ok("useradd --create-home alice");
    assert!(a.sh_ok("getent passwd alice").starts_with("alice:"));
    let in_b = b.sh("getent passwd alice");
    assert!(!in_b.status.success(), "alice leaked into the other host: {in_b:?}");
    assert!(!b.root().join("home/alice").exists());
}
