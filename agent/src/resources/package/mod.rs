//! `package`: system packages, through the host's package manager.
//!
//! **Provider.** apt on the debian family; dnf on the redhat family, except
//! Amazon Linux 2 and EL7, which have yum only; `provider:` forces one. Each
//! implements [`Provider`]: see [`apt`], and [`dnf`] (dnf and yum).
//!
//! **Reading.** The state of every package resource of the plan is read once
//! per run, with one query per provider (`dpkg-query -W`, `rpm -q`), plus one
//! query of the newest versions when a resource wants `latest` (`apt-cache
//! policy`, `dnf list --upgrades`). The result is kept in [`PackageCache`]
//! and read again after each transaction.
//!
//! **One transaction.** When the engine reaches the first package resource
//! that needs a change, every package resource of the plan that needs one and
//! is ready (each of its prerequisites is processed already, or is a package
//! of the same batch) is changed with it: one install command, one remove
//! command, one purge command. The outcome of each resource is recorded, so
//! that when the engine reaches the others, `check` reports the changes that
//! were made for them and `apply` does nothing more; `verify` reads the
//! refreshed state. A failed command fails the resources in it, with the
//! tool's message. When the tool names packages it could not find, apt first
//! runs `apt-get update` once (a source may just have been added) and tries
//! again; then those packages fail by name, resources that depend on them are
//! left for the engine to skip, and the rest is tried once more.
//!
//! **Dry-run.** `check` only reads: no `apt-get update`, no change.
//!
//! **Changes.** `ensure` (from `absent` or the installed version, to
//! `installed`, a version, `absent` or `purged`) or `version` (from → to).

pub mod apt;
pub mod dnf;
#[cfg(test)]
mod tests;
pub mod version;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tend_model::resources::package::{PackageProps, PackageProvider, PackageState};
use tend_model::{CompiledResource, Plan, Spec};

use super::{Applied, Ctx, Error, ResourceType, Result, Runner, mismatch};
use crate::report::Change;
use crate::system::process::{Exit, Outcome};

/// How long a read-only query (dpkg-query, rpm, apt-cache) may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one install, remove or purge command may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// A package's state in the package database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not installed, or unknown to the database.
    Absent,
    /// Removed, with its configuration files left (dpkg's `config-files`).
    ConfigFiles(String),
    /// Installed, at these versions (rpm lists several for multilib
    /// packages and kernels).
    Installed(Vec<String>),
    /// Left half done by an interrupted dpkg run: the dpkg status word
    /// (`unpacked`, `half-configured`, `half-installed`) and the version.
    Partial(String, String),
}

impl Status {
    pub fn is_installed(&self) -> bool {
        matches!(self, Status::Installed(_))
    }

    /// As shown in a change's `from`.
    fn describe(&self) -> String {
        match self {
            Status::Absent => "absent".into(),
            Status::ConfigFiles(_) => "absent (configuration files left)".into(),
            Status::Installed(v) => v.join(", "),
            Status::Partial(s, v) => format!("{v} ({s})"),
        }
    }
}

/// What a transaction does to one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Install it (or finish a half-done install); with a version, install
    /// or move to exactly that version.
    Install(Option<String>),
    /// Upgrade an installed package to the newest version.
    Upgrade,
    /// Remove it, keeping configuration files.
    Remove,
    /// Remove it with its configuration files.
    Purge,
}

impl Action {
    fn installs(&self) -> bool {
        matches!(self, Action::Install(_) | Action::Upgrade)
    }

    fn verb(&self) -> &'static str {
        match self {
            Action::Install(_) => "installing",
            Action::Upgrade => "upgrading",
            Action::Remove => "removing",
            Action::Purge => "purging",
        }
    }
}

/// One package of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub name: String,
    pub action: Action,
    /// The versions installed now.
    pub have: Vec<String>,
}

impl Op {
    pub fn new(name: &str, action: Action, have: &[&str]) -> Self {
        Self { name: name.into(), action, have: have.iter().map(|s| s.to_string()).collect() }
    }
}

