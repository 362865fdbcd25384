//! `authorized_key`: one public key in a user's authorized_keys, added,
//! updated (its options or comment) or removed without touching the other
//! lines. The key is identified by its type and blob. The default file
//! (`~USER/.ssh/authorized_keys`) is read and written as the `user` type does
//! (no symlink followed below the home, ~/.ssh 0700 and the file 0600, owned
//! by the user); another `path` is edited in place, and created owned by the
//! user with mode 0600.

use std::path::{Path, PathBuf};

use tend_model::resources::authorized_key::{AuthorizedKeyProps, parse_key_line};
use tend_model::resources::{Ownership, Presence};
use tend_model::{CompiledResource, Spec};

use super::file::{self, FileWant};
use super::support::edit::{join, lines, read_text};
use super::user::authorized_keys::{KeysTarget, read_content, write_keys};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct AuthorizedKeyType;

fn props(r: &CompiledResource) -> Result<&AuthorizedKeyProps> {
    match &r.spec {
        Spec::AuthorizedKey(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

/// The file's new text, or None when it already holds what `p` wants.
pub fn edited(text: Option<&str>, p: &AuthorizedKeyProps) -> Option<String> {
    let line = p.line();
    let want = parse_key_line(&line)?;
    let text = text.unwrap_or("");
    let (old, mut trailing) = lines(text);
    let same = |l: &str| parse_key_line(l).is_some_and(|k| k.kind == want.kind && k.blob == want.blob);
    let found: Vec<usize> = (0..old.len()).filter(|&i| same(old[i])).collect();
    let mut new: Vec<String> = old.iter().map(|s| s.to_string()).collect();
    if p.state == Presence::Absent {
        for &i in found.iter().rev() {
            new.remove(i);
        }
        return (!found.is_empty()).then(|| join(&new, trailing));
    }
    match found.split_first() {
        Some((&first, rest)) => {
            if old[first].trim() != line {
                new[first] = line.clone();
            }
            for &i in rest.iter().rev() {
                new.remove(i);
            }
        }
        None => {
            new.push(line.clone());
            trailing = true;
        }
    }
    let out = join(&new, trailing);
    (out != text).then_some(out)
}

/// Where the key goes.
enum Target {
    /// ~/.ssh/authorized_keys of an existing user.
    Home(KeysTarget),
    /// Another file, created as the user's.
    Path(PathBuf, Ownership),
    /// The user does not exist yet (a dry-run before the user is created).
    NewUser,
}

fn target(r: &CompiledResource, p: &AuthorizedKeyProps, ctx: &mut Ctx) -> Result<Target> {
    let db = ctx.run.accounts.db()?;
    let user = db.user(&p.user);
    if let Some(path) = &p.path {
        let own =
            Ownership { owner: Some(p.user.clone()), group: None, mode: Some(tend_model::mode::Mode(0o600).into()) };
        // Removing a key needs no user; adding one, outside a dry-run, does.
        return match user {
            None if p.state == Presence::Present && !ctx.dry_run => {
                Err(Error::Failed(format!("user {} does not exist", p.user)))
            }
            None if p.state == Presence::Present => Ok(Target::NewUser),
            _ => Ok(Target::Path(PathBuf::from(path), own)),
        };
    }
    // The user resource's exclusive list of the same file would fight this.
    let exclusive = ctx.plan.resources.iter().any(|o| {
        o.enabled && matches!(&o.spec, Spec::User(u) if o.id.name == p.user && u.ssh_authorized_keys.is_some())
    });
    if exclusive {
        return Err(Error::Failed(format!(
            "user:{} manages the whole authorized_keys with `ssh_authorized_keys`; {} would fight it (give it its own `path`, or add the key to that list)",
            p.user, r.id
        )));
    }
    match user {
        Some(u) => Ok(Target::Home(KeysTarget {
            user: p.user.clone(),
            home: PathBuf::from(&u.home),
            uid: u.uid,
            gid: Some(u.gid),
        })),
        // No user, no keys to remove; in a dry-run, one the plan creates.
        None if ctx.dry_run || p.state == Presence::Absent => Ok(Target::NewUser),
        None => Err(Error::Failed(format!("user {} does not exist", p.user))),
    }
}

fn home_text(t: &KeysTarget) -> Result<Option<String>> {
    match read_content(t)? {
        None => Ok(None),
        Some(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| Error::Failed(format!("{}/.ssh/authorized_keys is not UTF-8 text", t.home.display()))),
    }
}

/// The whole file the key's path must become (owner and mode kept when it exists).
fn want<'a>(path: &Path, text: &'a Option<String>, own: &Ownership) -> FileWant<'a> {
    let mut w = FileWant::system(Presence::Present, text.as_deref().map(str::as_bytes));
    w.own = if path.exists() { Ownership::default() } else { own.clone() };
    w
}

fn key_change(p: &AuthorizedKeyProps) -> Change {
    let what = parse_key_line(&p.key).map(|k| format!("{} {}", k.kind, k.comment.unwrap_or(""))).unwrap_or_default();
    match p.state {
        Presence::Present => Change::new("key", None, Some(what.trim().to_string())),
        Presence::Absent => Change::new("key", Some(what.trim().to_string()), Some("absent".into())),
    }
}

impl ResourceType for AuthorizedKeyType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        match target(r, p, ctx)? {
            Target::NewUser => Ok(if p.state == Presence::Present { vec![key_change(p)] } else { vec![] }),
            Target::Home(t) => {
                let old = home_text(&t)?;
                Ok(edited(old.as_deref(), p).map(|_| vec![key_change(p)]).unwrap_or_default())
            }
            Target::Path(path, own) => {
                let new = edited(read_text(&path)?.as_deref(), p);
                if new.is_none() {
                    return Ok(vec![]);
                }
                let mut changes = vec![key_change(p)];
                changes.extend(
                    file::check(&path, &want(&path, &new, &own), ctx)?.into_iter().filter(|c| c.property != "content"),
                );
                Ok(changes)
            }
        }
    }

    fn apply(&self, r: &CompiledResource, _changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        match target(r, p, ctx)? {
            Target::NewUser if p.state == Presence::Absent => Ok(Applied::Done),
            Target::NewUser => Err(Error::Failed(format!("user {} does not exist", p.user))),
            Target::Home(t) => {
                if let Some(new) = edited(home_text(&t)?.as_deref(), p) {
                    write_keys(&t, new.as_bytes())?;
                }
                Ok(Applied::Done)
            }
            Target::Path(path, own) => {
                let new = edited(read_text(&path)?.as_deref(), p);
                if new.is_some() {
                    let w = want(&path, &new, &own);
                    let changes = file::check(&path, &w, ctx)?;
                    file::apply_now(&path, &w, &changes, ctx)?;
                }
                Ok(Applied::Done)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(yaml: &str) -> AuthorizedKeyProps {
        let p: AuthorizedKeyProps = serde_yaml::from_str(&format!("user: alice\n{yaml}")).expect("props");
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        p
    }

    #[test]
    fn one_key_is_added_updated_or_removed_and_the_others_kept() {
        let text = "# keys\nssh-rsa AAAAB3other bob\nssh-ed25519 AAAAC3alice old-comment\n";
        let add = props("key: ssh-ed25519 AAAAC3new carol");
        assert_eq!(edited(Some(text), &add).as_deref(), Some(format!("{text}ssh-ed25519 AAAAC3new carol\n").as_str()));
        let upd = props("key: ssh-ed25519 AAAAC3alice alice@laptop\noptions: no-agent-forwarding");
        let out = edited(Some(text), &upd).expect("changed");
        assert_eq!(out, "# keys\nssh-rsa AAAAB3other bob\nno-agent-forwarding ssh-ed25519 AAAAC3alice alice@laptop\n");
        assert_eq!(edited(Some(&out), &upd), None);
        let del = props("key: ssh-ed25519 AAAAC3alice\nstate: absent");
        assert_eq!(edited(Some(text), &del).as_deref(), Some("# keys\nssh-rsa AAAAB3other bob\n"));
        assert_eq!(edited(None, &del), None);
        assert_eq!(edited(None, &add).as_deref(), Some("ssh-ed25519 AAAAC3new carol\n"));
    }
}
