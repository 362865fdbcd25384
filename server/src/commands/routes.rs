//! Run command over HTTP: documents, commands for operators, and the
//! agents' side (long-poll, acknowledge, result).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use tend_model::command::{
    AckAnswer, CommandCreate, CommandView, Delivery, DocumentVersion, InvocationResult, InvocationStatus, Poll,
};
use tend_model::document::{self, Document};
use tend_model::wire::Role;

use super::{Service, find_document, split_spec, view};
use crate::auth::{Agent, Operator};
use crate::error::{Error, Result};
use crate::intake::{Caller, Gate, Guard, KIB, MIB};
use crate::pki::sha256_hex;

pub fn routes(gate: &Gate) -> Router<Service> {
    use axum::routing::{get, post};
    let op = Caller::Token(Role::Operator);
    Router::new()
        .route("/v1/documents", post(push_document).guard(gate, op, 2 * MIB).get(list_documents))
        .route("/v1/documents/{spec}", get(show_document))
        .route("/v1/commands", post(create_command).guard(gate, op, 256 * KIB).get(list_commands))
        .route("/v1/commands/{id}", get(show_command))
        .route("/v1/commands/{id}/output/{node}", get(command_output))
        .route("/v1/commands/{id}/cancel", post(cancel_command).guard(gate, op, KIB))
        .route("/v1/agent/commands", get(agent_poll))
        .route("/v1/agent/commands/{id}/ack", post(agent_ack).guard(gate, Caller::Agent, 16 * KIB))
        // Both output streams, capped by the agent, JSON-escaped.
        .route("/v1/agent/commands/{id}/result", post(agent_result).guard(gate, Caller::Agent, 16 * MIB))
}

/// Longest long-poll an agent may ask for.
const MAX_WAIT: u64 = 60;

// --- documents ---

#[derive(Deserialize)]
struct DocumentPush {
    file: String,
    text: String,
}

async fn push_document(State(s): State<Service>, op: Operator, Json(req): Json<DocumentPush>) -> Result<Response> {
    op.require(Role::Operator)?;
    op.require_unscoped("push documents")?;
    // The kind decides the parser: a command document or an automation.
    let automation = tend_model::automation::is_automation(&req.text);
    let parsed = if automation {
        tend_model::automation::Automation::parse(&req.file, &req.text).map(|a| a.name)
    } else {
        Document::parse(&req.file, &req.text).map(|d| d.name)
    };
    let name = match parsed {
        Ok(n) => n,
        Err(d) => return Err(Error::Invalid(Box::new(d))),
    };
    let kind = if automation { "Automation" } else { "Command" }.to_string();
    if document::builtin(&name).is_some() {
        return Err(Error::conflict(format!("{name} is a built-in document; choose another name")));
    }
    let version = sha256_hex(req.text.as_bytes())[..16].to_string();
    let new = s.store.put_document(&name, &version, &kind, &req.text, &op.actor()).await?;
    if new {
        let detail = serde_json::json!({ "name": name, "version": version, "kind": kind });
        s.store.audit(&op.actor(), "document.push", &detail).await?;
    }
    let (_, _, _, at) = s.store.document(&name, Some(&version)).await?.ok_or_else(|| Error::internal("just stored"))?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    let v = DocumentVersion { name, version, kind, created_at: at, builtin: false };
    Ok((status, Json(v)).into_response())
}

async fn list_documents(State(s): State<Service>, op: Operator) -> Result<Json<Vec<DocumentVersion>>> {
    op.require(Role::Viewer)?;
    let mut out: Vec<DocumentVersion> = document::BUILTINS
        .iter()
        .map(|n| DocumentVersion {
            name: n.to_string(),
            version: "builtin".into(),
            kind: "Command".into(),
            created_at: String::new(),
            builtin: true,
        })
        .collect();
    for (name, version, kind, created_at) in s.store.list_documents().await? {
        out.push(DocumentVersion { name, version, kind, created_at, builtin: false });
    }
    Ok(Json(out))
}

async fn show_document(
    State(s): State<Service>,
    op: Operator,
    Path(spec): Path<String>,
) -> Result<Json<serde_json::Value>> {
    op.require(Role::Viewer)?;
    let (name, version) = split_spec(&spec);
    let (version, kind, text, at) = find_document(&s.store, name, version).await?;
    Ok(Json(serde_json::json!({ "name": name, "version": version, "kind": kind, "created_at": at, "text": text })))
}

// --- commands ---

async fn create_command(
    State(s): State<Service>,
    op: Operator,
    Json(req): Json<CommandCreate>,
) -> Result<(StatusCode, Json<CommandView>)> {
    Ok((StatusCode::CREATED, Json(super::start(&s, &op, req, None).await?)))
}

