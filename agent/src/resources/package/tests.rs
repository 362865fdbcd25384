//! Tests of the package type, through a fake runner that answers a script of
//! commands in order and records them. Nothing here runs a package manager.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::json;
use tend_model::resource::Kind;
use tend_model::{CompiledResource, Plan, ResourceId, Spec};

use super::apt::{Apt, DPKG_QUERY_FORMAT, parse_dpkg_query, parse_not_found, parse_policy};
use super::dnf::{self, Dnf, evr_cmp, parse_list_upgrades, parse_rpm_query, rpmvercmp};
use super::*;
use crate::resources::support::staging::Staging;
use crate::resources::{Accounts, Ctx, RunState, Runner, handler};
use crate::system::process::{Exit, Outcome};

// ---------------------------------------------------------------- recorded outputs

/// `dpkg-query -W -f '${Package}\t${Status}\t${Version}\n' bash coreutils nosuchpkg curl chrony`
/// on Debian 12 (exit 1; stderr below). chrony is known to dpkg but not installed.
const DPKG_QUERY: &str = "bash\tinstall ok installed\t5.2.15-2+b8\n\
chrony\tunknown ok not-installed\t\n\
coreutils\tinstall ok installed\t9.1-1\n\
curl\tinstall ok installed\t7.88.1-10+deb12u15\n";
const DPKG_QUERY_ERR: &str = "dpkg-query: no packages found matching nosuchpkg\n";

/// `apt-cache policy bash nosuchpkg curl chrony` on Debian 12 (exit 0): an
/// unknown package prints nothing.
const POLICY: &str = "bash:
  Installed: 5.2.15-2+b8
  Candidate: 5.2.15-2+b13
  Version table:
     5.2.15-2+b13 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
 *** 5.2.15-2+b8 100
        100 /var/lib/dpkg/status
curl:
  Installed: 7.88.1-10+deb12u15
  Candidate: 7.88.1-10+deb12u15
  Version table:
 *** 7.88.1-10+deb12u15 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
     7.88.1-10+deb12u5 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
chrony:
  Installed: (none)
  Candidate: 4.3-2+deb12u3
  Version table:
     4.3-2+deb12u3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
";

/// `apt-cache policy mail-transport-agent`: a virtual package.
const POLICY_VIRTUAL: &str = "mail-transport-agent:
  Installed: (none)
  Candidate: (none)
  Version table:
";

/// `apt-get -s install nosuchpkg curl=9.9 bash` on Debian 12 (exit 100).
const APT_NOT_FOUND_OUT: &str = "Reading package lists...
Building dependency tree...
Reading state information...
Package curl is not available, but is referred to by another package.
This may mean that the package is missing, has been obsoleted, or
is only available from another source

";
const APT_NOT_FOUND_ERR: &str = "E: Unable to locate package nosuchpkg\nE: Version '9.9' for 'curl' was not found\n";

/// `apt-get -s install mail-transport-agent` (exit 100), stderr.
const APT_NO_CANDIDATE_ERR: &str = "E: Package 'mail-transport-agent' has no installation candidate\n";

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dnf").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

// ---------------------------------------------------------------- fake runner

fn out(code: i32, stdout: &str, stderr: &str) -> Outcome {
    Outcome {
        exit: Exit::Code(code),
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.as_bytes().to_vec(),
        truncated: false,
        duration: Duration::ZERO,
    }
}

fn ok() -> Outcome {
    out(0, "", "")
}

/// A command run: its words joined by spaces, and its environment.
type Call = (String, Vec<(String, String)>);

/// Answers a script of commands, in order; any other command fails the test.
struct Fake {
    script: RefCell<VecDeque<(Vec<String>, Outcome)>>,
    calls: RefCell<Vec<Call>>,
}

impl Fake {
    /// Each command as its words separated by single spaces (no word of
    /// these commands contains a space).
    fn new(script: Vec<(&str, Outcome)>) -> Self {
        let script = script.into_iter().map(|(c, o)| (c.split(' ').map(str::to_string).collect(), o)).collect();
        Self { script: RefCell::new(script), calls: RefCell::new(Vec::new()) }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.borrow().iter().map(|(c, _)| c.clone()).collect()
    }

    fn env_of(&self, prefix: &str) -> Vec<(String, String)> {
        self.calls.borrow().iter().find(|(c, _)| c.starts_with(prefix)).map(|(_, e)| e.clone()).unwrap_or_default()
    }

    fn assert_done(&self) {
        let left: Vec<String> = self.script.borrow().iter().map(|(c, _)| c.join(" ")).collect();
        assert!(left.is_empty(), "commands not run: {left:#?}\nran: {:#?}", self.calls());
    }
}

impl Runner for Fake {
    fn run(&self, argv: &[&str], env: &[(&str, &str)], _timeout: Duration) -> crate::resources::Result<Outcome> {
        let cmd = argv.join(" ");
        self.calls.borrow_mut().push((cmd.clone(), env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()));
        let Some((want, o)) = self.script.borrow_mut().pop_front() else {
            panic!("unexpected command: {cmd}\nran: {:#?}", self.calls())
        };
        assert_eq!(argv, want.as_slice(), "ran: {:#?}", self.calls());
        Ok(o)
    }

    fn run_input(&self, argv: &[&str], _input: &[u8], _timeout: Duration) -> crate::resources::Result<Outcome> {
        panic!("package providers pass nothing on standard input: {}", argv.join(" "))
    }
}

// ---------------------------------------------------------------- plans and a mini engine

fn pkg(name: &str, props: &str) -> CompiledResource {
    res(Kind::Package, name, Spec::Package(serde_yaml::from_str(props).unwrap()))
}

fn file(path: &str) -> CompiledResource {
    res(Kind::File, path, Spec::File(Default::default()))
}

fn res(kind: Kind, name: &str, spec: Spec) -> CompiledResource {
    CompiledResource {
        instance: None,
        id: ResourceId::new(kind, name),
        spec,
        payload: None,
        requires: vec![],
        notifies: vec![],
        enabled: true,
        sensitive: false,
        desired_hash: 0,
        origin: PathBuf::new(),
    }
}

fn plan(resources: Vec<CompiledResource>, prereqs: Vec<Vec<usize>>) -> Plan {
    let n = resources.len();
    assert_eq!(prereqs.len(), n);
    Plan { resources, prereqs, notified_by: vec![vec![]; n], ..Default::default() }
}

fn debian() -> serde_json::Value {
    json!({"os": {"family": "debian", "id": "debian", "version_id": "12"}})
}

fn rocky() -> serde_json::Value {
    json!({"os": {"family": "redhat", "id": "rocky", "version_id": "9.4"}})
}

/// apt lists in a temporary directory: present and `age` old, or missing.
fn lists(age: Option<Duration>) -> (tempfile::TempDir, Apt) {
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    std::fs::create_dir(lists.join("partial")).unwrap();
    let pkgcache = dir.path().join("pkgcache.bin");
    if let Some(age) = age {
        std::fs::write(lists.join("deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"), "").unwrap();
        std::fs::write(&pkgcache, "").unwrap();
        let t = SystemTime::now() - age;
        std::fs::File::open(&lists).unwrap().set_modified(t).unwrap();
        std::fs::File::options().write(true).open(&pkgcache).unwrap().set_modified(t).unwrap();
    }
    (dir, Apt::new(lists, pkgcache, apt::LISTS_MAX_AGE))
}

