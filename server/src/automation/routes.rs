//! Automation executions over HTTP: start, list, show, cancel, approve,
//! reject, resume. Each handler checks the role and calls [`super::service`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use tend_model::automation::{Decision, ExecutionStart, ExecutionView};
use tend_model::wire::Role;

use super::service;
use super::{Service, Verdict};
use crate::auth::Operator;
use crate::error::Result;
use crate::intake::{Caller, Gate, Guard, KIB};

pub fn routes(gate: &Gate) -> Router<Service> {
    use axum::routing::{get, post};
    let op = Caller::Token(Role::Operator);
    Router::new()
        .route("/v1/automations", post(start).guard(gate, op, 256 * KIB).get(list))
        .route("/v1/automations/{id}", get(show))
        .route("/v1/automations/{id}/cancel", post(cancel).guard(gate, op, 16 * KIB))
        // Any token may decide; the step's approvers list says whose decision counts.
        .route("/v1/automations/{id}/approve", post(approve).guard(gate, Caller::Token(Role::Viewer), 16 * KIB))
        .route("/v1/automations/{id}/reject", post(reject).guard(gate, Caller::Token(Role::Viewer), 16 * KIB))
        .route("/v1/automations/{id}/resume", post(resume).guard(gate, op, 16 * KIB))
}

async fn start(
    State(s): State<Service>,
    op: Operator,
    Json(req): Json<ExecutionStart>,
) -> Result<(StatusCode, Json<ExecutionView>)> {
    op.require(Role::Operator)?;
    Ok((StatusCode::CREATED, Json(service::start(&s, &op, req).await?)))
}

async fn list(State(s): State<Service>, op: Operator) -> Result<Json<Vec<ExecutionView>>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::list(&s).await?))
}

async fn show(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<ExecutionView>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::view(&s, &id).await?))
}

async fn cancel(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<ExecutionView>> {
    op.require(Role::Operator)?;
    Ok(Json(service::cancel(&s, &op, &id).await?))
}

async fn approve(
    State(s): State<Service>,
    op: Operator,
    Path(id): Path<String>,
    Json(d): Json<Decision>,
) -> Result<Json<ExecutionView>> {
    Ok(Json(service::decide(&s, &op, &id, Verdict::Approve, d).await?))
}

async fn reject(
    State(s): State<Service>,
    op: Operator,
    Path(id): Path<String>,
    Json(d): Json<Decision>,
) -> Result<Json<ExecutionView>> {
    Ok(Json(service::decide(&s, &op, &id, Verdict::Reject, d).await?))
}

async fn resume(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<ExecutionView>> {
    op.require(Role::Operator)?;
    Ok(Json(service::resume(&s, &op, &id).await?))
}