/// A package manager.
pub trait Provider {
    /// The command that makes changes, for messages.
    fn tool(&self) -> &'static str;

    /// The state of these packages, read with one command; one entry per
    /// name asked.
    fn query(&self, runner: &dyn Runner, names: &[&str]) -> Result<HashMap<String, Status>>;

    /// The newest version the package sources offer, read with one command.
    /// apt: the candidate of each package it knows; dnf: only the packages
    /// that have an upgrade.
    fn newest(&self, runner: &dyn Runner, names: &[&str]) -> Result<HashMap<String, String>>;

    /// Whether `newest` lists every package the sources offer, so that a
    /// package missing from it is not available.
    fn newest_is_complete(&self) -> bool;

    /// Whether an installed version is the pinned one (or matches a glob pin).
    fn satisfies(&self, installed: &str, pin: &str) -> bool;

    /// The package manager's own ordering of two versions.
    fn compare(&self, a: &str, b: &str) -> std::cmp::Ordering;

    /// Whether the package metadata is missing or older than allowed.
    fn metadata_stale(&self) -> bool {
        false
    }

    /// Refreshes stale package metadata before an install (never in dry-run).
    fn refresh_if_stale(&mut self, _runner: &dyn Runner) {}

    /// After a "not found": refreshes the metadata, once per run. Returns
    /// whether it did (then the command is worth another try).
    fn refresh_after_not_found(&mut self, _runner: &dyn Runner) -> bool {
        false
    }

    /// Something to add to failure messages (a failed metadata refresh).
    fn note(&self) -> Option<String> {
        None
    }

    /// The operations grouped into commands, in the order to run them (by
    /// position in `ops`).
    fn steps(&self, ops: &[Op]) -> Vec<Vec<usize>>;

    /// The command for one step.
    fn argv(&self, ops: &[&Op]) -> Vec<String>;

    /// The package as named on the command line (`name=version`).
    fn arg(&self, op: &Op) -> String;

    /// Environment of the commands that change packages.
    fn env(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }

    /// The packages (as named on the command line, or by name) a command's
    /// output says could not be found.
    fn not_found(&self, out: &Outcome) -> Vec<String>;
}

/// What is known about the packages of one provider in this run.
#[derive(Default)]
struct Db {
    loaded: bool,
    /// Names asked by `ensure_installed`, queried with the plan's.
    extra: Vec<String>,
    status: HashMap<String, Status>,
    newest: HashMap<String, String>,
    /// The names `newest` was asked about.
    asked: HashSet<String>,
}

impl Db {
    fn status(&self, name: &str) -> Status {
        self.status.get(name).cloned().unwrap_or(Status::Absent)
    }
}

/// The package database of one run, and the outcomes of its transactions.
pub struct PackageCache {
    /// apt, with where its package lists are and how old they may be.
    pub apt: apt::Apt,
    pub dnf: dnf::Dnf,
    pub yum: dnf::Dnf,
    dbs: [Db; 3],
    /// Resources changed (or failed) in the transaction of an earlier one:
    /// by plan index, the changes made or the error.
    done: Done,
}

/// By plan index: the changes made for a resource in an earlier resource's
/// transaction, or its error.
type Done = HashMap<usize, std::result::Result<Vec<Change>, String>>;

impl Default for PackageCache {
    fn default() -> Self {
        Self::with_apt(apt::Apt::default())
    }
}

impl PackageCache {
    /// With apt's lists somewhere else or another maximum age (tests).
    pub fn with_apt(apt: apt::Apt) -> Self {
        Self { apt, dnf: dnf::Dnf::default(), yum: dnf::Dnf::yum(), dbs: Default::default(), done: HashMap::new() }
    }