fn fresh() -> (tempfile::TempDir, Apt) {
    lists(Some(Duration::from_secs(60)))
}

/// A resource's outcome as the engine reports it.
#[derive(Debug, PartialEq, Eq)]
struct Rep {
    status: &'static str,
    changes: Vec<String>,
    error: Option<String>,
}

fn changes(c: &[Change]) -> Vec<String> {
    c.iter()
        .map(|c| format!("{}: {} -> {}", c.property, c.from.as_deref().unwrap_or("-"), c.to.as_deref().unwrap_or("-")))
        .collect()
}

/// The engine's loop (engine::run) for these plans: check, apply when there
/// are changes (not in dry-run), verify. Other resources are unchanged,
/// except those in `failing`, which fail.
fn converge(
    plan: &Plan,
    facts: &serde_json::Value,
    runner: &dyn Runner,
    run: &mut RunState,
    dry_run: bool,
    failing: &[usize],
) -> Vec<Rep> {
    let accounts = Accounts::default();
    let mut staging = Staging::default();
    let mut dirs = HashSet::new();
    let mut reps: Vec<Rep> = Vec::new();
    for (i, r) in plan.resources.iter().enumerate() {
        let blocked = plan.prereqs[i].iter().any(|&p| matches!(reps[p].status, "failed" | "skipped"));
        if blocked {
            reps.push(Rep { status: "skipped", changes: vec![], error: None });
            continue;
        }
        if r.id.kind != Kind::Package {
            let status = if failing.contains(&i) { "failed" } else { "unchanged" };
            reps.push(Rep { status, changes: vec![], error: None });
            continue;
        }
        let h = handler(r.id.kind);
        let mut ctx = Ctx {
            facts,
            runner,
            run: &mut *run,
            plan,
            dry_run,
            diffs: false,
            notified_by: vec![],
            accounts: &accounts,
            staging: &mut staging,
            index: i,
            dirs: &mut dirs,
        };
        let rep = match h.check(r, &mut ctx) {
            Err(e) => Rep { status: "failed", changes: vec![], error: Some(e.to_string()) },
            Ok(c) if c.is_empty() => Rep { status: "unchanged", changes: vec![], error: None },
            Ok(c) if dry_run => Rep { status: "changed", changes: changes(&c), error: None },
            Ok(c) => match h.apply(r, &c, &mut ctx).and_then(|_| h.verify(r, &mut ctx)) {
                Ok(left) if left.is_empty() => Rep { status: "changed", changes: changes(&c), error: None },
                Ok(left) => Rep {
                    status: "failed",
                    changes: changes(&c),
                    error: Some(format!("verification failed: {:?}", changes(&left))),
                },
                Err(e) => Rep { status: "failed", changes: changes(&c), error: Some(e.to_string()) },
            },
        };
        reps.push(rep);
    }
    reps
}

fn changed(c: &[&str]) -> Rep {
    Rep { status: "changed", changes: c.iter().map(|s| s.to_string()).collect(), error: None }
}

fn unchanged() -> Rep {
    Rep { status: "unchanged", changes: vec![], error: None }
}

fn dpkg(names: &str) -> String {
    format!("dpkg-query -W -f {DPKG_QUERY_FORMAT} {names}")
}

const APT_GET: &str =
    "apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=300";

// ---------------------------------------------------------------- parsing

#[test]
fn parses_dpkg_query_output() {
    let text = format!(
        "{DPKG_QUERY}exim4-base\tdeinstall ok config-files\t4.96-15+deb12u10\n\
         telnet\tpurge ok not-installed\t\n\
         nginx-common\tinstall ok half-configured\t1.22.1-9\n\
         man-db\tinstall ok triggers-pending\t2.11.2-2\n\
         libc6\tinstall ok installed\t2.36-9+deb12u14\n\
         libc6\tdeinstall ok config-files\t2.36-9+deb12u13\n\
         vim\thold ok installed\t2:9.0.1378-2\n"
    );
    let s = parse_dpkg_query(&text, "amd64");
    assert_eq!(s["bash"], Status::Installed(vec!["5.2.15-2+b8".into()]));
    assert_eq!(s["chrony"], Status::Absent);
    assert_eq!(s["curl"], Status::Installed(vec!["7.88.1-10+deb12u15".into()]));
    assert_eq!(s["exim4-base"], Status::ConfigFiles("4.96-15+deb12u10".into()));
    assert_eq!(s["telnet"], Status::Absent);
    assert_eq!(s["nginx-common"], Status::Partial("half-configured".into(), "1.22.1-9".into()));
    assert_eq!(s["man-db"], Status::Installed(vec!["2.11.2-2".into()]));
    // The installed instance of a multi-arch package wins; the epoch stays.
    assert_eq!(s["libc6"], Status::Installed(vec!["2.36-9+deb12u14".into()]));
    assert_eq!(s["vim"], Status::Installed(vec!["2:9.0.1378-2".into()]));
    assert!(!s.contains_key("nosuchpkg"));

    // With architectures: each instance by `name:arch`; the bare name is
    // the native (or `all`) instance, never a foreign one alone.
    let s = parse_dpkg_query(
        "libc6:amd64\tinstall ok installed\t2.36-9+deb12u14\n\
         libc6:i386\tinstall ok installed\t2.36-9+deb12u13\n\
         zlib1g:i386\tinstall ok installed\t1:1.2.13.dfsg-1\n\
         tzdata:all\tinstall ok installed\t2024a-0+deb12u1\n",
        "amd64",
    );
    assert_eq!(s["libc6"], Status::Installed(vec!["2.36-9+deb12u14".into()]));
    assert_eq!(s["libc6:i386"], Status::Installed(vec!["2.36-9+deb12u13".into()]));
    assert_eq!(s["zlib1g:i386"], Status::Installed(vec!["1:1.2.13.dfsg-1".into()]));
    assert!(!s.contains_key("zlib1g"), "only the foreign instance is installed");
    assert_eq!(s["tzdata"], Status::Installed(vec!["2024a-0+deb12u1".into()]));
}

#[test]
fn dpkg_query_exit_1_is_not_an_error_but_2_is() {
    let (_d, apt) = fresh();
    let runner = Fake::new(vec![
        (&dpkg("bash coreutils nosuchpkg curl chrony libc6:amd64"), out(1, DPKG_QUERY, DPKG_QUERY_ERR)),
        (&dpkg("bash"), out(2, "", "dpkg-query: error: parsing file '/var/lib/dpkg/status' near line 7\n")),
    ]);
    let s = apt.query(&runner, &["bash", "coreutils", "nosuchpkg", "curl", "chrony", "libc6:amd64"]).unwrap();
    assert_eq!(s.len(), 6);
    assert_eq!(s["nosuchpkg"], Status::Absent);
    assert_eq!(s["coreutils"], Status::Installed(vec!["9.1-1".into()]));
    // Not in this output: absent (a qualified name is that instance only).
    assert_eq!(s["libc6:amd64"], Status::Absent);
    let e = apt.query(&runner, &["bash"]).unwrap_err().to_string();
    assert!(e.contains("exit code 2") && e.contains("parsing file '/var/lib/dpkg/status'"), "{e}");
    runner.assert_done();
}

