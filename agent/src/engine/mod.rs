//! The converge loop: for each resource in plan order, check, diff, apply
//! and verify. A failed resource skips its dependents; independent resources
//! go on. Notifications are coalesced: a notified resource is refreshed at
//! most once, after everything that notifies it.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use tend_model::Plan;

use crate::report::{Change, Report, ResourceReport, Status};
use crate::resources::support::staging::Staging;
use crate::resources::{Accounts, Applied, Ctx, RunState, Runner, handler, stageable};

pub struct RunOptions {
    pub dry_run: bool,
    /// Compute content diffs (always in dry-run; with --diff in real runs).
    pub diffs: bool,
    /// Desired-state hashes of the previous real run (for corrective changes).
    pub previous: HashMap<String, u64>,
    pub host: String,
}

/// What the resources run against: the host's facts and a command runner.
pub struct Host<'a> {
    pub facts: &'a serde_json::Value,
    pub runner: &'a dyn Runner,
}

/// Converges the plan and reports every resource.
pub fn run(plan: &Plan, opts: &RunOptions, host: &Host) -> Report {
    let started_at = crate::report::now_rfc3339();
    let t0 = Instant::now();
    let accounts = Accounts::default();
    let mut state = RunState::default();
    let mut staging = Staging::default();
    let mut dirs = HashSet::new();
    let mut out: Vec<ResourceReport> = Vec::with_capacity(plan.resources.len());

    for (i, r) in plan.resources.iter().enumerate() {
        let needs_flush = !stageable(&r.spec) || plan.prereqs[i].iter().any(|&p| staging.contains(p));
        if needs_flush && !staging.is_empty() {
            flush(plan, &mut staging, &mut out, &accounts, host, &mut state);
        }
        let t = Instant::now();
        let mut rep = ResourceReport {
            id: r.id.to_string(),
            kind: r.id.kind.name().to_string(),
            status: Status::Unchanged,
            changes: Vec::new(),
            duration_ms: 0.0,
            error: None,
            reason: None,
            corrective: None,
            instance: r.instance.clone(),
        };
        if let Some(&p) = plan.prereqs[i].iter().find(|&&p| blocks(&out[p])) {
            rep.status = Status::Skipped;
            rep.reason = Some(format!("dependency {} did not converge", out[p].id));
            state.blocked.insert(i);
            out.push(rep);
            continue;
        }
        if !r.enabled {
            rep.status = Status::Skipped;
            rep.reason = Some("`when` condition is false".into());
            out.push(rep);
            continue;
        }
        let notified_by: Vec<String> = plan.notified_by[i]
            .iter()
            .filter(|&&j| out[j].status == Status::Changed)
            .map(|&j| out[j].id.clone())
            .collect();
        if !notified_by.is_empty() {
            rep.reason = Some(format!("notified by {}", notified_by.join(", ")));
        }
        let h = handler(r.id.kind);
        let mut ctx = Ctx {
            facts: host.facts,
            runner: host.runner,
            run: &mut state,
            plan,
            dry_run: opts.dry_run,
            diffs: opts.diffs || opts.dry_run,
            notified_by,
            accounts: &accounts,
            staging: &mut staging,
            index: i,
            dirs: &mut dirs,
        };
        let result = h.check(r, &mut ctx).and_then(|changes| {
            if changes.is_empty() || opts.dry_run {
                return Ok((changes, None));
            }
            let applied = h.apply(r, &changes, &mut ctx)?;
            Ok((changes, Some(applied)))
        });
        match result {
            Ok((mut changes, applied)) => {
                if !changes.is_empty() {
                    rep.status = Status::Changed;
                    rep.corrective = Some(opts.previous.get(&rep.id) == Some(&r.desired_hash));
                }
                if applied == Some(Applied::Done) && h.verifiable() {
                    verify(plan, i, &mut rep, &mut ctx);
                }
                // Notified: refresh once (restart a service), after every notifier.
                if !ctx.notified_by.is_empty() && rep.status != Status::Failed {
                    match h.refresh(r, &mut ctx) {
                        Ok(Some(c)) => {
                            rep.status = Status::Changed;
                            rep.corrective.get_or_insert(false);
                            changes.push(c);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            rep.status = Status::Failed;
                            rep.error = Some(format!("refresh: {e}"));
                        }
                    }
                }
                rep.changes = if r.sensitive { changes.iter().map(Change::redacted).collect() } else { changes };
            }
            Err(e) => {
                rep.status = Status::Failed;
                rep.error = Some(e.to_string());
            }
        }
        rep.duration_ms = ms(t);
        if rep.status == Status::Failed {
            state.blocked.insert(i);
        }
        out.push(rep);
    }
    if !staging.is_empty() {
        flush(plan, &mut staging, &mut out, &accounts, host, &mut state);
    }

    let mut report = Report {
        version: 1,
        host: opts.host.clone(),
        started_at,
        dry_run: opts.dry_run,
        cached: false,
        recipes: plan.recipes.clone(),
        versions: Default::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
        summary: Default::default(),
        resources: out,
    };
    report.scrub(&plan.secrets());
    report.summarize(ms(t0));
    report
}

/// A resource whose dependents must not run: it failed, or it was itself
/// skipped because of a failure.
fn blocks(r: &ResourceReport) -> bool {
    r.status == Status::Failed
        || (r.status == Status::Skipped && r.reason.as_deref().is_some_and(|s| s.starts_with("dependency")))
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// After apply, the resource must check clean.
fn verify(plan: &Plan, i: usize, rep: &mut ResourceReport, ctx: &mut Ctx) {
    let r = &plan.resources[i];
    match handler(r.id.kind).verify(r, ctx) {
        Ok(left) if left.is_empty() => {}
        Ok(left) => {
            let props: Vec<&str> = left.iter().map(|c| c.property.as_str()).collect();
            rep.status = Status::Failed;
            rep.error = Some(format!("verification failed: {} still differ(s) after apply", props.join(", ")));
        }
        Err(e) => {
            rep.status = Status::Failed;
            rep.error = Some(format!("verification failed: {e}"));
        }
    }
}

/// Commits staged writes and verifies each committed resource.
fn flush(
    plan: &Plan,
    staging: &mut Staging,
    out: &mut [ResourceReport],
    accounts: &Accounts,
    host: &Host,
    state: &mut RunState,
) {
    let (done, failed) = staging.commit();
    for (i, e) in failed {
        out[i].status = Status::Failed;
        out[i].error = Some(e.to_string());
        state.blocked.insert(i);
    }
    let mut scratch = Staging::default();
    let mut planned = HashSet::new();
    for i in done {
        let t = Instant::now();
        let mut ctx = Ctx {
            facts: host.facts,
            runner: host.runner,
            run: &mut *state,
            plan,
            dry_run: false,
            diffs: false,
            notified_by: Vec::new(),
            accounts,
            staging: &mut scratch,
            index: i,
            dirs: &mut planned,
        };
        verify(plan, i, &mut out[i], &mut ctx);
        out[i].duration_ms += ms(t);
    }
}
