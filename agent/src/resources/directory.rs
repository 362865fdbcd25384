//! `directory`: exists (or not) with the given owner, group and mode.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use tend_model::resources::Presence;
use tend_model::{CompiledResource, Spec};

use super::support::fsmeta::{Meta, kind_of, lstat, require_parent};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct DirectoryType;

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
        match md {
            None => {
                require_parent(path, ctx.dirs)?;
                if ctx.dry_run {
                    ctx.dirs.insert(path.to_path_buf());
                }
                Ok(vec![Change::new("ensure", Some("absent".into()), Some("directory".into()))])
            }
            Some(m) if m.is_dir() => Ok(meta.changes(&m, ctx.accounts)),
            Some(m) => Err(Error::Failed(format!("{} is a {}, not a directory", path.display(), kind_of(&m)))),
        }
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
                std::fs::DirBuilder::new()
                    .mode(meta.mode.unwrap_or(0o755))
                    .create(path)
                    .map_err(Error::io(format!("mkdir {}", path.display())))?;
                // The umask may have narrowed the mode; owner before mode.
                let all = [Change::new("owner", None, None), Change::new("mode", None, None)];
                let fixed = Meta { mode: meta.mode.or(Some(0o755)), ..meta };
                fixed.apply(path, &all)?;
            } else {
                meta.apply(path, changes)?;
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
