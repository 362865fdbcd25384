//! apt (Debian, Ubuntu): `dpkg-query` reads the installed state, `apt-cache
//! policy` the candidates, `apt-get` makes the changes, non-interactively and
//! keeping configuration files the admin changed (`--force-confold`).
//! Recommended packages are installed, as apt does by default.
//!
//! `apt-get update` runs only when the package lists are missing or older
//! than [`LISTS_MAX_AGE`] (at the first install or `latest` check of a run),
//! or once when apt cannot find a package. After it succeeds, the mtime of
//! the lists directory is set to now: an update that finds nothing new
//! rewrites no list, and would otherwise leave the lists looking old.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{Action, Op, Provider, QUERY_TIMEOUT, Status, merge_status, query_failed, statuses_for, version};
use crate::resources::{Result, Runner};
use crate::system::process::{Exit, Outcome};

/// How old apt's package lists may be before an install updates them first.
pub const LISTS_MAX_AGE: Duration = Duration::from_secs(60 * 60);

pub(super) const UPDATE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// One line per package: name, dpkg status (want, error, state), version.
pub const DPKG_QUERY_FORMAT: &str = "${Package}:${Architecture}\\t${Status}\\t${Version}\\n";

const ENV: &[(&str, &str)] = &[("DEBIAN_FRONTEND", "noninteractive")];

/// Options of every `apt-get` that changes packages: no questions, keep
/// changed configuration files, wait for a dpkg lock held by another apt
/// (unattended-upgrades at boot) rather than fail at once.
const APT_GET: &[&str] = &[
    "apt-get",
    "-y",
    "-q",
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
    "-o",
    "DPkg::Lock::Timeout=300",
];

pub struct Apt {
    /// apt's package lists; their age is the newest mtime of this directory
    /// and of `pkgcache`.
    pub lists: PathBuf,
    pub pkgcache: PathBuf,
    pub max_age: Duration,
    /// `apt-get update` ran in this run.
    updated: bool,
    /// Its failure, added to later failure messages.
    update_error: Option<String>,
    /// A repository changed in this run: the lists are stale whatever their age.
    sources_changed: bool,
}

impl Default for Apt {
    fn default() -> Self {
        Self::new("/var/lib/apt/lists", "/var/cache/apt/pkgcache.bin", LISTS_MAX_AGE)
    }
}

impl Apt {
    pub fn new(lists: impl Into<PathBuf>, pkgcache: impl Into<PathBuf>, max_age: Duration) -> Self {
        Self {
            lists: lists.into(),
            pkgcache: pkgcache.into(),
            max_age,
            updated: false,
            update_error: None,
            sources_changed: false,
        }
    }

    /// The age of the package lists; None when there are none (a fresh
    /// container image, or lists removed to save space).
    pub fn lists_age(&self, now: SystemTime) -> Option<Duration> {
        let any = std::fs::read_dir(&self.lists)
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains("_Packages")))
            .unwrap_or(false);
        if !any {
            return None;
        }
        let newest = [&self.lists, &self.pkgcache]
            .iter()
            .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .max()?;
        Some(now.duration_since(newest).unwrap_or_default())
    }

    /// A repository was added, changed or removed: the next install or
    /// `latest` check updates the lists first, once.
    pub fn lists_changed(&mut self) {
        self.sources_changed = true;
    }

    fn update(&mut self, runner: &dyn Runner) {
        self.updated = true;
        self.sources_changed = false;
        let argv = ["apt-get", "-q", "update"];
        match runner.run(&argv, ENV, UPDATE_TIMEOUT) {
            Ok(o) if o.exit == Exit::Code(0) => {
                self.update_error = None;
                let now = SystemTime::now();
                if let Ok(dir) = std::fs::File::open(&self.lists) {
                    let _ = dir.set_modified(now);
                }
            }
            Ok(o) => {
                self.update_error =
                    Some(format!("`apt-get update` failed before, with {}:\n{}", o.describe_exit(), o.tail(10)))
            }
            Err(e) => self.update_error = Some(format!("`apt-get update` failed before: {e}")),
        }
    }
}

/// dpkg's name for the architecture this agent was built for: the host's
/// native one (an unqualified name means that instance, or an `all` one).
pub fn native_arch() -> &'static str {
    let little = cfg!(target_endian = "little");
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" if cfg!(target_abi = "eabihf") => "armhf",
        "arm" => "armel",
        "powerpc64" if little => "ppc64el",
        "mips" if little => "mipsel",
        "mips64" if little => "mips64el",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Parses `dpkg-query -W -f '${Package}:${Architecture}\t${Status}\t${Version}\n'`
/// output. Each instance is listed as `name:arch`; the bare name is the
/// native or `all` instance (a line without an architecture counts as one).
pub fn parse_dpkg_query(text: &str, native: &str) -> HashMap<String, Status> {
    let mut out: HashMap<String, Status> = HashMap::new();
    for line in text.lines() {
        let mut f = line.splitn(3, '\t');
        let (Some(name_arch), Some(status)) = (f.next(), f.next()) else { continue };
        let version = f.next().unwrap_or_default().trim().to_string();
        let st = match status.split_whitespace().nth(2).unwrap_or_default() {
            "installed" | "triggers-awaited" | "triggers-pending" => Status::Installed(vec![version]),
            "config-files" => Status::ConfigFiles(version),
            "not-installed" | "" => Status::Absent,
            other => Status::Partial(other.to_string(), version),
        };
        let (name, arch) = name_arch.split_once(':').unwrap_or((name_arch, ""));
        if !arch.is_empty() {
            merge_status(&mut out, name_arch, st.clone());
        }
        if arch.is_empty() || arch == native || arch == "all" {
            merge_status(&mut out, name, st);
        }
    }
    out
}

