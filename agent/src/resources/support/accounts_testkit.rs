//! A fake host for the account types: the databases in temporary files
//! and a runner that records each command and plays its effect on those
//! files, the way shadow-utils would (only what the tests use).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use tend_model::resource::ResourceId;
use tend_model::{CompiledResource, Plan, Spec};

use super::accounts_db::*;
use crate::report::Change;
use crate::resources::support::staging::Staging;
use crate::resources::{Accounts, Applied, Ctx, Result, RunState, Runner};
use crate::system::process::{Exit, Outcome};

pub struct FakeRunner {
    pub calls: RefCell<Vec<Vec<String>>>,
    /// A program that fails: (program, exit code, stderr).
    pub fail: RefCell<Option<(String, i32, String)>>,
    pub paths: AccountsPaths,
    /// Home directory for users the fake useradd creates.
    pub home_root: PathBuf,
}

impl Runner for FakeRunner {
    fn run_input(&self, argv: &[&str], input: &[u8], t: std::time::Duration) -> Result<Outcome> {
        // The fake takes standard input as one more argument.
        let mut with_input: Vec<&str> = argv.to_vec();
        let input = String::from_utf8_lossy(input).into_owned();
        with_input.push(&input);
        self.run(&with_input, &[], t)
    }

    fn run(&self, argv: &[&str], _env: &[(&str, &str)], _t: std::time::Duration) -> Result<Outcome> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        self.calls.borrow_mut().push(argv.clone());
        let outcome = |code: i32, stderr: &str| Outcome {
            exit: Exit::Code(code),
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
            truncated: false,
            duration: std::time::Duration::ZERO,
        };
        if let Some((prog, code, err)) = &*self.fail.borrow() {
            if argv.first() == Some(prog) {
                return Ok(outcome(*code, err));
            }
        }
        match simulate(&self.paths, &self.home_root, &argv) {
            Ok(()) => Ok(outcome(0, "")),
            Err(e) => Ok(outcome(1, &e)),
        }
    }
}

struct Files {
    users: Vec<PasswdEntry>,
    groups: Vec<GroupEntry>,
    shadow: Vec<ShadowEntry>,
}

fn load(paths: &AccountsPaths) -> Files {
    let r = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Files {
        users: parse_passwd(&r(&paths.passwd)).entries,
        groups: parse_group(&r(&paths.group)).entries,
        shadow: parse_shadow(&r(&paths.shadow)).entries,
    }
}

fn save(paths: &AccountsPaths, f: &Files) {
    let p: String = f
        .users
        .iter()
        .map(|u| format!("{}:x:{}:{}:{}:{}:{}\n", u.name, u.uid, u.gid, u.gecos, u.home, u.shell))
        .collect();
    let g: String = f.groups.iter().map(|g| format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(","))).collect();
    let s: String = f.shadow.iter().map(|s| format!("{}:{}:19000:0:99999:7:::\n", s.name, s.hash)).collect();
    std::fs::write(&paths.passwd, p).expect("write passwd");
    std::fs::write(&paths.group, g).expect("write group");
    std::fs::write(&paths.shadow, s).expect("write shadow");
}

/// Options with a value, then the operand.
fn opts(args: &[String], with_value: &str) -> Option<(HashMap<char, String>, String)> {
    let mut m = HashMap::new();
    let mut it = args.iter();
    let mut operand = None;
    while let Some(a) = it.next() {
        if let Some(flag) = a.strip_prefix('-').and_then(|f| f.chars().next()) {
            let v = if with_value.contains(flag) { it.next()?.clone() } else { String::new() };
            m.insert(flag, v);
        } else {
            operand = Some(a.clone());
        }
    }
    Some((m, operand?))
}

fn gid_of(f: &Files, g: &str) -> std::result::Result<u32, String> {
    f.groups
        .iter()
        .find(|x| x.name == g || x.gid.to_string() == g)
        .map(|x| x.gid)
        .ok_or(format!("group '{g}' does not exist"))
}

fn set_groups(f: &mut Files, user: &str, list: &str, append: bool) -> std::result::Result<(), String> {
    let want: Vec<&str> = list.split(',').filter(|s| !s.is_empty()).collect();
    for w in &want {
        gid_of(f, w)?;
    }
    for g in &mut f.groups {
        let listed = want.contains(&g.name.as_str());
        let has = g.members.iter().any(|m| m == user);
        if listed && !has {
            g.members.push(user.to_string());
        } else if !listed && has && !append {
            g.members.retain(|m| m != user);
        }
    }
    Ok(())
}

