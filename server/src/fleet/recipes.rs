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

use super::Service;
use crate::auth::{Agent, Operator, parse_scope};
use crate::commands::split_spec;
use crate::error::{Error, Result};
use crate::intake::{Caller, Gate, Guard, KIB, MIB};
use crate::pki::{random_hex, sha256_hex};

pub fn routes(gate: &Gate) -> Router<Service> {
    use axum::routing::{delete, get, post};
    let op = Caller::Token(Role::Operator);
    Router::new()
        .route("/v1/recipes", post(push_recipe).guard(gate, op, 16 * MIB).get(list_recipes))
        .route("/v1/recipes/{spec}", get(show_recipe))
        .route("/v1/assignments", post(assign).guard(gate, op, 256 * KIB).get(list_assignments))
        .route("/v1/assignments/{id}", delete(unassign).guard(gate, op, KIB))
        .route("/v1/agent/recipes", get(agent_recipes))
        .route("/v1/agent/reports", post(agent_report).guard(gate, Caller::Agent, 16 * MIB))
        .route("/v1/agent/facts", post(agent_facts).guard(gate, Caller::Agent, 4 * MIB))
        .route("/v1/reports", get(list_reports))
}

async fn push_recipe(State(s): State<Service>, op: Operator, Json(bundle): Json<Bundle>) -> Result<Response> {
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
    .await?;
    let plan = match checked {
        Ok(p) => p,
        Err(d) => return Err(Error::Invalid(Box::new(d))),
    };
    let name = plan.recipes.first().cloned().unwrap_or_default();
    tend_model::names::object_name("recipe", &name).map_err(Error::bad_request)?;
    if name != bundle.name {
        return Err(Error::bad_request(format!("the bundle says {:?} but its recipe is named {name:?}", bundle.name)));
    }
    // The version covers the signature too: a signed push is its own version.
    let version = sha256_hex(&serde_json::to_vec(&bundle)?)[..16].to_string();
    let text = serde_json::to_string(&bundle)?;
    let new = s.store.put_recipe(&name, &version, &text, &op.actor()).await?;
    if new {
        s.store.audit(&op.actor(), "recipe.push", &serde_json::json!({ "name": name, "version": version })).await?;
    }
    let (_, _, at) = s.store.recipe(&name, Some(&version)).await?.ok_or_else(|| Error::internal("just stored"))?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(RecipeVersion { name, version, created_at: at, files: bundle.files.len() })).into_response())
}

async fn list_recipes(State(s): State<Service>, op: Operator) -> Result<Json<Vec<RecipeVersion>>> {
    op.require(Role::Viewer)?;
    let all = s.store.list_recipes().await?;
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
    State(s): State<Service>,
    op: Operator,
    Path(spec): Path<String>,
) -> Result<Json<serde_json::Value>> {
    op.require(Role::Viewer)?;
    let (name, version) = split_spec(&spec);
    let Some((v, bundle, at)) = s.store.recipe(name, version).await? else {
        return Err(Error::not_found(format!("no recipe {spec}")));
    };
    let bundle: serde_json::Value = serde_json::from_str(&bundle)?;
    Ok(Json(serde_json::json!({ "name": name, "version": v, "created_at": at, "bundle": bundle })))
}

async fn assign(State(s): State<Service>, op: Operator, Json(req): Json<AssignmentCreate>) -> Result<Json<Assignment>> {
    op.require(Role::Operator)?;
    tend_model::names::targets(&req.targets).map_err(|e| Error::bad_request(format!("an assignment: {e}")))?;
    // A scoped operator may only target inside its scope.
    if op.0.scope.is_some() {
        op.check_targets(&req.targets, &s.store.list_nodes().await?)?;
    }
    let (name, version) = split_spec(&req.recipe);
    let Some((_, bundle, _)) = s.store.recipe(name, version).await? else {
        return Err(Error::not_found(format!("no recipe {} (push it first)", req.recipe)));
    };
    // Refuse bad parameter values now, before anything reaches a node.
    let bundle: Bundle = serde_json::from_str(&bundle)?;
    let overrides = tend_model::params::Overrides { raw: Vec::new(), typed: req.params.clone(), placeholders: false };
    // On a blocking thread, as on push: compiling must not hold a runtime worker.
    let checked =
        tokio::task::spawn_blocking(move || bundle.validate_with(&tend_model::facts::skeleton(), &overrides)).await?;
    let plan = match checked {
        Ok(p) => p,
        Err(d) => {
            return Err(Error::unprocessable(format!("these parameters do not fit {}:\n{d}", req.recipe)));
        }
    };
    // Sensitive values are stored sealed and shown to nobody but the agent.
    let params = s.secrets.seal_params(&req.params, &plan.sensitive_params)?;
    let a = Assignment {
        id: format!("asg-{}", random_hex(6)?),
        recipe: name.to_string(),
        version: version.map(str::to_string),
        targets: req.targets,
        params,
        created_at: crate::store::now(),
    };
    s.store.create_assignment(&a, &op.actor()).await?;
    let a = Assignment { params: crate::secrets::redact_params(&a.params), ..a };
    let detail = serde_json::json!({ "id": a.id, "recipe": req.recipe, "targets": a.targets });
    s.store.audit(&op.actor(), "assignment.create", &detail).await?;
    Ok(Json(a))
}