/// Parses `apt-cache policy` output: each package's candidate, None for
/// `(none)` (apt knows the name, e.g. a virtual package, but nothing to
/// install). Packages apt does not know are not listed at all.
pub fn parse_policy(text: &str) -> HashMap<String, Option<String>> {
    let mut out = HashMap::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            current = line.strip_suffix(':');
            continue;
        }
        if let (Some(name), Some(v)) = (current, line.trim().strip_prefix("Candidate:")) {
            let v = v.trim();
            out.insert(name.to_string(), (v != "(none)").then(|| v.to_string()));
        }
    }
    out
}

/// The packages apt's messages say it cannot find or install.
pub fn parse_not_found(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let name = if let Some(n) = line.strip_prefix("E: Unable to locate package ") {
            Some(n)
        } else if let Some(rest) = line.strip_prefix("E: Version '") {
            rest.split_once("' for '").and_then(|(_, n)| n.strip_suffix("' was not found"))
        } else if let Some(rest) = line.strip_prefix("E: Package '") {
            rest.strip_suffix("' has no installation candidate")
        } else if let Some(rest) = line.strip_prefix("E: Couldn't find any package by ") {
            rest.split_once(" '").and_then(|(_, n)| n.strip_suffix('\''))
        } else {
            None
        };
        if let Some(n) = name {
            out.push(n.trim().to_string());
        }
    }
    out
}

impl Provider for Apt {
    fn tool(&self) -> &'static str {
        "apt-get"
    }

    fn query(&self, runner: &dyn Runner, names: &[&str]) -> Result<HashMap<String, Status>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let mut argv = vec!["dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT];
        argv.extend_from_slice(names);
        let out = runner.run(&argv, &[], QUERY_TIMEOUT)?;
        // Exit 1: some names are unknown ("no packages found matching");
        // the others are listed all the same.
        if !out.success_in(&[0, 1]) {
            return Err(query_failed(&argv, &out));
        }
        let found = parse_dpkg_query(&String::from_utf8_lossy(&out.stdout), native_arch());
        Ok(statuses_for(names, &found))
    }

    fn newest(&self, runner: &dyn Runner, names: &[&str]) -> Result<HashMap<String, String>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let mut argv = vec!["apt-cache", "policy"];
        argv.extend_from_slice(names);
        let out = runner.run(&argv, &[], QUERY_TIMEOUT)?;
        if !out.success_in(&[0]) {
            return Err(query_failed(&argv, &out));
        }
        let policy = parse_policy(&String::from_utf8_lossy(&out.stdout));
        Ok(names.iter().filter_map(|n| Some((n.to_string(), policy.get(*n).cloned()??))).collect())
    }

    fn newest_is_complete(&self) -> bool {
        true
    }

    fn satisfies(&self, installed: &str, pin: &str) -> bool {
        installed == pin || (version::is_glob(pin) && version::glob_match(pin, installed))
    }

    fn compare(&self, a: &str, b: &str) -> std::cmp::Ordering {
        tend_model::version::compare(a, b, tend_model::version::Scheme::Debian)
    }

    fn metadata_stale(&self) -> bool {
        self.sources_changed
            || (!self.updated && self.lists_age(SystemTime::now()).is_none_or(|age| age > self.max_age))
    }

    fn refresh_if_stale(&mut self, runner: &dyn Runner) {
        if self.metadata_stale() {
            self.update(runner);
        }
    }

    fn refresh_after_not_found(&mut self, runner: &dyn Runner) -> bool {
        if self.updated {
            return false;
        }
        self.update(runner);
        true
    }

    fn note(&self) -> Option<String> {
        self.update_error.clone()
    }

    /// One `apt-get install` (installs, upgrades, pins), one `remove`, one `purge`.
    fn steps(&self, ops: &[Op]) -> Vec<Vec<usize>> {
        let group = |f: fn(&Action) -> bool| -> Vec<usize> { (0..ops.len()).filter(|&k| f(&ops[k].action)).collect() };
        [group(Action::installs), group(|a| *a == Action::Remove), group(|a| *a == Action::Purge)]
            .into_iter()
            .filter(|g| !g.is_empty())
            .collect()
    }

    fn argv(&self, ops: &[&Op]) -> Vec<String> {
        let mut argv: Vec<String> = APT_GET.iter().map(|s| s.to_string()).collect();
        let verb = match ops.first().map(|o| &o.action) {
            Some(Action::Remove) => "remove",
            Some(Action::Purge) => "purge",
            _ => "install",
        };
        argv.push(verb.into());
        if ops.iter().any(|o| matches!(o.action, Action::Install(Some(_)))) {
            argv.push("--allow-downgrades".into());
        }
        argv.extend(ops.iter().map(|o| self.arg(o)));
        argv
    }

    fn arg(&self, op: &Op) -> String {
        match &op.action {
            Action::Install(Some(v)) => format!("{}={v}", op.name),
            _ => op.name.clone(),
        }
    }

    fn env(&self) -> Vec<(&'static str, &'static str)> {
        ENV.to_vec()
    }

    fn not_found(&self, out: &Outcome) -> Vec<String> {
        parse_not_found(&String::from_utf8_lossy(&out.stderr))
    }
}
