//! Recipes, assignments, the set of recipes a node is to converge, and the
//! reports and facts agents send: what the fleet's routes call.

use tend_model::bundle::Bundle;
use tend_model::wire::{
    AgentRecipes, AssignedRecipe, Assignment, AssignmentCreate, LastRun, Node, RecipeVersion, matches_targets,
};

use super::Service;
use crate::auth::{Operator, parse_scope};
use crate::commands::split_spec;
use crate::error::{Error, Result};
use crate::pki::{random_hex, sha256_hex};
use crate::store::decode;

/// Stores a pushed recipe version after compiling it with the agent's own
/// pipeline (the same errors, file:line:col). True when the version is new.
pub async fn push_recipe(s: &Service, op: &Operator, bundle: Bundle) -> Result<(bool, RecipeVersion)> {
    // Recipe names are fleet-wide: a new version reaches every node that
    // follows the name, so a scoped token may not push.
    op.require_unscoped("push recipes")?;
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
    Ok((new, RecipeVersion { name, version, created_at: at, files: bundle.files.len() }))
}

pub async fn list_recipes(s: &Service) -> Result<Vec<RecipeVersion>> {
    let all = s.store.list_recipes().await?;
    let mut out = Vec::with_capacity(all.len());
    for (name, version, created_at, bundle) in all {
        let files = decode::<Bundle>("recipe bundle", &bundle)?.files.len();
        out.push(RecipeVersion { name, version, created_at, files });
    }
    Ok(out)
}

pub async fn show_recipe(s: &Service, spec: &str) -> Result<serde_json::Value> {
    let (name, version) = split_spec(spec);
    let Some((v, bundle, at)) = s.store.recipe(name, version).await? else {
        return Err(Error::not_found(format!("no recipe {spec}")));
    };
    let bundle: serde_json::Value = serde_json::from_str(&bundle)?;
    Ok(serde_json::json!({ "name": name, "version": v, "created_at": at, "bundle": bundle }))
}

pub async fn assign(s: &Service, op: &Operator, req: AssignmentCreate) -> Result<Assignment> {
    tend_model::names::targets(&req.targets).map_err(|e| Error::bad_request(format!("an assignment: {e}")))?;
    // A scoped operator may only target inside its scope.
    if op.0.scope.is_some() {
        op.check_targets(&req.targets, &s.store.list_nodes().await?)?;
    }
    let (name, version) = split_spec(&req.recipe);
    let Some((_, bundle, _)) = s.store.recipe(name, version).await? else {
        return Err(Error::not_found(format!("no recipe {} (push it first)", req.recipe)));
    };
    // A rollout decides which version each of its nodes runs until it ends.
    if let Some(active) = s.store.active_rollout_of(name).await? {
        return Err(Error::conflict(format!(
            "rollout {active} is rolling out {name}; wait for it to end, or `tend rollout stop {active}`"
        )));
    }
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
    // The new assignment decides the version on its nodes: earlier rollouts' pins of this recipe go.
    let targeted: Vec<String> = s
        .store
        .list_nodes()
        .await?
        .into_iter()
        .filter(|n| matches_targets(&a.targets, &n.id, &n.tags))
        .map(|n| n.id)
        .collect();
    s.store.unpin(&a.recipe, &targeted).await?;
    let a = Assignment { params: crate::secrets::redact_params(&a.params), ..a };
    let detail = serde_json::json!({ "id": a.id, "recipe": req.recipe, "targets": a.targets });
    s.store.audit(&op.actor(), "assignment.create", &detail).await?;
    Ok(a)
}

pub async fn list_assignments(s: &Service, op: &Operator) -> Result<Vec<Assignment>> {
    let mut out = Vec::new();
    for a in s.store.list_assignments().await? {
        if assignment_in_scope(s, op, &a).await? {
            out.push(Assignment { params: crate::secrets::redact_params(&a.params), ..a });
        }
    }
    Ok(out)
}

