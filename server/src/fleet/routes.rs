//! The fleet over HTTP. Each handler checks the role, calls [`super::nodes`]
//! or [`super::recipes`], and shapes the answer (the recipe set's ETag here).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tend_model::bundle::Bundle;
use tend_model::wire::{
    Activation, ActivationCreate, Assignment, AssignmentCreate, AuditEntry, Node, RecipeVersion, RegisterRequest,
    RegisterResponse, Role, Token, TokenCreate,
};

use super::{Service, nodes, recipes};
use crate::auth::{Agent, Operator};
use crate::error::Result;
use crate::intake::{Caller, Gate, Guard, KIB, MIB};
use crate::pki::sha256_hex;

pub fn routes(gate: &Gate) -> Router<Service> {
    let s = gate;
    let op = Caller::Token(Role::Operator);
    Router::new()
        .route("/v1/tokens", post(create_token).guard(s, Caller::Token(Role::Admin), 16 * KIB).get(list_tokens))
        .route("/v1/tokens/{id}", delete(revoke_token).guard(s, Caller::Token(Role::Admin), KIB))
        .route("/v1/activations", post(create_activation).guard(s, op, 64 * KIB).get(list_activations))
        .route("/v1/register", post(register).guard(s, Caller::Anyone, 16 * KIB))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/nodes/{id}", get(show_node).merge(delete(deregister).guard(s, op, KIB)))
        .route("/v1/agent/whoami", get(whoami))
        .route("/v1/audit", get(audit))
        .route("/v1/recipes", post(push_recipe).guard(s, op, 16 * MIB).get(list_recipes))
        .route("/v1/recipes/{spec}", get(show_recipe))
        .route("/v1/assignments", post(assign).guard(s, op, 256 * KIB).get(list_assignments))
        .route("/v1/assignments/{id}", delete(unassign).guard(s, op, KIB))
        .route("/v1/agent/recipes", get(agent_recipes))
        .route("/v1/agent/reports", post(agent_report).guard(s, Caller::Agent, 16 * MIB))
        .route("/v1/agent/facts", post(agent_facts).guard(s, Caller::Agent, 4 * MIB))
        .route("/v1/reports", get(list_reports))
}

async fn create_token(State(s): State<Service>, op: Operator, Json(req): Json<TokenCreate>) -> Result<Json<Token>> {
    op.require(Role::Admin)?;
    Ok(Json(nodes::create_token(&s, &op, req).await?))
}

async fn list_tokens(State(s): State<Service>, op: Operator) -> Result<Json<Vec<Token>>> {
    op.require(Role::Admin)?;
    Ok(Json(nodes::list_tokens(&s).await?))
}

async fn revoke_token(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<StatusCode> {
    op.require(Role::Admin)?;
    nodes::revoke_token(&s, &op, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_activation(
    State(s): State<Service>,
    op: Operator,
    Json(req): Json<ActivationCreate>,
) -> Result<Json<Activation>> {
    op.require(Role::Operator)?;
    Ok(Json(nodes::create_activation(&s, &op, req).await?))
}

async fn list_activations(State(s): State<Service>, op: Operator) -> Result<Json<Vec<Activation>>> {
    op.require(Role::Viewer)?;
    Ok(Json(nodes::list_activations(&s, &op).await?))
}

async fn register(State(s): State<Service>, Json(req): Json<RegisterRequest>) -> Result<Json<RegisterResponse>> {
    Ok(Json(nodes::register(&s, req).await?))
}

async fn list_nodes(State(s): State<Service>, op: Operator) -> Result<Json<Vec<Node>>> {
    op.require(Role::Viewer)?;
    Ok(Json(nodes::list_nodes(&s, &op).await?))
}

async fn show_node(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<Json<Node>> {
    op.require(Role::Viewer)?;
    Ok(Json(nodes::show_node(&s, &op, &id).await?))
}

async fn deregister(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<StatusCode> {
    op.require(Role::Operator)?;
    nodes::deregister(&s, &op, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn whoami(State(s): State<Service>, Agent(node): Agent) -> Result<Json<Node>> {
    Ok(Json(nodes::whoami(&s, node).await?))
}

async fn audit(State(s): State<Service>, op: Operator) -> Result<Json<Vec<AuditEntry>>> {
    op.require(Role::Admin)?;
    Ok(Json(nodes::audit(&s).await?))
}

async fn list_recipes(State(s): State<Service>, op: Operator) -> Result<Json<Vec<RecipeVersion>>> {
    op.require(Role::Viewer)?;
    Ok(Json(recipes::list_recipes(&s).await?))
}

async fn show_recipe(
    State(s): State<Service>,
    op: Operator,
    Path(spec): Path<String>,
) -> Result<Json<serde_json::Value>> {
    op.require(Role::Viewer)?;
    Ok(Json(recipes::show_recipe(&s, &spec).await?))
}

async fn assign(State(s): State<Service>, op: Operator, Json(req): Json<AssignmentCreate>) -> Result<Json<Assignment>> {
    op.require(Role::Operator)?;
    Ok(Json(recipes::assign(&s, &op, req).await?))
}

async fn list_assignments(State(s): State<Service>, op: Operator) -> Result<Json<Vec<Assignment>>> {
    op.require(Role::Viewer)?;
    Ok(Json(recipes::list_assignments(&s, &op).await?))
}

async fn unassign(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<StatusCode> {
    op.require(Role::Operator)?;
    recipes::unassign(&s, &op, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn agent_report(
    State(s): State<Service>,
    Agent(node): Agent,
    Json(report): Json<serde_json::Value>,
) -> Result<StatusCode> {
    recipes::agent_report(&s, node, report).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn agent_facts(
    State(s): State<Service>,
    Agent(node): Agent,
    Json(facts): Json<serde_json::Value>,
) -> Result<StatusCode> {
    recipes::agent_facts(&s, node, facts).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn push_recipe(State(s): State<Service>, op: Operator, Json(bundle): Json<Bundle>) -> Result<Response> {
    op.require(Role::Operator)?;
    let (new, v) = recipes::push_recipe(&s, &op, bundle).await?;
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(v)).into_response())
}

/// The node's resolved recipe set, with an ETag: an unchanged set costs a 304.
#[derive(Deserialize)]
struct RecipesQuery {
    /// `RECIPE@VERSION`: a plan's dry-run of that version.
    replace: Option<String>,
}

async fn agent_recipes(
    State(s): State<Service>,
    Agent(node): Agent,
    headers: HeaderMap,
    Query(q): Query<RecipesQuery>,
) -> Result<Response> {
    let set = recipes::recipes_for(&s, &node, q.replace.as_deref()).await?;
    let body = serde_json::to_vec(&set)?;
    let etag = format!("\"{}\"", &sha256_hex(&body)[..32]);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((StatusCode::OK, [(header::ETAG, etag), (header::CONTENT_TYPE, "application/json".to_string())], body)
        .into_response())
}

#[derive(Deserialize)]
struct ReportQuery {
    node: Option<String>,
    #[serde(default)]
    failed: bool,
}

async fn list_reports(
    State(s): State<Service>,
    op: Operator,
    Query(q): Query<ReportQuery>,
) -> Result<Json<Vec<serde_json::Value>>> {
    op.require(Role::Viewer)?;
    Ok(Json(recipes::reports(&s, &op, q.node.as_deref(), q.failed).await?))
}
