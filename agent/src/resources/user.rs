//! `user`: local accounts, through useradd, usermod and userdel (one command
//! per change, carrying only what differs), and the user's
//! ~/.ssh/authorized_keys.
//!
//! The account databases are read once per run (see [`AccountsCache`]) and
//! re-read after each command. The password hash never appears in a change
//! or an error.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use similar::TextDiff;
use tend_model::resources::Presence;
use tend_model::resources::user::UserProps;
use tend_model::{CompiledResource, Plan, Spec};

pub use super::accounts_db::AccountsCache;
use super::accounts_db::{AccountsDb, declared_group, dedup, run_cmd, set_password, show_list};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct UserType;

const SENSITIVE: &str = "(sensitive)";
/// An authorized_keys file larger than this is not read: it differs.
const KEYS_READ_LIMIT: u64 = 1024 * 1024;

fn props(r: &CompiledResource) -> Result<&UserProps> {
    match &r.spec {
        Spec::User(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

impl ResourceType for UserType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let db = ctx.run.accounts.db()?;
        let d = diff(&r.id.name, p, db, ctx.plan, ctx.index)?;
        let mut changes = d.changes;
        if let Some(keys) = &p.ssh_authorized_keys {
            match &d.keys {
                // Not created yet (in a dry-run, or before apply): the file
                // cannot be read, it will be written.
                KeysAt::NewUser => changes.push(Change::new("ssh_authorized_keys", None, Some(count(keys.len())))),
                KeysAt::Home(t) => changes.extend(keys_change(t, keys, ctx.diffs)?),
                KeysAt::Nowhere => {}
            }
        }
        Ok(changes)
    }

    fn apply(&self, r: &CompiledResource, _changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let name = &r.id.name;
        let d = diff(name, p, ctx.run.accounts.db()?, ctx.plan, ctx.index)?;
        if d.argv.is_some() || d.password.is_some() {
            let mut result = d.argv.as_ref().map_or(Ok(()), |argv| run_cmd(ctx.runner, argv));
            if result.is_ok()
                && let Some(hash) = &d.password
            {
                result = set_password(ctx.runner, name, hash);
            }
            // Whatever happened, later resources must see the files as they are now.
            ctx.run.accounts.invalidate();
            result?;
        }
        // The keys, against the account as it is now (usermod may have
        // moved the home or changed the ids).
        if let Some(keys) = &p.ssh_authorized_keys {
            let d = diff(name, p, ctx.run.accounts.db()?, ctx.plan, ctx.index)?;
            match d.keys {
                KeysAt::Home(t) => {
                    if keys_change(&t, keys, false)?.is_some() {
                        write_keys(&t, keys_content(keys).as_bytes())?;
                    }
                }
                KeysAt::NewUser => {
                    return Err(Error::Failed(format!("user {name} does not exist after useradd")));
                }
                KeysAt::Nowhere => {}
            }
        }
        Ok(Applied::Done)
    }
}

/// What differs for one user, without the keys file: the changes to report
/// and the one command that makes them.
#[derive(Debug)]
struct Diff {
    changes: Vec<Change>,
    argv: Option<Vec<String>>,
    /// The hash to set after `argv` (through standard input, never an argument).
    password: Option<String>,
    keys: KeysAt,
}

/// Where the authorized_keys file is to be compared.
#[derive(Debug, PartialEq, Eq)]
enum KeysAt {
    /// The user is absent, or is to be removed.
    Nowhere,
    /// The user does not exist yet.
    NewUser,
    Home(KeysTarget),
}

/// The home the keys go in and who must own them, once this run is done.
#[derive(Debug, PartialEq, Eq)]
struct KeysTarget {
    user: String,
    home: PathBuf,
    uid: u32,
    /// None in a dry-run where the primary group does not exist yet.
    gid: Option<u32>,
}

/// A group the user should be in: its name, and its gid when it exists.
#[derive(Debug, Clone)]
struct GroupRef {
    name: String,
    gid: Option<u32>,
}

/// A group name or numeric gid to the group; a name that does not exist is
/// accepted when a group resource of the plan declares it.
fn resolve_group(db: &AccountsDb, plan: &Plan, spec: &str) -> Option<GroupRef> {
    if let Some(g) = db.group(spec) {
        return Some(GroupRef { name: g.name.clone(), gid: Some(g.gid) });
    }
    if let Ok(gid) = spec.parse::<u32>() {
        return db.group_by_gid(gid).map(|g| GroupRef { name: g.name.clone(), gid: Some(gid) });
    }
    declared_group(plan, spec).map(|_| GroupRef { name: spec.to_string(), gid: None })
}

/// The groups of the plan whose `members` list this user: (index, name).
fn plan_memberships(plan: &Plan, user: &str) -> Vec<(usize, String)> {
    plan.resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.enabled)
        .filter_map(|(i, r)| match &r.spec {
            Spec::Group(g) if g.state == Presence::Present && g.members.iter().flatten().any(|m| m == user) => {
                Some((i, r.id.name.clone()))
            }
            _ => None,
        })
        .collect()
}

fn ensure(from: &str, to: &str) -> Change {
    Change::new("ensure", Some(from.into()), Some(to.into()))
}

