//! The local account databases (/etc/passwd, /etc/group, /etc/shadow),
//! parsed once per run and shared by the `user` and `group` types, plus what
//! both need: the plan's declared accounts and running the shadow-utils tools
//! without leaking a password hash.
//!
//! The files are parsed defensively: a malformed line is skipped (and
//! logged), never a panic. NIS compat lines (`+`, `-`) and comments are
//! ignored: tend manages local accounts only, as useradd does.

use std::collections::HashMap;
use std::path::PathBuf;

use tend_model::resource::Kind;
use tend_model::resources::Presence;
use tend_model::{CompiledResource, Plan, Spec};

use crate::resources::{Error, Result, Runner, run_ok};

/// Where the databases live: /etc on a host, temporary files in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsPaths {
    pub passwd: PathBuf,
    pub group: PathBuf,
    pub shadow: PathBuf,
}

impl Default for AccountsPaths {
    fn default() -> Self {
        Self { passwd: "/etc/passwd".into(), group: "/etc/group".into(), shadow: "/etc/shadow".into() }
    }
}

impl AccountsPaths {
    /// `passwd`, `group` and `shadow` in one directory.
    pub fn under(dir: &std::path::Path) -> Self {
        Self { passwd: dir.join("passwd"), group: dir.join("group"), shadow: dir.join("shadow") }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowEntry {
    pub name: String,
    pub hash: String,
    pub aging: Aging,
}

/// Shadow's password aging fields, in days (None: the field is empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aging {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub warn: Option<i64>,
    /// Account expiry, days since 1970-01-01.
    pub expire: Option<i64>,
}

/// Parsed entries and the (1-based) numbers of the lines that were skipped
/// as malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub entries: Vec<T>,
    pub malformed: Vec<usize>,
}

/// Splits a database into (line number, fields), skipping blank lines,
/// comments and NIS compat entries.
fn records(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            return None;
        }
        Some((i + 1, line.split(':').collect()))
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn parse_with<T>(text: &str, f: impl Fn(&[&str]) -> Option<T>) -> Parsed<T> {
    let mut out = Parsed { entries: Vec::new(), malformed: Vec::new() };
    for (n, fields) in records(text) {
        match f(&fields) {
            Some(e) => out.entries.push(e),
            None => out.malformed.push(n),
        }
    }
    out
}

/// `name:password:uid:gid:gecos:home:shell`
pub fn parse_passwd(text: &str) -> Parsed<PasswdEntry> {
    parse_with(text, |f| match f {
        [name, _pw, uid, gid, gecos, home, shell] if valid_name(name) => Some(PasswdEntry {
            name: name.to_string(),
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            gecos: gecos.to_string(),
            home: home.to_string(),
            shell: shell.to_string(),
        }),
        _ => None,
    })
}

/// `name:password:gid:member,member`
pub fn parse_group(text: &str) -> Parsed<GroupEntry> {
    parse_with(text, |f| match f {
        [name, _pw, gid, members] if valid_name(name) => Some(GroupEntry {
            name: name.to_string(),
            gid: gid.parse().ok()?,
            members: members.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_string).collect(),
        }),
        _ => None,
    })
}

/// `name:hash:lastchange:min:max:warn:inactive:expire:reserved`: the hash
/// and the aging fields (an unparsable number reads as empty).
pub fn parse_shadow(text: &str) -> Parsed<ShadowEntry> {
    parse_with(text, |f| match f {
        [name, hash, rest @ ..] if valid_name(name) => {
            let n = |i: usize| rest.get(i).and_then(|v| v.parse::<i64>().ok());
            let aging = Aging { min: n(1), max: n(2), warn: n(3), expire: n(5) };
            Some(ShadowEntry { name: name.to_string(), hash: hash.to_string(), aging })
        }
        _ => None,
    })
}

/// The three databases, indexed.
#[derive(Debug)]
pub struct AccountsDb {
    users: Vec<PasswdEntry>,
    groups: Vec<GroupEntry>,
    by_user: HashMap<String, usize>,
    by_uid: HashMap<u32, usize>,
    by_group: HashMap<String, usize>,
    by_gid: HashMap<u32, usize>,
    /// User name to entry, or why /etc/shadow could not be read.
    shadow: std::result::Result<HashMap<String, ShadowEntry>, String>,
}

fn index<T, K: std::hash::Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> HashMap<K, usize> {
    let mut m = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        // The first entry wins, as with getpwnam.
        m.entry(key(it)).or_insert(i);
    }
    m
}

