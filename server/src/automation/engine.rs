//! The automation engine: runs executions step by step on the server (on
//! the replica that leads; see `association::run`).
//! Every transition is a written step row, so after a restart each
//! execution continues where it was: a sleep with the time it has left,
//! an approval still waiting, and a command step with the command it
//! already created (its id is fixed before it is created), never a second.

use std::time::Duration;

use serde_json::Value;
use tend_model::automation::{Action, Automation, OnFailure, Step, evaluate, extract, references};
use tend_model::command::CommandCreate;
use tokio::sync::Notify;

use super::Service;
use super::store::{ExecutionRow, ExecutionStatus, StepRow, StepStatus, Verdict};
use crate::auth::Operator;
use crate::store::{now, now_ms};

/// Wakes the engine at once (a start, an approval, a resume, a cancel).
#[derive(Default)]
pub struct Engine {
    pub kick: Notify,
    lock: tokio::sync::Mutex<()>,
}

/// The engine loop: every execution that is not finished, twice a second
/// and whenever kicked.
pub async fn run(s: Service) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = s.engine.kick.notified() => {},
        }
        if !s.leader.leads() {
            continue;
        }
        let ids = match s.store.active_executions().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "listing executions");
                continue;
            }
        };
        for id in ids {
            if let Err(e) = advance(&s, &id).await {
                tracing::error!(execution = id, error = %e, "advancing an execution");
            }
        }
    }
}

type Res<T> = crate::error::Result<T>;

/// The token it acts as: the one that created it.
fn operator(e: &ExecutionRow) -> Res<Operator> {
    Ok(Operator::acting_as(&e.token_id, &e.token_name, &e.role, e.scope.as_deref())?)
}

/// Moves one execution as far as it can go now.
pub async fn advance(s: &Service, id: &str) -> Res<()> {
    let _one = s.engine.lock.lock().await;
    // A few transitions per pass (a branch, then the step it chose).
    for _ in 0..16 {
        let Some(e) = s.store.execution(id).await? else { return Ok(()) };
        if e.finished_at.is_some() {
            return Ok(());
        }
        let doc: Automation = serde_json::from_str(&e.body)?;
        let params = s.secrets.open_params(&serde_json::from_str(&e.params)?)?;
        let steps = s.store.steps(id).await?;
        let Some(mut cur) = steps.last().cloned() else {
            // Not started: the first step.
            let first = &doc.steps[0];
            s.store.add_step(id, &new_row(id, 0, first, 1)).await?;
            continue;
        };
        let Some(step) = doc.steps.iter().find(|st| st.name == cur.name) else {
            finish(s, &e, ExecutionStatus::Failed, Some(format!("step {} is not in the document", cur.name))).await?;
            return Ok(());
        };
        if e.cancel_requested && !cur.status.is_final() {
            if let Some(cmd) = &cur.command_id {
                let _ = s.store.request_cancel(cmd).await;
                s.commands.dispatcher.touch(cmd);
            }
            end_step(s, id, &mut cur, StepStatus::Cancelled, None).await?;
            finish(s, &e, ExecutionStatus::Cancelled, Some("cancelled".into())).await?;
            return Ok(());
        }
        if !cur.status.is_final() {
            let before = (cur.status, cur.outputs.clone());
            step_once(s, &e, &params, &steps, step, &mut cur).await?;
            if !cur.status.is_final() {
                let status = if cur.status == StepStatus::Waiting {
                    ExecutionStatus::Waiting
                } else {
                    ExecutionStatus::InProgress
                };
                if e.status != status {
                    s.store.set_execution_status(id, status, None, false).await?;
                }
                if (cur.status, cur.outputs.clone()) == before {
                    return Ok(());
                }
                continue;
            }
        }
        // The current row has ended: where next?
        let next = next_step(&doc, step, &cur);
        match next {
            Next::Retry => {
                s.store.add_step(id, &new_row(id, cur.seq + 1, step, cur.attempt + 1)).await?;
            }
            Next::Step(name) => {
                let Some(st) = doc.steps.iter().find(|x| x.name == name) else {
                    finish(s, &e, ExecutionStatus::Failed, Some(format!("no step {name}"))).await?;
                    return Ok(());
                };
                s.store.add_step(id, &new_row(id, cur.seq + 1, st, 1)).await?;
            }
            Next::End(status, why) => {
                finish(s, &e, status, why).await?;
                return Ok(());
            }
        }
    }
    Ok(())
}

enum Next {
    Retry,
    Step(String),
    End(ExecutionStatus, Option<String>),
}

