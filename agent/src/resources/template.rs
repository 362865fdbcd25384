//! `template`: a file whose content was rendered from a handlebars template
//! when the recipe was compiled. Converges exactly like `file`.

use std::path::Path;

use tend_model::{CompiledResource, Spec};

use super::file::{self, FileWant};
use super::{Applied, Ctx, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct TemplateType;

fn want(r: &CompiledResource) -> Result<FileWant<'_>> {
    let Spec::Template(p) = &r.spec else {
        return Err(mismatch(r));
    };
    Ok(FileWant {
        presence: p.state,
        content: r.payload.as_deref(),
        replace: true,
        own: r.spec.ownership().unwrap_or_default(),
        sensitive: r.sensitive,
        create: true,
        force: p.force,
        validate: p.validate.as_deref(),
    })
}

impl ResourceType for TemplateType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        file::check(Path::new(&r.id.name), &want(r)?, ctx)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        file::apply(Path::new(&r.id.name), &want(r)?, changes, ctx)
    }

    fn verify(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        file::verify(Path::new(&r.id.name), &want(r)?, ctx)
    }
}
