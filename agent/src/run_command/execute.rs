//! Runs an invocation's steps: shell scripts in their own process group
//! (parameters only as environment variables), recipes through the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tend_model::command::{DeliveredStep, Delivery, InvocationResult, InvocationStatus};
use tend_model::document::{Action, OnFailure};
use tend_model::wire::AssignedRecipe;

use crate::config::AgentConfig;
use crate::state::StateDir;
use crate::system::process::{Exit, Job};

/// Exit code with which a script asks for a reboot.
pub const REBOOT_EXIT: i32 = 194;
/// Bytes of each output stream kept per step.
pub const CAPTURE: usize = 1024 * 1024;
/// How soon a converge step asks again for a server that did not answer.
const RETRY: Duration = Duration::from_secs(2);

pub struct Ctx<'a> {
    pub cfg: &'a AgentConfig,
    pub cancel: Arc<AtomicBool>,
    /// Called with the process group id of each step that starts.
    pub on_start: &'a (dyn Fn(u32) + Sync),
}

/// How one step ended.
enum StepEnd {
    Ok(i32),
    Failed(i32, String),
    TimedOut(String),
    Cancelled,
    Skipped(String),
}

struct Out {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The last converge step's report.
    report: Option<serde_json::Value>,
}

pub fn execute(d: &Delivery, ctx: &Ctx) -> InvocationResult {
    let started_at = crate::report::now_rfc3339();
    let t0 = Instant::now();
    let mut out = Out { stdout: Vec::new(), stderr: Vec::new(), report: None };
    let facts = d.steps.iter().any(|s| s.precondition.is_some()).then(|| match ctx.cfg.fact_options() {
        Ok(o) => crate::facts::gather(&o),
        Err(_) => serde_json::Value::Null,
    });
    let mut status = InvocationStatus::Success;
    let mut exit_code = None;
    let mut notes: Vec<String> = Vec::new();
    let mut reboot = false;
    for step in &d.steps {
        if ctx.cancel.load(Ordering::SeqCst) {
            status = InvocationStatus::Cancelled;
            notes.push(format!("step `{}` not started: cancelled", step.name));
            break;
        }
        if let (Some(pre), Some(f)) = (&step.precondition, &facts) {
            let actual = pre.fact.split('.').try_fold(f, |v, k| v.get(k));
            if actual != Some(&pre.equals) {
                let shown = actual.map(|v| v.to_string()).unwrap_or_else(|| "absent".into());
                notes.push(format!(
                    "step `{}` skipped: precondition {} = {} not met ({shown})",
                    step.name, pre.fact, pre.equals
                ));
                continue;
            }
        }
        let end = match step.action {
            Action::RunShellScript => run_script(d, step, ctx, &mut out),
            Action::ApplyRecipe => apply_recipe(d, step, ctx, &mut out),
            Action::Converge => converge_now(step, ctx, &mut out),
        };
        match end {
            StepEnd::Ok(code) => {
                exit_code = Some(code);
                if code == REBOOT_EXIT {
                    reboot = true;
                    notes.push(format!("step `{}` asked for a reboot (exit code {REBOOT_EXIT})", step.name));
                    break;
                }
            }
            StepEnd::Skipped(why) => notes.push(why),
            StepEnd::Failed(code, why) => {
                exit_code = Some(code);
                status = InvocationStatus::Failed;
                notes.push(format!("step `{}` failed: {why}", step.name));
                if step.on_failure == OnFailure::Abort {
                    break;
                }
            }
            StepEnd::TimedOut(why) => {
                status = InvocationStatus::TimedOut;
                notes.push(format!("step `{}` {why}", step.name));
                break;
            }
            StepEnd::Cancelled => {
                status = InvocationStatus::Cancelled;
                notes.push(format!("step `{}` cancelled; its process group was killed", step.name));
                break;
            }
        }
    }
    // Each stream stays within the capture size across all steps, so that a
    // result always fits the server's request limit.
    let redact = |bytes: &[u8]| {
        let text = d
            .sensitive
            .iter()
            .fold(String::from_utf8_lossy(bytes).into_owned(), |t, s| t.replace(s.as_str(), "(sensitive)"));
        tend_model::command::head_chars(&text, CAPTURE)
    };
    InvocationResult {
        status,
        exit_code,
        stdout: redact(&out.stdout),
        stderr: redact(&out.stderr),
        started_at: Some(started_at),
        ended_at: Some(crate::report::now_rfc3339()),
        duration_ms: Some(t0.elapsed().as_millis() as u64),
        reason: (!notes.is_empty()).then(|| redact(notes.join("; ").as_bytes())),
        reboot,
        report: out.report.map(|r| redact_value(r, &d.sensitive)),
    }
}