fn next_step(doc: &Automation, step: &Step, cur: &StepRow) -> Next {
    let i = doc.steps.iter().position(|x| x.name == step.name).unwrap_or(0);
    let after = || match &step.next_step {
        Some(n) => Next::Step(n.clone()),
        None if step.is_end => Next::End(ExecutionStatus::Success, None),
        None => match doc.steps.get(i + 1) {
            Some(n) => Next::Step(n.name.clone()),
            None => Next::End(ExecutionStatus::Success, None),
        },
    };
    if cur.status == StepStatus::Success {
        if step.action == Action::Branch {
            return match cur.outputs.get("nextStep").and_then(|v| v.as_str()) {
                Some(n) => Next::Step(n.to_string()),
                None => Next::End(ExecutionStatus::Success, None),
            };
        }
        return after();
    }
    if (cur.attempt as u32) < step.max_attempts && cur.status != StepStatus::Cancelled {
        return Next::Retry;
    }
    match step.on_failure() {
        OnFailure::Abort => {
            let status =
                if cur.status == StepStatus::TimedOut { ExecutionStatus::TimedOut } else { ExecutionStatus::Failed };
            Next::End(
                status,
                Some(format!("step {}: {}", step.name, cur.error.clone().unwrap_or(cur.status.to_string()))),
            )
        }
        OnFailure::Continue => after(),
        OnFailure::Step(n) => Next::Step(n),
    }
}

fn new_row(exec: &str, seq: i64, step: &Step, attempt: i64) -> StepRow {
    let command_id = matches!(step.action, Action::RunCommand | Action::ApplyRecipe)
        .then(|| format!("cmd-{}-{seq}", exec.trim_start_matches("exe-")));
    StepRow {
        seq,
        name: step.name.clone(),
        attempt,
        status: StepStatus::Pending,
        outputs: serde_json::Map::new(),
        approvals: Vec::new(),
        command_id,
        ..StepRow::default()
    }
}

async fn end_step(s: &Service, id: &str, cur: &mut StepRow, status: StepStatus, error: Option<String>) -> Res<()> {
    cur.status = status;
    cur.error = error.or(cur.error.take());
    cur.ended_at = Some(now());
    s.store.update_step(id, cur).await?;
    Ok(())
}

async fn finish(s: &Service, e: &ExecutionRow, status: ExecutionStatus, error: Option<String>) -> Res<()> {
    tracing::info!(execution = e.id, %status, "automation finished");
    s.store.set_execution_status(&e.id, status, error.as_deref(), true).await?;
    s.store
        .audit(
            &format!("token:{}", e.token_name),
            "automation.finish",
            &serde_json::json!({ "id": e.id, "status": status.as_str(), "error": error }),
        )
        .await?;
    Ok(())
}

/// Replaces `{{params.X}}` and `{{steps.S.outputs.K}}` in a value: a
/// whole-string reference keeps the referenced value's type.
pub fn substitute(v: &Value, resolve: &dyn Fn(&str) -> Value) -> Value {
    match v {
        Value::String(text) => {
            let mut refs = Vec::new();
            references(v, &mut refs);
            if refs.len() == 1 && text.trim() == format!("{{{{{}}}}}", refs[0]) {
                return resolve(&refs[0]);
            }
            let mut out = text.clone();
            for r in refs {
                let val = match resolve(&r) {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                out = out.replace(&format!("{{{{{r}}}}}", r = r), &val);
                out = out.replace(&format!("{{{{ {r} }}}}"), &val);
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, resolve)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), substitute(x, resolve))).collect()),
        other => other.clone(),
    }
}

/// A resolver over the parameters and the outputs of the steps that succeeded.
fn resolver<'a>(params: &'a serde_json::Map<String, Value>, steps: &'a [StepRow]) -> impl Fn(&str) -> Value + 'a {
    move |r: &str| {
        let r = r.trim().trim_start_matches("{{").trim_end_matches("}}").trim();
        let parts: Vec<&str> = r.split('.').collect();
        match parts.as_slice() {
            ["params", n] => params.get(*n).cloned().unwrap_or(Value::Null),
            ["steps", st, "outputs", k] => steps
                .iter()
                .rev()
                .find(|x| x.name == *st && x.status == StepStatus::Success)
                .and_then(|x| x.outputs.get(*k).cloned())
                .unwrap_or(Value::Null),
            _ => Value::from(r),
        }
    }
}

