//! `user`: local accounts. (Being written: see the issue.)

use tend_model::CompiledResource;

use super::{Applied, Ctx, Error, ResourceType, Result};
use crate::report::Change;

/// The passwd, group and shadow databases, read once per run.
#[derive(Default)]
pub struct AccountsCache {}

pub struct UserType;

impl ResourceType for UserType {
    fn check(&self, r: &CompiledResource, _ctx: &mut Ctx) -> Result<Vec<Change>> {
        Err(Error::Failed(format!("{}: the user type is not available yet", r.id)))
    }

    fn apply(&self, _r: &CompiledResource, _changes: &[Change], _ctx: &mut Ctx) -> Result<Applied> {
        Ok(Applied::Done)
    }
}
