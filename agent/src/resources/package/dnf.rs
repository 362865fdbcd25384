//! dnf (Fedora, RHEL 8+, Amazon Linux 2023) and yum (Amazon Linux 2, EL7):
//! `rpm -q` reads the installed state, `dnf list --upgrades` (`yum list
//! updates`) the newer versions, `dnf -y install|downgrade|upgrade|remove`
//! makes the changes.
//!
//! `purged` is a plain remove: RPM has no state where only configuration
//! files are left (a removal keeps changed configuration files as
//! `.rpmsave`, and nothing tracks them). dnf refreshes its own metadata when
//! it expires; after a `yum_repository` changed in this run, `makecache`
//! runs once before the next install.
//!
//! Versions are `[epoch:]version-release` (the epoch only when set) and
//! ordered as rpm orders them; an epoch in a pin (`1:2.3-4`) must match, a
//! pin without one matches any epoch (as dnf's `name-version` does).
//! Instances are read as `name.arch`: `glibc.i686` is that instance only.
//!
//! This provider cannot run on the development machine (no RPM host boots
//! there): it is tested only through a fake runner, against outputs recorded
//! from rpm, dnf and yum (`agent/tests/fixtures/dnf/`).

use std::cmp::Ordering;
use std::collections::HashMap;

use super::{Action, Op, Provider, QUERY_TIMEOUT, Status, merge_status, query_failed, statuses_for, version};
use crate::resources::{Result, Runner};
use crate::system::process::{Exit, Outcome};

/// One line per installed package instance: name.arch, then
/// [epoch:]version-release (the epoch only when it is set).
pub const RPM_QUERY_FORMAT: &str = "%{NAME}.%{ARCH}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n";

pub struct Dnf {
    /// `dnf` or `yum`.
    pub tool: &'static str,
    /// A repository changed in this run: `makecache` before the next install.
    repos_changed: bool,
}

impl Default for Dnf {
    fn default() -> Self {
        Self { tool: "dnf", repos_changed: false }
    }
}

impl Dnf {
    pub fn yum() -> Self {
        Self { tool: "yum", repos_changed: false }
    }

    /// A repository was added, changed or removed in this run.
    pub fn metadata_changed(&mut self) {
        self.repos_changed = true;
    }

    /// The command that lists newer versions.
    fn list_upgrades(&self) -> &'static str {
        if self.tool == "yum" { "updates" } else { "--upgrades" }
    }

    /// install, downgrade (a pin below every installed version), upgrade or remove.
    fn verb(op: &Op) -> &'static str {
        match &op.action {
            Action::Install(Some(pin)) if !op.have.is_empty() && op.have.iter().all(|h| evr_cmp(pin, h).is_lt()) => {
                "downgrade"
            }
            Action::Install(_) => "install",
            Action::Upgrade => "upgrade",
            Action::Remove | Action::Purge => "remove",
        }
    }
}

/// Parses `rpm -q --qf '%{NAME}.%{ARCH}\t…' names...` output: one line per
/// installed instance (several for multilib packages and kernels), listed
/// as `name.arch` and under the bare name (every architecture);
/// `package X is not installed` for the others.
pub fn parse_rpm_query(text: &str) -> HashMap<String, Status> {
    let mut out: HashMap<String, Status> = HashMap::new();
    for line in text.lines() {
        if let Some((name_arch, version)) = line.split_once('\t') {
            let st = Status::Installed(vec![version.trim().to_string()]);
            // The query always appends `.%{ARCH}`, whatever the architecture.
            if let Some((name, _arch)) = name_arch.rsplit_once('.') {
                merge_status(&mut out, name_arch, st.clone());
                merge_status(&mut out, name, st);
            } else {
                merge_status(&mut out, name_arch, st);
            }
        } else if let Some(name) = line.strip_prefix("package ").and_then(|l| l.strip_suffix(" is not installed")) {
            out.entry(name.to_string()).or_insert(Status::Absent);
        }
    }
    out
}