#[test]
fn parses_apt_cache_policy() {
    let p = parse_policy(POLICY);
    assert_eq!(p["bash"].as_deref(), Some("5.2.15-2+b13"));
    assert_eq!(p["curl"].as_deref(), Some("7.88.1-10+deb12u15"));
    assert_eq!(p["chrony"].as_deref(), Some("4.3-2+deb12u3"));
    assert!(!p.contains_key("nosuchpkg"));
    assert_eq!(parse_policy(POLICY_VIRTUAL)["mail-transport-agent"], None);
    assert_eq!(
        parse_policy("libc6:i386:\n  Installed: (none)\n  Candidate: 2.36-9\n")["libc6:i386"].as_deref(),
        Some("2.36-9")
    );
}

#[test]
fn parses_what_apt_cannot_find() {
    assert_eq!(parse_not_found(APT_NOT_FOUND_ERR), vec!["nosuchpkg", "curl"]);
    assert_eq!(parse_not_found(APT_NO_CANDIDATE_ERR), vec!["mail-transport-agent"]);
    assert_eq!(parse_not_found("E: Couldn't find any package by glob 'foo*'\n"), vec!["foo*"]);
    assert!(parse_not_found("E: Sub-process /usr/bin/dpkg returned an error code (1)\n").is_empty());
    assert!(parse_not_found(APT_NOT_FOUND_OUT).is_empty());
}

#[test]
fn parses_rpm_query() {
    let s = parse_rpm_query(&fixture("rpm-q.stdout"));
    assert_eq!(s["bash"], Status::Installed(vec!["5.1.8-9.el9".into()]));
    assert_eq!(s["nginx"], Status::Absent);
    assert_eq!(s["glibc"], Status::Installed(vec!["2.34-100.el9_4.2".into()]));
    assert_eq!(
        s["kernel-core"],
        Status::Installed(vec!["5.14.0-427.13.1.el9_4".into(), "5.14.0-427.16.1.el9_4".into()])
    );
}

#[test]
fn rpm_query_exit_codes() {
    let d = Dnf::default();
    let argv = |names: &str| format!("rpm -q --qf {} {names}", dnf::RPM_QUERY_FORMAT);
    let runner = Fake::new(vec![
        (&argv("bash nginx glibc kernel-core chrony"), out(1, &fixture("rpm-q.stdout"), "")),
        (&argv("glibc.i686"), out(0, "glibc.i686\t2.34-100.el9_4.2\n", "")),
        (
            &argv("glibc.i686 vim-enhanced"),
            out(1, "package glibc.i686 is not installed\nvim-enhanced.x86_64\t2:8.2.2637-20.el9_1\n", ""),
        ),
        (
            &argv("bash"),
            out(
                1,
                "",
                "error: rpmdb: BDB0113 Thread/process 2313/140 failed: BDB1507 Thread died in Berkeley DB library\nerror: cannot open Packages index using db5 - (-30973)\n",
            ),
        ),
    ]);
    let s = d.query(&runner, &["bash", "nginx", "glibc", "kernel-core", "chrony"]).unwrap();
    assert_eq!(s["nginx"], Status::Absent);
    assert_eq!(s["chrony"], Status::Installed(vec!["4.5-1.el9".into()]));
    // `name.arch` is that instance; the epoch is kept.
    let s = d.query(&runner, &["glibc.i686"]).unwrap();
    assert_eq!(s["glibc.i686"], Status::Installed(vec!["2.34-100.el9_4.2".into()]));
    let s = d.query(&runner, &["glibc.i686", "vim-enhanced"]).unwrap();
    assert_eq!(s["glibc.i686"], Status::Absent);
    assert_eq!(s["vim-enhanced"], Status::Installed(vec!["2:8.2.2637-20.el9_1".into()]));
    let e = d.query(&runner, &["bash"]).unwrap_err().to_string();
    assert!(e.contains("cannot open Packages index"), "{e}");
    runner.assert_done();
}

#[test]
fn parses_dnf_and_yum_upgrade_lists() {
    let u = parse_list_upgrades(&fixture("dnf-list-upgrades.stdout"));
    assert_eq!(u.len(), 6, "each by name and by name.arch: {u:?}");
    assert_eq!(u["bash"], "5.1.8-9.el9_4");
    assert_eq!(u["bash.x86_64"], "5.1.8-9.el9_4");
    assert_eq!(u["chrony"], "4.5-3.el9");
    assert_eq!(u["python3-dnf-plugin-post-transaction-actions"], "4.3.0-13.el9");
    let y = parse_list_upgrades(&fixture("yum-list-updates.stdout"));
    assert_eq!(y["chrony"], "4.2-5.amzn2.0.6");
    assert_eq!(y.len(), 4);

    // Nothing to upgrade: exit 1 with "No matching Packages to list".
    let d = Dnf::default();
    let runner = Fake::new(vec![
        ("dnf -q list --upgrades bash chrony", out(0, &fixture("dnf-list-upgrades.stdout"), "")),
        ("dnf -q list --upgrades bash", out(1, "", &fixture("dnf-list-upgrades-none.stderr"))),
        ("dnf -q list --upgrades bash", out(1, "", "Error: Failed to download metadata for repo 'baseos'\n")),
    ]);
    let n = d.newest(&runner, &["bash", "chrony"]).unwrap();
    assert_eq!(n["chrony"], "4.5-3.el9");
    assert!(d.newest(&runner, &["bash"]).unwrap().is_empty());
    assert!(d.newest(&runner, &["bash"]).unwrap_err().to_string().contains("Failed to download metadata"));
    runner.assert_done();
    let y = Dnf::yum();
    let runner = Fake::new(vec![("yum -q list updates chrony", out(0, &fixture("yum-list-updates.stdout"), ""))]);
    assert_eq!(y.newest(&runner, &["chrony"]).unwrap()["chrony"], "4.2-5.amzn2.0.6");
}

#[test]
fn parses_what_dnf_and_yum_cannot_find() {
    let o = out(1, &fixture("dnf-install-not-found.stdout"), &fixture("dnf-install-not-found.stderr"));
    assert_eq!(Dnf::default().not_found(&o), vec!["nosuchpkg", "bash-9.9"]);
    let o = out(0, &fixture("yum-install-partly-found.stdout"), "");
    assert_eq!(Dnf::yum().not_found(&o), vec!["nosuchpkg"]);
}