    /// The provider, its database, and the recorded outcomes.
    fn parts(&mut self, kind: PackageProvider) -> (&mut dyn Provider, &mut Db, &mut Done) {
        match kind {
            PackageProvider::Apt => (&mut self.apt, &mut self.dbs[0], &mut self.done),
            PackageProvider::Dnf => (&mut self.dnf, &mut self.dbs[1], &mut self.done),
            PackageProvider::Yum => (&mut self.yum, &mut self.dbs[2], &mut self.done),
        }
    }
}

pub struct PackageType;

fn props(r: &CompiledResource) -> Result<&PackageProps> {
    match &r.spec {
        Spec::Package(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

/// The provider asked for, else the one of the host's OS.
pub fn choose_provider(asked: Option<PackageProvider>, facts: &serde_json::Value) -> Result<PackageProvider> {
    if let Some(p) = asked {
        return Ok(p);
    }
    let os = &facts["os"];
    let field = |k: &str| os[k].as_str().unwrap_or_default();
    let major = field("version_id").split('.').next().unwrap_or_default();
    match field("family") {
        "debian" => Ok(PackageProvider::Apt),
        "redhat" if field("id") == "amzn" && major == "2" => Ok(PackageProvider::Yum),
        "redhat" if matches!(field("id"), "rhel" | "centos" | "ol" | "scientific") && major == "7" => {
            Ok(PackageProvider::Yum)
        }
        "redhat" => Ok(PackageProvider::Dnf),
        other => Err(Error::Failed(format!(
            "no package provider for this OS (family {other:?}, id {:?}); set `provider:` (apt, dnf or yum)",
            field("id")
        ))),
    }
}

/// A package resource of the plan.
struct Entry<'p> {
    index: usize,
    name: &'p str,
    props: &'p PackageProps,
}

/// The enabled package resources of the plan that this provider serves.
fn entries<'p>(plan: &'p Plan, facts: &serde_json::Value, kind: PackageProvider) -> Vec<Entry<'p>> {
    plan.resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.enabled)
        .filter_map(|(index, r)| match &r.spec {
            Spec::Package(p) if choose_provider(p.provider, facts).ok() == Some(kind) => {
                Some(Entry { index, name: &r.id.name, props: p })
            }
            _ => None,
        })
        .collect()
}

/// Reads the state of all the plan's packages of this provider, once.
fn load(
    cache: &mut PackageCache,
    kind: PackageProvider,
    plan: &Plan,
    facts: &serde_json::Value,
    runner: &dyn Runner,
    dry_run: bool,
) -> Result<()> {
    let (prov, db, _) = cache.parts(kind);
    if db.loaded {
        return Ok(());
    }
    let entries = entries(plan, facts, kind);
    let mut names: Vec<&str> = entries.iter().map(|e| e.name).chain(db.extra.iter().map(String::as_str)).collect();
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(*n));
    db.status = prov.query(runner, &names)?;
    // Newest versions: for `latest`, and in dry-run (where apt lists every
    // package it knows) to tell which missing packages no source offers yet.
    let complete = prov.newest_is_complete();
    let ask: Vec<&str> = entries
        .iter()
        .filter(|e| {
            e.props.state == PackageState::Latest
                || (dry_run
                    && complete
                    && e.props.state == PackageState::Installed
                    && !db.status.get(e.name).is_some_and(Status::is_installed))
        })
        .map(|e| e.name)
        .collect();
    db.newest.clear();
    db.asked.clear();
    if !ask.is_empty() {
        if !dry_run {
            prov.refresh_if_stale(runner);
        }
        db.newest = prov.newest(runner, &ask)?;
        db.asked = ask.iter().map(|s| s.to_string()).collect();
    }
    db.loaded = true;
    Ok(())
}

