//! `user`: local accounts, through useradd, usermod and userdel (one command
//! per change, carrying only what differs), and the user's
//! ~/.ssh/authorized_keys.
//!
//! The account databases are read once per run (see [`AccountsCache`]) and
//! re-read after each command. The password hash never appears in a change
//! or an error.

use std::path::PathBuf;

use tend_model::resources::Presence;
use tend_model::resources::user::UserProps;
use tend_model::{CompiledResource, Plan, Spec};

pub use super::support::accounts_db::AccountsCache;
use super::support::accounts_db::{AccountsDb, Aging, declared_group, dedup, run_cmd, set_password, show_list};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub(crate) mod authorized_keys;
use authorized_keys::{KeysTarget, keys_change, keys_content, write_keys};

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
        if d.argv.is_some() || d.password.is_some() || d.chage.is_some() {
            let mut result = d.argv.as_ref().map_or(Ok(()), |argv| run_cmd(ctx.runner, argv));
            if result.is_ok()
                && let Some(hash) = &d.password
            {
                result = set_password(ctx.runner, name, hash);
            }
            if result.is_ok()
                && let Some(chage) = &d.chage
            {
                result = run_cmd(ctx.runner, chage);
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
    /// `chage`, for password aging, after the password.
    chage: Option<Vec<String>>,
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
        let mut d = Diff { changes: Vec::new(), argv: None, password: None, chage: None, keys: KeysAt::Nowhere };
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
        let (aging, chage) = aging_diff(name, p, None);
        changes.extend(aging);
        return Ok(Diff {
            changes,
            argv: Some(useradd_argv(name, p, &groups)),
            password: p.password.clone(),
            chage,
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
    let mut chage = None;
    if has_aging(p) {
        let (aging, argv) = aging_diff(name, p, Some(db.aging(name)?.unwrap_or_default()));
        changes.extend(aging);
        chage = argv;
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
    Ok(Diff { changes, argv, password, chage, keys })
}

fn has_aging(p: &UserProps) -> bool {
    p.password_max_age.is_some() || p.password_min_age.is_some() || p.password_warn_age.is_some() || p.expires.is_some()
}

/// The password aging changes and the `chage` that makes them. `have` is
/// None for a user that does not exist yet: every field set is a change
/// (useradd fills them from login.defs).
fn aging_diff(name: &str, p: &UserProps, have: Option<Aging>) -> (Vec<Change>, Option<Vec<String>>) {
    use tend_model::resources::user::{civil_from_days, expiry_days};
    // (property, chage flag, wanted value (Some(None): empty field), current value)
    type Field = (&'static str, &'static str, Option<Option<i64>>, Option<i64>);
    let show = |flag: &str, v: Option<i64>| match (flag, v) {
        ("-E", None) => s("never"),
        ("-E", Some(d)) => civil_from_days(d),
        (_, None) => s("none"),
        (_, Some(d)) => d.to_string(),
    };
    let max = p.password_max_age.map(|v| (v >= 0).then_some(v));
    let expire = p.expires.as_deref().map(|e| expiry_days(e).flatten());
    let fields: [Field; 4] = [
        ("password_max_age", "-M", max, have.and_then(|h| h.max)),
        ("password_min_age", "-m", p.password_min_age.map(Some), have.and_then(|h| h.min)),
        ("password_warn_age", "-W", p.password_warn_age.map(Some), have.and_then(|h| h.warn)),
        ("expires", "-E", expire, have.and_then(|h| h.expire)),
    ];
    let mut changes = Vec::new();
    let mut args = Vec::new();
    for (prop, flag, want, cur) in fields {
        let Some(want) = want else { continue };
        if have.is_some() && want == cur {
            continue;
        }
        changes.push(Change::new(prop, have.map(|_| show(flag, cur)), Some(show(flag, want))));
        let arg = match (flag, want) {
            (_, None) => s("-1"),
            ("-E", Some(d)) => civil_from_days(d),
            (_, Some(v)) => v.to_string(),
        };
        args.extend([s(flag), arg]);
    }
    if args.is_empty() {
        return (changes, None);
    }
    let mut argv = vec![s("chage")];
    argv.extend(args);
    argv.push(name.to_string());
    (changes, Some(argv))
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

#[cfg(test)]
mod tests;
