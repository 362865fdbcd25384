//! What executions do, whoever asks (the routes, and later the console):
//! start, view, list, cancel, decide, resume. Each returns the execution as
//! operators see it, or an [`Error`].

use serde_json::Value;
use tend_model::automation::{Action, Automation, Decision, ExecutionStart, ExecutionView, StepView};
use tend_model::params::Overrides;

use super::engine::advance;
use super::{Approval, ExecutionRow, ExecutionStatus, Service, StepStatus, Verdict};
use crate::auth::Operator;
use crate::commands::{find_document, split_spec};
use crate::error::{Error, Result};
use crate::pki::random_hex;
use crate::store::{decode, now};

/// Starts an execution of an automation document as `op`: its parameters
/// checked (sensitive ones sealed), the execution stored and audited, and
/// advanced as far as it goes now.
pub async fn start(s: &Service, op: &Operator, req: ExecutionStart) -> Result<ExecutionView> {
    let (name, version) = split_spec(&req.document);
    let (version, kind, text, _) = find_document(&s.store, name, version).await?;
    if kind != "Automation" {
        return Err(Error::bad_request(format!("{name} is a {kind} document: run it with `tend run`")));
    }
    let doc = Automation::parse(name, &text).map_err(Error::internal)?;
    let overrides = Overrides { raw: req.raw_params.clone(), typed: req.params.clone(), placeholders: false };
    let (values, problems) = tend_model::params::resolve(&doc.parameters, &overrides);
    if !problems.is_empty() {
        let msgs: Vec<String> = problems.into_iter().map(|p| p.message).collect();
        return Err(Error::unprocessable(format!("these parameters do not fit {name}:\n{}", msgs.join("\n"))));
    }
    let shown: serde_json::Map<String, Value> = values
        .iter()
        .map(|(k, v)| {
            let sensitive = doc.parameters.get(k).is_some_and(|p| p.sensitive);
            (k.clone(), if sensitive { Value::from("(sensitive)") } else { v.clone() })
        })
        .collect();
    let id = format!("exe-{}", random_hex(8)?);
    let row = ExecutionRow {
        id: id.clone(),
        document: format!("{name}@{version}"),
        body: serde_json::to_string(&doc)?,
        // Sensitive values sealed at rest (crate::secrets); the engine opens them.
        params: {
            let sensitive: Vec<String> =
                doc.parameters.iter().filter(|(_, p)| p.sensitive).map(|(k, _)| k.clone()).collect();
            serde_json::to_string(&s.secrets.seal_params(&values, &sensitive)?)?
        },
        params_shown: serde_json::to_string(&shown)?,
        status: ExecutionStatus::InProgress,
        token_id: op.0.id.clone(),
        token_name: op.0.name.clone(),
        role: op.0.role.to_string(),
        scope: op.0.scope.clone(),
        cancel_requested: false,
        error: None,
        created_at: now(),
        finished_at: None,
    };
    s.store.create_execution(&row).await?;
    let detail = serde_json::json!({ "id": id, "document": row.document, "params": shown });
    s.store.audit(&op.actor(), "automation.start", &detail).await?;
    advance(s, &id).await?;
    view(s, &id).await
}

/// An execution as operators see it: its steps, and what it waits for.
pub async fn view(s: &Service, id: &str) -> Result<ExecutionView> {
    let e = s.store.execution(id).await?.ok_or_else(|| Error::not_found("no such execution"))?;
    let steps = s.store.steps(id).await?;
    let doc: Option<Automation> = Some(decode("execution document", &e.body)?);
    let current = steps.last().filter(|st| !st.status.is_final() && e.finished_at.is_none());
    let waiting = current.filter(|st| st.status == StepStatus::Waiting || st.wake_ms.is_some()).map(|st| {
        let step = doc.as_ref().and_then(|d| d.steps.iter().find(|x| x.name == st.name));
        match step.map(|x| x.action) {
            Some(Action::Approve) => {
                let approvers = step.and_then(|x| x.inputs.get("approvers")).map(|a| a.to_string()).unwrap_or_default();
                let need = step.and_then(|x| x.inputs.get("minRequired")).and_then(|v| v.as_u64()).unwrap_or(1);
                let got = st.approvals.iter().filter(|d| d.decision == Verdict::Approve).count();
                format!("approval by {approvers} ({got} of {need})")
            }
            Some(Action::Pause) => "resume (tend automation resume)".to_string(),
            _ => match st.wake_ms.and_then(|w| jiff::Timestamp::from_millisecond(w).ok()) {
                Some(t) => format!("sleep until {t}"),
                None => "sleep".to_string(),
            },
        }
    });
    Ok(ExecutionView {
        id: e.id.clone(),
        document: e.document.clone(),
        status: e.status.to_string(),
        params: decode("execution parameters", &e.params_shown)?,
        created_at: e.created_at.clone(),
        created_by: format!("token:{}", e.token_name),
        finished_at: e.finished_at.clone(),
        error: e.error.clone(),
        current: current.map(|c| c.name.clone()),
        waiting,
        steps: steps
            .iter()
            .map(|st| StepView {
                name: st.name.clone(),
                attempt: st.attempt.max(0) as u32,
                status: st.status.to_string(),
                started_at: st.started_at.clone(),
                ended_at: st.ended_at.clone(),
                outputs: st.outputs.clone(),
                error: st.error.clone(),
                command_id: st.command_id.clone(),
            })
            .collect(),
    })
}

