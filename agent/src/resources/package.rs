//! `package`: system packages. (Being written: see the issue.)

use tend_model::CompiledResource;

use super::{Applied, Ctx, Error, ResourceType, Result};
use crate::report::Change;

/// The package database and pending batch of one run.
#[derive(Default)]
pub struct PackageCache {}

pub struct PackageType;

/// Installs these packages now if they are missing (for resources such as
/// `ntp` that need a daemon). Returns true if anything was installed.
pub fn ensure_installed(_ctx: &mut Ctx, names: &[&str]) -> Result<bool> {
    Err(Error::Failed(format!("cannot install {names:?}: the package type is not available yet")))
}

impl ResourceType for PackageType {
    fn check(&self, r: &CompiledResource, _ctx: &mut Ctx) -> Result<Vec<Change>> {
        Err(Error::Failed(format!("{}: the package type is not available yet", r.id)))
    }

    fn apply(&self, _r: &CompiledResource, _changes: &[Change], _ctx: &mut Ctx) -> Result<Applied> {
        Ok(Applied::Done)
    }
}
