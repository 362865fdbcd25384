//! `yum_repository`: `/etc/yum.repos.d/NAME.repo`, one `[NAME]` section
//! written whole. A changed repository makes dnf (or yum) refresh its
//! metadata (`makecache`) once before the next install in this run (every
//! package is ordered after every repository).

use std::path::Path;

use tend_model::resources::Presence;
use tend_model::resources::yum_repository::YumRepositoryProps;
use tend_model::{CompiledResource, Spec};

use super::support::edit::Part;
use super::{Applied, Ctx, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct YumRepositoryType;

fn props(r: &CompiledResource) -> Result<&YumRepositoryProps> {
    match &r.spec {
        Spec::YumRepository(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

fn text(r: &CompiledResource) -> Result<Option<String>> {
    let p = props(r)?;
    Ok((p.state == Presence::Present).then(|| p.render(&r.id.name, &r.id.to_string())))
}

fn path(r: &CompiledResource) -> std::path::PathBuf {
    Path::new("/etc/yum.repos.d").join(format!("{}.repo", r.id.name))
}

impl ResourceType for YumRepositoryType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let (path, text) = (path(r), text(r)?);
        Part::owned(&path, &text).check(ctx)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let (path, text) = (path(r), text(r)?);
        Part::owned(&path, &text).apply(changes, ctx)?;
        if !changes.is_empty() {
            ctx.run.packages.dnf.metadata_changed();
            ctx.run.packages.yum.metadata_changed();
        }
        Ok(Applied::Done)
    }
}