/// What must change for one package, from its state: the action and the
/// change to report.
pub fn decide(prov: &dyn Provider, p: &PackageProps, st: &Status, newest: Option<&str>) -> Option<(Action, Change)> {
    let ensure = |to: &str| Change::new("ensure", Some(st.describe()), Some(to.to_string()));
    match p.state {
        PackageState::Installed => match (st, &p.version) {
            (Status::Installed(_), None) => None,
            (Status::Installed(have), Some(v)) if have.iter().any(|h| prov.satisfies(h, v)) => None,
            (Status::Installed(have), Some(v)) => {
                Some((Action::Install(Some(v.clone())), Change::new("version", Some(have.join(", ")), Some(v.clone()))))
            }
            (_, v) => Some((Action::Install(v.clone()), ensure(v.as_deref().unwrap_or("installed")))),
        },
        PackageState::Latest => match st {
            Status::Installed(have) => {
                let n = newest?;
                // Installed at (or above) the candidate: nothing to upgrade.
                if have.iter().any(|h| prov.compare(h, n).is_ge()) {
                    return None;
                }
                Some((Action::Upgrade, Change::new("version", Some(have.join(", ")), Some(n.to_string()))))
            }
            _ => Some((Action::Install(None), ensure(newest.unwrap_or("latest")))),
        },
        PackageState::Absent => match st {
            Status::Installed(_) | Status::Partial(..) => Some((Action::Remove, ensure("absent"))),
            Status::Absent | Status::ConfigFiles(_) => None,
        },
        PackageState::Purged => match st {
            Status::Absent => None,
            _ => Some((Action::Purge, ensure("purged"))),
        },
    }
}

/// Whether the plan writes this provider's sources (which a dry-run cannot
/// read yet).
fn manages_sources(prov: &dyn Provider, plan: &Plan) -> bool {
    let apt = prov.tool() == "apt-get";
    plan.resources.iter().any(|r| match r.spec {
        Spec::AptRepository(_) => apt,
        Spec::YumRepository(_) => !apt,
        Spec::File(_) | Spec::Template(_) => {
            r.id.name.contains(if apt { "/etc/apt/sources.list" } else { "/etc/yum.repos.d/" })
        }
        _ => false,
    })
}

/// What must change for one resource. In dry-run, a package that apt does not
/// know is reported as a change when the lists may just be old (or a source
/// of this run may bring it), and as an error otherwise.
fn need(prov: &dyn Provider, db: &Db, e: &Entry, plan: &Plan, dry_run: bool) -> Result<Option<(Action, Change)>> {
    let st = db.status(e.name);
    let newest = db.newest.get(e.name).map(String::as_str);
    let Some((action, mut change)) = decide(prov, e.props, &st, newest) else { return Ok(None) };
    let unknown = prov.newest_is_complete() && db.asked.contains(e.name) && newest.is_none();
    if dry_run && unknown && matches!(action, Action::Install(_)) && !st.is_installed() {
        if prov.metadata_stale() || manages_sources(prov, plan) {
            change.to = change.to.map(|t| format!("{t} (not in the package lists yet)"));
        } else {
            return Err(Error::Failed(format!(
                "package {} is not available: `apt-cache policy {}` shows no candidate (the package lists are recent)",
                e.name, e.name
            )));
        }
    }
    Ok(Some((action, change)))
}

/// The result of each operation of a transaction; None when it was left out
/// because a package it depends on failed.
type Results = Vec<Option<std::result::Result<(), String>>>;

/// Runs the operations, one command per step. `needs[k]`: the operations
/// (by position) that operation k depends on.
fn transact(prov: &mut dyn Provider, runner: &dyn Runner, ops: &[Op], needs: &[Vec<usize>]) -> Results {
    let mut res: Results = vec![None; ops.len()];
    let mut dropped = vec![false; ops.len()];
    for step in prov.steps(ops) {
        let members = without_blocked(step, needs, &res, &mut dropped);
        if members.is_empty() {
            continue;
        }
        if members.iter().any(|&k| ops[k].action.installs()) {
            prov.refresh_if_stale(runner);
        }
        run_step(prov, runner, ops, members, needs, &mut res, &mut dropped);
    }
    res
}