/// True if every target of the assignment lies within the token's scope.
async fn assignment_in_scope(s: &Service, op: &Operator, a: &Assignment) -> Result<bool> {
    let Some((k, v)) = op.0.scope.as_deref().and_then(parse_scope) else { return Ok(true) };
    let nodes = s.store.list_nodes().await?;
    Ok(a.targets.iter().all(|t| match t.strip_prefix("tag:").and_then(|kv| kv.split_once('=')) {
        Some((tk, tv)) => tk == k && tv == v,
        None => nodes.iter().any(|n| &n.id == t && op.in_scope(&n.tags)),
    }))
}

async fn list_assignments(State(s): State<Service>, op: Operator) -> Result<Json<Vec<Assignment>>> {
    op.require(Role::Viewer)?;
    let mut out = Vec::new();
    for a in s.store.list_assignments().await? {
        if assignment_in_scope(&s, &op, &a).await? {
            out.push(Assignment { params: crate::secrets::redact_params(&a.params), ..a });
        }
    }
    Ok(Json(out))
}

async fn unassign(State(s): State<Service>, op: Operator, Path(id): Path<String>) -> Result<StatusCode> {
    op.require(Role::Operator)?;
    if op.0.scope.is_some() {
        let all = s.store.list_assignments().await?;
        let Some(a) = all.iter().find(|a| a.id == id) else {
            return Err(Error::not_found(format!("no assignment {id}")));
        };
        if !assignment_in_scope(&s, &op, a).await? {
            return Err(Error::forbidden("a scoped token can only remove assignments within its scope"));
        }
    }
    if !s.store.delete_assignment(&id).await? {
        return Err(Error::not_found(format!("no assignment {id}")));
    }
    s.store.audit(&op.actor(), "assignment.delete", &serde_json::json!({ "id": id })).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The node's resolved recipe set, with an ETag: an unchanged set costs a 304.
async fn agent_recipes(State(s): State<Service>, Agent(node): Agent, headers: HeaderMap) -> Result<Response> {
    s.store.touch_node(&node.id).await?;
    let mut set = AgentRecipes::default();
    for a in s.store.list_assignments().await? {
        if !matches_targets(&a.targets, &node.id, &node.tags) {
            continue;
        }
        let Some((version, bundle, _)) = s.store.recipe(&a.recipe, a.version.as_deref()).await? else {
            continue;
        };
        let bundle: Bundle = serde_json::from_str(&bundle)?;
        let params = s.secrets.open_params(&a.params)?;
        set.recipes.push(AssignedRecipe { assignment: a.id, version, params, bundle });
    }
    let body = serde_json::to_vec(&set)?;
    let etag = format!("\"{}\"", &sha256_hex(&body)[..32]);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((StatusCode::OK, [(header::ETAG, etag), (header::CONTENT_TYPE, "application/json".to_string())], body)
        .into_response())
}

async fn agent_report(
    State(s): State<Service>,
    Agent(node): Agent,
    Json(report): Json<serde_json::Value>,
) -> Result<StatusCode> {
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
    let text = serde_json::to_string(&report)?;
    if text.len() > 16 * 1024 * 1024 {
        return Err(Error::too_large("the report is over 16 MiB (limit: http.max_body)"));
    }
    s.store.add_report(&node.id, &last, &text).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Inventory: the agent uploads its facts when they changed.
async fn agent_facts(
    State(s): State<Service>,
    Agent(node): Agent,
    Json(facts): Json<serde_json::Value>,
) -> Result<StatusCode> {
    if !facts.is_object() {
        return Err(Error::bad_request("facts must be a JSON object"));
    }
    let text = serde_json::to_string(&facts)?;
    if text.len() > 4 * 1024 * 1024 {
        return Err(Error::too_large("the facts are over 4 MiB (limit: http.max_body)"));
    }
    s.store.set_facts(&node.id, &text).await?;
    Ok(StatusCode::NO_CONTENT)
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
    let nodes = s.store.list_nodes().await?;
    let rows = s.store.reports(q.node.as_deref(), 200).await?;
    let mut out = Vec::new();
    for (node, at, report) in rows {
        if !nodes.iter().any(|n| n.id == node && op.in_scope(&n.tags)) {
            continue;
        }
        let r: serde_json::Value = serde_json::from_str(&report)?;
        let failed =
            r["summary"]["failed"].as_u64().unwrap_or(0) > 0 || r["errors"].as_array().is_some_and(|e| !e.is_empty());
        if q.failed && !failed {
            continue;
        }
        out.push(serde_json::json!({ "node": node, "at": at, "summary": r["summary"], "cached": r["cached"], "errors": r["errors"] }));
    }
    Ok(Json(out))
}