fn count(n: usize) -> String {
    if n == 1 { "1 key".to_string() } else { format!("{n} keys") }
}

fn s(v: &str) -> String {
    v.to_string()
}

/// Computes the changes and the command for user `name`. `index` is the
/// resource's place in the plan.
fn diff(name: &str, p: &UserProps, db: &AccountsDb, plan: &Plan, index: usize) -> Result<Diff> {
    let current = db.user(name);
    if p.state == Presence::Absent {
        let mut d = Diff { changes: Vec::new(), argv: None, password: None, keys: KeysAt::Nowhere };
        if current.is_some() {
            d.changes.push(ensure("present", "absent"));
            d.argv = Some(userdel_argv(name, p));
        }
        return Ok(d);
    }

    // Fields of /etc/passwd and /etc/shadow: a ':' or a newline would
    // corrupt them (the value itself is not shown: it may be the hash).
    for (prop, v) in [("home", &p.home), ("shell", &p.shell), ("password", &p.password)] {
        if v.as_deref().is_some_and(|v| v.contains([':', '\n'])) {
            return Err(Error::Failed(format!("{prop} must not contain ':' or a newline")));
        }
    }

    // Groups: each must exist, or be declared by this plan (which then
    // orders it before this user).
    let mut missing = Vec::new();
    let mut resolve = |spec: &String| {
        let g = resolve_group(db, plan, spec);
        if g.is_none() {
            missing.push(spec.clone());
        }
        g
    };
    let primary = p.group.as_ref().and_then(&mut resolve);
    let wanted: Option<Vec<String>> =
        p.groups.as_ref().map(|gs| dedup(gs.iter().filter_map(&mut resolve).map(|g| g.name)));
    if !missing.is_empty() {
        let missing = dedup(missing);
        let names = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
        let (what, verb) = if missing.len() == 1 { ("group", "does") } else { ("groups", "do") };
        return Err(Error::Failed(format!(
            "{what} {names} {verb} not exist (create it first or declare it with a group resource)"
        )));
    }
    if let Some(uid) = p.uid {
        if let Some(other) = db.user_by_uid(uid).filter(|u| u.name != name) {
            return Err(Error::Failed(format!("uid {uid} is already used by user `{}`", other.name)));
        }
    }

    let Some(cur) = current else {
        // Groups of the plan ordered before this user that list it as a
        // member could not add it (it did not exist): useradd does.
        let before = plan_memberships(plan, name).into_iter().filter(|(i, _)| *i < index).map(|(_, g)| g);
        let groups: Vec<String> = match &wanted {
            Some(w) => dedup(w.iter().cloned().chain(before)),
            None => dedup(before),
        };
        let mut changes = vec![ensure("absent", "present")];
        let mut add = |prop: &str, v: Option<String>| {
            if let Some(v) = v {
                changes.push(Change::new(prop, None, Some(v)));
            }
        };
        add("uid", p.uid.map(|u| u.to_string()));
        add("group", primary.as_ref().map(|g| g.name.clone()));
        add("groups", Some(show_list(&groups)).filter(|_| !groups.is_empty()));
        add("home", p.home.clone());
        add("shell", p.shell.clone());
        add("comment", p.comment.clone());
        add("password", p.password.as_ref().map(|_| s(SENSITIVE)));
        return Ok(Diff {
            changes,
            argv: Some(useradd_argv(name, p, &groups)),
            password: p.password.clone(),
            keys: KeysAt::NewUser,
        });
    };

    let mut changes = Vec::new();
    let mut args: Vec<String> = Vec::new();
    if let Some(uid) = p.uid.filter(|u| *u != cur.uid) {
        changes.push(Change::new("uid", Some(cur.uid.to_string()), Some(uid.to_string())));
        args.extend([s("-u"), uid.to_string()]);
    }
    if let (Some(g), Some(spec)) = (&primary, &p.group) {
        if g.gid != Some(cur.gid) {
            changes.push(Change::new("group", Some(db.group_name(cur.gid)), Some(g.name.clone())));
            args.extend([s("-g"), spec.clone()]);
        }
    }
    if let Some(wanted) = &wanted {
        let have = db.groups_of(name);
        if p.append {
            let add: Vec<String> = wanted.iter().filter(|g| !have.contains(g)).cloned().collect();
            if !add.is_empty() {
                let after: Vec<String> = have.iter().chain(&add).cloned().collect();
                changes.push(Change::new("groups", Some(show_list(&have)), Some(show_list(&after))));
                args.extend([s("-a"), s("-G"), add.join(",")]);
            }
        } else {
            // Exactly these, but never take the user out of a group whose
            // resource in this plan lists it as a member (they would fight).
            let keep = plan_memberships(plan, name).into_iter().map(|(_, g)| g).filter(|g| have.contains(g));
            let want = dedup(wanted.iter().cloned().chain(keep));
            let same = want.len() == have.len() && want.iter().all(|g| have.contains(g));
            if !same {
                let mut from = have.clone();
                from.sort();
                let mut to = want.clone();
                to.sort();
                changes.push(Change::new("groups", Some(show_list(&from)), Some(show_list(&to))));
                args.extend([s("-G"), want.join(",")]);
            }
        }
    }
    if let Some(home) = p.home.as_ref().filter(|h| **h != cur.home) {
        changes.push(Change::new("home", Some(cur.home.clone()), Some(home.clone())));
        args.extend([s("-d"), home.clone()]);
        if p.manage_home {
            args.push(s("-m"));
        }
    }
    if let Some(shell) = p.shell.as_ref().filter(|v| **v != cur.shell) {
        changes.push(Change::new("shell", Some(cur.shell.clone()), Some(shell.clone())));
        args.extend([s("-s"), shell.clone()]);
    }
    if let Some(comment) = p.comment.as_ref().filter(|v| **v != cur.gecos) {
        changes.push(Change::new("comment", Some(cur.gecos.clone()), Some(comment.clone())));
        args.extend([s("-c"), comment.clone()]);
    }
    let mut password = None;
    if let Some(hash) = &p.password {
        let have = db.password(name)?;
        if have != Some(hash.as_str()) {
            changes.push(Change::new("password", have.map(|_| s(SENSITIVE)), Some(s(SENSITIVE))));
            password = Some(hash.clone());
        }
    }
    let argv = (!args.is_empty()).then(|| {
        let mut argv = vec![s("usermod")];
        argv.extend(args);
        argv.push(name.to_string());
        argv
    });

    // The keys go in the home the user will have: usermod -m moves the old
    // one (and its keys) there; without -m the new home is used as it is.
    let home = match &p.home {
        Some(h) if *h != cur.home && !p.manage_home => h.clone(),
        _ => cur.home.clone(),
    };
    let gid = match &primary {
        Some(g) => g.gid,
        None => Some(cur.gid),
    };
    let keys = KeysAt::Home(KeysTarget {
        user: name.to_string(),
        home: PathBuf::from(home),
        uid: p.uid.unwrap_or(cur.uid),
        gid,
    });
    Ok(Diff { changes, argv, password, keys })
}