impl AccountsDb {
    /// Builds the database from file contents; `shadow` is the error text
    /// when /etc/shadow could not be read.
    pub fn from_text(passwd: &str, group: &str, shadow: std::result::Result<&str, String>) -> Self {
        let users = parse_passwd(passwd).entries;
        let groups = parse_group(group).entries;
        Self::from_entries(users, groups, shadow.map(|s| parse_shadow(s).entries))
    }

    fn from_entries(
        users: Vec<PasswdEntry>,
        groups: Vec<GroupEntry>,
        shadow: std::result::Result<Vec<ShadowEntry>, String>,
    ) -> Self {
        let shadow = shadow.map(|entries| {
            let mut m = HashMap::new();
            for e in entries {
                m.entry(e.name.clone()).or_insert(e);
            }
            m
        });
        Self {
            by_user: index(&users, |u| u.name.clone()),
            by_uid: index(&users, |u| u.uid),
            by_group: index(&groups, |g| g.name.clone()),
            by_gid: index(&groups, |g| g.gid),
            users,
            groups,
            shadow,
        }
    }

    /// Reads the databases. A missing or unreadable /etc/shadow is only an
    /// error for the resources that manage a password.
    pub fn load(paths: &AccountsPaths) -> Result<Self> {
        let read = |p: &PathBuf| -> std::io::Result<String> {
            std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let passwd = read(&paths.passwd).map_err(Error::io(format!("read {}", paths.passwd.display())))?;
        let group = read(&paths.group).map_err(Error::io(format!("read {}", paths.group.display())))?;
        let shadow = read(&paths.shadow).map_err(|e| format!("cannot read {}: {e}", paths.shadow.display()));
        let p = parse_passwd(&passwd);
        let g = parse_group(&group);
        let s = shadow.as_deref().map(parse_shadow).map_err(Clone::clone);
        let warn = |path: &PathBuf, lines: &[usize]| {
            if !lines.is_empty() {
                tracing::warn!("{}: ignoring malformed line(s) {:?}", path.display(), lines);
            }
        };
        warn(&paths.passwd, &p.malformed);
        warn(&paths.group, &g.malformed);
        if let Ok(s) = &s {
            warn(&paths.shadow, &s.malformed);
        }
        Ok(Self::from_entries(p.entries, g.entries, s.map(|s| s.entries)))
    }

    pub fn user(&self, name: &str) -> Option<&PasswdEntry> {
        self.by_user.get(name).map(|&i| &self.users[i])
    }

    pub fn user_by_uid(&self, uid: u32) -> Option<&PasswdEntry> {
        self.by_uid.get(&uid).map(|&i| &self.users[i])
    }

    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.by_group.get(name).map(|&i| &self.groups[i])
    }

    pub fn group_by_gid(&self, gid: u32) -> Option<&GroupEntry> {
        self.by_gid.get(&gid).map(|&i| &self.groups[i])
    }

    /// A gid as its group's name, or the number when no group has it.
    pub fn group_name(&self, gid: u32) -> String {
        self.group_by_gid(gid).map(|g| g.name.clone()).unwrap_or_else(|| gid.to_string())
    }

    /// The groups whose member list names the user (supplementary groups),
    /// in file order.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups.iter().filter(|g| g.members.iter().any(|m| m == user)).map(|g| g.name.clone()).collect()
    }

    /// The user's password hash; None when shadow has no entry for them.
    pub fn password(&self, user: &str) -> Result<Option<&str>> {
        match &self.shadow {
            Ok(m) => Ok(m.get(user).map(|e| e.hash.as_str())),
            Err(e) => Err(Error::Failed(format!("{e} (needed to compare the password)"))),
        }
    }

    /// The user's password aging; None when shadow has no entry for them.
    pub fn aging(&self, user: &str) -> Result<Option<Aging>> {
        match &self.shadow {
            Ok(m) => Ok(m.get(user).map(|e| e.aging)),
            Err(e) => Err(Error::Failed(format!("{e} (needed to compare password aging)"))),
        }
    }
}

/// The passwd, group and shadow databases, read once per run and re-read
/// after tend changes them.
pub struct AccountsCache {
    paths: AccountsPaths,
    db: Option<AccountsDb>,
}

impl Default for AccountsCache {
    fn default() -> Self {
        Self::with_paths(AccountsPaths::default())
    }
}

