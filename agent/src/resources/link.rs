//! `link`: a symbolic link at the path, pointing exactly at `target` (as
//! `readlink` shows it). A wrong link is replaced atomically: a new link is
//! made beside it and renamed over it. A file (or an empty directory) standing
//! at the path is replaced only with `force`.

use std::path::Path;

use tend_model::resources::Presence;
use tend_model::{CompiledResource, Spec};

use super::support::fsmeta::{kind_of, lstat, require_parent};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct LinkType;

impl ResourceType for LinkType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let Spec::Link(p) = &r.spec else {
            return Err(mismatch(r));
        };
        let path = Path::new(&r.id.name);
        match (p.state, p.target.as_deref()) {
            (Presence::Present, Some(t)) => check(path, t, p.force, ctx),
            _ => check_absent(path),
        }
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let Spec::Link(p) = &r.spec else {
            return Err(mismatch(r));
        };
        let path = Path::new(&r.id.name);
        match (p.state, p.target.as_deref()) {
            (Presence::Present, Some(t)) => ensure(path, t, changes, ctx)?,
            _ => {
                std::fs::remove_file(path).map_err(Error::io(format!("remove {}", path.display())))?;
                if let Some(parent) = path.parent() {
                    ctx.staging.note_dir(parent);
                }
            }
        }
        Ok(Applied::Done)
    }
}

/// What differs from a link at `path` to `target`.
pub fn check(path: &Path, target: &str, force: bool, ctx: &mut Ctx) -> Result<Vec<Change>> {
    let md = lstat(path)?;
    let ensure = |from: &str| vec![Change::new("ensure", Some(from.into()), Some("link".into()))];
    match md {
        None => {
            require_parent(path, ctx.dirs)?;
            Ok(ensure("absent"))
        }
        Some(m) if m.file_type().is_symlink() => {
            let now = std::fs::read_link(path).map_err(Error::io(format!("readlink {}", path.display())))?;
            if now.as_os_str() == target {
                Ok(vec![])
            } else {
                Ok(vec![Change::new("target", Some(now.to_string_lossy().into_owned()), Some(target.into()))])
            }
        }
        Some(m) if force && (m.is_file() || (m.is_dir() && is_empty_dir(path)?)) => Ok(ensure(kind_of(&m))),
        Some(m) if m.is_dir() => Err(Error::Failed(format!(
            "{} is a directory{}; a link does not replace it",
            path.display(),
            if force { " that is not empty" } else { "" }
        ))),
        Some(m) => Err(Error::Failed(format!(
            "{} is a {}; set `force: true` to replace it with a link",
            path.display(),
            kind_of(&m)
        ))),
    }
}

fn check_absent(path: &Path) -> Result<Vec<Change>> {
    match lstat(path)? {
        None => Ok(vec![]),
        Some(m) if m.file_type().is_symlink() => {
            Ok(vec![Change::new("ensure", Some("link".into()), Some("absent".into()))])
        }
        Some(m) => Err(Error::Failed(format!("{} is a {}, not a link; it is left alone", path.display(), kind_of(&m)))),
    }
}

fn is_empty_dir(path: &Path) -> Result<bool> {
    let mut entries = std::fs::read_dir(path).map_err(Error::io(format!("read {}", path.display())))?;
    Ok(entries.next().is_none())
}

/// Makes `path` a link to `target`: a new link beside it, renamed over it.
pub fn ensure(path: &Path, target: &str, changes: &[Change], ctx: &mut Ctx) -> Result<()> {
    let tmp = crate::state::temp_path(path);
    std::os::unix::fs::symlink(target, &tmp).map_err(Error::io(format!("symlink {}", tmp.display())))?;
    // rename() cannot replace a directory with a link: an empty one (`force`)
    // is removed first.
    if changes.iter().any(|c| c.property == "ensure" && c.from.as_deref() == Some("directory")) {
        if let Err(e) = std::fs::remove_dir(path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(format!("remove {}", path.display()))(e));
        }
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(format!("rename into {}", path.display()))(e));
    }
    if let Some(parent) = path.parent() {
        ctx.staging.note_dir(parent);
    }
    Ok(())
}
