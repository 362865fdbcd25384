//! Owner, group and mode of path resources: resolve, compare, apply.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tend_model::mode::FileMode;
use tend_model::resources::Ownership;

use crate::report::Change;
use crate::resources::{Accounts, Error, Result};

/// Desired ownership with names resolved to ids.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<FileMode>,
    /// Dry-run only: an owner or group that does not exist yet, but that a
    /// `user` or `group` resource earlier in the plan creates.
    pub pending_owner: Option<String>,
    pub pending_group: Option<String>,
}

impl Meta {
    pub fn resolve(own: &Ownership, accounts: &Accounts) -> Result<Meta> {
        let uid = match &own.owner {
            Some(o) => Some(accounts.uid(o).ok_or_else(|| Error::Failed(format!("owner `{o}` does not exist")))?),
            None => None,
        };
        let gid = match &own.group {
            Some(g) => Some(accounts.gid(g).ok_or_else(|| Error::Failed(format!("group `{g}` does not exist")))?),
            None => None,
        };
        Ok(Meta { uid, gid, mode: own.mode.clone(), ..Meta::default() })
    }

    /// Like `resolve`, but in a dry-run an owner or group that the plan
    /// creates is pending rather than an error (the real run creates it first).
    pub fn resolve_in(own: &Ownership, ctx: &crate::resources::Ctx) -> Result<Meta> {
        if !ctx.dry_run {
            return Meta::resolve(own, ctx.accounts);
        }
        // Declared and present: a `user` or `group` resource that creates it.
        let declared = |kind: tend_model::resource::Kind, name: &str| {
            ctx.plan.resources.iter().any(|r| {
                r.enabled
                    && r.id.kind == kind
                    && r.id.name == name
                    && match &r.spec {
                        tend_model::Spec::User(u) => u.state == tend_model::resources::Presence::Present,
                        tend_model::Spec::Group(g) => g.state == tend_model::resources::Presence::Present,
                        _ => false,
                    }
            })
        };
        let mut m = Meta { mode: own.mode.clone(), ..Meta::default() };
        if let Some(o) = &own.owner {
            match ctx.accounts.uid(o) {
                Some(u) => m.uid = Some(u),
                None if declared(tend_model::resource::Kind::User, o) => m.pending_owner = Some(o.clone()),
                None => return Err(Error::Failed(format!("owner `{o}` does not exist"))),
            }
        }
        if let Some(g) = &own.group {
            match ctx.accounts.gid(g) {
                Some(x) => m.gid = Some(x),
                None if declared(tend_model::resource::Kind::Group, g) => m.pending_group = Some(g.clone()),
                None => return Err(Error::Failed(format!("group `{g}` does not exist"))),
            }
        }
        Ok(m)
    }

    /// What differs between the file's metadata and this.
    pub fn changes(&self, md: &Metadata, accounts: &Accounts) -> Vec<Change> {
        let mut out = Vec::new();
        if let Some(o) = &self.pending_owner {
            out.push(Change::new("owner", Some(accounts.user_name(md.uid())), Some(o.clone())));
        }
        if let Some(g) = &self.pending_group {
            out.push(Change::new("group", Some(accounts.group_name(md.gid())), Some(g.clone())));
        }
        if let Some(uid) = self.uid.filter(|u| *u != md.uid()) {
            out.push(Change::new("owner", Some(accounts.user_name(md.uid())), Some(accounts.user_name(uid))));
        }
        if let Some(gid) = self.gid.filter(|g| *g != md.gid()) {
            out.push(Change::new("group", Some(accounts.group_name(md.gid())), Some(accounts.group_name(gid))));
        }
        let have = md.mode() & 0o7777;
        if let Some(mode) = self.mode.as_ref().map(|m| m.resolve(have, md.is_dir())).filter(|m| *m != have) {
            out.push(Change::new("mode", Some(format!("{have:04o}")), Some(format!("{mode:04o}"))));
        }
        out
    }

    /// Applies owner, group and mode in place (chown first: it clears setuid bits).
    pub fn apply(&self, path: &Path, changes: &[Change]) -> Result<()> {
        let has = |p: &str| changes.iter().any(|c| c.property == p);
        if has("owner") || has("group") {
            std::os::unix::fs::lchown(path, self.uid, self.gid)
                .map_err(Error::io(format!("chown {}", path.display())))?;
        }
        if has("mode") || ((has("owner") || has("group")) && self.mode.is_some()) {
            if let Some(want) = &self.mode {
                // Symbolic clauses apply to the bits as they are now (after a chown).
                let mode = match want {
                    FileMode::Octal(m) => m.0,
                    FileMode::Symbolic(_) => {
                        let md =
                            std::fs::symlink_metadata(path).map_err(Error::io(format!("stat {}", path.display())))?;
                        want.resolve(md.mode() & 0o7777, md.is_dir())
                    }
                };
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(Error::io(format!("chmod {}", path.display())))?;
            }
        }
        Ok(())
    }
}

/// lstat, with "not found" as None.
pub fn lstat(path: &Path) -> Result<Option<Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("stat {}", path.display()))(e)),
    }
}

pub fn kind_of(md: &Metadata) -> &'static str {
    let t = md.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_file() {
        "file"
    } else {
        "special file"
    }
}

/// Errors if the parent directory is missing and no directory resource in
/// this dry-run would create it.
pub fn require_parent(path: &Path, dirs: &mut std::collections::HashSet<std::path::PathBuf>) -> Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if dirs.contains(parent) {
        return Ok(());
    }
    if lstat(parent)?.is_some_and(|m| m.is_dir()) {
        dirs.insert(parent.to_path_buf());
        return Ok(());
    }
    Err(Error::Failed(format!(
        "parent directory {} does not exist (declare it with a directory resource)",
        parent.display()
    )))
}