/// The latest executions, without their steps.
pub async fn list(s: &Service) -> Result<Vec<ExecutionView>> {
    let mut out = Vec::new();
    for e in s.store.list_executions(100).await? {
        let mut v = view(s, &e.id).await?;
        v.steps.clear();
        out.push(v);
    }
    Ok(out)
}

/// Asks an execution to stop: its current step is cancelled (with its command).
pub async fn cancel(s: &Service, op: &Operator, id: &str) -> Result<ExecutionView> {
    view(s, id).await?;
    s.store.request_execution_cancel(id).await?;
    s.store.audit(&op.actor(), "automation.cancel", &serde_json::json!({ "id": id })).await?;
    advance(s, id).await?;
    view(s, id).await
}

/// Records an approval or a rejection on the waiting approve step; only
/// the tokens the step lists may decide, once each.
pub async fn decide(s: &Service, op: &Operator, id: &str, decision: Verdict, d: Decision) -> Result<ExecutionView> {
    if let Some(c) = &d.comment {
        tend_model::names::comment(c).map_err(Error::bad_request)?;
    }
    let e = s.store.execution(id).await?.ok_or_else(|| Error::not_found("no such execution"))?;
    let doc: Automation = decode("execution document", &e.body)?;
    let mut steps = s.store.steps(id).await?;
    let Some(cur) = steps.last_mut().filter(|st| st.status == StepStatus::Waiting && e.finished_at.is_none()) else {
        return Err(Error::conflict(format!("execution {id} is not waiting for an approval")));
    };
    let step = doc.steps.iter().find(|x| x.name == cur.name).ok_or_else(|| Error::internal("step not in document"))?;
    if step.action != Action::Approve {
        return Err(Error::conflict(format!("execution {id} waits for a resume, not an approval")));
    }
    let approvers: Vec<String> = step
        .inputs
        .get("approvers")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if !approvers.contains(&op.0.name) {
        return Err(Error::forbidden(format!(
            "token `{}` is not an approver of step {} (approvers: {})",
            op.0.name,
            step.name,
            approvers.join(", ")
        )));
    }
    if cur.approvals.iter().any(|x| x.token == op.0.name) {
        return Err(Error::conflict(format!("token `{}` has already decided", op.0.name)));
    }
    cur.approvals.push(Approval { token: op.0.name.clone(), decision, comment: d.comment.clone(), at: now() });
    s.store.update_step(id, cur).await?;
    let detail = serde_json::json!({ "id": id, "step": step.name, "comment": d.comment });
    s.store.audit(&op.actor(), &format!("automation.{}", decision.as_str()), &detail).await?;
    advance(s, id).await?;
    view(s, id).await
}

/// Resumes an execution paused at a pause step.
pub async fn resume(s: &Service, op: &Operator, id: &str) -> Result<ExecutionView> {
    let e = s.store.execution(id).await?.ok_or_else(|| Error::not_found("no such execution"))?;
    let doc: Automation = decode("execution document", &e.body)?;
    let mut steps = s.store.steps(id).await?;
    let paused = steps.last_mut().filter(|st| {
        st.status == StepStatus::Waiting && doc.steps.iter().any(|x| x.name == st.name && x.action == Action::Pause)
    });
    let Some(cur) = paused else {
        return Err(Error::conflict(format!("execution {id} is not paused")));
    };
    cur.resumed = true;
    s.store.update_step(id, cur).await?;
    s.store.audit(&op.actor(), "automation.resume", &serde_json::json!({ "id": id })).await?;
    advance(s, id).await?;
    view(s, id).await
}