/// One look at the current step: start it, or see whether it is done.
async fn step_once(
    s: &Service,
    e: &ExecutionRow,
    params: &serde_json::Map<String, Value>,
    steps: &[StepRow],
    step: &Step,
    cur: &mut StepRow,
) -> Res<()> {
    let now_ms = now_ms();
    let resolve = resolver(params, steps);
    let inputs = substitute(&Value::Object(step.inputs.clone()), &resolve);
    if cur.status == StepStatus::Pending {
        cur.started_at = Some(now());
        cur.started_ms = Some(now_ms);
        cur.status = StepStatus::InProgress;
        match step.action {
            Action::Sleep => {
                let wake = match (inputs.get("duration").and_then(|d| d.as_str()), inputs.get("until")) {
                    (Some(d), _) => humantime::parse_duration(d)
                        .map(|d| now_ms + d.as_millis() as i64)
                        .map_err(|e| format!("duration {d:?}: {e}")),
                    (None, Some(Value::String(u))) => u
                        .parse::<jiff::Timestamp>()
                        .map(|t| t.as_millisecond())
                        .map_err(|e| format!("until {u:?}: {e}")),
                    _ => Err("sleep needs duration or until".to_string()),
                };
                match wake {
                    Ok(w) => cur.wake_ms = Some(w),
                    Err(why) => return end_step(s, &e.id, cur, StepStatus::Failed, Some(why)).await,
                }
            }
            Action::Approve | Action::Pause => cur.status = StepStatus::Waiting,
            Action::Branch => {
                let (choices, default) = step.branch();
                let chosen = choices.iter().find(|c| evaluate(&c.condition, &resolve)).map(|c| c.next_step.clone());
                let next = chosen.or(default);
                let mut out = serde_json::Map::new();
                if let Some(n) = &next {
                    out.insert("nextStep".into(), Value::from(n.clone()));
                }
                cur.outputs = out;
                return end_step(s, &e.id, cur, StepStatus::Success, None).await;
            }
            Action::RunCommand | Action::ApplyRecipe => {
                let req = command_request(step.action, &inputs);
                let id = cur.command_id.clone();
                // Written first: a restart then finds the id and never creates a second command.
                s.store.update_step(&e.id, cur).await?;
                if let Err(why) = crate::commands::start(&s.commands, &operator(e)?, req, id).await {
                    return end_step(s, &e.id, cur, StepStatus::Failed, Some(why.to_string())).await;
                }
            }
        }
        s.store.update_step(&e.id, cur).await?;
        return Ok(());
    }
    // Started: timed out?
    if let (Some(t), Some(started)) = (step.timeout, cur.started_ms)
        && now_ms - started > t as i64 * 1000
    {
        if let Some(cmd) = &cur.command_id {
            let _ = s.store.request_cancel(cmd).await;
            s.commands.dispatcher.touch(cmd);
        }
        return end_step(s, &e.id, cur, StepStatus::TimedOut, Some(format!("timed out after {t} s"))).await;
    }
    match step.action {
        Action::Sleep => {
            if cur.wake_ms.is_some_and(|w| now_ms >= w) {
                end_step(s, &e.id, cur, StepStatus::Success, None).await?;
            }
        }
        Action::Pause => {
            if cur.resumed {
                end_step(s, &e.id, cur, StepStatus::Success, None).await?;
            }
        }
        Action::Approve => {
            let need = inputs.get("minRequired").and_then(|v| v.as_u64()).unwrap_or(1) as usize;
            if let Some(r) = cur.approvals.iter().find(|d| d.decision == Verdict::Reject) {
                let why = format!("rejected by {}: {}", r.token, r.comment.as_deref().unwrap_or(""));
                end_step(s, &e.id, cur, StepStatus::Failed, Some(why)).await?;
            } else if cur.approvals.iter().filter(|d| d.decision == Verdict::Approve).count() >= need {
                end_step(s, &e.id, cur, StepStatus::Success, None).await?;
            }
        }
        Action::RunCommand | Action::ApplyRecipe => {
            let Some(cmd) = cur.command_id.clone() else { return Ok(()) };
            let Some(c) = s.store.command(&cmd).await? else {
                // The row was written but the server stopped before the
                // command was created: create it now (its id is fixed).
                let req = command_request(step.action, &inputs);
                if let Err(why) = crate::commands::start(&s.commands, &operator(e)?, req, Some(cmd)).await {
                    return end_step(s, &e.id, cur, StepStatus::Failed, Some(why.to_string())).await;
                }
                return Ok(());
            };
            if c.finished_at.is_none() {
                return Ok(());
            }
            let invs = s.store.invocation_views(&cmd).await?;
            let stdout = invs.first().map(|i| i.result.stdout.clone()).unwrap_or_default();
            let mut out = serde_json::Map::new();
            out.insert("commandId".into(), Value::from(cmd.clone()));
            out.insert("status".into(), Value::from(c.status.as_str()));
            for o in &step.outputs {
                if let Some(v) = extract(o, &stdout) {
                    out.insert(o.name.clone(), v);
                }
            }
            cur.outputs = out;
            if c.status == crate::commands::CommandStatus::Success {
                end_step(s, &e.id, cur, StepStatus::Success, None).await?;
            } else {
                end_step(s, &e.id, cur, StepStatus::Failed, Some(format!("command {cmd} ended {}", c.status))).await?;
            }
        }
        Action::Branch => {}
    }
    Ok(())
}

fn command_request(action: Action, inputs: &Value) -> CommandCreate {
    let text = |k: &str| inputs.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    let targets: Vec<String> = match inputs.get("targets") {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let (document, params) = match action {
        Action::ApplyRecipe => {
            let mut p = serde_json::Map::new();
            p.insert("recipe".into(), Value::from(text("recipe").unwrap_or_default()));
            ("ApplyRecipe".to_string(), p)
        }
        _ => (
            text("document").unwrap_or_default(),
            inputs.get("params").and_then(|p| p.as_object()).cloned().unwrap_or_default(),
        ),
    };
    CommandCreate {
        document,
        params,
        raw_params: Vec::new(),
        targets,
        max_concurrency: text("maxConcurrency"),
        max_errors: text("maxErrors"),
        timeout: inputs.get("timeout").and_then(|v| v.as_u64()),
        delivery_timeout: None,
        comment: None,
    }
}
