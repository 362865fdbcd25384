//! The packages on real booted Debian 12 hosts: `apt-get install` of the
//! .deb, registration with a tend-server on this machine's loopback (the
//! hosts share its network), a converge, an upgrade, remove and purge, the
//! one-line install.sh, and reset-identity. The packages come from
//! `bash packaging/build.sh` (`bash .ci/run` builds them first).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tend_e2e::{BootOptions, Host, Network};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// `target/packages` (this version) or `target/packages-old` (0.0.9).
fn packages(which: &str) -> PathBuf {
    let dir = repo().join("target").join(which);
    assert!(
        dir.join("MANIFEST").exists(),
        "{} has no packages: run `bash packaging/build.sh` and \
         `TEND_PACKAGE_VERSION=0.0.9 TEND_PACKAGES_DIR=target/packages-old bash packaging/build.sh` \
         (bash .ci/run does)",
        dir.display()
    );
    dir
}

fn release(bin: &str) -> PathBuf {
    repo().join("target/release").join(bin)
}

/// A tend-server (the release build) on this machine's loopback.
struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(packages_dir: Option<&Path>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(release("tend-server"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path().join("data"));
        if let Some(p) = packages_dir {
            cmd.arg("--packages-dir").arg(p);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("tend-server");
        let mut url = String::new();
        for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
            if let Some(u) = line.expect("read").strip_prefix("tend-server listening on ") {
                url = u.trim().to_string();
                break;
            }
        }
        assert!(!url.is_empty(), "the server did not start");
        Server { child, url, dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("data/ca.pem")
    }

    fn tend(&self, args: &[&str]) -> Output {
        let token = std::fs::read_to_string(self.dir.path().join("data/admin.token")).expect("token");
        Command::new(release("tend"))
            .args(["--server", &self.url, "--ca"])
            .arg(self.ca())
            .args(["--token", token.trim()])
            .args(args)
            .output()
            .expect("tend")
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.tend(&all);
        assert!(out.status.success(), "tend {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    fn activation(&self, tags: &str, limit: u32) -> (String, String) {
        let a = self.json(&["activation", "create", "--tags", tags, "--limit", &limit.to_string()]);
        (a["id"].as_str().expect("id").into(), a["code"].as_str().expect("code").into())
    }

    /// Pushes a recipe that writes /etc/tend-packaged.conf and assigns it to `tag:role=pkg`.
    fn assign_recipe(&self) {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path().join("packaged.yaml");
        std::fs::write(
            &r,
            "name: packaged\nresources:\n  - file: /etc/tend-packaged.conf\n    content: \"from the server\\n\"\n",
        )
        .expect("write");
        assert!(self.tend(&["recipe", "push", r.to_str().expect("p")]).status.success());
        assert!(self.tend(&["assign", "packaged", "--targets", "tag:role=pkg"]).status.success());
    }

    /// Waits until node `id` has a successful report; returns the node.
    fn wait_report(&self, id: &str) -> Value {
        let end = Instant::now() + Duration::from_secs(90);
        loop {
            let nodes = self.json(&["nodes", "list"]);
            if let Some(n) = nodes.as_array().and_then(|a| a.iter().find(|n| n["id"] == id))
                && n["last_run"]["failed"] == 0
                && n["last_run"]["status"].is_string()
            {
                return n.clone();
            }
            assert!(Instant::now() < end, "no report from {id}: {nodes}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn boot(name: &str, server: &Server) -> Host {
    Host::boot(
        BootOptions::new(name)
            .network(Network::Shared)
            // For OOMScoreAdjust=-900 (a container lacks it by default).
            .capability("CAP_SYS_RESOURCE")
            .bind_ro(packages("packages"), "/mnt/packages")
            .bind_ro(packages("packages-old"), "/mnt/packages-old")
            .bind_ro(server.ca(), "/mnt/ca.pem"),
    )
}

/// The .deb file of `package` in a packages directory (as the guest sees it).
fn deb(which: &str, package: &str) -> String {
    let dir = packages(which);
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).expect("MANIFEST");
    let file = manifest
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .find(|f| f.starts_with(&format!("{package}_")) && f.ends_with(".deb"))
        .unwrap_or_else(|| panic!("no {package} .deb in {}", dir.display()));
    format!("/mnt/{which}/{file}")
}

fn wait_for(host: &Host, what: &str, script: &str) {
    let end = Instant::now() + Duration::from_secs(60);
    while !host.sh(script).status.success() {
        assert!(Instant::now() < end, "timed out waiting for {what} (`{script}`)\n{}", journal(host));
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn journal(host: &Host) -> String {
    String::from_utf8_lossy(&host.sh("journalctl -u tend-agent --no-pager -n 40").stdout).into_owned()
}

const CONFIG: &str = "# written by the test\nsplay: 0s\ninterval: 1h\nec2: \"off\"\nreboot: false\n";

fn node_id(host: &Host) -> String {
    let who: Value = serde_json::from_str(&host.sh_ok("tend-agent whoami")).expect("whoami JSON");
    who["id"].as_str().expect("id").to_string()
}

#[test]
fn the_deb_installs_registers_converges_upgrades_and_purges() {
    let s = Server::start(None);
    s.assign_recipe();
    let host = boot("pkg-deb", &s);

    // The previous version first, so that the upgrade below is a real one.
    host.sh_ok(&format!("apt-get install -y -q {} >/dev/null", deb("packages-old", "tend-agent")));
    assert_eq!(host.sh_ok("systemctl is-enabled tend-agent").trim(), "enabled");
    // Not registered: the unit is enabled but stays inactive (ExecCondition).
    host.sh("systemctl start tend-agent");
    assert_eq!(host.sh("systemctl is-active tend-agent").status.code(), Some(3), "{}", journal(&host));
    assert_eq!(host.sh_ok("stat -c %a /var/lib/tend").trim(), "700");
    host.sh_ok(
        "test -f /usr/share/man/man1/tend-agent.1.gz && test -f /usr/share/bash-completion/completions/tend-agent",
    );
    host.sh_ok("grep -q '^#state_dir:' /etc/tend/agent.yaml");

    // Configure (a changed conffile), register, start.
    host.write("/etc/tend/agent.yaml", CONFIG);
    let (id, code) = s.activation("role=pkg", 1);
    host.sh_ok(&format!(
        "tend-agent register --server {} --ca /mnt/ca.pem --activation-id {id} --activation-code {code}",
        s.url
    ));
    host.sh_ok("systemctl start tend-agent");
    wait_for(&host, "the agent to be active (READY=1)", "systemctl is-active tend-agent");
    let node = node_id(&host);
    s.wait_report(&node);
    assert_eq!(host.read("/etc/tend-packaged.conf"), "from the server\n");

    // The agent resists the OOM killer; what it runs does not inherit that.
    // (Where the kernel refuses a negative value, as in some sandboxes, the
    // unit still asks for it; the child's 0 is then not a proof.)
    assert_eq!(host.sh_ok("systemctl show -p OOMScoreAdjust --value tend-agent").trim(), "-900");
    let own = host.sh_ok("cat /proc/$(systemctl show -p MainPID --value tend-agent)/oom_score_adj");
    if own.trim() != "-900" {
        eprintln!("note: oom_score_adj -900 could not be applied on this machine (the agent has {})", own.trim());
    }
    let out = s.tend(&["run", "--targets", &node, "--wait", "--output", "json", "--", "cat /proc/self/oom_score_adj"]);
    let out: Value = serde_json::from_slice(&out.stdout).expect("run JSON");
    assert_eq!(out["invocations"][0]["stdout"], "0\n", "{out}");

    // Upgrade: identity and configuration kept, the unit restarted, and a
    // run-command child still working is not killed (KillMode=process).
    let out = s.tend(&["run", "--targets", &node, "--output", "json", "--", "sleep 23; echo survived > /root/child"]);
    let cmd: Value = serde_json::from_slice(&out.stdout).expect("run JSON");
    let cmd = cmd["id"].as_str().expect("command id").to_string();
    wait_for(&host, "the command to start", "pgrep -f 'sleep 23'");
    let pid = host.sh_ok("systemctl show -p MainPID --value tend-agent");
    host.sh_ok(&format!("apt-get install -y -q {} >/dev/null", deb("packages", "tend-agent")));
    host.sh_ok("pgrep -f 'sleep 23'");
    assert!(host.sh_ok("dpkg-query -W -f '${Version}' tend-agent").starts_with("0.1.0"));
    wait_for(&host, "the upgraded agent to be active", "systemctl is-active tend-agent");
    assert_ne!(host.sh_ok("systemctl show -p MainPID --value tend-agent"), pid, "restarted");
    assert_eq!(host.read("/etc/tend/agent.yaml"), CONFIG, "the changed conffile is kept");
    assert_eq!(node_id(&host), node, "the same node");
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = s.json(&["command", "show", &cmd]);
        let reason = shown["invocations"][0]["reason"].as_str().unwrap_or_default().to_string();
        if reason.contains("still running") {
            break;
        }
        assert!(Instant::now() < end, "the new daemon reports the child: {shown}");
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_for(&host, "the child to finish its work", "test -f /root/child");

    // remove keeps the state; purge removes it.
    host.sh_ok("apt-get remove -y -q tend-agent >/dev/null");
    host.sh_ok("test -f /var/lib/tend/identity/node.json && ! test -e /usr/bin/tend-agent");
    host.sh_ok("apt-get purge -y -q tend-agent >/dev/null");
    host.sh_ok("! test -e /var/lib/tend && ! test -e /etc/tend/agent.yaml");
}

#[test]
fn install_sh_installs_registers_converges_and_a_second_run_changes_nothing() {
    let s = Server::start(Some(&packages("packages")));
    s.assign_recipe();
    let host = boot("pkg-install", &s);
    let (id, code) = s.activation("role=pkg", 1);
    let install = format!(
        "curl -fsS --cacert /mnt/ca.pem {}/install.sh | sh -s -- --activation-id {id} --activation-code {code}",
        s.url
    );
    let first = host.sh_ok(&install);
    wait_for(&host, "the agent to be active", "systemctl is-active tend-agent");
    let node = node_id(&host);
    s.wait_report(&node);
    assert_eq!(host.read("/etc/tend-packaged.conf"), "from the server\n");

    let installed = host.sh_ok("stat -c %Y /usr/bin/tend-agent");
    let second = host.sh_ok(&install);
    assert!(second.contains("nothing to do"), "first:\n{first}\nsecond:\n{second}");
    assert_eq!(host.sh_ok("stat -c %Y /usr/bin/tend-agent"), installed, "not reinstalled");
    assert_eq!(s.json(&["nodes", "list"]).as_array().map(Vec::len), Some(1), "not registered twice");
}

#[test]
fn reset_identity_then_a_restart_registers_a_new_node() {
    let s = Server::start(None);
    let host = boot("pkg-reset", &s);
    host.sh_ok(&format!("apt-get install -y -q {} >/dev/null", deb("packages", "tend-agent")));
    // An image's configuration: register with this activation at start when unregistered.
    let (id, code) = s.activation("role=pkg", 2);
    host.write(
        "/etc/tend/agent.yaml",
        format!(
            "{CONFIG}register:\n  server: {}\n  ca: /mnt/ca.pem\n  activation_id: {id}\n  activation_code: {code}\n",
            s.url
        ),
    );
    host.sh_ok("systemctl restart tend-agent");
    wait_for(&host, "the agent to register itself", "test -f /var/lib/tend/identity/node.json");
    let first = node_id(&host);
    // A registered daemon converges at once; as an image build would, let
    // that first run finish (it holds the run lock) before resetting.
    let end = Instant::now() + Duration::from_secs(60);
    while s.json(&["nodes", "list"]).as_array().is_none_or(|n| n.iter().all(|n| n["last_run"].is_null())) {
        assert!(Instant::now() < end, "the first run never reported\n{}", journal(&host));
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_for(&host, "the run lock to be free", "flock -n /var/lib/tend/run.lock true");
    host.sh_ok("tend-agent reset-identity");
    host.sh_ok("! test -e /var/lib/tend/identity");
    host.sh_ok("systemctl restart tend-agent");
    wait_for(&host, "the agent to register again", "test -f /var/lib/tend/identity/node.json");
    let second = node_id(&host);
    assert_ne!(first, second);
    let nodes = s.json(&["nodes", "list"]);
    assert_eq!(nodes.as_array().map(Vec::len), Some(2), "{nodes}");
}

/// The files of a package (`dpkg-deb -c` / `rpm -qpl`) and its scripts.
fn listing(program: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(program).args(args).arg(file).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?} {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn package_file(which: &str, prefix: &str, suffix: &str) -> PathBuf {
    let dir = packages(which);
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).expect("MANIFEST");
    let name = manifest
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .find(|f| f.starts_with(prefix) && f.ends_with(suffix))
        .unwrap_or_else(|| panic!("no {prefix}*{suffix} in {}", dir.display()));
    dir.join(name)
}

#[test]
fn the_rpms_have_the_same_content_and_their_scriptlets() {
    // There is no rpm-based host to boot here: the packages are checked with rpm itself.
    for (pkg, must) in [
        (
            "tend-agent-",
            &["/usr/bin/tend-agent", "/usr/lib/systemd/system/tend-agent.service", "/etc/tend/agent.yaml"][..],
        ),
        ("tend-server-", &["/usr/bin/tend-server", "/usr/lib/systemd/system/tend-server.service"][..]),
        ("tend-cli-", &["/usr/bin/tend", "/usr/share/man/man1/tend-run.1"][..]),
    ] {
        let rpm = package_file("packages", pkg, ".rpm");
        let files = listing("rpm", &["-qpl"], &rpm);
        for f in must {
            assert!(files.lines().any(|l| l.starts_with(f)), "{f} not in {}:\n{files}", rpm.display());
        }
    }
    let rpm = package_file("packages", "tend-agent-", ".rpm");
    let scripts = listing("rpm", &["-qp", "--scripts"], &rpm);
    // Bodies, not paths (cargo-generate-rpm uses a missing path as the text).
    assert!(scripts.contains("postinstall scriptlet") && scripts.contains("systemctl"), "{scripts}");
    assert!(!scripts.contains("packaging/rpm/"), "a scriptlet is a path, not a script:\n{scripts}");
    let conf = listing("rpm", &["-qpc"], &rpm);
    assert!(conf.contains("/etc/tend/agent.yaml"), "agent.yaml is a config file: {conf}");
}

#[test]
fn the_debs_declare_their_conffiles_and_dependencies() {
    let agent = package_file("packages", "tend-agent_", ".deb");
    let info = listing("dpkg-deb", &["-I"], &agent);
    assert!(info.contains("conffiles") && info.contains("postinst") && info.contains("postrm"), "{info}");
    let server = package_file("packages", "tend-server_", ".deb");
    let info = listing("dpkg-deb", &["-I"], &server);
    assert!(info.contains("tend-cli"), "tend-server depends on tend-cli:\n{info}");
    let files = listing("dpkg-deb", &["-c"], &server);
    assert!(!files.contains("./usr/bin/tend\n"), "the CLI ships in tend-cli only");
}