fn simulate(paths: &AccountsPaths, home_root: &Path, argv: &[String]) -> std::result::Result<(), String> {
    let mut f = load(paths);
    let (prog, args) = argv.split_first().ok_or("empty argv")?;
    let me_uid = nix::unistd::geteuid().as_raw();
    let me_gid = nix::unistd::getegid().as_raw();
    match prog.as_str() {
        "useradd" => {
            let (o, name) = opts(args, "ugGdscp").ok_or("bad args")?;
            if f.users.iter().any(|u| u.name == name) {
                return Err(format!("useradd: user '{name}' already exists"));
            }
            let gid = match o.get(&'g') {
                Some(g) => gid_of(&f, g)?,
                None => {
                    f.groups.push(GroupEntry { name: name.clone(), gid: me_gid, members: vec![] });
                    me_gid
                }
            };
            let home = o.get(&'d').cloned().unwrap_or_else(|| home_root.join(&name).display().to_string());
            if o.contains_key(&'m') {
                std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
            }
            f.users.push(PasswdEntry {
                name: name.clone(),
                uid: o.get(&'u').and_then(|u| u.parse().ok()).unwrap_or(me_uid),
                gid,
                gecos: o.get(&'c').cloned().unwrap_or_default(),
                home,
                shell: o.get(&'s').cloned().unwrap_or("/bin/sh".into()),
            });
            f.shadow.push(ShadowEntry {
                name: name.clone(),
                hash: o.get(&'p').cloned().unwrap_or("!".into()),
                ..Default::default()
            });
            if let Some(g) = o.get(&'G') {
                set_groups(&mut f, &name, g, true)?;
            }
        }
        "usermod" => {
            let (o, name) = opts(args, "ugGdscp").ok_or("bad args")?;
            let gid = o.get(&'g').map(|g| gid_of(&f, g)).transpose()?;
            if let Some(g) = o.get(&'G') {
                set_groups(&mut f, &name, g, o.contains_key(&'a'))?;
            }
            let u = f.users.iter_mut().find(|u| u.name == name).ok_or("no such user")?;
            if let Some(v) = o.get(&'u') {
                u.uid = v.parse().map_err(|_| "bad uid")?;
            }
            if let Some(g) = gid {
                u.gid = g;
            }
            if let Some(d) = o.get(&'d') {
                if o.contains_key(&'m') && Path::new(&u.home).exists() {
                    std::fs::rename(&u.home, d).map_err(|e| e.to_string())?;
                }
                u.home = d.clone();
            }
            if let Some(s) = o.get(&'s') {
                u.shell = s.clone();
            }
            if let Some(c) = o.get(&'c') {
                u.gecos = c.clone();
            }
            if let Some(p) = o.get(&'p') {
                match f.shadow.iter_mut().find(|s| s.name == name) {
                    Some(s) => s.hash = p.clone(),
                    None => f.shadow.push(ShadowEntry { name: name.clone(), hash: p.clone(), ..Default::default() }),
                }
            }
        }
        "chpasswd" => {
            // `chpasswd -e` with `name:hash` lines on standard input.
            let input = args.last().ok_or("no input")?;
            for line in input.lines() {
                let (name, hash) = line.split_once(':').ok_or("bad input line")?;
                match f.shadow.iter_mut().find(|s| s.name == name) {
                    Some(s) => s.hash = hash.to_string(),
                    None => return Err(format!("chpasswd: line 1: user '{name}' does not exist")),
                }
            }
        }
        "userdel" => {
            let (_, name) = opts(args, "").ok_or("bad args")?;
            let before = f.users.len();
            f.users.retain(|u| u.name != name);
            if f.users.len() == before {
                return Err(format!("userdel: user '{name}' does not exist"));
            }
            f.shadow.retain(|s| s.name != name);
            for g in &mut f.groups {
                g.members.retain(|m| *m != name);
            }
        }
        "groupadd" => {
            let (o, name) = opts(args, "g").ok_or("bad args")?;
            let gid = match o.get(&'g') {
                Some(g) => g.parse().map_err(|_| "bad gid")?,
                None if o.contains_key(&'r') => 999 - f.groups.len() as u32,
                None => 1000 + f.groups.len() as u32,
            };
            f.groups.push(GroupEntry { name, gid, members: vec![] });
        }
        "groupmod" => {
            let (o, name) = opts(args, "g").ok_or("bad args")?;
            let g = f.groups.iter_mut().find(|g| g.name == name).ok_or("no such group")?;
            g.gid = o.get(&'g').ok_or("no -g")?.parse().map_err(|_| "bad gid")?;
        }
        "groupdel" => {
            let (_, name) = opts(args, "").ok_or("bad args")?;
            f.groups.retain(|g| g.name != name);
        }
        "gpasswd" => {
            let (o, name) = opts(args, "aM").ok_or("bad args")?;
            let users: Vec<String> = f.users.iter().map(|u| u.name.clone()).collect();
            let g = f.groups.iter_mut().find(|g| g.name == name).ok_or("no such group")?;
            if let Some(list) = o.get(&'M') {
                let want: Vec<String> = list.split(',').filter(|s| !s.is_empty()).map(String::from).collect();
                if let Some(bad) = want.iter().find(|w| !users.contains(w)) {
                    return Err(format!("gpasswd: user '{bad}' does not exist"));
                }
                g.members = want;
            } else if let Some(u) = o.get(&'a') {
                if !users.contains(u) {
                    return Err(format!("gpasswd: user '{u}' does not exist"));
                }
                if !g.members.contains(u) {
                    g.members.push(u.clone());
                }
            }
        }
        other => return Err(format!("{other}: not simulated")),
    }
    save(paths, &f);
    Ok(())
}