fn run_script(d: &Delivery, step: &DeliveredStep, ctx: &Ctx, out: &mut Out) -> StepEnd {
    let Some(script) = &step.run else { return StepEnd::Failed(1, "no script".into()) };
    let mut job = Job::shell(script.clone(), Duration::from_secs(step.timeout));
    // The step's own variables first, so that the parameters always win.
    job.env = step.env.iter().chain(d.env.iter()).map(|(k, v)| (k.clone(), v.clone())).collect();
    job.cwd = step.working_directory.clone();
    job.user = step.run_as.clone();
    job.capture_limit = CAPTURE;
    job.cancel = Some(ctx.cancel.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    job.started = Some(tx);
    let result = std::thread::scope(|s| {
        s.spawn(move || {
            if let Ok(pid) = rx.recv() {
                (ctx.on_start)(pid);
            }
        });
        let r = crate::system::process::run(&job);
        drop(job);
        r
    });
    match result {
        Err(e) => {
            out.stderr.extend_from_slice(format!("tend-agent: {e}\n").as_bytes());
            StepEnd::Failed(1, e.to_string())
        }
        Ok(o) => {
            out.stdout.extend_from_slice(&o.stdout);
            out.stderr.extend_from_slice(&o.stderr);
            match o.exit {
                Exit::Code(0) => StepEnd::Ok(0),
                Exit::Code(REBOOT_EXIT) => StepEnd::Ok(REBOOT_EXIT),
                Exit::Code(c) => StepEnd::Failed(c, format!("exit code {c}")),
                Exit::Signal(sig) => StepEnd::Failed(128 + sig, format!("killed by signal {sig}")),
                Exit::TimedOut => StepEnd::TimedOut(o.describe_exit()),
                Exit::Cancelled => StepEnd::Cancelled,
            }
        }
    }
}

/// Every string in a JSON value with the sensitive values replaced.
fn redact_value(v: serde_json::Value, sensitive: &[String]) -> serde_json::Value {
    use serde_json::Value;
    if sensitive.is_empty() {
        return v;
    }
    match v {
        Value::String(s) => Value::String(
            sensitive.iter().fold(s, |t, x| if x.is_empty() { t } else { t.replace(x.as_str(), "(sensitive)") }),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| redact_value(x, sensitive)).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, redact_value(x, sensitive))).collect()),
        other => other,
    }
}

