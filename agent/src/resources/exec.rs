//! `exec`: a command that runs only when needed: when notified
//! (`refreshonly`), when `creates` is missing, when the `onlyif` guard
//! succeeds, and when the `unless` guard fails. Guards are read-only by
//! contract and are evaluated in dry-run too, so dry-run tells the truth.

use std::path::Path;
use std::time::Duration;

use tend_model::resources::exec::ExecProps;
use tend_model::{CompiledResource, Spec};

use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;
use crate::system::process::{Job, run};

pub struct ExecType;

fn props(r: &CompiledResource) -> Result<&ExecProps> {
    match &r.spec {
        Spec::Exec(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

fn command(r: &CompiledResource, p: &ExecProps) -> String {
    p.command.clone().unwrap_or_else(|| r.id.name.clone())
}

fn job(p: &ExecProps, script: &str) -> Job {
    let mut job = Job::shell(script, Duration::from_secs(p.timeout));
    job.env = p.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    job.cwd = p.cwd.clone();
    job.user = p.user.clone();
    job
}

/// Runs a guard; true if it exited 0.
fn guard(p: &ExecProps, name: &str, script: &str) -> Result<bool> {
    let out = run(&job(p, script)).map_err(|e| Error::Failed(format!("{name} guard: {e}")))?;
    match out.exit {
        // A guard that hangs answers nothing: neither "run" nor "skip".
        crate::system::process::Exit::TimedOut | crate::system::process::Exit::Cancelled => {
            Err(Error::Failed(format!("{name} guard {}", out.describe_exit())))
        }
        crate::system::process::Exit::Code(c) => Ok(c == 0),
        crate::system::process::Exit::Signal(_) => Ok(false),
    }
}

impl ResourceType for ExecType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        if p.refreshonly && ctx.notified_by.is_empty() {
            return Ok(vec![]);
        }
        if let Some(c) = &p.creates {
            if Path::new(c).exists() {
                return Ok(vec![]);
            }
        }
        if let Some(g) = &p.onlyif {
            if !guard(p, "onlyif", g)? {
                return Ok(vec![]);
            }
        }
        if let Some(g) = &p.unless {
            if guard(p, "unless", g)? {
                return Ok(vec![]);
            }
        }
        let shown = if r.sensitive { "(sensitive)".to_string() } else { command(r, p) };
        Ok(vec![Change::new("command", None, Some(shown))])
    }

    fn apply(&self, r: &CompiledResource, _changes: &[Change], _ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let out = run(&job(p, &command(r, p))).map_err(|e| Error::Failed(e.to_string()))?;
        if out.success_in(&p.returns) {
            return Ok(Applied::Done);
        }
        let detail = if r.sensitive { String::new() } else { format!(":\n{}", out.tail(20)) };
        Err(Error::Failed(format!("command failed with {}{detail}", out.describe_exit())))
    }

    fn verifiable(&self) -> bool {
        false
    }
}