/// `useradd` with only what the recipe sets.
fn useradd_argv(name: &str, p: &UserProps, groups: &[String]) -> Vec<String> {
    let mut argv = vec![s("useradd")];
    if p.system {
        argv.push(s("-r"));
    }
    if let Some(uid) = p.uid {
        argv.extend([s("-u"), uid.to_string()]);
    }
    if let Some(g) = &p.group {
        argv.extend([s("-g"), g.clone()]);
    }
    if !groups.is_empty() {
        argv.extend([s("-G"), groups.join(",")]);
    }
    if let Some(h) = &p.home {
        argv.extend([s("-d"), h.clone()]);
    }
    argv.push(s(if p.manage_home { "-m" } else { "-M" }));
    if let Some(v) = &p.shell {
        argv.extend([s("-s"), v.clone()]);
    }
    if let Some(v) = &p.comment {
        argv.extend([s("-c"), v.clone()]);
    }
    argv.push(name.to_string());
    argv
}

fn userdel_argv(name: &str, p: &UserProps) -> Vec<String> {
    let mut argv = vec![s("userdel")];
    if p.remove_home {
        argv.push(s("-r"));
    }
    argv.push(name.to_string());
    argv
}

/// The file the recipe asks for: one key a line.
fn keys_content(keys: &[String]) -> String {
    keys.iter().map(|k| format!("{}\n", k.trim())).collect()
}

/// What is on disk now under the home directory.
#[derive(Debug)]
struct OnDisk {
    /// ~/.ssh, when it exists.
    dir: Option<FileStat>,
    /// ~/.ssh/authorized_keys, when it exists (lstat: a symlink is itself).
    file: Option<FileStat>,
    /// Its content, when it is a regular file of a sane size.
    content: Option<Vec<u8>>,
}

fn is(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

fn nix_err(what: String) -> impl FnOnce(Errno) -> Error {
    move |e| Error::Io { context: what, source: std::io::Error::from(e) }
}

fn open_home(t: &KeysTarget) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match nix::fcntl::open(&t.home, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Err(Error::Failed(format!(
            "home directory {} of user {} does not exist (needed for ssh_authorized_keys)",
            t.home.display(),
            t.user
        ))),
        Err(e) => Err(nix_err(format!("open {}", t.home.display()))(e)),
    }
}

/// Opens ~/.ssh without following a symlink: the user controls their home,
/// and root must not be led to write elsewhere.
fn open_ssh_dir(home: &OwnedFd, t: &KeysTarget) -> Result<Option<OwnedFd>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match nix::fcntl::openat(home, ".ssh", flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => Err(Error::Failed(format!(
            "{}/.ssh is not a directory (a symlink or a file); refusing to manage ssh_authorized_keys",
            t.home.display()
        ))),
        Err(e) => Err(nix_err(format!("open {}/.ssh", t.home.display()))(e)),
    }
}