#[test]
fn compares_rpm_versions() {
    use std::cmp::Ordering::*;
    for (a, b, want) in [
        ("1.0", "1.0", Equal),
        ("1.0", "1.1", Less),
        ("1.10", "1.9", Greater),
        ("1.010", "1.10", Equal),
        ("2.0a", "2.0", Greater),
        ("1.0a", "1.0.1", Less),
        ("1.0~rc1", "1.0", Less),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0^git1", "1.0", Greater),
        ("1.0^git1", "1.0.1", Less),
        ("5.14.0", "5.14.0", Equal),
        ("el9_4", "el9", Greater),
    ] {
        assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
        assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
    }
    assert_eq!(evr_cmp("4.5", "4.5-1.el9"), Equal);
    assert_eq!(evr_cmp("4.4-1.el9", "4.5-1.el9"), Less);
    assert_eq!(evr_cmp("1:4.5-2.el9", "4.5-1.el9"), Greater);
    assert_eq!(evr_cmp("4.5", "2:4.4-1.el9"), Greater, "a pin without epoch ignores it");
    assert_eq!(evr_cmp("1:4.5", "2:4.4-1.el9"), Less);
    let d = Dnf::default();
    assert_eq!(d.compare("2:1.0-1", "3.0-1"), Greater, "epochs first");
    assert_eq!(d.compare("3.0-1.el9", "3.0-1.el9_4"), Less);
    assert!(d.satisfies("4.5-1.el9", "4.5") && d.satisfies("4.5-1.el9", "4.5-1.el9"));
    assert!(d.satisfies("2:4.5-1.el9", "2:4.5") && d.satisfies("2:4.5-1.el9", "4.5"));
    assert!(!d.satisfies("4.5-1.el9", "2:4.5"), "the epoch is honoured");
    assert!(!d.satisfies("4.5-1.el9", "4.5-2.el9") && !d.satisfies("4.51-1", "4.5"));
    assert!(d.satisfies("4.5.2-1.el9", "4.5.*") && d.satisfies("2:4.5.2-1.el9", "4.5.*-1.el9"));
    assert!(!d.satisfies("4.50-1.el9", "4.5.*"));
    let a = Apt::default();
    assert!(a.satisfies("1.2.3-1", "1.2.*") && !a.satisfies("1.20-1", "1.2.*") && a.satisfies("1.2-1", "1.2-1"));
}

// ---------------------------------------------------------------- decisions

#[test]
fn chooses_the_provider_from_facts() {
    let os = |family: &str, id: &str, v: &str| json!({"os": {"family": family, "id": id, "version_id": v}});
    assert_eq!(choose_provider(None, &debian()).unwrap(), PackageProvider::Apt);
    assert_eq!(choose_provider(None, &os("debian", "ubuntu", "24.04")).unwrap(), PackageProvider::Apt);
    assert_eq!(choose_provider(None, &rocky()).unwrap(), PackageProvider::Dnf);
    assert_eq!(choose_provider(None, &os("redhat", "amzn", "2023")).unwrap(), PackageProvider::Dnf);
    assert_eq!(choose_provider(None, &os("redhat", "amzn", "2")).unwrap(), PackageProvider::Yum);
    assert_eq!(choose_provider(None, &os("redhat", "centos", "7")).unwrap(), PackageProvider::Yum);
    assert_eq!(choose_provider(Some(PackageProvider::Dnf), &debian()).unwrap(), PackageProvider::Dnf);
    let e = choose_provider(None, &os("alpine", "alpine", "3.20")).unwrap_err().to_string();
    assert!(e.contains("\"alpine\"") && e.contains("provider"), "{e}");
}

#[test]
fn decides_the_changes() {
    let apt = Apt::default();
    let d = Dnf::default();
    let inst = |v: &str| Status::Installed(vec![v.to_string()]);
    let cfg = Status::ConfigFiles("4.96-15".into());
    let half = Status::Partial("half-configured".into(), "1.22.1-9".into());
    let p = |y: &str| -> PackageProps { serde_yaml::from_str(y).unwrap() };
    let case = |prov: &dyn Provider, props: &str, st: &Status, newest: Option<&str>| {
        decide(prov, &p(props), st, newest).map(|(a, c)| (a, changes(&[c]).remove(0)))
    };
    use Action::*;
    let i = |v: Option<&str>| Install(v.map(str::to_string));
    for (props, st, newest, want) in [
        ("{}", Status::Absent, None, Some((i(None), "ensure: absent -> installed"))),
        ("{}", inst("1.0"), None, None),
        ("{}", cfg.clone(), None, Some((i(None), "ensure: absent (configuration files left) -> installed"))),
        ("{}", half.clone(), None, Some((i(None), "ensure: 1.22.1-9 (half-configured) -> installed"))),
        ("{version: '1.0'}", Status::Absent, None, Some((i(Some("1.0")), "ensure: absent -> 1.0"))),
        ("{version: '1.0'}", inst("1.0"), None, None),
        ("{version: '1.0'}", inst("2.0"), None, Some((i(Some("1.0")), "version: 2.0 -> 1.0"))),
        ("{state: latest}", inst("1.0"), Some("1.1"), Some((Upgrade, "version: 1.0 -> 1.1"))),
        ("{state: latest}", inst("1.1"), Some("1.1"), None),
        ("{state: latest}", inst("1.0"), None, None),
        // A candidate older than what is installed (a local build, a pinned
        // repository) is not an upgrade; apt's ordering: 1.10 > 1.9, ~ first.
        ("{state: latest}", inst("2.0-1"), Some("1.9-3"), None),
        ("{state: latest}", inst("1.10-1"), Some("1.9-1"), None),
        ("{state: latest}", inst("1.0~rc1-1"), Some("1.0-1"), Some((Upgrade, "version: 1.0~rc1-1 -> 1.0-1"))),
        ("{state: latest}", inst("1:0.9-1"), Some("2.0-1"), None),
        ("{version: '1.2.*'}", inst("1.2.7-1"), None, None),
        ("{version: '1.2.*'}", inst("1.3.0-1"), None, Some((i(Some("1.2.*")), "version: 1.3.0-1 -> 1.2.*"))),
        ("{state: latest}", Status::Absent, Some("1.1"), Some((i(None), "ensure: absent -> 1.1"))),
        ("{state: latest}", Status::Absent, None, Some((i(None), "ensure: absent -> latest"))),
        ("{state: absent}", inst("1.0"), None, Some((Remove, "ensure: 1.0 -> absent"))),
        ("{state: absent}", half.clone(), None, Some((Remove, "ensure: 1.22.1-9 (half-configured) -> absent"))),
        ("{state: absent}", cfg.clone(), None, None),
        ("{state: absent}", Status::Absent, None, None),
        ("{state: purged}", inst("1.0"), None, Some((Purge, "ensure: 1.0 -> purged"))),
        ("{state: purged}", cfg.clone(), None, Some((Purge, "ensure: absent (configuration files left) -> purged"))),
        ("{state: purged}", Status::Absent, None, None),
    ] {
        let want = want.map(|(a, c)| (a, c.to_string()));
        assert_eq!(case(&apt, props, &st, newest), want, "{props} {st:?} {newest:?}");
    }
    // dnf: a pin without release matches; several installed versions (kernels).
    let kernels = Status::Installed(vec!["5.14.0-427.13.1.el9_4".into(), "5.14.0-427.16.1.el9_4".into()]);
    assert_eq!(case(&d, "{version: '4.5'}", &inst("4.5-1.el9"), None), None);
    assert_eq!(case(&d, "{version: 5.14.0-427.16.1.el9_4}", &kernels, None), None);
    assert_eq!(
        case(&d, "{version: 5.14.0-503.el9}", &kernels, None),
        Some((
            i(Some("5.14.0-503.el9")),
            "version: 5.14.0-427.13.1.el9_4, 5.14.0-427.16.1.el9_4 -> 5.14.0-503.el9".into()
        ))
    );
    // rpm's epochs: 1:1.0 is newer than 2.0.
    assert_eq!(case(&d, "{state: latest}", &inst("1:1.0-1.el9"), Some("2.0-1.el9")), None);
    // An arch-qualified pin goes after the version (dnf's NEVRA).
    let op = Op::new("glibc.i686", Action::Install(Some("2.34-100.el9".into())), &[]);
    assert_eq!(d.arg(&op), "glibc-2.34-100.el9.i686");
    let op = Op::new("libc6:i386", Action::Install(Some("2.36-9".into())), &[]);
    assert_eq!(apt.arg(&op), "libc6:i386=2.36-9");
}