/// Parses `dnf -q list --upgrades` / `yum -q list updates`: under a header,
/// `name.arch  version  repository` (dnf wraps a long name onto a line of its
/// own). Returns name → version.
pub fn parse_list_upgrades(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut pending: Option<String> = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("Obsoleting") {
            break;
        }
        let (na, version) = match (words.as_slice(), pending.take()) {
            ([na, version, _repo], _) => (na.to_string(), *version),
            ([version, _repo], Some(na)) if line.starts_with(char::is_whitespace) => (na, *version),
            ([na], _) if na.contains('.') && !line.starts_with(char::is_whitespace) => {
                pending = Some(na.to_string());
                continue;
            }
            _ => continue,
        };
        // The header ("Available Upgrades", "Updated Packages") has no arch.
        let Some((name, _arch)) = na.rsplit_once('.') else { continue };
        out.insert(name.to_string(), version.to_string());
        out.insert(na, version.to_string());
    }
    out
}

/// The package specs dnf and yum say they cannot find.
pub fn parse_not_found(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("No match for argument: ") {
            out.push(n.trim().to_string());
        } else if let Some(list) = line.strip_prefix("Error: Unable to find a match: ") {
            out.extend(list.split_whitespace().map(str::to_string));
        } else if let Some(n) = line.strip_prefix("No package ").and_then(|l| l.strip_suffix(" available.")) {
            out.push(n.trim().to_string());
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

/// The epoch (None when not written) and the rest.
fn split_epoch(v: &str) -> (Option<u64>, &str) {
    match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e.parse().ok(), rest),
        _ => (None, v),
    }
}

/// Compares a pin (`version`, `version-release`, with or without epoch)
/// with an installed `[epoch:]version-release`; without a release in the
/// pin only the versions are compared, and without an epoch any epoch
/// matches (as dnf matches `name-version`).
pub fn evr_cmp(pin: &str, installed: &str) -> Ordering {
    let (pe, pin) = split_epoch(pin);
    let (ie, installed) = split_epoch(installed);
    let epoch = pe.map_or(Ordering::Equal, |p| p.cmp(&ie.unwrap_or(0)));
    let (pv, pr) = pin.split_once('-').map_or((pin, None), |(v, r)| (v, Some(r)));
    let (iv, ir) = installed.split_once('-').unwrap_or((installed, ""));
    epoch.then_with(|| rpmvercmp(pv, iv)).then_with(|| pr.map_or(Ordering::Equal, |pr| rpmvercmp(pr, ir)))
}