/// Leaves out (and marks) the operations that depend on a failed or left-out one.
fn without_blocked(members: Vec<usize>, needs: &[Vec<usize>], res: &Results, dropped: &mut [bool]) -> Vec<usize> {
    members
        .into_iter()
        .filter(|&k| {
            let blocked = needs[k].iter().any(|&d| dropped[d] || matches!(res[d], Some(Err(_))));
            dropped[k] |= blocked;
            !blocked
        })
        .collect()
}

/// One command; on "not found", a metadata refresh and one more try, then
/// the packages not found fail by name and the rest is tried once more.
fn run_step(
    prov: &mut dyn Provider,
    runner: &dyn Runner,
    ops: &[Op],
    mut members: Vec<usize>,
    needs: &[Vec<usize>],
    res: &mut Results,
    dropped: &mut [bool],
) {
    let mut refreshed = false;
    let mut retried = false;
    loop {
        let refs: Vec<&Op> = members.iter().map(|&k| &ops[k]).collect();
        let argv = prov.argv(&refs);
        let argv_refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = match runner.run(&argv_refs, &prov.env(), TRANSACTION_TIMEOUT) {
            Ok(o) => o,
            Err(e) => {
                for &k in &members {
                    res[k] = Some(Err(format!("{} {} failed: {e}", ops[k].action.verb(), ops[k].name)));
                }
                return;
            }
        };
        let named = prov.not_found(&out);
        let missing: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&k| named.iter().any(|n| *n == ops[k].name || *n == prov.arg(&ops[k])))
            .collect();
        if out.exit == Exit::Code(0) {
            // yum skips packages it cannot find and succeeds.
            for &k in &members {
                res[k] = Some(if missing.contains(&k) { Err(not_found(prov, &ops[k], &out)) } else { Ok(()) });
            }
            return;
        }
        if !missing.is_empty() && !refreshed && !retried {
            refreshed = true;
            if prov.refresh_after_not_found(runner) {
                continue;
            }
        }
        if !missing.is_empty() && !retried {
            for &k in &missing {
                res[k] = Some(Err(not_found(prov, &ops[k], &out)));
            }
            let rest: Vec<usize> = members.into_iter().filter(|k| !missing.contains(k)).collect();
            members = without_blocked(rest, needs, res, dropped);
            if members.is_empty() {
                return;
            }
            retried = true;
            continue;
        }
        let msg = failure(prov, &argv, &out);
        for &k in &members {
            res[k] = Some(Err(format!("{} {} failed: {msg}", ops[k].action.verb(), ops[k].name)));
        }
        return;
    }
}

/// Each name's status in what the database query found (absent when not
/// there); an architecture-qualified name (`libc6:i386`,
/// `glibc.i686`) is that instance only, never another architecture's.
fn statuses_for(names: &[&str], found: &HashMap<String, Status>) -> HashMap<String, Status> {
    names.iter().map(|n| (n.to_string(), found.get(*n).cloned().unwrap_or(Status::Absent))).collect()
}

/// Adds one instance's status under `key`: an installed instance wins, and
/// several installed versions (multilib, kernels) are all kept.
fn merge_status(out: &mut HashMap<String, Status>, key: &str, st: Status) {
    match (out.get_mut(key), st) {
        (Some(Status::Installed(have)), Status::Installed(v)) => {
            for x in v {
                if !have.contains(&x) {
                    have.push(x);
                }
            }
        }
        (Some(Status::Installed(_)), _) => {}
        (_, st) => {
            out.insert(key.to_string(), st);
        }
    }
}

/// A failed read of the package database.
fn query_failed(argv: &[&str], out: &Outcome) -> Error {
    Error::Failed(format!(
        "reading the package database: `{}` failed with {}:\n{}",
        argv.join(" "),
        out.describe_exit(),
        out.tail(15)
    ))
}

/// A command's failure, with the tool's own message.
fn failure(prov: &dyn Provider, argv: &[String], out: &Outcome) -> String {
    let mut s = format!("`{}` failed with {}:\n{}", argv.join(" "), out.describe_exit(), out.tail(15));
    if let Some(n) = prov.note() {
        s.push('\n');
        s.push_str(&n);
    }
    s
}

