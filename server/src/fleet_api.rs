//! Recipes, assignments, the agents' recipe fetch (with ETag) and reports.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use tend_model::bundle::Bundle;
use tend_model::wire::{
    AgentRecipes, AssignedRecipe, Assignment, AssignmentCreate, LastRun, RecipeVersion, Role, matches_targets,
};

use crate::api::{ApiResult, AppState, fail, internal, split_spec};
use crate::auth::{Agent, Operator, parse_scope};
use crate::intake::{Caller, Guard, KIB, MIB};
use crate::pki::{random_hex, sha256_hex};

pub fn routes(s: &AppState) -> Router<AppState> {
    use axum::routing::{delete, get, post};
    let op = Caller::Token(Role::Operator);
    Router::new()
        .route("/v1/recipes", post(push_recipe).guard(s, op, 16 * MIB).get(list_recipes))
        .route("/v1/recipes/{spec}", get(show_recipe))
        .route("/v1/assignments", post(assign).guard(s, op, 256 * KIB).get(list_assignments))
        .route("/v1/assignments/{id}", delete(unassign).guard(s, op, KIB))
        .route("/v1/agent/recipes", get(agent_recipes))
        .route("/v1/agent/reports", post(agent_report).guard(s, Caller::Agent, 16 * MIB))
        .route("/v1/agent/facts", post(agent_facts).guard(s, Caller::Agent, 4 * MIB))
        .route("/v1/reports", get(list_reports))
}

async fn push_recipe(
    State(s): State<AppState>,
    op: Operator,
    Json(bundle): Json<Bundle>,
) -> Result<Response, crate::api::ApiFailure> {
    op.require(Role::Operator)?;
    // Recipe names are fleet-wide: a new version reaches every node that
    // follows the name, so a scoped token may not push.
    op.require_unscoped("push recipes")?;
    // The agent's own parser and checks: the same errors, file:line:col.
    // On a blocking thread: a large recipe must not hold a runtime worker
    // (and with it /healthz) while it compiles.
    let (bundle, checked) = tokio::task::spawn_blocking(move || {
        let checked = bundle.validate(&tend_model::facts::skeleton());
        (bundle, checked)
    })
    .await
    .map_err(internal)?;
    let plan = match checked {
        Ok(p) => p,
        Err(d) => return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(d)).into_response()),
    };
    let name = plan.recipes.first().cloned().unwrap_or_default();
    tend_model::names::object_name("recipe", &name).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    if name != bundle.name {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!("the bundle says {:?} but its recipe is named {name:?}", bundle.name),
        ));
    }
    // The version covers the signature too: a signed push is its own version.
    let version = sha256_hex(&serde_json::to_vec(&bundle).map_err(internal)?)[..16].to_string();
    let text = serde_json::to_string(&bundle).map_err(internal)?;
    let new = s.store.put_recipe(&name, &version, &text, &op.actor()).await.map_err(internal)?;
    if new {
        s.store
            .audit(&op.actor(), "recipe.push", &serde_json::json!({ "name": name, "version": version }))
            .await
            .map_err(internal)?;
    }
    let (_, _, at) =
        s.store.recipe(&name, Some(&version)).await.map_err(internal)?.ok_or_else(|| internal("just stored"))?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(RecipeVersion { name, version, created_at: at, files: bundle.files.len() })).into_response())
}

async fn list_recipes(State(s): State<AppState>, op: Operator) -> ApiResult<Json<Vec<RecipeVersion>>> {
    op.require(Role::Viewer)?;
    let all = s.store.list_recipes().await.map_err(internal)?;
    Ok(Json(
        all.into_iter()
            .map(|(name, version, created_at, bundle)| {
                let files = serde_json::from_str::<Bundle>(&bundle).map(|b| b.files.len()).unwrap_or(0);
                RecipeVersion { name, version, created_at, files }
            })
            .collect(),
    ))
}

async fn show_recipe(
    State(s): State<AppState>,
    op: Operator,
    Path(spec): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Role::Viewer)?;
    let (name, version) = split_spec(&spec);
    let Some((v, bundle, at)) = s.store.recipe(name, version).await.map_err(internal)? else {
        return Err(fail(StatusCode::NOT_FOUND, format!("no recipe {spec}")));
    };
    let bundle: serde_json::Value = serde_json::from_str(&bundle).map_err(internal)?;
    Ok(Json(serde_json::json!({ "name": name, "version": v, "created_at": at, "bundle": bundle })))
}