// ---------------------------------------------------------------- commands

#[test]
fn apt_transaction_commands() {
    let apt = Apt::default();
    let ops = vec![
        Op::new("nginx", Action::Install(None), &[]),
        Op::new("exim4-base", Action::Purge, &["4.96-15+deb12u10"]),
        Op::new("curl", Action::Install(Some("7.88.1-10+deb12u5".into())), &["7.88.1-10+deb12u15"]),
        Op::new("telnet", Action::Remove, &["0.17+2.4-2"]),
        Op::new("bash", Action::Upgrade, &["5.2.15-2+b8"]),
        Op::new("exim4-config", Action::Purge, &[]),
    ];
    let steps = apt.steps(&ops);
    assert_eq!(steps, vec![vec![0, 2, 4], vec![3], vec![1, 5]]);
    let argv = |s: &[usize]| apt.argv(&s.iter().map(|&k| &ops[k]).collect::<Vec<_>>()).join(" ");
    assert_eq!(argv(&steps[0]), format!("{APT_GET} install --allow-downgrades nginx curl=7.88.1-10+deb12u5 bash"));
    assert_eq!(argv(&steps[1]), format!("{APT_GET} remove telnet"));
    assert_eq!(argv(&steps[2]), format!("{APT_GET} purge exim4-base exim4-config"));
    // No pin: no --allow-downgrades.
    assert_eq!(argv(&[0, 4]), format!("{APT_GET} install nginx bash"));
    assert_eq!(apt.env(), vec![("DEBIAN_FRONTEND", "noninteractive")]);
}

#[test]
fn dnf_transaction_commands() {
    let d = Dnf::default();
    let ops = vec![
        Op::new("nginx", Action::Install(None), &[]),
        Op::new("chrony", Action::Install(Some("4.4-1.el9".into())), &["4.5-1.el9"]),
        Op::new("bash", Action::Upgrade, &["5.1.8-9.el9"]),
        Op::new("telnet", Action::Remove, &["0.17-85.el9"]),
        Op::new("postfix", Action::Purge, &["3.5.9-24.el9"]),
        Op::new("curl", Action::Install(Some("7.76.1-29.el9_4.1".into())), &["7.76.1-29.el9_4"]),
        Op::new("htop", Action::Install(Some("3.3.0-1.el9".into())), &[]),
    ];
    let steps = d.steps(&ops);
    assert_eq!(steps, vec![vec![0, 5, 6], vec![1], vec![2], vec![3, 4]]);
    let argv = |s: &[usize]| d.argv(&s.iter().map(|&k| &ops[k]).collect::<Vec<_>>()).join(" ");
    assert_eq!(argv(&steps[0]), "dnf -y install nginx curl-7.76.1-29.el9_4.1 htop-3.3.0-1.el9");
    assert_eq!(argv(&steps[1]), "dnf -y downgrade chrony-4.4-1.el9");
    assert_eq!(argv(&steps[2]), "dnf -y upgrade bash");
    assert_eq!(argv(&steps[3]), "dnf -y remove telnet postfix");
    assert_eq!(Dnf::yum().argv(&[&ops[0]]).join(" "), "yum -y install nginx");
}

// ---------------------------------------------------------------- apt lists age

