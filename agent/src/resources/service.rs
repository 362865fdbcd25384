//! `service`: a systemd service that is running or stopped, enabled or not,
//! masked or not; restarted (or reloaded) once when notified.

use tend_model::resources::service::{RunState, ServiceProps};
use tend_model::{CompiledResource, Spec};

use super::support::systemd::{self, UnitStatus};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct ServiceType;

fn props(r: &CompiledResource) -> Result<&ServiceProps> {
    match &r.spec {
        Spec::Service(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

fn word(b: bool, yes: &str, no: &str) -> String {
    (if b { yes } else { no }).to_string()
}

/// What differs between the unit's state and the wish.
fn diff(p: &ServiceProps, s: &UnitStatus) -> Vec<Change> {
    let mut out = Vec::new();
    if let Some(m) = p.masked {
        if m != s.masked() {
            out.push(Change::new("masked", Some(word(s.masked(), "true", "false")), Some(word(m, "true", "false"))));
        }
    }
    if let Some(e) = p.enabled {
        if s.enabled().is_some_and(|have| have != e) || (s.masked() && e) {
            let have = s.enabled().unwrap_or(false);
            out.push(Change::new("enabled", Some(word(have, "true", "false")), Some(word(e, "true", "false"))));
        }
    }
    if let Some(want) = p.state {
        let running = want == RunState::Running;
        if running != s.active() {
            out.push(Change::new(
                "state",
                Some(word(s.active(), "running", "stopped")),
                Some(word(running, "running", "stopped")),
            ));
        }
    }
    out
}

impl ResourceType for ServiceType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let unit = p.unit_name(&r.id.name);
        if !ctx.dry_run {
            systemd::daemon_reload_if_pending(ctx.runner, &mut ctx.run.systemd)?;
        }
        let s = systemd::status(ctx.runner, &unit)?;
        if !s.found() && !s.masked() {
            let wants_it = p.state == Some(RunState::Running) || p.enabled == Some(true);
            if ctx.dry_run && wants_it {
                // A package or unit file earlier in this run may provide it.
                let mut c = diff(p, &s);
                c.iter_mut().for_each(|c| c.from = Some("(unit not installed yet)".into()));
                return Ok(c);
            }
            if wants_it {
                return Err(Error::Failed(format!("unit {unit} does not exist (install its package first)")));
            }
            return Ok(vec![]);
        }
        Ok(diff(p, &s))
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let unit = p.unit_name(&r.id.name);
        let has = |name: &str| changes.iter().any(|c| c.property == name);
        if has("masked") && p.masked == Some(false) {
            systemd::systemctl(ctx.runner, "unmask", &unit)?;
        }
        if has("enabled") {
            systemd::systemctl(ctx.runner, if p.enabled == Some(true) { "enable" } else { "disable" }, &unit)?;
        }
        if has("state") {
            let start = p.state == Some(RunState::Running);
            systemd::systemctl(ctx.runner, if start { "start" } else { "stop" }, &unit)?;
            if start {
                ctx.run.systemd.started.insert(unit.clone());
            }
        }
        if has("masked") && p.masked == Some(true) {
            if systemd::status(ctx.runner, &unit)?.active() {
                systemd::systemctl(ctx.runner, "stop", &unit)?;
            }
            systemd::systemctl(ctx.runner, "mask", &unit)?;
        }
        Ok(Applied::Done)
    }

    fn refresh(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Option<Change>> {
        let p = props(r)?;
        let unit = p.unit_name(&r.id.name);
        if p.state == Some(RunState::Stopped) || p.masked == Some(true) || ctx.run.systemd.started.contains(&unit) {
            return Ok(None);
        }
        let verb = if p.reload_on_notify { "reload" } else { "restart" };
        // Not running: either this run starts it (dry-run: would start), which
        // needs no restart, or it is not asked to run and there is nothing to restart.
        if !systemd::status(ctx.runner, &unit)?.active() {
            return Ok(None);
        }
        if !ctx.dry_run {
            systemd::daemon_reload_if_pending(ctx.runner, &mut ctx.run.systemd)?;
            systemd::systemctl(ctx.runner, verb, &unit)?;
            ctx.run.systemd.started.insert(unit);
        }
        Ok(Some(Change::new("refresh", None, Some(format!("{verb}ed")))))
    }
}