/// The error of a package the tool could not find, with the tool's lines about it.
fn not_found(prov: &dyn Provider, op: &Op, out: &Outcome) -> String {
    let what = match &op.action {
        Action::Install(Some(v)) => format!("package {} version {v}", op.name),
        _ => format!("package {}", op.name),
    };
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let arg = prov.arg(op);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.split(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | ':' | ','))
                .any(|w| w == op.name || w == arg)
        })
        .collect();
    let mut s = format!("{what} is not available from the package sources ({}):\n{}", prov.tool(), lines.join("\n"));
    if let Some(n) = prov.note() {
        s.push('\n');
        s.push_str(&n);
    }
    s
}

/// A resource of the batch.
struct Member {
    index: usize,
    op: Op,
    change: Change,
}

/// The package resources to change together with the current one: those
/// from here on that need a change and are ready. The current one first.
/// Where a batch is being chosen: the plan, the provider and the resource at hand.
struct Batching<'a> {
    plan: &'a Plan,
    facts: &'a serde_json::Value,
    kind: PackageProvider,
    current: usize,
    /// Resources that failed (or were skipped for a failure) earlier in the run.
    blocked: &'a std::collections::HashSet<usize>,
}

fn select_batch(prov: &dyn Provider, db: &Db, done: &Done, at: Batching) -> Result<Vec<Member>> {
    let Batching { plan, facts, kind, current, blocked } = at;
    let mut batch: BTreeMap<usize, Member> = BTreeMap::new();
    for e in entries(plan, facts, kind) {
        if e.index < current || done.contains_key(&e.index) {
            continue;
        }
        let need = match need(prov, db, &e, plan, false) {
            Ok(n) => n,
            Err(err) if e.index == current => return Err(err),
            Err(_) => None,
        };
        if let Some((action, change)) = need {
            let have = match db.status(e.name) {
                Status::Installed(v) => v,
                _ => Vec::new(),
            };
            let op = Op { name: e.name.to_string(), action, have };
            batch.insert(e.index, Member { index: e.index, op, change });
        }
    }
    // Ready: every prerequisite is processed (and did not fail here) or in the batch.
    loop {
        let unready: Vec<usize> = batch
            .keys()
            .copied()
            .filter(|&j| {
                j != current
                    && plan.prereqs[j].iter().any(|&p| {
                        (p >= current && !batch.contains_key(&p))
                            || (p < current && blocked.contains(&p))
                            || matches!(done.get(&p), Some(Err(_)))
                    })
            })
            .collect();
        if unready.is_empty() {
            break;
        }
        for j in unready {
            batch.remove(&j);
        }
    }
    let mut members: Vec<Member> = Vec::with_capacity(batch.len());
    if let Some(m) = batch.remove(&current) {
        members.push(m);
    }
    members.extend(batch.into_values());
    Ok(members)
}

/// For each member, the members (by position) it depends on, directly or not.
fn batch_needs(plan: &Plan, members: &[Member]) -> Vec<Vec<usize>> {
    let pos: HashMap<usize, usize> = members.iter().enumerate().map(|(k, m)| (m.index, k)).collect();
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&k| members[k].index);
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
    for k in order {
        let mut all: Vec<usize> = Vec::new();
        for p in &plan.prereqs[members[k].index] {
            if let Some(&d) = pos.get(p) {
                all.push(d);
                all.extend(needs[d].iter().copied());
            }
        }
        all.sort_unstable();
        all.dedup();
        needs[k] = all;
    }
    needs
}

