//! `group`: local groups. (Being written: see the issue.)

use tend_model::CompiledResource;

use super::{Applied, Ctx, Error, ResourceType, Result};
use crate::report::Change;

pub struct GroupType;

impl ResourceType for GroupType {
    fn check(&self, r: &CompiledResource, _ctx: &mut Ctx) -> Result<Vec<Change>> {
        Err(Error::Failed(format!("{}: the group type is not available yet", r.id)))
    }

    fn apply(&self, _r: &CompiledResource, _changes: &[Change], _ctx: &mut Ctx) -> Result<Applied> {
        Ok(Applied::Done)
    }
}