/// A fake host: account files and homes in a temporary directory.
pub struct Host {
    pub dir: tempfile::TempDir,
    pub runner: FakeRunner,
    pub plan: Plan,
    pub state: RunState,
    facts: serde_json::Value,
    accounts: Accounts,
    staging: Staging,
    dirs: HashSet<PathBuf>,
}

/// The current user's ids, so that the fake accounts can own files.
pub fn me() -> (u32, u32) {
    (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
}

impl Host {
    /// `passwd` and `group` text; `{home}` is replaced by the homes
    /// directory, `{uid}`/`{gid}` by the ids of the user running the tests.
    pub fn new(passwd: &str, group: &str, shadow: &str) -> Host {
        let dir = tempfile::tempdir().expect("tempdir");
        let homes = dir.path().join("home");
        std::fs::create_dir(&homes).expect("mkdir home");
        let (uid, gid) = me();
        let fill = |s: &str| {
            s.replace("{home}", &homes.display().to_string())
                .replace("{uid}", &uid.to_string())
                .replace("{gid}", &gid.to_string())
        };
        let paths = AccountsPaths::under(dir.path());
        std::fs::write(&paths.passwd, fill(passwd)).expect("passwd");
        std::fs::write(&paths.group, fill(group)).expect("group");
        std::fs::write(&paths.shadow, fill(shadow)).expect("shadow");
        let state = RunState { accounts: AccountsCache::with_paths(paths.clone()), ..Default::default() };
        Host {
            runner: FakeRunner { calls: RefCell::new(Vec::new()), fail: RefCell::new(None), paths, home_root: homes },
            dir,
            plan: Plan::default(),
            state,
            facts: serde_json::Value::Null,
            accounts: Accounts::default(),
            staging: Staging::default(),
            dirs: HashSet::new(),
        }
    }

    pub fn home(&self, name: &str) -> PathBuf {
        self.dir.path().join("home").join(name)
    }

    /// Adds resources to the plan (in this order).
    pub fn declare(&mut self, specs: Vec<(&str, Spec)>) {
        for (name, spec) in specs {
            self.plan.resources.push(resource(name, spec));
            self.plan.prereqs.push(Vec::new());
            self.plan.notified_by.push(Vec::new());
        }
    }

    pub fn ctx(&mut self, index: usize, dry_run: bool) -> Ctx<'_> {
        Ctx {
            facts: &self.facts,
            runner: &self.runner,
            run: &mut self.state,
            plan: &self.plan,
            dry_run,
            diffs: true,
            notified_by: Vec::new(),
            accounts: &self.accounts,
            staging: &mut self.staging,
            index,
            dirs: &mut self.dirs,
        }
    }

    pub fn check(&mut self, i: usize, dry_run: bool) -> Result<Vec<Change>> {
        let r = self.plan.resources[i].clone();
        super::super::handler(r.id.kind).check(&r, &mut self.ctx(i, dry_run))
    }

    /// check, apply and verify, as the engine does; the changes made.
    pub fn converge(&mut self, i: usize) -> Result<Vec<Change>> {
        let r = self.plan.resources[i].clone();
        let h = super::super::handler(r.id.kind);
        let mut ctx = self.ctx(i, false);
        let changes = h.check(&r, &mut ctx)?;
        if changes.is_empty() {
            return Ok(changes);
        }
        assert_eq!(h.apply(&r, &changes, &mut ctx)?, Applied::Done);
        let left = h.verify(&r, &mut ctx)?;
        assert!(left.is_empty(), "{} still differs after apply: {left:?}", r.id);
        Ok(changes)
    }

    /// Every command run so far, each as one string; and forget them.
    pub fn take_calls(&self) -> Vec<String> {
        self.runner.calls.borrow_mut().drain(..).map(|a| a.join(" ")).collect()
    }

    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

pub fn resource(name: &str, spec: Spec) -> CompiledResource {
    CompiledResource {
        instance: None,
        id: ResourceId::new(spec.kind(), name),
        spec,
        payload: None,
        requires: Vec::new(),
        notifies: Vec::new(),
        enabled: true,
        sensitive: false,
        desired_hash: 0,
        origin: PathBuf::from("test.yaml"),
    }
}

/// Property names of changes.
pub fn props(changes: &[Change]) -> Vec<&str> {
    changes.iter().map(|c| c.property.as_str()).collect()
}

pub fn change<'c>(changes: &'c [Change], property: &str) -> &'c Change {
    changes.iter().find(|c| c.property == property).unwrap_or_else(|| panic!("no {property} in {changes:?}"))
}
