//! Resource types: each one reads the current state, lists what differs from
//! the desired state, and applies exactly those changes. One file (or
//! folder) per type; what several types share is in [`support`].

pub mod apt_repository;
pub mod archive;
pub mod authorized_key;
pub mod cron;
pub mod directory;
pub mod download;
pub mod exec;
pub mod file;
pub mod file_line;
pub mod group;
pub mod hostname;
pub mod kernel_module;
pub mod link;
pub mod mount;
pub mod ntp;
pub mod package;
pub mod service;
pub mod setting;
pub mod support;
pub mod sysctl;
pub mod systemd_unit;
pub mod template;
pub mod timezone;
pub mod user;
pub mod yum_repository;

use std::collections::HashSet;
use std::path::PathBuf;

use tend_model::resource::Kind;
use tend_model::{CompiledResource, Spec};

pub use support::accounts::Accounts;

use crate::report::Change;
use crate::resources::support::staging::Staging;

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

/// Runs system commands (package managers, useradd, systemctl) without a
/// shell. Behind a trait so that providers that cannot run here (dnf) are
/// tested against recorded outputs.
pub trait Runner {
    fn run(
        &self,
        argv: &[&str],
        env: &[(&str, &str)],
        timeout: std::time::Duration,
    ) -> Result<crate::system::process::Outcome>;

    /// Runs a command with `input` on its standard input (secrets go there,
    /// never in the arguments).
    fn run_input(
        &self,
        argv: &[&str],
        input: &[u8],
        timeout: std::time::Duration,
    ) -> Result<crate::system::process::Outcome>;
}

/// Runs commands for real.
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(
        &self,
        argv: &[&str],
        env: &[(&str, &str)],
        timeout: std::time::Duration,
    ) -> Result<crate::system::process::Outcome> {
        let mut job = crate::system::process::Job::argv(argv, timeout);
        job.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        job.capture_limit = 1024 * 1024;
        crate::system::process::run(&job).map_err(|e| Error::Failed(format!("{}: {e}", argv.first().unwrap_or(&""))))
    }

    fn run_input(
        &self,
        argv: &[&str],
        input: &[u8],
        timeout: std::time::Duration,
    ) -> Result<crate::system::process::Outcome> {
        let mut job = crate::system::process::Job::argv(argv, timeout);
        job.stdin = Some(input.to_vec());
        job.capture_limit = 1024 * 1024;
        crate::system::process::run(&job).map_err(|e| Error::Failed(format!("{}: {e}", argv.first().unwrap_or(&""))))
    }
}

/// Runs a command and fails with its own message unless it exits 0.
pub fn run_ok(runner: &dyn Runner, argv: &[&str], env: &[(&str, &str)]) -> Result<crate::system::process::Outcome> {
    let out = runner.run(argv, env, std::time::Duration::from_secs(600))?;
    if matches!(out.exit, crate::system::process::Exit::Code(0)) {
        return Ok(out);
    }
    Err(Error::Failed(format!("`{}` failed with {}:\n{}", argv.join(" "), out.describe_exit(), out.tail(15))))
}

/// State that the resources of one run share: caches read once per run
/// (accounts, package database, unit states) and deferred work.
#[derive(Default)]
pub struct RunState {
    /// Plan indices of resources that failed, or were skipped because a
    /// dependency failed: work batched ahead of time must not include their
    /// dependents.
    pub blocked: std::collections::HashSet<usize>,
    pub accounts: user::AccountsCache,
    pub packages: package::PackageCache,
    pub systemd: support::systemd::SystemdState,
}

/// What a run shares with each resource.
pub struct Ctx<'a> {
    /// The host's facts.
    pub facts: &'a serde_json::Value,
    pub runner: &'a dyn Runner,
    pub run: &'a mut RunState,
    /// The whole plan, for types that batch work across resources (packages).
    pub plan: &'a tend_model::Plan,
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

    /// Called when a resource that notifies this one changed: restart a
    /// service, and so on. Returns the change made (or, in dry-run, the change
    /// that would be made); None when the type ignores notifications (exec
    /// handles them in `check`) or there is nothing to refresh.
    fn refresh(&self, _r: &CompiledResource, _ctx: &mut Ctx) -> Result<Option<Change>> {
        Ok(None)
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
        Kind::User => &user::UserType,
        Kind::Group => &group::GroupType,
        Kind::Package => &package::PackageType,
        Kind::Service => &service::ServiceType,
        Kind::SystemdUnit => &systemd_unit::SystemdUnitType,
        Kind::Cron => &cron::CronType,
        Kind::Ntp => &ntp::NtpType,
        Kind::FileLine => &file_line::FileLineType,
        Kind::Setting => &setting::SettingType,
        Kind::Link => &link::LinkType,
        Kind::Sysctl => &sysctl::SysctlType,
        Kind::Timezone => &timezone::TimezoneType,
        Kind::Hostname => &hostname::HostnameType,
        Kind::AuthorizedKey => &authorized_key::AuthorizedKeyType,
        Kind::KernelModule => &kernel_module::KernelModuleType,
        Kind::Download => &download::DownloadType,
        Kind::Mount => &mount::MountType,
        Kind::AptRepository => &apt_repository::AptRepositoryType,
        Kind::Archive => &archive::ArchiveType,
        Kind::YumRepository => &yum_repository::YumRepositoryType,
    }
}

/// Whether a resource's writes may be staged and committed in a batch.
pub fn stageable(spec: &Spec) -> bool {
    matches!(spec, Spec::File(_) | Spec::Template(_) | Spec::Directory(_))
}

fn mismatch(r: &CompiledResource) -> Error {
    Error::Failed(format!("internal error: {} is not a {}", r.id, r.id.kind))
}
