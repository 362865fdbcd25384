//! Owner, group and mode over a whole tree (`directory` with `recurse`): one
//! walk that never follows a symlink, comparing each directory and regular
//! file below the top; the fix opens each entry with `O_NOFOLLOW` and
//! changes it through its descriptor, so that an entry swapped for a link
//! after the walk is never followed (the tree may belong to a user).

use std::fs::{File, Metadata};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::report::Change;
use crate::resources::support::fsmeta::Meta;
use crate::resources::{Accounts, Error, Result};

/// How many differing paths a change names.
const SHOWN: usize = 5;

/// What the entries below the top must be.
pub struct Wanted {
    pub dirs: Meta,
    pub files: Meta,
}

/// Directories and regular files below `top`, depth first; symlinks and
/// special files are skipped, not followed.
fn walk(top: &Path, mut each: impl FnMut(&Path, &Metadata) -> Result<()>) -> Result<()> {
    let mut stack = vec![top.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(Error::io(format!("read {}", dir.display())))?;
        for e in entries {
            let e = e.map_err(Error::io(format!("read {}", dir.display())))?;
            // DirEntry::metadata does not follow a symlink.
            let md = e.metadata().map_err(Error::io(format!("stat {}", e.path().display())))?;
            let path = e.path();
            if md.is_dir() {
                each(&path, &md)?;
                stack.push(path);
            } else if md.is_file() {
                each(&path, &md)?;
            }
        }
    }
    Ok(())
}

impl Wanted {
    fn meta(&self, md: &Metadata) -> &Meta {
        if md.is_dir() { &self.dirs } else { &self.files }
    }

    /// One change summarising the entries below `top` that differ (None: all agree).
    pub fn check(&self, top: &Path, accounts: &Accounts) -> Result<Option<Change>> {
        let (mut total, mut differ, mut shown) = (0usize, 0usize, Vec::new());
        walk(top, |path, md| {
            total += 1;
            if !self.meta(md).changes(md, accounts).is_empty() {
                differ += 1;
                if shown.len() < SHOWN {
                    shown.push(path.display().to_string());
                }
            }
            Ok(())
        })?;
        if differ == 0 {
            return Ok(None);
        }
        let more = if differ > shown.len() { ", …" } else { "" };
        Ok(Some(Change::new(
            "recurse",
            Some(format!("{differ} of {total} entries below differ: {}{more}", shown.join(", "))),
            Some(self.describe(accounts)),
        )))
    }

    fn describe(&self, accounts: &Accounts) -> String {
        let mut parts = Vec::new();
        if let Some(u) = self.dirs.uid {
            parts.push(format!("owner {}", accounts.user_name(u)));
        }
        if let Some(g) = self.dirs.gid {
            parts.push(format!("group {}", accounts.group_name(g)));
        }
        if let Some(m) = &self.dirs.mode {
            parts.push(format!("directories {m}"));
        }
        if let Some(m) = &self.files.mode {
            parts.push(format!("files {m}"));
        }
        parts.join(", ")
    }

    /// Fixes every entry below `top` that differs; returns how many changed.
    pub fn apply(&self, top: &Path, accounts: &Accounts) -> Result<usize> {
        let mut todo: Vec<PathBuf> = Vec::new();
        walk(top, |path, md| {
            if !self.meta(md).changes(md, accounts).is_empty() {
                todo.push(path.to_path_buf());
            }
            Ok(())
        })?;
        for path in &todo {
            self.fix(path)?;
        }
        Ok(todo.len())
    }

    fn fix(&self, path: &Path) -> Result<()> {
        let what = |op: &str| format!("{op} {}", path.display());
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC | nix::libc::O_NOCTTY)
            .open(path)
        {
            Ok(f) => f,
            // Gone, or now a symlink: not ours to follow.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Ok(());
            }
            Err(e) => return Err(Error::io(what("open"))(e)),
        };
        let md = f.metadata().map_err(Error::io(what("stat")))?;
        if !(md.is_dir() || md.is_file()) {
            return Ok(());
        }
        let meta = self.meta(&md);
        fix_fd(&f, &md, meta).map_err(Error::io(what("chown/chmod")))
    }
}

/// Owner and group first (a chown clears setuid bits), then the mode.
fn fix_fd(f: &File, md: &Metadata, meta: &Meta) -> std::io::Result<()> {
    let owner = meta.uid.filter(|u| *u != md.uid());
    let group = meta.gid.filter(|g| *g != md.gid());
    if owner.is_some() || group.is_some() {
        std::os::unix::fs::fchown(f, owner, group)?;
    }
    if let Some(m) = &meta.mode {
        let now = f.metadata()?.mode() & 0o7777;
        let want = m.resolve(now, md.is_dir());
        if want != now {
            f.set_permissions(std::fs::Permissions::from_mode(want))?;
        }
    }
    Ok(())
}