/// Viewers see commands that touch only nodes inside their scope.
async fn visible(s: &Service, op: &Operator, id: &str) -> Result<()> {
    if op.0.scope.is_none() {
        return Ok(());
    }
    let nodes = s.store.list_nodes().await?;
    for inv in s.store.invocations(id).await? {
        let inside = nodes.iter().any(|n| n.id == inv.node_id && op.in_scope(&n.tags));
        if !inside {
            return Err(Error::not_found("no such command"));
        }
    }
    Ok(())
}

async fn list_commands(State(s): State<Service>, op: Operator) -> Result<Json<Vec<CommandView>>> {
    op.require(Role::Viewer)?;
    let mut out = Vec::new();
    for c in s.store.list_commands(100).await? {
        if visible(&s, &op, &c.id).await.is_ok() {
            out.push(view(&s, &c.id, false).await?);
        }
    }
    Ok(Json(out))
}

async fn show_command(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<CommandView>> {
    op.require(Role::Viewer)?;
    visible(&s, &op, &id).await?;
    Ok(Json(view(&s, &id, true).await?))
}

#[derive(Deserialize)]
struct OutputQuery {
    #[serde(default)]
    stream: Option<String>,
}

async fn command_output(
    State(s): State<Service>,
    op: Operator,
    Path((id, node)): Path<(String, String)>,
    Query(q): Query<OutputQuery>,
) -> Result<String> {
    op.require(Role::Viewer)?;
    visible(&s, &op, &id).await?;
    let stderr = match q.stream.as_deref() {
        None | Some("stdout") => false,
        Some("stderr") => true,
        Some(other) => return Err(Error::bad_request(format!("stream {other:?}: stdout or stderr"))),
    };
    s.store
        .invocation_output(&id, &node, stderr)
        .await?
        .ok_or_else(|| Error::not_found(format!("command {id} has no invocation on {node}")))
}

async fn cancel_command(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<CommandView>> {
    op.require(Role::Operator)?;
    visible(&s, &op, &id).await?;
    let c = s.store.command(&id).await?.ok_or_else(|| Error::not_found("no such command"))?;
    if c.finished_at.is_none() {
        s.store.request_cancel(&id).await?;
        s.store.audit(&op.actor(), "command.cancel", &serde_json::json!({ "id": id })).await?;
        s.dispatcher.advance(&id).await?;
        for inv in s.store.invocations(&id).await? {
            if inv.status == InvocationStatus::InProgress {
                s.dispatcher.wake(&inv.node_id);
            }
        }
    }
    Ok(Json(view(&s, &id, true).await?))
}

// --- agents ---

#[derive(Deserialize)]
struct PollQuery {
    #[serde(default)]
    wait: Option<u64>,
}

/// The long-poll: answers at once when the node has work (or cancellations),
/// else waits up to `wait` seconds for it.
async fn agent_poll(State(s): State<Service>, Agent(node): Agent, Query(q): Query<PollQuery>) -> Result<Json<Poll>> {
    s.store.touch_node(&node.id).await?;
    let conn = s.dispatcher.connect(&node.id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(25).min(MAX_WAIT));
    loop {
        // Register interest before looking, so a wake between the look and
        // the wait is not lost.
        let notified = conn.notify.notified();
        let poll = collect(&s, &node.id).await?;
        if !poll.deliveries.is_empty() || !poll.cancels.is_empty() {
            return Ok(Json(poll));
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(Json(Poll::default()));
        }
    }
}

async fn collect(s: &Service, node: &str) -> Result<Poll> {
    let mut deliveries = Vec::new();
    for (id, text) in s.store.pending_deliveries(node).await? {
        let text = s.secrets.open_text(&text)?;
        match serde_json::from_str::<Delivery>(&text) {
            Ok(d) => deliveries.push(d),
            Err(e) => tracing::error!(command = id, error = %e, "a stored delivery does not parse"),
        }
    }
    let cancels = if s.dispatcher.any_cancelling() {
        let running = s.store.cancelled_running(node).await?;
        s.dispatcher.take_new_cancels(node, running)
    } else {
        Vec::new()
    };
    Ok(Poll { deliveries, cancels })
}

async fn agent_ack(State(s): State<Service>, Agent(node): Agent, Path(id): Path<String>) -> Result<Json<AckAnswer>> {
    let status = s.store.ack_invocation(&id, &node.id).await?;
    match status {
        None => Err(Error::not_found(format!("command {id} has no invocation on this node"))),
        Some(st) => Ok(Json(AckAnswer { run: st == InvocationStatus::InProgress })),
    }
}

async fn agent_result(
    State(s): State<Service>,
    Agent(node): Agent,
    Path(id): Path<String>,
    Json(res): Json<InvocationResult>,
) -> Result<StatusCode> {
    if !res.status.is_terminal() {
        return Err(Error::bad_request(format!("{} is not a final status", res.status)));
    }
    let stored = s.store.finish_invocation(&id, &node.id, &res, s.output_cap).await?;
    if stored {
        s.dispatcher.touch(&id);
    }
    Ok(StatusCode::NO_CONTENT)
}
