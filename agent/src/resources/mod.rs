//! Resource types: each one reads the current state, lists what differs from
//! the desired state, and applies exactly those changes. One file per type.

mod accounts;
pub mod directory;
pub mod exec;
pub mod file;
mod fsmeta;
pub mod template;

use std::collections::HashSet;
use std::path::PathBuf;

use tend_model::resource::Kind;
use tend_model::{CompiledResource, Spec};

pub use accounts::Accounts;

use crate::engine::staging::Staging;
use crate::report::Change;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Failed(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl Error {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// What a run shares with each resource.
pub struct Ctx<'a> {
    pub dry_run: bool,
    /// Compute unified diffs of content changes.
    pub diffs: bool,
    /// A resource that notifies this one changed (or would change) in this run.
    pub notified_by: Vec<String>,
    pub accounts: &'a Accounts,
    /// File writes waiting for one batched durability step.
    pub staging: &'a mut Staging,
    /// Index of the current resource in the plan.
    pub index: usize,
    /// Directories known to exist in this run, or that a dry-run found would
    /// be created (so that their contents are "would create", not errors).
    pub dirs: &'a mut HashSet<PathBuf>,
}

/// How `apply` left the resource.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Done and visible now.
    Done,
    /// Written to a temporary file; the engine commits it in a batch.
    Staged,
}

/// The behaviour of one resource type.
pub trait ResourceType: Sync {
    /// Reads the current state and returns what differs from the desired one.
    /// Must not change anything (dry-run relies on it).
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>>;

    /// Makes the listed changes.
    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied>;

    /// Whether a `verify` after `apply` must find nothing to do.
    fn verifiable(&self) -> bool {
        true
    }

    /// Re-reads the state after `apply`; what still differs. Defaults to a
    /// full `check`; a type may check less when apply wrote the state itself.
    fn verify(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        self.check(r, ctx)
    }
}

/// The implementation of a resource type.
pub fn handler(kind: Kind) -> &'static dyn ResourceType {
    match kind {
        Kind::File => &file::FileType,
        Kind::Directory => &directory::DirectoryType,
        Kind::Template => &template::TemplateType,
        Kind::Exec => &exec::ExecType,
    }
}

/// Whether a resource's writes may be staged and committed in a batch.
pub fn stageable(spec: &Spec) -> bool {
    matches!(spec, Spec::File(_) | Spec::Template(_) | Spec::Directory(_))
}

fn mismatch(r: &CompiledResource) -> Error {
    Error::Failed(format!("internal error: {} is not a {}", r.id, r.id.kind))
}
