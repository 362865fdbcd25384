//! Run command over HTTP: documents, commands for operators, and the
//! agents' side (long-poll, acknowledge, result). Handlers check the role
//! and call the service ([`super::start`], [`super::service`]); the
//! long-poll's waiting is transport, and stays here.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use tend_model::command::{AckAnswer, CommandCreate, CommandView, Delivery, DocumentVersion, InvocationResult, Poll};
use tend_model::wire::Role;

use super::{Service, service};
use crate::auth::{Agent, Operator};
use crate::error::Result;
use crate::intake::{Caller, Gate, Guard, KIB, MIB};

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
    let (new, v) = service::push_document(&s, &op, &req.file, &req.text).await?;
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(v)).into_response())
}

async fn list_documents(State(s): State<Service>, op: Operator) -> Result<Json<Vec<DocumentVersion>>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::list_documents(&s).await?))
}

async fn show_document(
    State(s): State<Service>,
    op: Operator,
    Path(spec): Path<String>,
) -> Result<Json<serde_json::Value>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::show_document(&s, &spec).await?))
}

// --- commands ---

async fn create_command(
    State(s): State<Service>,
    op: Operator,
    Json(req): Json<CommandCreate>,
) -> Result<(StatusCode, Json<CommandView>)> {
    Ok((StatusCode::CREATED, Json(super::start(&s, &op, req, None).await?)))
}

async fn list_commands(State(s): State<Service>, op: Operator) -> Result<Json<Vec<CommandView>>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::list_commands(&s, &op).await?))
}

async fn show_command(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<CommandView>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::show_command(&s, &op, &id).await?))
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
    service::output(&s, &op, &id, &node, q.stream.as_deref()).await
}

async fn cancel_command(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<CommandView>> {
    op.require(Role::Operator)?;
    Ok(Json(service::cancel(&s, &op, &id).await?))
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
    Ok(Json(service::ack(&s, &node, &id).await?))
}

async fn agent_result(
    State(s): State<Service>,
    Agent(node): Agent,
    Path(id): Path<String>,
    Json(res): Json<InvocationResult>,
) -> Result<StatusCode> {
    service::result(&s, &node, &id, &res).await?;
    Ok(StatusCode::NO_CONTENT)
}
