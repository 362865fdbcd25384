//! Associations and compliance over HTTP. Each handler checks the role and
//! calls [`super::service`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use serde::Deserialize;
use tend_model::association::{AssociationCreate, AssociationView, ComplianceView, RunView};
use tend_model::wire::Role;

use super::Service;
use super::service;
use crate::auth::Operator;
use crate::error::Result;
use crate::intake::{Caller, Gate, Guard, KIB};

pub fn routes(gate: &Gate) -> Router<Service> {
    use axum::routing::{get, post};
    let op = Caller::Token(Role::Operator);
    Router::new()
        .route("/v1/associations", post(create).guard(gate, op, 256 * KIB).get(list))
        .route("/v1/associations/{id}", get(show).merge(axum::routing::delete(delete).guard(gate, op, KIB)))
        .route("/v1/associations/{id}/history", get(history))
        .route("/v1/associations/{id}/run-now", post(run_now).guard(gate, op, KIB))
        .route("/v1/compliance", get(compliance))
}

async fn create(
    State(s): State<Service>,
    op: Operator,
    Json(req): Json<AssociationCreate>,
) -> Result<(StatusCode, Json<AssociationView>)> {
    op.require(Role::Operator)?;
    Ok((StatusCode::CREATED, Json(service::create(&s, &op, req).await?)))
}

async fn list(State(s): State<Service>, op: Operator) -> Result<Json<Vec<AssociationView>>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::list(&s).await?))
}

async fn show(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<AssociationView>> {
    op.require(Role::Viewer)?;
    let a = service::find(&s, &id).await?;
    Ok(Json(service::view(&s, a, 20).await?))
}

async fn history(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<Vec<RunView>>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::history(&s, &id).await?))
}

async fn delete(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<StatusCode> {
    op.require(Role::Operator)?;
    service::delete(&s, &op, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn run_now(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<AssociationView>> {
    op.require(Role::Operator)?;
    Ok(Json(service::run_now(&s, &op, &id).await?))
}

#[derive(Deserialize)]
struct ComplianceQuery {
    #[serde(default)]
    association: Option<String>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    history: bool,
}

async fn compliance(
    State(s): State<Service>,
    op: Operator,
    Query(q): Query<ComplianceQuery>,
) -> Result<Json<Vec<ComplianceView>>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::compliance(&s, q.association.as_deref(), q.node.as_deref(), q.history).await?))
}