pub async fn unassign(s: &Service, op: &Operator, id: &str) -> Result<()> {
    if op.0.scope.is_some() {
        let all = s.store.list_assignments().await?;
        let Some(a) = all.iter().find(|a| a.id == id) else {
            return Err(Error::not_found(format!("no assignment {id}")));
        };
        if !assignment_in_scope(s, op, a).await? {
            return Err(Error::forbidden("a scoped token can only remove assignments within its scope"));
        }
    }
    if !s.store.delete_assignment(id).await? {
        return Err(Error::not_found(format!("no assignment {id}")));
    }
    s.store.audit(&op.actor(), "assignment.delete", &serde_json::json!({ "id": id })).await?;
    Ok(())
}

pub async fn agent_report(s: &Service, node: Node, report: serde_json::Value) -> Result<()> {
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
    Ok(())
}

/// Inventory: the agent uploads its facts when they changed.
pub async fn agent_facts(s: &Service, node: Node, facts: serde_json::Value) -> Result<()> {
    if !facts.is_object() {
        return Err(Error::bad_request("facts must be a JSON object"));
    }
    let text = serde_json::to_string(&facts)?;
    if text.len() > 4 * 1024 * 1024 {
        return Err(Error::too_large("the facts are over 4 MiB (limit: http.max_body)"));
    }
    s.store.set_facts(&node.id, &text).await?;
    Ok(())
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

/// The recipes this node is to converge: every assignment that targets it,
/// with its parameters (sensitive ones opened, for this agent only), at the
/// version a rollout pinned on this node, else the assignment's. With
/// `replace` (`RECIPE@VERSION`, a plan's question), that recipe is at that
/// version instead; a node without an assignment of it is refused.
pub async fn recipes_for(s: &Service, node: &Node, replace: Option<&str>) -> Result<AgentRecipes> {
    s.store.touch_node(&node.id).await?;
    let replace = match replace.filter(|r| !r.is_empty()).map(split_spec) {
        Some((name, Some(version))) => Some((name, version)),
        Some((name, None)) => return Err(Error::bad_request(format!("replace={name}: RECIPE@VERSION"))),
        None => None,
    };
    let pins = s.store.pins_of(&node.id).await?;
    let mut set = AgentRecipes::default();
    let mut replaced = false;
    for a in s.store.list_assignments().await? {
        if !matches_targets(&a.targets, &node.id, &node.tags) {
            continue;
        }
        let wanted = match replace {
            Some((name, version)) if name == a.recipe => {
                replaced = true;
                Some(version.to_string())
            }
            _ => pins.get(&a.recipe).cloned().or(a.version.clone()),
        };
        let Some((version, bundle, _)) = s.store.recipe(&a.recipe, wanted.as_deref()).await? else {
            continue;
        };
        let bundle: Bundle = decode("recipe bundle", &bundle)?;
        let params = s.secrets.open_params(&a.params)?;
        set.recipes.push(AssignedRecipe { assignment: a.id, version, params, bundle });
    }
    if let (Some((name, _)), false) = (replace, replaced) {
        return Err(Error::not_found(format!("this node has no assignment of {name}")));
    }
    Ok(set)
}

/// The latest reports (of one node, or all) that `op` may see, summed up;
/// with `failed`, only those with failures.
pub async fn reports(s: &Service, op: &Operator, node: Option<&str>, failed: bool) -> Result<Vec<serde_json::Value>> {
    let nodes = s.store.list_nodes().await?;
    let rows = s.store.reports(node, 200).await?;
    let mut out = Vec::new();
    for (node, at, report) in rows {
        if !nodes.iter().any(|n| n.id == node && op.in_scope(&n.tags)) {
            continue;
        }
        let r: serde_json::Value = decode("report", &report)?;
        let has_failed =
            r["summary"]["failed"].as_u64().unwrap_or(0) > 0 || r["errors"].as_array().is_some_and(|e| !e.is_empty());
        if failed && !has_failed {
            continue;
        }
        out.push(serde_json::json!({ "node": node, "at": at, "summary": r["summary"], "cached": r["cached"], "errors": r["errors"] }));
    }
    Ok(out)
}
