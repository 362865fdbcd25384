//! `directory`: exists (or not) with the given owner, group and mode.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use tend_model::mode::Mode;
use tend_model::resources::Presence;
use tend_model::{CompiledResource, Spec};

use super::support::fsmeta::{Meta, kind_of, lstat, require_parent};
use super::support::tree::Wanted;
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct DirectoryType;

/// What `recurse` wants below the top: its owner and group, and the modes.
fn below(p: &tend_model::resources::directory::DirectoryProps, top: &Meta) -> Wanted {
    let with = |mode: Option<&tend_model::mode::FileMode>| Meta { mode: mode.cloned(), ..top.clone() };
    Wanted { dirs: with(p.below_dir_mode()), files: with(p.below_file_mode()) }
}

impl ResourceType for DirectoryType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let Spec::Directory(p) = &r.spec else {
            return Err(mismatch(r));
        };
        let path = Path::new(&r.id.name);
        let md = lstat(path)?;
        if p.state == Presence::Absent {
            return Ok(match md {
                None => vec![],
                Some(m) if m.is_dir() => vec![Change::new("ensure", Some("directory".into()), Some("absent".into()))],
                Some(m) => {
                    return Err(Error::Failed(format!("{} is a {}, not a directory", path.display(), kind_of(&m))));
                }
            });
        }
        let meta = Meta::resolve_in(&r.spec.ownership().unwrap_or_default(), ctx)?;
        let mut changes = match md {
            None if !p.create => return Ok(vec![]),
            None => {
                require_parent(path, ctx.dirs)?;
                if ctx.dry_run {
                    ctx.dirs.insert(path.to_path_buf());
                }
                vec![Change::new("ensure", Some("absent".into()), Some("directory".into()))]
            }
            Some(m) if m.is_dir() => meta.changes(&m, ctx.accounts),
            Some(m) => {
                return Err(Error::Failed(format!("{} is a {}, not a directory", path.display(), kind_of(&m))));
            }
        };
        if p.recurse && path.is_dir() {
            changes.extend(below(p, &meta).check(path, ctx.accounts)?);
        }
        Ok(changes)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let Spec::Directory(p) = &r.spec else {
            return Err(mismatch(r));
        };
        let path = Path::new(&r.id.name);
        let ensure = changes.iter().any(|c| c.property == "ensure");
        if p.state == Presence::Absent {
            let res = if p.force { std::fs::remove_dir_all(path) } else { std::fs::remove_dir(path) };
            match res {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                    return Err(Error::Failed(format!(
                        "{} is not empty; set `force: true` to remove it with its contents",
                        path.display()
                    )));
                }
                Err(e) => return Err(Error::io(format!("remove {}", path.display()))(e)),
            }
        } else {
            let meta = Meta::resolve(&r.spec.ownership().unwrap_or_default(), ctx.accounts)?;
            if ensure {
                let new_mode = meta.mode.as_ref().map_or(0o755, |m| m.for_new(true));
                std::fs::DirBuilder::new()
                    .mode(new_mode)
                    .create(path)
                    .map_err(Error::io(format!("mkdir {}", path.display())))?;
                // The umask may have narrowed the mode; owner before mode.
                let all = [Change::new("owner", None, None), Change::new("mode", None, None)];
                let fixed = Meta { mode: Some(Mode(new_mode).into()), ..meta.clone() };
                fixed.apply(path, &all)?;
            } else {
                meta.apply(path, changes)?;
            }
            if p.recurse && changes.iter().any(|c| c.property == "recurse") {
                below(p, &meta).apply(path, ctx.accounts)?;
            }
        }
        if ensure {
            if let Some(parent) = path.parent() {
                ctx.staging.note_dir(parent);
            }
        }
        Ok(Applied::Done)
    }
}