async fn assign(
    State(s): State<AppState>,
    op: Operator,
    Json(req): Json<AssignmentCreate>,
) -> ApiResult<Json<Assignment>> {
    op.require(Role::Operator)?;
    tend_model::names::targets(&req.targets)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("an assignment: {e}")))?;
    // A scoped operator may only target inside its scope.
    if op.0.scope.is_some() {
        op.check_targets(&req.targets, &s.store.list_nodes().await.map_err(internal)?)?;
    }
    let (name, version) = split_spec(&req.recipe);
    let Some((_, bundle, _)) = s.store.recipe(name, version).await.map_err(internal)? else {
        return Err(fail(StatusCode::NOT_FOUND, format!("no recipe {} (push it first)", req.recipe)));
    };
    // Refuse bad parameter values now, before anything reaches a node.
    let bundle: Bundle = serde_json::from_str(&bundle).map_err(internal)?;
    let overrides = tend_model::params::Overrides { raw: Vec::new(), typed: req.params.clone(), placeholders: false };
    // On a blocking thread, as on push: compiling must not hold a runtime worker.
    let checked = tokio::task::spawn_blocking(move || bundle.validate_with(&tend_model::facts::skeleton(), &overrides))
        .await
        .map_err(internal)?;
    let plan = match checked {
        Ok(p) => p,
        Err(d) => {
            return Err(fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("these parameters do not fit {}:\n{d}", req.recipe),
            ));
        }
    };
    // Sensitive values are stored sealed and shown to nobody but the agent.
    let params = s.secrets.seal_params(&req.params, &plan.sensitive_params).map_err(internal)?;
    let a = Assignment {
        id: format!("asg-{}", random_hex(6).map_err(internal)?),
        recipe: name.to_string(),
        version: version.map(str::to_string),
        targets: req.targets,
        params,
        created_at: crate::store::now(),
    };
    s.store.create_assignment(&a, &op.actor()).await.map_err(internal)?;
    let a = Assignment { params: crate::secrets::redact_params(&a.params), ..a };
    let detail = serde_json::json!({ "id": a.id, "recipe": req.recipe, "targets": a.targets });
    s.store.audit(&op.actor(), "assignment.create", &detail).await.map_err(internal)?;
    Ok(Json(a))
}

/// True if every target of the assignment lies within the token's scope.
async fn assignment_in_scope(s: &AppState, op: &Operator, a: &Assignment) -> ApiResult<bool> {
    let Some((k, v)) = op.0.scope.as_deref().and_then(parse_scope) else { return Ok(true) };
    let nodes = s.store.list_nodes().await.map_err(internal)?;
    Ok(a.targets.iter().all(|t| match t.strip_prefix("tag:").and_then(|kv| kv.split_once('=')) {
        Some((tk, tv)) => tk == k && tv == v,
        None => nodes.iter().any(|n| &n.id == t && op.in_scope(&n.tags)),
    }))
}

async fn list_assignments(State(s): State<AppState>, op: Operator) -> ApiResult<Json<Vec<Assignment>>> {
    op.require(Role::Viewer)?;
    let mut out = Vec::new();
    for a in s.store.list_assignments().await.map_err(internal)? {
        if assignment_in_scope(&s, &op, &a).await? {
            out.push(Assignment { params: crate::secrets::redact_params(&a.params), ..a });
        }
    }
    Ok(Json(out))
}