fn read_keys(t: &KeysTarget) -> Result<OnDisk> {
    let path = t.home.join(".ssh/authorized_keys");
    let home = open_home(t)?;
    let Some(dir) = open_ssh_dir(&home, t)? else {
        return Ok(OnDisk { dir: None, file: None, content: None });
    };
    let dir_st = nix::sys::stat::fstat(&dir).map_err(nix_err(format!("stat {}/.ssh", t.home.display())))?;
    let file = match nix::sys::stat::fstatat(&dir, "authorized_keys", AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(OnDisk { dir: Some(dir_st), file: None, content: None }),
        Err(e) => return Err(nix_err(format!("stat {}", path.display()))(e)),
    };
    let mut content = None;
    if is(&file, SFlag::S_IFREG) && (file.st_size as u64) <= KEYS_READ_LIMIT {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&dir, "authorized_keys", flags, Mode::empty())
            .map_err(nix_err(format!("open {}", path.display())))?;
        let mut buf = Vec::new();
        File::from(fd)
            .take(KEYS_READ_LIMIT + 1)
            .read_to_end(&mut buf)
            .map_err(Error::io(format!("read {}", path.display())))?;
        content = Some(buf);
    }
    Ok(OnDisk { dir: Some(dir_st), file: Some(file), content })
}

/// Owner or mode problems of a file, as words for the report.
fn meta_problems(what: &str, st: &FileStat, t: &KeysTarget, mode: u32) -> Vec<String> {
    let mut out = Vec::new();
    let have = st.st_mode & 0o7777;
    if have != mode {
        out.push(format!("{what} mode {have:04o}"));
    }
    if st.st_uid != t.uid || t.gid.is_some_and(|g| g != st.st_gid) {
        out.push(format!("{what} owned by {}:{}", st.st_uid, st.st_gid));
    }
    out
}

/// The change to ~/.ssh/authorized_keys, if any: content, or owner and mode
/// of the file and of ~/.ssh.
fn keys_change(t: &KeysTarget, keys: &[String], diffs: bool) -> Result<Option<Change>> {
    let want = keys_content(keys);
    let found = read_keys(t)?;
    let mut problems = Vec::new();
    if let Some(d) = &found.dir {
        problems.extend(meta_problems("~/.ssh", d, t, 0o700));
    }
    let from = match (&found.file, &found.content) {
        (None, _) => None,
        (Some(_), Some(c)) => {
            if *c != want.as_bytes() {
                let n = String::from_utf8_lossy(c)
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .count();
                problems.insert(0, count(n));
            }
            if let Some(f) = &found.file {
                problems.extend(meta_problems("file", f, t, 0o600));
            }
            (!problems.is_empty()).then(|| problems.join(", "))
        }
        (Some(f), None) if is(f, SFlag::S_IFREG) => Some("a file too large to read".to_string()),
        (Some(_), None) => Some("not a regular file".to_string()),
    };
    let missing = found.file.is_none();
    if !missing && from.is_none() {
        return Ok(None);
    }
    let mut c = Change::new("ssh_authorized_keys", from, Some(count(keys.len())));
    if diffs {
        if let Some(old) = found.content.as_deref().and_then(|b| std::str::from_utf8(b).ok()) {
            if old != want {
                let name = t.home.join(".ssh/authorized_keys").display().to_string();
                c.diff = Some(
                    TextDiff::from_lines(old, want.as_str())
                        .unified_diff()
                        .context_radius(3)
                        .header(&name, &name)
                        .to_string(),
                );
            }
        }
    }
    Ok(Some(c))
}