#[test]
fn apt_lists_age() {
    let now = SystemTime::now();
    let (_d, missing) = lists(None);
    assert_eq!(missing.lists_age(now), None);
    assert!(missing.metadata_stale());
    let (_d, fresh) = fresh();
    assert!(fresh.lists_age(now).unwrap() < Duration::from_secs(120));
    assert!(!fresh.metadata_stale());
    let (_d, mut old) = lists(Some(Duration::from_secs(2 * 3600)));
    assert!(old.lists_age(SystemTime::now()).unwrap() >= Duration::from_secs(2 * 3600));
    assert!(old.metadata_stale());
    // A newer pkgcache.bin counts (an update that rewrote no list).
    std::fs::File::options().write(true).open(&old.pkgcache).unwrap().set_modified(now).unwrap();
    assert!(!old.metadata_stale());
    // The age limit is a setting.
    old.max_age = Duration::ZERO;
    assert!(old.metadata_stale());

    // An update makes them fresh for the rest of the run, and touches the lists.
    let (_d, mut old) = lists(Some(Duration::from_secs(2 * 3600)));
    let runner = Fake::new(vec![("apt-get -q update", ok())]);
    old.refresh_if_stale(&runner);
    old.refresh_if_stale(&runner);
    runner.assert_done();
    assert_eq!(runner.env_of("apt-get"), vec![("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())]);
    assert!(!old.metadata_stale());
    assert!(old.lists_age(SystemTime::now()).unwrap() < Duration::from_secs(60));
    // Once per run, even after "not found".
    assert!(!old.refresh_after_not_found(&runner));
}

// ---------------------------------------------------------------- runs

#[test]
fn one_transaction_for_the_whole_plan() {
    let (_d, apt) = fresh();
    let p = plan(
        vec![
            pkg("nginx", "{}"),
            file("/etc/motd"),
            pkg("curl", "{version: 7.88.1-10+deb12u5}"),
            pkg("exim4-base", "{state: purged}"),
            pkg("telnet", "{state: absent}"),
            pkg("bash", "{state: latest}"),
            pkg("htop", "{state: absent}"),
            pkg("exim4-config", "{state: purged}"),
        ],
        // The file follows nginx; curl follows nginx too (same batch).
        vec![vec![], vec![0], vec![0], vec![], vec![], vec![], vec![], vec![]],
    );
    let before = "bash\tinstall ok installed\t5.2.15-2+b8\n\
        curl\tinstall ok installed\t7.88.1-10+deb12u15\n\
        exim4-base\tinstall ok installed\t4.96-15+deb12u10\n\
        exim4-config\tdeinstall ok config-files\t4.96-15+deb12u10\n\
        telnet\tinstall ok installed\t0.17+2.4-2\n";
    let after = "bash\tinstall ok installed\t5.2.15-2+b13\n\
        curl\tinstall ok installed\t7.88.1-10+deb12u5\n\
        nginx\tinstall ok installed\t1.22.1-9\n\
        telnet\tdeinstall ok config-files\t0.17+2.4-2\n";
    let names = "nginx curl exim4-base telnet bash htop exim4-config";
    let policy_bash = "bash:\n  Installed: 5.2.15-2+b8\n  Candidate: 5.2.15-2+b13\n";
    let policy_bash_after = "bash:\n  Installed: 5.2.15-2+b13\n  Candidate: 5.2.15-2+b13\n";
    let runner = Fake::new(vec![
        (&dpkg(names), out(1, before, "dpkg-query: no packages found matching nginx\n")),
        ("apt-cache policy bash", out(0, policy_bash, "")),
        (&format!("{APT_GET} install --allow-downgrades nginx curl=7.88.1-10+deb12u5 bash"), ok()),
        (&format!("{APT_GET} remove telnet"), ok()),
        (&format!("{APT_GET} purge exim4-base exim4-config"), ok()),
        (&dpkg(names), out(1, after, "dpkg-query: no packages found matching htop\n")),
        ("apt-cache policy bash", out(0, policy_bash_after, "")),
    ]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, false, &[]);
    runner.assert_done();
    assert_eq!(
        reps,
        vec![
            changed(&["ensure: absent -> installed"]),
            unchanged(),
            changed(&["version: 7.88.1-10+deb12u15 -> 7.88.1-10+deb12u5"]),
            changed(&["ensure: 4.96-15+deb12u10 -> purged"]),
            changed(&["ensure: 0.17+2.4-2 -> absent"]),
            changed(&["version: 5.2.15-2+b8 -> 5.2.15-2+b13"]),
            unchanged(),
            changed(&["ensure: absent (configuration files left) -> purged"]),
        ]
    );
    assert_eq!(
        runner.env_of(APT_GET),
        vec![("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())],
        "apt-get runs non-interactively"
    );

    // Converged: the next run reads and changes nothing.
    let (_d, apt) = fresh();
    let runner =
        Fake::new(vec![(&dpkg(names), out(1, after, "")), ("apt-cache policy bash", out(0, policy_bash_after, ""))]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, false, &[]);
    runner.assert_done();
    assert!(reps.iter().all(|r| r.status == "unchanged"), "{reps:?}");
}

#[test]
fn packages_waiting_for_other_resources_go_in_a_later_transaction() {
    // b needs a source file that comes after a; c needs a (same batch); d
    // needs a file that failed, and must not be installed at all.
    let (_d, apt) = fresh();
    let p = plan(
        vec![
            pkg("a", "{}"),
            file("/etc/apt/sources.list.d/b.list"),
            pkg("b", "{}"),
            pkg("c", "{}"),
            file("/etc/d.conf"),
            pkg("d", "{}"),
        ],
        vec![vec![], vec![], vec![1], vec![0], vec![], vec![4]],
    );
    let inst = |names: &[&str]| names.iter().map(|n| format!("{n}\tinstall ok installed\t1.0-1\n")).collect::<String>();
    let runner = Fake::new(vec![
        (&dpkg("a b c d"), out(1, "", "")),
        (&format!("{APT_GET} install a c"), ok()),
        (&dpkg("a b c d"), out(1, &inst(&["a", "c"]), "")),
        (&format!("{APT_GET} install b"), ok()),
        (&dpkg("a b c d"), out(1, &inst(&["a", "b", "c"]), "")),
    ]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, false, &[4]);
    runner.assert_done();
    let status: Vec<&str> = reps.iter().map(|r| r.status).collect();
    assert_eq!(status, vec!["changed", "unchanged", "changed", "changed", "failed", "skipped"]);
}

#[test]
fn unable_to_locate_updates_once_then_fails_that_package_by_name() {
    let (_d, apt) = fresh();
    // b depends on nosuchpkg: left out, and the engine skips it.
    let p = plan(
        vec![pkg("a", "{}"), pkg("nosuchpkg", "{}"), pkg("b", "{}"), pkg("c", "{}")],
        vec![vec![], vec![], vec![1], vec![]],
    );
    let not_found = || out(100, APT_NOT_FOUND_OUT, "E: Unable to locate package nosuchpkg\n");
    let runner = Fake::new(vec![
        (&dpkg("a nosuchpkg b c"), out(1, "", "")),
        (&format!("{APT_GET} install a nosuchpkg b c"), not_found()),
        ("apt-get -q update", ok()),
        (&format!("{APT_GET} install a nosuchpkg b c"), not_found()),
        (&format!("{APT_GET} install a c"), ok()),
        (&dpkg("a nosuchpkg b c"), out(1, "a\tinstall ok installed\t1\nc\tinstall ok installed\t2\n", "")),
    ]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, false, &[]);
    runner.assert_done();
    let status: Vec<&str> = reps.iter().map(|r| r.status).collect();
    assert_eq!(status, vec!["changed", "failed", "skipped", "changed"], "{reps:?}");
    let e = reps[1].error.as_deref().unwrap();
    assert!(e.starts_with("package nosuchpkg is not available from the package sources"), "{e}");
    assert!(e.contains("E: Unable to locate package nosuchpkg"), "{e}");
}

#[test]
fn the_culprit_is_the_current_resource() {
    let (_d, apt) = fresh();
    let p = plan(vec![pkg("curl", "{version: '9.9'}"), pkg("b", "{}")], vec![vec![], vec![]]);
    let runner = Fake::new(vec![
        (&dpkg("curl b"), out(1, "curl\tinstall ok installed\t7.88.1-10+deb12u15\n", "")),
        (&format!("{APT_GET} install --allow-downgrades curl=9.9 b"), out(100, APT_NOT_FOUND_OUT, APT_NOT_FOUND_ERR)),
        (
            "apt-get -q update",
            out(
                100,
                "",
                "E: Failed to fetch http://deb.example.com/dists/stable/InRelease  Could not resolve 'deb.example.com'\n",
            ),
        ),
        (&format!("{APT_GET} install --allow-downgrades curl=9.9 b"), out(100, APT_NOT_FOUND_OUT, APT_NOT_FOUND_ERR)),
        (&format!("{APT_GET} install b"), ok()),
        (&dpkg("curl b"), out(0, "curl\tinstall ok installed\t7.88.1-10+deb12u15\nb\tinstall ok installed\t1\n", "")),
    ]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, false, &[]);
    runner.assert_done();
    assert_eq!(reps[0].status, "failed");
    let e = reps[0].error.as_deref().unwrap();
    assert!(e.contains("package curl version 9.9 is not available"), "{e}");
    assert!(e.contains("E: Version '9.9' for 'curl' was not found"), "{e}");
    assert!(e.contains("Could not resolve 'deb.example.com'"), "the failed update is mentioned: {e}");
    assert_eq!(reps[1], changed(&["ensure: absent -> installed"]));
}

#[test]
fn a_failed_transaction_fails_exactly_its_resources() {
    let (_d, apt) = fresh();
    let p = plan(
        vec![pkg("a", "{}"), pkg("old", "{state: absent}"), pkg("b", "{}"), pkg("ok", "{}")],
        vec![vec![], vec![], vec![], vec![]],
    );
    let dpkg_err = "E: Sub-process /usr/bin/dpkg returned an error code (1)\n";
    let dpkg_out = "Setting up b (1.0-1) ...\ndpkg: error processing package b (--configure):\n installed b package post-installation script subprocess returned error exit status 1\nErrors were encountered while processing:\n b\n";
    let runner = Fake::new(vec![
        (&dpkg("a old b ok"), out(1, "old\tinstall ok installed\t3\nok\tinstall ok installed\t1\n", "")),
        (&format!("{APT_GET} install a b"), out(100, dpkg_out, dpkg_err)),
        (&format!("{APT_GET} remove old"), ok()),
        (
            &dpkg("a old b ok"),
            out(
                1,
                "a\tinstall ok installed\t1\nb\tinstall ok half-configured\t1.0-1\nok\tinstall ok installed\t1\n",
                "",
            ),
        ),
    ]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, false, &[]);
    runner.assert_done();
    let status: Vec<&str> = reps.iter().map(|r| r.status).collect();
    assert_eq!(status, vec!["failed", "changed", "failed", "unchanged"], "{reps:?}");
    for r in [&reps[0], &reps[2]] {
        let e = r.error.as_deref().unwrap();
        assert!(e.contains(&format!("{APT_GET} install a b` failed with exit code 100")), "{e}");
        assert!(e.contains("returned an error code (1)"), "{e}");
    }
    assert!(reps[0].error.as_deref().unwrap().starts_with("installing a failed"));
    assert!(reps[2].error.as_deref().unwrap().starts_with("installing b failed"));
}

#[test]
fn stale_lists_are_updated_before_installing_and_latest() {
    let (_d, apt) = lists(Some(Duration::from_secs(3 * 3600)));
    let p = plan(vec![pkg("bash", "{state: latest}"), pkg("nginx", "{}")], vec![vec![], vec![]]);
    let runner = Fake::new(vec![
        (&dpkg("bash nginx"), out(1, "bash\tinstall ok installed\t5.2.15-2+b8\n", "")),
        ("apt-get -q update", ok()),
        ("apt-cache policy bash", out(0, POLICY, "")),
        (&format!("{APT_GET} install bash nginx"), ok()),
        (
            &dpkg("bash nginx"),
            out(0, "bash\tinstall ok installed\t5.2.15-2+b13\nnginx\tinstall ok installed\t1.22.1-9\n", ""),
        ),
        ("apt-cache policy bash", out(0, "bash:\n  Installed: 5.2.15-2+b13\n  Candidate: 5.2.15-2+b13\n", "")),
    ]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, false, &[]);
    runner.assert_done();
    assert_eq!(
        reps,
        vec![changed(&["version: 5.2.15-2+b8 -> 5.2.15-2+b13"]), changed(&["ensure: absent -> installed"])]
    );
}

#[test]
fn dry_run_only_reads() {
    // Lists missing (a fresh image): no update; unknown packages would be installed.
    let (_d, apt) = lists(None);
    let p = plan(
        vec![pkg("nginx", "{}"), pkg("bash", "{state: latest}"), pkg("curl", "{}"), pkg("telnet", "{state: absent}")],
        vec![vec![], vec![], vec![], vec![]],
    );
    let dpkg_out = "bash\tinstall ok installed\t5.2.15-2+b8\ncurl\tinstall ok installed\t7.88.1-10+deb12u15\ntelnet\tinstall ok installed\t0.17+2.4-2\n";
    let runner =
        Fake::new(vec![(&dpkg("nginx bash curl telnet"), out(1, dpkg_out, "")), ("apt-cache policy nginx bash", ok())]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, true, &[]);
    runner.assert_done();
    assert_eq!(
        reps,
        vec![
            changed(&["ensure: absent -> installed (not in the package lists yet)"]),
            unchanged(),
            unchanged(),
            changed(&["ensure: 0.17+2.4-2 -> absent"]),
        ]
    );

    // Recent lists: a package apt does not know is an error, unless the plan
    // adds an apt source.
    let (_d, apt) = fresh();
    let p = plan(vec![pkg("nosuchpkg", "{}"), pkg("chrony", "{}")], vec![vec![], vec![]]);
    let runner = Fake::new(vec![
        (&dpkg("nosuchpkg chrony"), out(1, "chrony\tunknown ok not-installed\t\n", DPKG_QUERY_ERR)),
        ("apt-cache policy nosuchpkg chrony", out(0, POLICY, "")),
    ]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, true, &[]);
    runner.assert_done();
    assert_eq!(reps[0].status, "failed");
    assert!(reps[0].error.as_deref().unwrap().contains("apt-cache policy nosuchpkg` shows no candidate"), "{reps:?}");
    assert_eq!(reps[1], changed(&["ensure: absent -> installed"]));

    let (_d, apt) = fresh();
    let p = plan(vec![file("/etc/apt/sources.list.d/x.list"), pkg("nosuchpkg", "{}")], vec![vec![], vec![0]]);
    let runner =
        Fake::new(vec![(&dpkg("nosuchpkg"), out(1, "", DPKG_QUERY_ERR)), ("apt-cache policy nosuchpkg", ok())]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let reps = converge(&p, &debian(), &runner, &mut run, true, &[]);
    runner.assert_done();
    assert_eq!(reps[1], changed(&["ensure: absent -> installed (not in the package lists yet)"]));
}

#[test]
fn ensure_installed_installs_only_what_is_missing() {
    let (_d, apt) = fresh();
    let p = plan(vec![], vec![]);
    let accounts = Accounts::default();
    let mut staging = Staging::default();
    let mut dirs = HashSet::new();
    let facts = debian();
    let runner = Fake::new(vec![
        (&dpkg("chrony"), out(0, "chrony\tunknown ok not-installed\t\n", "")),
        (&format!("{APT_GET} install chrony"), ok()),
        (&dpkg("chrony"), out(0, "chrony\tinstall ok installed\t4.3-2+deb12u3\n", "")),
    ]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let mut ctx = Ctx {
        facts: &facts,
        runner: &runner,
        run: &mut run,
        plan: &p,
        dry_run: false,
        diffs: false,
        notified_by: vec![],
        accounts: &accounts,
        staging: &mut staging,
        index: 0,
        dirs: &mut dirs,
    };
    assert!(ensure_installed(&mut ctx, &["chrony"]).unwrap());
    assert!(!ensure_installed(&mut ctx, &["chrony"]).unwrap());
    runner.assert_done();

    // A failure names the package and carries apt's message.
    let runner = Fake::new(vec![
        (&dpkg("ntpsec"), out(1, "", "dpkg-query: no packages found matching ntpsec\n")),
        (&format!("{APT_GET} install ntpsec"), out(100, "", "E: Unable to locate package ntpsec\n")),
        ("apt-get -q update", ok()),
        (&format!("{APT_GET} install ntpsec"), out(100, "", "E: Unable to locate package ntpsec\n")),
        (&dpkg("chrony ntpsec"), out(1, "chrony\tinstall ok installed\t4.3-2+deb12u3\n", "")),
    ]);
    ctx.runner = &runner;
    let e = ensure_installed(&mut ctx, &["ntpsec"]).unwrap_err().to_string();
    runner.assert_done();
    assert!(e.starts_with("package ntpsec is not available from the package sources (apt-get):"), "{e}");
    assert!(e.contains("E: Unable to locate package ntpsec"), "{e}");

    // Dry-run: nothing runs but the query.
    let (_d, apt) = fresh();
    let runner = Fake::new(vec![(&dpkg("chrony"), out(1, "", "dpkg-query: no packages found matching chrony\n"))]);
    let mut run = RunState { packages: PackageCache::with_apt(apt), ..Default::default() };
    let mut ctx = Ctx {
        facts: &facts,
        runner: &runner,
        run: &mut run,
        plan: &p,
        dry_run: true,
        diffs: false,
        notified_by: vec![],
        accounts: &accounts,
        staging: &mut staging,
        index: 0,
        dirs: &mut dirs,
    };
    assert!(ensure_installed(&mut ctx, &["chrony"]).unwrap());
    runner.assert_done();
}

#[test]
fn dnf_through_the_engine() {
    // The real engine loop, on a Rocky Linux 9 host (no apt lists involved).
    let p = plan(
        vec![pkg("nginx", "{}"), pkg("chrony", "{state: latest}"), pkg("telnet", "{state: purged}"), pkg("bash", "{}")],
        vec![vec![], vec![], vec![], vec![]],
    );
    let rpm = |names: &str| format!("rpm -q --qf {} {names}", dnf::RPM_QUERY_FORMAT);
    let names = "nginx chrony telnet bash";
    let before = "package nginx is not installed\nchrony\t4.5-1.el9\ntelnet\t0.17-85.el9\nbash\t5.1.8-9.el9\n";
    let after = "nginx\t1.20.1-14.el9_2.1\nchrony\t4.5-3.el9\npackage telnet is not installed\nbash\t5.1.8-9.el9\n";
    let runner = Fake::new(vec![
        (&rpm(names), out(1, before, "")),
        ("dnf -q list --upgrades chrony", out(0, &fixture("dnf-list-upgrades.stdout"), "")),
        ("dnf -y install nginx", ok()),
        ("dnf -y upgrade chrony", ok()),
        ("dnf -y remove telnet", ok()),
        (&rpm(names), out(1, after, "")),
        ("dnf -q list --upgrades chrony", out(1, "", &fixture("dnf-list-upgrades-none.stderr"))),
    ]);
    let facts = rocky();
    let opts =
        crate::engine::RunOptions { dry_run: false, diffs: false, previous: Default::default(), host: "h".into() };
    let report = crate::engine::run(&p, &opts, &crate::engine::Host { facts: &facts, runner: &runner });
    runner.assert_done();
    let got: Vec<(String, Vec<String>, Option<String>)> =
        report.resources.iter().map(|r| (format!("{:?}", r.status), changes(&r.changes), r.error.clone())).collect();
    let want = |s: &str, c: &[&str]| (s.to_string(), c.iter().map(|s| s.to_string()).collect::<Vec<_>>(), None);
    assert_eq!(
        got,
        vec![
            want("Changed", &["ensure: absent -> installed"]),
            want("Changed", &["version: 4.5-1.el9 -> 4.5-3.el9"]),
            want("Changed", &["ensure: 0.17-85.el9 -> purged"]),
            want("Unchanged", &[]),
        ]
    );
}

#[test]
fn dnf_not_found_by_spec_and_yum_skipping_unknown_names() {
    // dnf names the pinned spec (`bash-9.9`); both fail by name, the rest is retried.
    let p = plan(
        vec![pkg("bash", "{version: '9.9'}"), pkg("nosuchpkg", "{}"), pkg("htop", "{}")],
        vec![vec![], vec![], vec![]],
    );
    let rpm = |names: &str| format!("rpm -q --qf {} {names}", dnf::RPM_QUERY_FORMAT);
    let runner = Fake::new(vec![
        (
            &rpm("bash nosuchpkg htop"),
            out(2, "bash\t5.1.8-9.el9\npackage nosuchpkg is not installed\npackage htop is not installed\n", ""),
        ),
        (
            "dnf -y install bash-9.9 nosuchpkg htop",
            out(1, &fixture("dnf-install-not-found.stdout"), &fixture("dnf-install-not-found.stderr")),
        ),
        ("dnf -y install htop", ok()),
        (
            &rpm("bash nosuchpkg htop"),
            out(1, "bash\t5.1.8-9.el9\npackage nosuchpkg is not installed\nhtop\t3.3.0-1.el9\n", ""),
        ),
    ]);
    let mut run = RunState::default();
    let reps = converge(&p, &rocky(), &runner, &mut run, false, &[]);
    runner.assert_done();
    let status: Vec<&str> = reps.iter().map(|r| r.status).collect();
    assert_eq!(status, vec!["failed", "failed", "changed"], "{reps:?}");
    let e = reps[0].error.as_deref().unwrap();
    assert!(e.starts_with("package bash version 9.9 is not available from the package sources (dnf):"), "{e}");
    assert!(e.contains("No match for argument: bash-9.9"), "{e}");
    assert!(reps[1].error.as_deref().unwrap().contains("Error: Unable to find a match: nosuchpkg bash-9.9"));

    // yum installs what it finds and exits 0: the unknown name still fails.
    let p = plan(vec![pkg("nosuchpkg", "{}"), pkg("htop", "{}")], vec![vec![], vec![]]);
    let runner = Fake::new(vec![
        (&rpm("nosuchpkg htop"), out(2, "package nosuchpkg is not installed\npackage htop is not installed\n", "")),
        ("yum -y install nosuchpkg htop", out(0, &fixture("yum-install-partly-found.stdout"), "")),
        (&rpm("nosuchpkg htop"), out(1, "package nosuchpkg is not installed\nhtop\t2.2.0-3.amzn2.0.2\n", "")),
    ]);
    let mut run = RunState::default();
    let amzn2 = json!({"os": {"family": "redhat", "id": "amzn", "version_id": "2"}});
    let reps = converge(&p, &amzn2, &runner, &mut run, false, &[]);
    runner.assert_done();
    assert_eq!(reps[0].status, "failed");
    assert!(reps[0].error.as_deref().unwrap().contains("No package nosuchpkg available."), "{reps:?}");
    assert_eq!(reps[1], changed(&["ensure: absent -> installed"]));
}

#[test]
fn a_changed_yum_repository_refreshes_dnf_metadata_once_before_installing() {
    // dnf cannot run here: its outputs as the other dnf tests give them
    // (the yum_repository file itself is tested on a booted host).
    let p = plan(vec![pkg("nginx", "{}"), pkg("htop", "{}")], vec![vec![], vec![]]);
    let rpm = |names: &str| format!("rpm -q --qf {} {names}", dnf::RPM_QUERY_FORMAT);
    let runner = Fake::new(vec![
        (&rpm("nginx htop"), out(2, "package nginx is not installed\npackage htop is not installed\n", "")),
        ("dnf -q makecache", ok()),
        ("dnf -y install nginx htop", ok()),
        (&rpm("nginx htop"), out(0, "nginx\t1.20.1-14.el9_2.1\nhtop\t3.3.0-1.el9\n", "")),
    ]);
    let mut run = RunState::default();
    run.packages.dnf.metadata_changed();
    let reps = converge(&p, &rocky(), &runner, &mut run, false, &[]);
    runner.assert_done();
    assert!(reps.iter().all(|r| r.status == "changed"), "{reps:?}");
}