/// The run lock, waiting for a converge in progress within the step's
/// timeout; `Err` says how the step ends instead.
fn wait_for_lock(state: &StateDir, step: &DeliveredStep, ctx: &Ctx) -> Result<crate::state::RunLock, StepEnd> {
    let deadline = Instant::now() + Duration::from_secs(step.timeout);
    let lock = loop {
        match state.lock() {
            Ok(l) => break l,
            Err(e) if Instant::now() >= deadline => {
                return Err(StepEnd::TimedOut(format!("waiting for the run lock: {e}")));
            }
            Err(_) if ctx.cancel.load(Ordering::SeqCst) => return Err(StepEnd::Cancelled),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    if crate::state::refused_while_disabled(state) {
        return Err(StepEnd::Skipped(format!("step `{}` skipped: the agent is disabled", step.name)));
    }
    Ok(lock)
}

/// Runs the node's own assigned set now (a rollout's wake-up), or a
/// dry-run of it with one recipe replaced (a plan's question).
fn converge_now(step: &DeliveredStep, ctx: &Ctx, out: &mut Out) -> StepEnd {
    let spec = step.converge.clone().unwrap_or_default();
    let state = StateDir::new(&ctx.cfg.state_dir);
    let _lock = match wait_for_lock(&state, step, ctx) {
        Ok(l) => l,
        Err(end) => return end,
    };
    let fopts = match ctx.cfg.fact_options() {
        Ok(o) => o,
        Err(e) => return StepEnd::Failed(1, e.to_string()),
    };
    let preview = if spec.dry_run { Some(spec.replace.as_deref().unwrap_or("")) } else { None };
    // The server's set of now, never the cached one: while the server
    // cannot be reached (a restart), try again within the step's timeout.
    let deadline = Instant::now() + Duration::from_secs(step.timeout);
    let (report, code) = loop {
        match crate::sources::server::run_locked(ctx.cfg, &fopts, &state, preview, true) {
            Ok(r) => break r,
            Err(e)
                if e.downcast_ref::<crate::sources::server::Unreachable>().is_some()
                    && Instant::now() + RETRY < deadline
                    && !ctx.cancel.load(Ordering::SeqCst) =>
            {
                tracing::warn!(error = %format!("{e:#}"), "converge step: retrying");
                std::thread::sleep(RETRY);
            }
            Err(e) => {
                out.stderr.extend_from_slice(format!("tend-agent: {e:#}\n").as_bytes());
                return StepEnd::Failed(1, format!("{e:#}"));
            }
        }
    };
    let style = crate::output::Style { color: false, diffs: spec.dry_run };
    let _ = crate::output::print(&report, style, &mut out.stdout);
    out.report = serde_json::to_value(&report).ok();
    if code & 4 == 0 { StepEnd::Ok(code) } else { StepEnd::Failed(code, crate::output::summary_line(&report)) }
}

/// Converges the step's recipe now, under the run lock (waiting for a
/// converge in progress, within the step's timeout).
fn apply_recipe(d: &Delivery, step: &DeliveredStep, ctx: &Ctx, out: &mut Out) -> StepEnd {
    let Some(r) = &step.recipe else { return StepEnd::Failed(1, "no recipe".into()) };
    let mode = match &step.converge {
        Some(c) if c.dry_run => crate::sources::server::Mode::DryRun,
        _ => crate::sources::server::Mode::Apply,
    };
    let state = StateDir::new(&ctx.cfg.state_dir);
    let _lock = match wait_for_lock(&state, step, ctx) {
        Ok(l) => l,
        Err(end) => return end,
    };
    let gathered = match ctx.cfg.fact_options() {
        Ok(o) => crate::facts::gather_with_warnings(&o),
        Err(e) => return StepEnd::Failed(1, e.to_string()),
    };
    let assigned = AssignedRecipe {
        assignment: format!("command {}", d.command_id),
        version: r.version.clone(),
        params: r.params.clone(),
        bundle: r.bundle.clone(),
    };
    let (report, code) = crate::sources::server::converge(
        &state,
        &ctx.cfg.trusted_keys,
        &gathered.facts,
        gathered.warnings,
        &[assigned],
        false,
        mode,
    );
    let style = crate::output::Style { color: false, diffs: mode == crate::sources::server::Mode::DryRun };
    let _ = crate::output::print(&report, style, &mut out.stdout);
    out.report = serde_json::to_value(&report).ok();
    for e in &report.errors {
        out.stderr.extend_from_slice(format!("error: {e}\n").as_bytes());
    }
    if code & 4 == 0 { StepEnd::Ok(code) } else { StepEnd::Failed(code, crate::output::summary_line(&report)) }
}