async fn unassign(State(s): State<AppState>, op: Operator, Path(id): Path<String>) -> ApiResult<StatusCode> {
    op.require(Role::Operator)?;
    if op.0.scope.is_some() {
        let all = s.store.list_assignments().await.map_err(internal)?;
        let Some(a) = all.iter().find(|a| a.id == id) else {
            return Err(fail(StatusCode::NOT_FOUND, format!("no assignment {id}")));
        };
        if !assignment_in_scope(&s, &op, a).await? {
            return Err(fail(StatusCode::FORBIDDEN, "a scoped token can only remove assignments within its scope"));
        }
    }
    if !s.store.delete_assignment(&id).await.map_err(internal)? {
        return Err(fail(StatusCode::NOT_FOUND, format!("no assignment {id}")));
    }
    s.store.audit(&op.actor(), "assignment.delete", &serde_json::json!({ "id": id })).await.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The node's resolved recipe set, with an ETag: an unchanged set costs a 304.
async fn agent_recipes(
    State(s): State<AppState>,
    Agent(node): Agent,
    headers: HeaderMap,
) -> Result<Response, crate::api::ApiFailure> {
    s.store.touch_node(&node.id).await.map_err(internal)?;
    let mut set = AgentRecipes::default();
    for a in s.store.list_assignments().await.map_err(internal)? {
        if !matches_targets(&a.targets, &node.id, &node.tags) {
            continue;
        }
        let Some((version, bundle, _)) = s.store.recipe(&a.recipe, a.version.as_deref()).await.map_err(internal)?
        else {
            continue;
        };
        let bundle: Bundle = serde_json::from_str(&bundle).map_err(internal)?;
        let params = s.secrets.open_params(&a.params).map_err(internal)?;
        set.recipes.push(AssignedRecipe { assignment: a.id, version, params, bundle });
    }
    let body = serde_json::to_vec(&set).map_err(internal)?;
    let etag = format!("\"{}\"", &sha256_hex(&body)[..32]);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((StatusCode::OK, [(header::ETAG, etag), (header::CONTENT_TYPE, "application/json".to_string())], body)
        .into_response())
}

async fn agent_report(
    State(s): State<AppState>,
    Agent(node): Agent,
    Json(report): Json<serde_json::Value>,
) -> ApiResult<StatusCode> {
    let summary = &report["summary"];
    let num = |k: &str| summary[k].as_u64().unwrap_or(0);
    let failed = num("failed") + report["errors"].as_array().map(|a| a.len() as u64).unwrap_or(0);
    let status = if failed > 0 {
        "failed"
    } else if num("changed") > 0 {
        "changed"
    } else {
        "unchanged"
    };
    let last = LastRun {
        status: status.to_string(),
        changed: num("changed"),
        failed,
        cached: report["cached"].as_bool().unwrap_or(false),
        at: report["started_at"].as_str().map(str::to_string).unwrap_or_else(crate::store::now),
    };
    let text = serde_json::to_string(&report).map_err(internal)?;
    if text.len() > 16 * 1024 * 1024 {
        return Err(fail(StatusCode::PAYLOAD_TOO_LARGE, "the report is over 16 MiB (limit: http.max_body)"));
    }
    s.store.add_report(&node.id, &last, &text).await.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Inventory: the agent uploads its facts when they changed.
async fn agent_facts(
    State(s): State<AppState>,
    Agent(node): Agent,
    Json(facts): Json<serde_json::Value>,
) -> ApiResult<StatusCode> {
    if !facts.is_object() {
        return Err(fail(StatusCode::BAD_REQUEST, "facts must be a JSON object"));
    }
    let text = serde_json::to_string(&facts).map_err(internal)?;
    if text.len() > 4 * 1024 * 1024 {
        return Err(fail(StatusCode::PAYLOAD_TOO_LARGE, "the facts are over 4 MiB (limit: http.max_body)"));
    }
    s.store.set_facts(&node.id, &text).await.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ReportQuery {
    node: Option<String>,
    #[serde(default)]
    failed: bool,
}

async fn list_reports(
    State(s): State<AppState>,
    op: Operator,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    op.require(Role::Viewer)?;
    let nodes = s.store.list_nodes().await.map_err(internal)?;
    let rows = s.store.reports(q.node.as_deref(), 200).await.map_err(internal)?;
    let mut out = Vec::new();
    for (node, at, report) in rows {
        if !nodes.iter().any(|n| n.id == node && op.in_scope(&n.tags)) {
            continue;
        }
        let r: serde_json::Value = serde_json::from_str(&report).map_err(internal)?;
        let failed =
            r["summary"]["failed"].as_u64().unwrap_or(0) > 0 || r["errors"].as_array().is_some_and(|e| !e.is_empty());
        if q.failed && !failed {
            continue;
        }
        out.push(serde_json::json!({ "node": node, "at": at, "summary": r["summary"], "cached": r["cached"], "errors": r["errors"] }));
    }
    Ok(Json(out))
}
