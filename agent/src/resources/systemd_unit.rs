//! `systemd_unit`: a unit file or drop-in under /etc/systemd/system. A change
//! schedules one `daemon-reload` (run before the next systemctl call) and
//! notifies the service that uses the unit (an implicit edge).

use std::path::Path;

use tend_model::resources::Presence;
use tend_model::resources::systemd_unit::SystemdUnitProps;
use tend_model::{CompiledResource, Spec};

use super::file::{self, FileWant};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct SystemdUnitType;

fn want(r: &CompiledResource) -> Result<FileWant<'_>> {
    let Spec::SystemdUnit(p) = &r.spec else { return Err(mismatch(r)) };
    let mut w = FileWant::system(p.state, r.payload.as_deref());
    w.sensitive = r.sensitive;
    Ok(w)
}

impl ResourceType for SystemdUnitType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let path = SystemdUnitProps::path(&r.id.name);
        let w = want(r)?;
        // A drop-in directory that does not exist yet is created by apply.
        if let Some(dir) = Path::new(&path).parent() {
            if w.presence == Presence::Present && !dir.is_dir() {
                ctx.dirs.insert(dir.to_path_buf());
            }
        }
        file::check(Path::new(&path), &w, ctx)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let path = SystemdUnitProps::path(&r.id.name);
        let w = want(r)?;
        if let Some(dir) = Path::new(&path).parent() {
            if w.presence == Presence::Present && !dir.is_dir() {
                std::fs::create_dir_all(dir).map_err(Error::io(format!("mkdir {}", dir.display())))?;
            }
        }
        file::apply_now(Path::new(&path), &w, changes, ctx)?;
        ctx.run.systemd.daemon_reload_pending = true;
        Ok(Applied::Done)
    }

    fn verify(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        file::verify(Path::new(&SystemdUnitProps::path(&r.id.name)), &want(r)?, ctx)
    }
}
