//! Benchmark: a no-op converge of 50 users, 50 groups, 20 cron jobs, 20
//! installed packages and 5 services on a booted Debian 12 host, and the
//! same manifest applied by Puppet 7 (Debian's `puppet-agent`) on the same
//! host, in the same run.
//!
//! Run: `cargo bench -p tend-e2e --bench system_noop` (root; needs the
//! network for apt inside the host). Set `TEND_BENCH_RUNS` (default 10) and
//! `TEND_BENCH_PUPPET=0` to skip Puppet. Prints medians and the ratio.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tend_e2e::{BootOptions, Host, Network};

const PACKAGES: &[&str] = &[
    "tree",
    "less",
    "nano",
    "vim-tiny",
    "curl",
    "wget",
    "jq",
    "file",
    "lsof",
    "strace",
    "rsync",
    "zip",
    "unzip",
    "bzip2",
    "psmisc",
    "netcat-openbsd",
    "bind9-dnsutils",
    "htop",
    "ncdu",
    "patch",
];

fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    // Prefer the release build: that is what ships.
    let release = dir.parent().map(|t| t.join("release/tend-agent"));
    match release.filter(|p| p.exists()) {
        Some(p) => p,
        None => dir.join("tend-agent"),
    }
}

fn tend_recipe() -> String {
    let mut y = String::from("name: bench\nresources:\n");
    for i in 0..50 {
        y.push_str(&format!("  - group: bgroup{i:02}\n    gid: {}\n", 3000 + i));
    }
    for i in 0..50 {
        y.push_str(&format!(
            "  - user: buser{i:02}\n    uid: {}\n    group: bgroup{i:02}\n    groups: [bgroup{:02}]\n    home: /home/buser{i:02}\n    shell: /bin/bash\n    comment: Bench user {i}\n",
            3000 + i,
            (i + 1) % 50
        ));
    }
    for i in 0..20 {
        y.push_str(&format!(
            "  - cron: bench-{i:02}\n    schedule: \"{} * * * *\"\n    user: root\n    command: /bin/true bench {i}\n",
            i * 3
        ));
    }
    for p in PACKAGES {
        y.push_str(&format!("  - package: {p}\n"));
    }
    for i in 0..5 {
        y.push_str(&format!(
            "  - systemd_unit: bench{i}.service\n    content: |\n      [Service]\n      ExecStart=/bin/sleep infinity\n      [Install]\n      WantedBy=multi-user.target\n  - service: bench{i}\n    enabled: true\n    state: running\n"
        ));
    }
    y
}

fn puppet_manifest() -> String {
    let mut m = String::new();
    for i in 0..50 {
        m.push_str(&format!("group {{ 'bgroup{i:02}': ensure => present, gid => {} }}\n", 3000 + i));
    }
    for i in 0..50 {
        m.push_str(&format!(
            "user {{ 'buser{i:02}': ensure => present, uid => {}, gid => 'bgroup{i:02}', groups => ['bgroup{:02}'], home => '/home/buser{i:02}', managehome => true, shell => '/bin/bash', comment => 'Bench user {i}' }}\n",
            3000 + i,
            (i + 1) % 50
        ));
    }
    for i in 0..20 {
        m.push_str(&format!(
            "file {{ '/etc/cron.d/bench-{i:02}': ensure => file, owner => 'root', group => 'root', mode => '0644', content => \"# Managed by tend (cron:bench-{i:02}). Local changes are overwritten.\\n{} * * * * root /bin/true bench {i}\\n\" }}\n",
            i * 3
        ));
    }
    for p in PACKAGES {
        m.push_str(&format!("package {{ '{p}': ensure => installed }}\n"));
    }
    for i in 0..5 {
        m.push_str(&format!(
            "file {{ '/etc/systemd/system/bench{i}.service': ensure => file, mode => '0644', content => \"[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n\" }}\n\
             service {{ 'bench{i}': ensure => running, enable => true, require => File['/etc/systemd/system/bench{i}.service'] }}\n"
        ));
    }
    m
}

/// Runs `cmd` inside the host `runs` times; returns the wall times in ms.
fn time_inside(host: &Host, cmd: &str, runs: usize, expect_ok: &dyn Fn(i32) -> bool) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..runs {
        let script =
            format!("s=$(date +%s%N); {cmd} >/dev/null 2>&1; rc=$?; e=$(date +%s%N); echo $rc $(( (e - s) / 1000 ))");
        let line = host.sh_ok(&script);
        let mut it = line.split_whitespace();
        let rc: i32 = it.next().and_then(|x| x.parse().ok()).expect("rc");
        let us: f64 = it.next().and_then(|x| x.parse().ok()).expect("time");
        assert!(expect_ok(rc), "`{cmd}` exited {rc}");
        out.push(us / 1000.0);
    }
    out.sort_by(f64::total_cmp);
    out
}

fn median(v: &[f64]) -> f64 {
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("TEND_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let agent = agent_bin();
    println!("agent: {}", agent.display());
    let host = Host::boot(
        BootOptions::new("bench-system").network(Network::Shared).bind_ro(&agent, "/usr/local/sbin/tend-agent"),
    );
    host.write("/root/bench.yaml", tend_recipe());
    let first = host.sh("tend-agent apply /root/bench.yaml --ec2 off");
    assert_eq!(first.status.code(), Some(2), "first converge: {}", String::from_utf8_lossy(&first.stdout));
    let noop = host.sh("tend-agent apply /root/bench.yaml --ec2 off");
    assert_eq!(noop.status.code(), Some(0), "not idempotent: {}", String::from_utf8_lossy(&noop.stdout));
    let tend = time_inside(&host, "tend-agent apply /root/bench.yaml --ec2 off", runs, &|rc| rc == 0);
    println!(
        "tend-agent no-op, 50 users + 50 groups + 20 cron + 20 packages + 5 services: median {:.1} ms, min {:.1} ms, max {:.1} ms ({runs} runs)",
        median(&tend),
        tend[0],
        tend[tend.len() - 1]
    );

    if std::env::var("TEND_BENCH_PUPPET").as_deref() == Ok("0") {
        return;
    }
    host.sh_ok("DEBIAN_FRONTEND=noninteractive apt-get install -y -q puppet-agent >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q puppet >/dev/null");
    host.write("/root/bench.pp", puppet_manifest());
    // Puppet converges its own way once (its cron files match tend's).
    host.sh("puppet apply --detailed-exitcodes /root/bench.pp >/dev/null 2>&1");
    let pp_runs = runs.clamp(1, 5);
    let puppet = time_inside(&host, "puppet apply --detailed-exitcodes /root/bench.pp", pp_runs, &|rc| rc == 0);
    println!(
        "puppet apply no-op, same manifest: median {:.1} ms, min {:.1} ms ({pp_runs} runs)",
        median(&puppet),
        puppet[0]
    );
    println!("ratio: Puppet takes {:.1}x tend's time", median(&puppet) / median(&tend));
    std::thread::sleep(Duration::from_millis(10));
}