/// rpm's version comparison (`rpmvercmp`): alternating numeric and
/// alphabetic segments; numbers compare as numbers and are newer than
/// letters; `~` sorts before anything (pre-releases), `^` after the base
/// version but before a following segment (snapshots).
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        while a.first().is_some_and(|&c| sep(c)) {
            a = &a[1..];
        }
        while b.first().is_some_and(|&c| sep(c)) {
            b = &b[1..];
        }
        let (ca, cb) = (a.first().copied(), b.first().copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else { break };
        let numeric = ca.is_ascii_digit();
        let same = |c: &u8| if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() };
        let na = a.iter().take_while(|c| same(c)).count();
        let nb = b.iter().take_while(|c| same(c)).count();
        if nb == 0 {
            // Segments of different kinds: a number is newer.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let (sa, sb) = (&a[..na], &b[..nb]);
        let ord = if numeric {
            let trim = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
            let (sa, sb) = (&sa[trim(sa)..], &sb[trim(sb)..]);
            sa.len().cmp(&sb.len()).then_with(|| sa.cmp(sb))
        } else {
            sa.cmp(sb)
        };
        if ord.is_ne() {
            return ord;
        }
        a = &a[na..];
        b = &b[nb..];
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// A name without an architecture suffix (`glibc.i686` → `glibc`), as
/// `%{NAME}` prints it.
fn bare(name: &str) -> &str {
    const ARCHES: &[&str] = &["x86_64", "i686", "i386", "aarch64", "noarch", "ppc64le", "s390x", "armv7hl", "src"];
    match name.rsplit_once('.') {
        Some((n, arch)) if ARCHES.contains(&arch) => n,
        _ => name,
    }
}

impl Provider for Dnf {
    fn tool(&self) -> &'static str {
        self.tool
    }

    fn query(&self, runner: &dyn Runner, names: &[&str]) -> Result<HashMap<String, Status>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let mut argv = vec!["rpm", "-q", "--qf", RPM_QUERY_FORMAT];
        argv.extend_from_slice(names);
        let out = runner.run(&argv, &[], QUERY_TIMEOUT)?;
        // rpm exits with the number of packages not installed; a real
        // failure (no rpmdb) says `error:`.
        let errors = String::from_utf8_lossy(&out.stderr).lines().any(|l| l.starts_with("error:"));
        if !matches!(out.exit, Exit::Code(_)) || errors {
            return Err(query_failed(&argv, &out));
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let found = parse_rpm_query(&text);
        Ok(statuses_for(names, &found))
    }

    fn newest(&self, runner: &dyn Runner, names: &[&str]) -> Result<HashMap<String, String>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let mut argv = vec![self.tool, "-q", "list", self.list_upgrades()];
        argv.extend_from_slice(names);
        let out = runner.run(&argv, &[], QUERY_TIMEOUT)?;
        let text = String::from_utf8_lossy(&out.stdout);
        match out.exit {
            Exit::Code(0) => {}
            // Nothing to upgrade.
            Exit::Code(1) if String::from_utf8_lossy(&out.stderr).to_lowercase().contains("no matching packages") => {
                return Ok(HashMap::new());
            }
            _ => return Err(query_failed(&argv, &out)),
        }
        let found = parse_list_upgrades(&text);
        Ok(names.iter().filter_map(|n| Some((n.to_string(), found.get(*n)?.clone()))).collect())
    }

    fn newest_is_complete(&self) -> bool {
        false
    }

    fn metadata_stale(&self) -> bool {
        self.repos_changed
    }

    /// After a repository change: `makecache`, once. A failure shows in the
    /// install that follows.
    fn refresh_if_stale(&mut self, runner: &dyn Runner) {
        if std::mem::take(&mut self.repos_changed) {
            let _ = runner.run(&[self.tool, "-q", "makecache"], &[], super::apt::UPDATE_TIMEOUT);
        }
    }

    /// `version`, `version-release` or a glob of either; an epoch in the
    /// pin must be the installed one's.
    fn satisfies(&self, installed: &str, pin: &str) -> bool {
        let (pe, pin) = split_epoch(pin);
        let (ie, installed) = split_epoch(installed);
        if pe.is_some_and(|p| p != ie.unwrap_or(0)) {
            return false;
        }
        let v = installed.split_once('-').map_or(installed, |(v, _)| v);
        if version::is_glob(pin) {
            return version::glob_match(pin, installed) || version::glob_match(pin, v);
        }
        installed == pin || v == pin
    }

    fn compare(&self, a: &str, b: &str) -> Ordering {
        tend_model::version::compare(a, b, tend_model::version::Scheme::Rpm)
    }

    /// `install`, `downgrade`, `upgrade`, `remove`: one command each.
    fn steps(&self, ops: &[Op]) -> Vec<Vec<usize>> {
        ["install", "downgrade", "upgrade", "remove"]
            .iter()
            .map(|verb| (0..ops.len()).filter(|&k| Self::verb(&ops[k]) == *verb).collect::<Vec<_>>())
            .filter(|g| !g.is_empty())
            .collect()
    }

    fn argv(&self, ops: &[&Op]) -> Vec<String> {
        let verb = ops.first().map_or("install", |o| Self::verb(o));
        let mut argv = vec![self.tool.to_string(), "-y".into(), verb.into()];
        argv.extend(ops.iter().map(|o| self.arg(o)));
        argv
    }

    /// `name-[epoch:]version[-release]`, with an architecture after it
    /// (`glibc-2.34-100.el9.i686`) when the name has one.
    fn arg(&self, op: &Op) -> String {
        match &op.action {
            Action::Install(Some(v)) => match op.name.strip_prefix(bare(&op.name)) {
                Some(arch) if !arch.is_empty() => format!("{}-{v}{arch}", bare(&op.name)),
                _ => format!("{}-{v}", op.name),
            },
            _ => op.name.clone(),
        }
    }

    fn not_found(&self, out: &Outcome) -> Vec<String> {
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        parse_not_found(&text)
    }
}