impl ResourceType for PackageType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        // Changed (or failed) in the transaction of an earlier resource.
        if let Some(done) = ctx.run.packages.done.get(&ctx.index) {
            return done.clone().map_err(Error::Failed);
        }
        self.verify(r, ctx)
    }

    fn apply(&self, r: &CompiledResource, _changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        if let Some(done) = ctx.run.packages.done.get(&ctx.index) {
            return done.clone().map(|_| Applied::Done).map_err(Error::Failed);
        }
        let kind = choose_provider(p.provider, ctx.facts)?;
        let (runner, plan, facts, current) = (ctx.runner, ctx.plan, ctx.facts, ctx.index);
        let blocked = ctx.run.blocked.clone();
        load(&mut ctx.run.packages, kind, plan, facts, runner, false)?;
        let cache = &mut ctx.run.packages;
        let (prov, db, done) = cache.parts(kind);
        let members = select_batch(prov, db, done, Batching { plan, facts, kind, current, blocked: &blocked })?;
        let Some(first) = members.first() else { return Ok(Applied::Done) };
        if first.index != current {
            return Ok(Applied::Done);
        }
        let ops: Vec<Op> = members.iter().map(|m| m.op.clone()).collect();
        let needs = batch_needs(plan, &members);
        let res = transact(prov, runner, &ops, &needs);
        db.loaded = false;
        // A failed re-read shows in verify, which reads again.
        let _ = load(cache, kind, plan, facts, runner, false);
        let mut mine = Ok(Applied::Done);
        for (m, r) in members.into_iter().zip(res) {
            match (m.index == current, r) {
                (true, Some(Err(e))) => mine = Err(Error::Failed(e)),
                (true, _) => {}
                (false, Some(Ok(()))) => {
                    cache.done.insert(m.index, Ok(vec![m.change]));
                }
                (false, Some(Err(e))) => {
                    cache.done.insert(m.index, Err(e));
                }
                // Left for the engine, which skips it (a dependency failed).
                (false, None) => {}
            }
        }
        mine
    }

    /// Reads the (refreshed) state, ignoring what a batch recorded.
    fn verify(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let kind = choose_provider(p.provider, ctx.facts)?;
        let (runner, plan, facts, dry_run) = (ctx.runner, ctx.plan, ctx.facts, ctx.dry_run);
        load(&mut ctx.run.packages, kind, plan, facts, runner, dry_run)?;
        let (prov, db, _) = ctx.run.packages.parts(kind);
        let e = Entry { index: ctx.index, name: &r.id.name, props: p };
        Ok(need(prov, db, &e, plan, dry_run)?.map(|(_, c)| vec![c]).unwrap_or_default())
    }
}

/// Installs these packages now if they are missing (for resources such as
/// `ntp` that need a daemon), with the provider of the host's OS. Returns
/// true if anything was installed (in dry-run: would be).
pub fn ensure_installed(ctx: &mut Ctx, names: &[&str]) -> Result<bool> {
    let kind = choose_provider(None, ctx.facts)?;
    let (runner, plan, facts, dry_run) = (ctx.runner, ctx.plan, ctx.facts, ctx.dry_run);
    let cache = &mut ctx.run.packages;
    load(cache, kind, plan, facts, runner, dry_run)?;
    let (prov, db, _) = cache.parts(kind);
    let unknown: Vec<&str> = names.iter().copied().filter(|n| !db.status.contains_key(*n)).collect();
    if !unknown.is_empty() {
        let found = prov.query(runner, &unknown)?;
        db.status.extend(found);
        db.extra.extend(unknown.iter().map(|s| s.to_string()));
    }
    let missing: Vec<&str> = names.iter().copied().filter(|n| !db.status(n).is_installed()).collect();
    if missing.is_empty() {
        return Ok(false);
    }
    if dry_run {
        return Ok(true);
    }
    let ops: Vec<Op> = missing.iter().map(|n| Op::new(n, Action::Install(None), &[])).collect();
    let res = transact(prov, runner, &ops, &vec![Vec::new(); ops.len()]);
    db.loaded = false;
    let _ = load(cache, kind, plan, facts, runner, false);
    let errors: Vec<String> = res.into_iter().filter_map(|r| r.and_then(|r| r.err())).collect();
    if !errors.is_empty() {
        return Err(Error::Failed(errors.join("\n")));
    }
    Ok(true)
}
