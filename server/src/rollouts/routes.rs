//! Change sets and rollouts over HTTP. Each handler checks the role and
//! calls [`super::plan`] or [`super::service`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use tend_model::rollout::{ChangeSet, PlanCreate, RolloutCreate, RolloutView};
use tend_model::wire::Role;

use super::Service;
use super::service::{self, Control};
use crate::auth::Operator;
use crate::error::{Error, Result};
use crate::intake::{Caller, Gate, Guard, KIB};

pub fn routes(gate: &Gate) -> Router<Service> {
    use axum::routing::{get, post};
    let op = Caller::Token(Role::Operator);
    Router::new()
        .route("/v1/plans", post(create_plan).guard(gate, op, 64 * KIB).get(list_plans))
        .route("/v1/plans/{id}", get(show_plan))
        .route("/v1/rollouts", post(start).guard(gate, op, 64 * KIB).get(list))
        .route("/v1/rollouts/{id}", get(show))
        .route("/v1/rollouts/{id}/{action}", post(control).guard(gate, op, KIB))
}

async fn create_plan(
    State(s): State<Service>,
    op: Operator,
    Json(req): Json<PlanCreate>,
) -> Result<(StatusCode, Json<ChangeSet>)> {
    op.require(Role::Operator)?;
    Ok((StatusCode::CREATED, Json(super::plan::create(&s, &op, req).await?)))
}

async fn list_plans(State(s): State<Service>, op: Operator) -> Result<Json<Vec<ChangeSet>>> {
    op.require(Role::Viewer)?;
    Ok(Json(super::plan::list(&s, &op).await?))
}

async fn show_plan(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<ChangeSet>> {
    op.require(Role::Viewer)?;
    Ok(Json(super::plan::show(&s, &op, &id).await?))
}

async fn start(
    State(s): State<Service>,
    op: Operator,
    Json(req): Json<RolloutCreate>,
) -> Result<(StatusCode, Json<RolloutView>)> {
    op.require(Role::Operator)?;
    Ok((StatusCode::CREATED, Json(service::start(&s, &op, req).await?)))
}

async fn list(State(s): State<Service>, op: Operator) -> Result<Json<Vec<RolloutView>>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::list(&s, &op).await?))
}

async fn show(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<RolloutView>> {
    op.require(Role::Viewer)?;
    Ok(Json(service::view(&s, &op, &id).await?))
}

async fn control(
    State(s): State<Service>,
    op: Operator,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<RolloutView>> {
    op.require(Role::Operator)?;
    let what = match action.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "stop" => Control::Stop,
        "rollback" => Control::Rollback,
        other => return Err(Error::not_found(format!("no rollout action {other:?}: pause, resume, stop or rollback"))),
    };
    Ok(Json(service::control(&s, &op, &id, what).await?))
}