impl AccountsCache {
    pub fn with_paths(paths: AccountsPaths) -> Self {
        Self { paths, db: None }
    }

    /// The databases, read on first use.
    pub fn db(&mut self) -> Result<&AccountsDb> {
        if self.db.is_none() {
            self.db = Some(AccountsDb::load(&self.paths)?);
        }
        match &self.db {
            Some(db) => Ok(db),
            None => Err(Error::Failed("internal error: accounts database not loaded".into())),
        }
    }

    /// Forgets what was read: the next `db()` reads the files again.
    pub fn invalidate(&mut self) {
        self.db = None;
    }
}

/// A `user` resource of this plan that creates (or keeps) the named user.
pub fn declared_user<'p>(plan: &'p Plan, name: &str) -> Option<(usize, &'p tend_model::resources::user::UserProps)> {
    declared(plan, Kind::User, name).and_then(|(i, r)| match &r.spec {
        Spec::User(p) if p.state == Presence::Present => Some((i, p)),
        _ => None,
    })
}

/// A `group` resource of this plan that creates (or keeps) the named group.
pub fn declared_group<'p>(plan: &'p Plan, name: &str) -> Option<(usize, &'p tend_model::resources::group::GroupProps)> {
    declared(plan, Kind::Group, name).and_then(|(i, r)| match &r.spec {
        Spec::Group(p) if p.state == Presence::Present => Some((i, p)),
        _ => None,
    })
}

fn declared<'p>(plan: &'p Plan, kind: Kind, name: &str) -> Option<(usize, &'p CompiledResource)> {
    plan.resources.iter().enumerate().find(|(_, r)| r.enabled && r.id.kind == kind && r.id.name == name)
}

/// Runs a shadow-utils command; a failure carries the tool's own message.
/// No secret is ever an argument (see [`set_password`]).
pub fn run_cmd(runner: &dyn Runner, argv: &[String]) -> Result<()> {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    run_ok(runner, &args, &[]).map(|_| ())
}

/// Sets a user's password hash through `chpasswd -e` on standard input, so
/// that the hash never appears in a process's arguments (`ps` shows those
/// to every local user). The hash is kept out of any error.
pub fn set_password(runner: &dyn Runner, user: &str, hash: &str) -> Result<()> {
    let argv = ["chpasswd", "-e"];
    let out = runner.run_input(&argv, format!("{user}:{hash}\n").as_bytes(), std::time::Duration::from_secs(600))?;
    if matches!(out.exit, crate::system::process::Exit::Code(0)) {
        return Ok(());
    }
    // Short values (`!`, `*`) are not worth hiding in the tool's text, and
    // replacing them would garble it.
    let tail = out.tail(15);
    let tail = if hash.len() > 2 { tail.replace(hash, "(sensitive)") } else { tail };
    Err(Error::Failed(format!("`chpasswd -e` for {user} failed with {}:\n{tail}", out.describe_exit())))
}

/// A list of names for a change: comma-separated, or `(none)`.
pub fn show_list<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "(none)".to_string();
    }
    names.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",")
}