/// Writes ~/.ssh/authorized_keys atomically (temporary file in ~/.ssh,
/// fsync, rename), ~/.ssh 0700 and the file 0600, both owned by the user and
/// its primary group. Never follows a symlink below the home directory.
fn write_keys(t: &KeysTarget, content: &[u8]) -> Result<()> {
    let ssh = t.home.join(".ssh");
    let path = ssh.join("authorized_keys");
    let home = open_home(t)?;
    match nix::sys::stat::mkdirat(&home, ".ssh", Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(nix_err(format!("mkdir {}", ssh.display()))(e)),
    }
    let dir =
        open_ssh_dir(&home, t)?.ok_or_else(|| Error::Failed(format!("{} vanished while writing", ssh.display())))?;
    let gid = t.gid;
    let own = |f: &File, what: &Path, mode: u32| -> Result<()> {
        std::os::unix::fs::fchown(f, Some(t.uid), gid).map_err(Error::io(format!("chown {}", what.display())))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(Error::io(format!("chmod {}", what.display())))
    };
    let dir = File::from(dir);
    own(&dir, &ssh, 0o700)?;

    let tmp = crate::state::temp_path(Path::new("authorized_keys"));
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(&dir, &tmp, flags, Mode::from_bits_truncate(0o600))
        .map_err(nix_err(format!("create {}", ssh.join(&tmp).display())))?;
    let mut f = File::from(fd);
    let written = (|| -> Result<()> {
        f.write_all(content).map_err(Error::io(format!("write {}", ssh.join(&tmp).display())))?;
        own(&f, &path, 0o600)?;
        f.sync_all().map_err(Error::io(format!("fsync {}", ssh.join(&tmp).display())))?;
        nix::fcntl::renameat(&dir, &tmp, &dir, "authorized_keys")
            .map_err(nix_err(format!("rename to {}", path.display())))
    })();
    if let Err(e) = written {
        let _ = nix::unistd::unlinkat(&dir, &tmp, nix::unistd::UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    dir.sync_all().map_err(Error::io(format!("fsync {}", ssh.display())))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::super::accounts_db::testkit::{Host, change, me, props as names};
    use super::*;

    fn user(yaml: &str) -> Spec {
        Spec::User(serde_yaml::from_str(yaml).expect("user props"))
    }

    fn group(yaml: &str) -> Spec {
        Spec::Group(serde_yaml::from_str(yaml).expect("group props"))
    }

    fn argv(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    const PASSWD: &str = "alice:x:1001:1001:Alice:/home/alice:/bin/bash\n\
                          bob:x:1002:100::/home/bob:/bin/sh\n";
    const GROUP: &str = "alice:x:1001:\nusers:x:100:\nadm:x:4:alice\nsudo:x:27:\ndocker:x:999:bob,alice\n";
    const SHADOW: &str = "alice:$6$old$oldhash:19000:0:99999:7:::\nbob:!:19000:0:99999:7:::\n";

    fn db() -> AccountsDb {
        AccountsDb::from_text(PASSWD, GROUP, Ok(SHADOW))
    }

    /// The diff of one user against the default database and an empty plan.
    fn diff_of(name: &str, yaml: &str) -> Result<Diff> {
        let Spec::User(p) = user(yaml) else { unreachable!() };
        diff(name, &p, &db(), &Plan::default(), 0)
    }

    #[test]
    fn useradd_carries_only_what_is_set() {
        let d = diff_of(
            "carol",
            "{system: true, uid: 2001, group: users, groups: [adm, docker, adm], home: /srv/carol, \
             shell: /bin/zsh, comment: Carol C, password: $6$salt$hash}",
        )
        .expect("diff");
        assert_eq!(
            d.argv,
            argv(&[
                "useradd",
                "-r",
                "-u",
                "2001",
                "-g",
                "users",
                "-G",
                "adm,docker",
                "-d",
                "/srv/carol",
                "-m",
                "-s",
                "/bin/zsh",
                "-c",
                "Carol C",
                "carol"
            ])
        );
        assert_eq!(names(&d.changes), ["ensure", "uid", "group", "groups", "home", "shell", "comment", "password"]);
        assert_eq!(change(&d.changes, "ensure").to.as_deref(), Some("present"));
        assert_eq!(change(&d.changes, "groups").to.as_deref(), Some("adm,docker"));
        let pw = change(&d.changes, "password");
        assert_eq!((pw.from.as_deref(), pw.to.as_deref()), (None, Some("(sensitive)")));
        assert_eq!(d.keys, KeysAt::NewUser);

        assert_eq!(diff_of("carol", "{}").expect("diff").argv, argv(&["useradd", "-m", "carol"]));
        assert_eq!(
            diff_of("carol", "{manage_home: false, groups: []}").expect("diff").argv,
            argv(&["useradd", "-M", "carol"])
        );
        // A primary group given as a gid is passed as it is.
        assert_eq!(
            diff_of("carol", "{group: '999'}").expect("diff").argv,
            argv(&["useradd", "-g", "999", "-m", "carol"])
        );
    }

    #[test]
    fn an_account_that_matches_has_no_changes() {
        let d = diff_of(
            "alice",
            "{uid: 1001, group: alice, groups: [docker, adm], home: /home/alice, shell: /bin/bash, \
             comment: Alice, password: $6$old$oldhash}",
        )
        .expect("diff");
        assert!(d.changes.is_empty(), "{:?}", d.changes);
        assert_eq!(d.argv, None);
        // The primary group as a gid matches too.
        assert!(diff_of("bob", "{group: '100'}").expect("diff").changes.is_empty());
    }

    #[test]
    fn usermod_carries_only_what_differs_in_one_call() {
        let d = diff_of("alice", "{groups: [sudo, docker], shell: /bin/zsh, comment: Alice A, home: /home/alice}")
            .expect("diff");
        assert_eq!(d.argv, argv(&["usermod", "-G", "sudo,docker", "-s", "/bin/zsh", "-c", "Alice A", "alice"]));
        assert_eq!(names(&d.changes), ["groups", "shell", "comment"]);
        let g = change(&d.changes, "groups");
        assert_eq!((g.from.as_deref(), g.to.as_deref()), (Some("adm,docker"), Some("docker,sudo")));
        let sh = change(&d.changes, "shell");
        assert_eq!((sh.from.as_deref(), sh.to.as_deref()), (Some("/bin/bash"), Some("/bin/zsh")));

        let d = diff_of("alice", "{uid: 3000, group: users}").expect("diff");
        assert_eq!(d.argv, argv(&["usermod", "-u", "3000", "-g", "users", "alice"]));
        let g = change(&d.changes, "group");
        assert_eq!((g.from.as_deref(), g.to.as_deref()), (Some("alice"), Some("users")));

        // No supplementary groups at all.
        let d = diff_of("alice", "{groups: []}").expect("diff");
        assert_eq!(d.argv, argv(&["usermod", "-G", "", "alice"]));
        assert_eq!(change(&d.changes, "groups").to.as_deref(), Some("(none)"));
    }

    #[test]
    fn append_only_adds_the_missing_groups() {
        let d = diff_of("alice", "{groups: [docker, sudo], append: true}").expect("diff");
        assert_eq!(d.argv, argv(&["usermod", "-a", "-G", "sudo", "alice"]));
        let g = change(&d.changes, "groups");
        assert_eq!((g.from.as_deref(), g.to.as_deref()), (Some("adm,docker"), Some("adm,docker,sudo")));
        // adm is extra but stays: nothing to do.
        assert!(diff_of("alice", "{groups: [docker], append: true}").expect("diff").changes.is_empty());
    }

    #[test]
    fn home_is_moved_only_when_managed() {
        let d = diff_of("alice", "{home: /srv/alice}").expect("diff");
        assert_eq!(d.argv, argv(&["usermod", "-d", "/srv/alice", "-m", "alice"]));
        let KeysAt::Home(t) = &d.keys else { panic!("{:?}", d.keys) };
        assert_eq!(t.home, Path::new("/home/alice"), "the keys move with the home");
        let d = diff_of("alice", "{home: /srv/alice, manage_home: false}").expect("diff");
        assert_eq!(d.argv, argv(&["usermod", "-d", "/srv/alice", "alice"]));
        let KeysAt::Home(t) = &d.keys else { panic!("{:?}", d.keys) };
        assert_eq!(t.home, Path::new("/srv/alice"));
    }

    #[test]
    fn the_password_is_compared_but_never_shown() {
        let d = diff_of("alice", "{password: $6$new$newhash}").expect("diff");
        // Only a chpasswd on standard input sets it: no argument carries it.
        assert_eq!(d.argv, None);
        assert_eq!(d.password.as_deref(), Some("$6$new$newhash"));
        let c = change(&d.changes, "password");
        assert_eq!((c.from.as_deref(), c.to.as_deref()), (Some("(sensitive)"), Some("(sensitive)")));
        assert!(!format!("{:?}", d.changes).contains("newhash"));
        assert!(diff_of("bob", "{password: '!'}").expect("diff").changes.is_empty());
        // Without a readable shadow, a managed password is an error; other
        // properties still work.
        let db = AccountsDb::from_text(PASSWD, GROUP, Err("cannot read /etc/shadow: Permission denied".into()));
        let Spec::User(p) = user("{password: $6$new$newhash}") else { unreachable!() };
        let e = diff("alice", &p, &db, &Plan::default(), 0).expect_err("no shadow").to_string();
        assert!(e.contains("/etc/shadow") && !e.contains("newhash"), "{e}");
        let Spec::User(p) = user("{shell: /bin/bash}") else { unreachable!() };
        assert!(diff("alice", &p, &db, &Plan::default(), 0).expect("diff").changes.is_empty());
        let e = diff_of("alice", "{password: \"$6$a$b:c\"}").expect_err("colon").to_string();
        assert_eq!(e, "password must not contain ':' or a newline");
    }

    #[test]
    fn userdel_removes_the_home_only_when_asked() {
        let d = diff_of("alice", "{state: absent}").expect("diff");
        assert_eq!(d.argv, argv(&["userdel", "alice"]));
        let e = change(&d.changes, "ensure");
        assert_eq!((e.from.as_deref(), e.to.as_deref()), (Some("present"), Some("absent")));
        assert_eq!(
            diff_of("alice", "{state: absent, remove_home: true}").expect("diff").argv,
            argv(&["userdel", "-r", "alice"])
        );
        let d = diff_of("nobody", "{state: absent, ssh_authorized_keys: []}").expect("diff");
        assert!(d.changes.is_empty() && d.argv.is_none() && d.keys == KeysAt::Nowhere);
    }

    #[test]
    fn missing_groups_are_errors_naming_them_unless_the_plan_declares_them() {
        let e =
            diff_of("carol", "{group: nosuchgroup, groups: [adm, other, '4242']}").expect_err("missing").to_string();
        assert!(e.contains("`nosuchgroup`, `other`, `4242`"), "{e}");
        let e = diff_of("alice", "{groups: [nosuchgroup]}").expect_err("missing").to_string();
        assert!(e.contains("group `nosuchgroup` does not exist"), "{e}");

        let mut plan = Plan::default();
        let Spec::Group(g) = group("{}") else { unreachable!() };
        let mut declared = super::super::accounts_db::testkit::resource("declared", Spec::Group(g.clone()));
        plan.resources.push(declared.clone());
        let Spec::User(p) = user("{group: declared, groups: [declared, adm]}") else { unreachable!() };
        let d = diff("dave", &p, &db(), &plan, 1).expect("declared");
        assert_eq!(d.argv, argv(&["useradd", "-g", "declared", "-G", "declared,adm", "-m", "dave"]));
        // An existing user moving to a declared group that does not exist yet (dry-run).
        let Spec::User(p) = user("{group: declared}") else { unreachable!() };
        let d = diff("alice", &p, &db(), &plan, 1).expect("declared");
        assert_eq!(d.argv, argv(&["usermod", "-g", "declared", "alice"]));
        // A disabled or absent group resource declares nothing.
        declared.enabled = false;
        plan.resources[0] = declared.clone();
        assert!(diff("dave", &p, &db(), &plan, 1).is_err());
        plan.resources[0] = super::super::accounts_db::testkit::resource("declared", group("{state: absent}"));
        assert!(diff("dave", &p, &db(), &plan, 1).is_err());
    }

    #[test]
    fn a_uid_used_by_another_user_is_an_error() {
        let e = diff_of("alice", "{uid: 1002}").expect_err("taken").to_string();
        assert!(e.contains("uid 1002 is already used by user `bob`"), "{e}");
        assert!(diff_of("alice", "{uid: 1001}").expect("own uid").changes.is_empty());
    }

    #[test]
    fn groups_that_list_the_user_in_the_plan_are_kept_and_added_at_creation() {
        let mut plan = Plan::default();
        for (name, yaml) in [("adm", "{members: [alice, carol]}"), ("wheel", "{members: [carol]}")] {
            plan.resources.push(super::super::accounts_db::testkit::resource(name, group(yaml)));
        }
        // alice is in adm (exact list without it): kept, because group:adm lists her.
        let Spec::User(p) = user("{groups: [docker]}") else { unreachable!() };
        assert!(diff("alice", &p, &db(), &plan, 2).expect("diff").changes.is_empty());
        // carol, created after both groups (which could not add her): useradd adds her.
        let Spec::User(p) = user("{group: wheel}") else { unreachable!() };
        let d = diff("carol", &p, &db(), &plan, 2).expect("diff");
        assert_eq!(d.argv, argv(&["useradd", "-g", "wheel", "-G", "adm,wheel", "-m", "carol"]));
        // Ordered before them: the groups add her themselves.
        let d = diff("carol", &p, &db(), &plan, 0).expect("diff");
        assert_eq!(d.argv, argv(&["useradd", "-g", "wheel", "-m", "carol"]));
    }

    const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIaaaa a@example";
    const KEY_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIbbbb b@example";

    fn host() -> Host {
        Host::new(
            "alice:x:{uid}:{gid}:Alice:{home}/alice:/bin/bash\n",
            "alice:x:{gid}:\nadm:x:4:\n",
            "alice:!:19000:0:99999:7:::\n",
        )
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).map(|m| m.mode() & 0o7777).unwrap_or(0)
    }

    #[test]
    fn a_new_user_converges_and_a_second_check_finds_nothing() {
        let mut h = host();
        let home = h.home("carol").display().to_string();
        h.declare(vec![(
            "carol",
            user(&format!(
                "{{groups: [adm], home: {home}, shell: /bin/bash, password: $6$s$h, ssh_authorized_keys: [{KEY_A:?}, {KEY_B:?}]}}"
            )),
        )]);

        // Dry-run: reported, nothing run or written.
        let dry = h.check(0, true).expect("dry-run");
        assert_eq!(names(&dry), ["ensure", "groups", "home", "shell", "password", "ssh_authorized_keys"]);
        assert_eq!(change(&dry, "ssh_authorized_keys").to.as_deref(), Some("2 keys"));
        assert!(h.take_calls().is_empty());
        assert!(!h.home("carol").exists());

        let changes = h.converge(0).expect("converge");
        assert_eq!(names(&changes), names(&dry));
        assert_eq!(
            h.take_calls(),
            [format!("useradd -G adm -d {home} -m -s /bin/bash carol"), "chpasswd -e carol:$6$s$h\n".to_string()],
            "one useradd and the password on stdin; verify re-read the files"
        );
        let keys = h.home("carol").join(".ssh/authorized_keys");
        assert_eq!(std::fs::read_to_string(&keys).expect("keys"), format!("{KEY_A}\n{KEY_B}\n"));
        assert_eq!((mode(&h.home("carol").join(".ssh")), mode(&keys)), (0o700, 0o600));
        let md = std::fs::metadata(&keys).expect("stat");
        assert_eq!((md.uid(), md.gid()), me());
        // No temporary file left behind.
        let left: Vec<_> = std::fs::read_dir(h.home("carol").join(".ssh")).expect("ls").flatten().collect();
        assert_eq!(left.len(), 1);

        assert_eq!(h.check(0, false).expect("again"), vec![]);
        assert!(h.take_calls().is_empty());
    }

    #[test]
    fn keys_are_rewritten_when_content_or_mode_differs_and_symlinks_are_not_followed() {
        let mut h = host();
        h.declare(vec![("alice", user(&format!("{{ssh_authorized_keys: [{KEY_A:?}]}}")))]);
        let ssh = h.home("alice").join(".ssh");
        // No home at all: a clear error.
        let e = h.check(0, false).expect_err("no home").to_string();
        assert!(e.contains("home directory") && e.contains("does not exist"), "{e}");

        std::fs::create_dir_all(&ssh).expect("mkdir");
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(ssh.join("authorized_keys"), format!("{KEY_B}\n")).expect("write");
        std::fs::set_permissions(ssh.join("authorized_keys"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let c = h.check(0, false).expect("check");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].from.as_deref(), Some("1 key, ~/.ssh mode 0755, file mode 0644"));
        assert!(c[0].diff.as_deref().is_some_and(|d| d.contains(&format!("-{KEY_B}"))), "{c:?}");
        h.converge(0).expect("converge");
        assert_eq!(mode(&ssh), 0o700);
        assert_eq!(h.check(0, false).expect("again"), vec![]);

        // Same content, wrong mode: only the mode is repaired.
        std::fs::set_permissions(ssh.join("authorized_keys"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let c = h.check(0, false).expect("check");
        assert_eq!(c[0].from.as_deref(), Some("file mode 0644"));
        h.converge(0).expect("converge");

        // A symlink is replaced, its target left alone.
        let target = h.dir.path().join("elsewhere");
        std::fs::write(&target, "do not touch\n").expect("write");
        std::fs::remove_file(ssh.join("authorized_keys")).expect("rm");
        std::os::unix::fs::symlink(&target, ssh.join("authorized_keys")).expect("symlink");
        assert_eq!(h.check(0, false).expect("check")[0].from.as_deref(), Some("not a regular file"));
        h.converge(0).expect("converge");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "do not touch\n");
        assert!(std::fs::symlink_metadata(ssh.join("authorized_keys")).expect("stat").is_file());

        // ~/.ssh itself a symlink: refused.
        std::fs::remove_dir_all(&ssh).expect("rm");
        std::os::unix::fs::symlink(h.dir.path(), &ssh).expect("symlink");
        let e = h.check(0, false).expect_err("symlinked .ssh").to_string();
        assert!(e.contains(".ssh is not a directory"), "{e}");
        assert!(!h.dir.path().join("authorized_keys").exists());
        assert!(h.take_calls().is_empty(), "keys alone need no command");
    }

    #[test]
    fn an_empty_key_list_writes_an_empty_file() {
        let mut h = host();
        std::fs::create_dir_all(h.home("alice")).expect("mkdir");
        h.declare(vec![("alice", user("{ssh_authorized_keys: []}"))]);
        let c = h.converge(0).expect("converge");
        assert_eq!((c[0].from.as_deref(), c[0].to.as_deref()), (None, Some("0 keys")));
        assert_eq!(std::fs::read(h.home("alice").join(".ssh/authorized_keys")).expect("read"), b"");
        assert_eq!(h.check(0, false).expect("again"), vec![]);
    }

    #[test]
    fn changes_to_an_existing_user_converge_with_one_usermod() {
        let mut h = host();
        h.declare(vec![("alice", user("{groups: [adm], shell: /bin/zsh, comment: Alice A, password: $6$s$h}"))]);
        let c = h.converge(0).expect("converge");
        assert_eq!(names(&c), ["groups", "shell", "comment", "password"]);
        assert_eq!(h.take_calls(), ["usermod -G adm -s /bin/zsh -c Alice A alice", "chpasswd -e alice:$6$s$h\n"]);
        assert!(h.file("shadow").contains("alice:$6$s$h:"), "{}", h.file("shadow"));
        assert!(h.file("passwd").contains(":Alice A:") && h.file("group").contains("adm:x:4:alice"));
        assert_eq!(h.check(0, false).expect("again"), vec![]);
    }

    #[test]
    fn a_failing_tool_reports_its_message_without_the_hash() {
        let mut h = host();
        h.declare(vec![("carol", user("{password: $6$salt$topsecret}"))]);
        *h.runner.fail.borrow_mut() =
            Some(("chpasswd".into(), 1, "chpasswd: line 1: bad hash $6$salt$topsecret".into()));
        let c = h.check(0, false).expect("check");
        let r = h.plan.resources[0].clone();
        let e = UserType.apply(&r, &c, &mut h.ctx(0, false)).expect_err("fails").to_string();
        assert!(e.contains("chpasswd: line 1: bad hash (sensitive)") && e.contains("exit code 1"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
        // No argument of any command carried the hash.
        assert!(h.take_calls().iter().all(|c| !c.split(' ').any(|a| a == "$6$salt$topsecret")));
    }

    #[test]
    fn a_user_in_a_group_declared_earlier_is_reported_in_dry_run_and_created_for_real() {
        let mut h = host();
        h.declare(vec![("ops", group("{gid: 2001}")), ("dave", user("{group: ops, groups: [ops, adm]}"))]);
        // Dry-run: the group does not exist yet; the user says what it would do.
        let dry = h.check(1, true).expect("dry-run");
        assert_eq!(names(&dry), ["ensure", "group", "groups"]);
        assert!(h.take_calls().is_empty());
        h.converge(0).expect("group");
        h.converge(1).expect("user");
        assert_eq!(h.take_calls(), ["groupadd -g 2001 ops", "useradd -g ops -G ops,adm -m dave"]);
        assert_eq!(h.check(0, false).expect("group again"), vec![]);
        assert_eq!(h.check(1, false).expect("user again"), vec![]);
        // Removing it.
        h.plan.resources[1] = super::super::accounts_db::testkit::resource("dave", user("{state: absent}"));
        h.converge(1).expect("remove");
        assert_eq!(h.take_calls(), ["userdel dave"]);
        assert!(!h.file("passwd").contains("dave"));
    }
}