/// The names once each, in first-seen order.
pub fn dedup(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().filter(|n| seen.insert(n.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_parses_and_skips_malformed_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    # a comment\n\
                    \n\
                    daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                    broken line without colons\n\
                    short:x:5:5\n\
                    baduid:x:abc:5::/:/bin/sh\n\
                    toomany:x:1:1:a:b:c:d\n\
                    :x:7:7::/:/bin/sh\n\
                    neg:x:-1:1::/:/bin/sh\n\
                    +nisuser::::::\n\
                    -nisgroup\n\
                    alice:x:1001:1001:Alice A,,,:/home/alice:/bin/bash\r\n\
                    \u{fffd}odd:x:1002:1002::/home/odd:\n";
        let p = parse_passwd(text);
        let names: Vec<&str> = p.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["root", "daemon", "alice", "\u{fffd}odd"]);
        assert_eq!(p.malformed, [5, 6, 7, 8, 9, 10]);
        assert_eq!(
            p.entries[2],
            PasswdEntry {
                name: "alice".into(),
                uid: 1001,
                gid: 1001,
                gecos: "Alice A,,,".into(),
                home: "/home/alice".into(),
                shell: "/bin/bash".into(),
            }
        );
        assert_eq!(p.entries[3].shell, "");
        // Nothing at all, or only junk.
        assert!(parse_passwd("").entries.is_empty());
        assert_eq!(parse_passwd(":::::::\n\0\n").malformed, [1, 2]);
    }

    #[test]
    fn group_parses_members_and_skips_malformed_lines() {
        let text =
            "root:x:0:\nsudo:x:27:alice,bob\ndocker:x:999: alice , ,carol,\nbad:x:notanumber:\nnofields\nx:x:1:a:b\n";
        let g = parse_group(text);
        assert_eq!(g.malformed, [4, 5, 6]);
        assert_eq!(g.entries.len(), 3);
        assert!(g.entries[0].members.is_empty());
        assert_eq!(g.entries[1].members, ["alice", "bob"]);
        assert_eq!(g.entries[2].members, ["alice", "carol"]);
    }

    #[test]
    fn shadow_keeps_only_the_hash() {
        let s = parse_shadow("root:*:19000:0:99999:7:::\nalice:$6$salt$hash:19000:0:99999:7:::\njunk\nshort:!\n");
        assert_eq!(s.malformed, [3]);
        let hashes: Vec<(&str, &str)> = s.entries.iter().map(|e| (e.name.as_str(), e.hash.as_str())).collect();
        assert_eq!(hashes, [("root", "*"), ("alice", "$6$salt$hash"), ("short", "!")]);
    }

    #[test]
    fn the_database_indexes_and_the_first_duplicate_wins() {
        let db = AccountsDb::from_text(
            "alice:x:1001:100::/home/alice:/bin/sh\nalice:x:2002:100::/x:/bin/sh\nbob:x:1002:27::/home/bob:/bin/sh\n",
            "users:x:100:\nsudo:x:27:alice\ndocker:x:999:bob,alice\n",
            Err("cannot read /etc/shadow: Permission denied".into()),
        );
        assert_eq!(db.user("alice").map(|u| u.uid), Some(1001));
        assert_eq!(db.user_by_uid(1002).map(|u| u.name.as_str()), Some("bob"));
        assert!(db.user("carol").is_none());
        assert_eq!(db.group("docker").map(|g| g.gid), Some(999));
        assert_eq!(db.group_name(27), "sudo");
        assert_eq!(db.group_name(4242), "4242");
        assert_eq!(db.groups_of("alice"), ["sudo", "docker"]);
        assert_eq!(db.groups_of("bob"), ["docker"]);
        let e = db.password("alice").expect_err("shadow unreadable").to_string();
        assert!(e.contains("Permission denied"), "{e}");
    }

    #[test]
    fn the_cache_reads_once_and_rereads_after_invalidate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = AccountsPaths::under(dir.path());
        std::fs::write(&paths.passwd, "alice:x:1001:1001::/home/alice:/bin/sh\n").expect("write");
        std::fs::write(&paths.group, "alice:x:1001:\n").expect("write");
        let mut cache = AccountsCache::with_paths(paths.clone());
        assert!(cache.db().expect("load").user("alice").is_some());
        // No shadow file: only password lookups fail.
        assert!(cache.db().expect("cached").password("alice").is_err());
        std::fs::write(&paths.passwd, "bob:x:1002:1002::/home/bob:/bin/sh\n").expect("write");
        assert!(cache.db().expect("cached").user("alice").is_some(), "read once");
        cache.invalidate();
        assert!(cache.db().expect("reload").user("bob").is_some());
        std::fs::remove_file(&paths.group).expect("rm");
        cache.invalidate();
        let e = cache.db().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("group"), "{e}");
    }

    #[test]
    fn a_failed_command_never_shows_the_password_hash() {
        let host = super::super::accounts_testkit::Host::new("", "", "");
        *host.runner.fail.borrow_mut() =
            Some(("chpasswd".into(), 1, "chpasswd: bad hash $6$s$secret for alice".into()));
        let e = set_password(&host.runner, "alice", "$6$s$secret").expect_err("fails").to_string();
        assert!(!e.contains("secret"), "{e}");
        assert!(e.contains("`chpasswd -e` for alice failed with exit code 1"), "{e}");
        assert!(e.contains("chpasswd: bad hash (sensitive) for alice"), "{e}");
        // The hash went on standard input, never in the arguments.
        assert_eq!(host.runner.calls.borrow()[0][..2], ["chpasswd", "-e"]);
        let argv: Vec<String> = ["usermod", "-s", "/bin/sh", "alice"].iter().map(|s| s.to_string()).collect();
        let e = run_cmd(&host.runner, &argv).expect_err("fails").to_string();
        assert!(e.contains("`usermod -s /bin/sh alice` failed"), "{e}");
    }
}
