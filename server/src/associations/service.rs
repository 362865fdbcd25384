//! What associations do, whoever asks (the routes, and later the console):
//! create, view, list, history, delete, run now, and compliance.

use std::collections::BTreeMap;

use serde_json::Value;
use tend_model::association::{AssociationCreate, AssociationView, ComplianceView, RunView};
use tend_model::command::Limit;

use super::engine::{fire, schedule_of};
use super::schedule::{Schedule, from_ms as ts};
use super::{AssociationRow, RunRow, Service};
use crate::auth::Operator;
use crate::commands::{find_document, split_spec};
use crate::error::{Error, Result};
use crate::pki::random_hex;
use crate::store::{decode, now, now_ms};

/// A run as operators see it.
pub fn run_view(r: RunRow) -> RunView {
    RunView {
        slot: ts(r.slot_ms).to_string(),
        trigger: r.trigger,
        command_id: r.command_id,
        status: r.status.to_string(),
        started_at: r.started_at,
        finished_at: r.finished_at,
        skipped: r.skipped,
    }
}

/// An association as operators see it, with its last `runs` runs.
pub async fn view(s: &Service, a: AssociationRow, runs: i64) -> Result<AssociationView> {
    let mut rows = s.store.runs(&a.id, runs.max(1)).await?;
    let last = if rows.is_empty() { None } else { Some(rows.remove(0)) };
    let after = a.last_slot_ms.unwrap_or(a.created_ms).max(now_ms());
    let next = schedule_of(&a)?.next_after(ts(after), ts(a.created_ms)).map(|t| t.to_string());
    let stored: serde_json::Map<String, Value> = decode("association parameters", &a.params)?;
    let mut shown = crate::secrets::redact_params(&stored);
    let raw: Vec<(String, String)> = decode("association parameters", &a.raw_params)?;
    for (k, v) in crate::secrets::redact_raw(&raw) {
        shown.insert(k, Value::from(v));
    }
    let mut all = Vec::new();
    if runs > 1 {
        all.extend(last.clone().map(run_view));
        all.extend(rows.into_iter().map(run_view));
    }
    let mode = a.recipe.is_some().then(|| a.mode.clone().unwrap_or_else(|| "apply".into()));
    Ok(AssociationView {
        id: a.id,
        document: a.document,
        recipe: a.recipe,
        targets: decode("association targets", &a.targets)?,
        schedule: a.schedule,
        timezone: a.timezone,
        params: shown,
        max_concurrency: a.max_concurrency,
        max_errors: a.max_errors,
        apply_only_at_cron_interval: a.apply_only_at_cron_interval,
        mode,
        created_at: a.created_at,
        created_by: format!("token:{}", a.token_name),
        next_run: next,
        last_run: last.map(run_view),
        runs: all,
    })
}

/// Creates an association as `op`: what it applies must exist and its
/// parameters fit now; a new one runs at once unless asked not to.
pub async fn create(s: &Service, op: &Operator, req: AssociationCreate) -> Result<AssociationView> {
    let bad = |m: String| Error::bad_request(m);
    if req.document.is_some() == req.recipe.is_some() {
        return Err(bad("an association applies a --document or a --recipe (one of them)".into()));
    }
    tend_model::names::targets(&req.targets).map_err(|e| bad(format!("an association: {e}")))?;
    op.check_targets(&req.targets, &s.store.list_nodes().await?)?;
    let schedule =
        Schedule::parse(&req.schedule, req.timezone.as_deref(), s.min_rate).map_err(|e| bad(e.to_string()))?;
    for (what, v) in [("max concurrency", &req.max_concurrency), ("max errors", &req.max_errors)] {
        if let Some(v) = v {
            Limit::parse(v).map_err(|e| bad(format!("{what}: {e}")))?;
        }
    }
    // What it applies must exist, and its parameters fit, now.
    let mut sensitive = Vec::new();
    if let Some(d) = &req.document {
        let (name, version) = split_spec(d);
        let (_, kind, text, _) = find_document(&s.store, name, version).await?;
        if kind != "Command" {
            return Err(bad(format!("{name} is an {kind} document; associations run command documents")));
        }
        let doc = tend_model::document::Document::parse(name, &text).map_err(Error::internal)?;
        let o = tend_model::params::Overrides {
            raw: req.raw_params.clone(),
            typed: req.params.clone(),
            placeholders: false,
        };
        doc.resolve_params(&o)
            .map_err(|p| Error::unprocessable(format!("these parameters do not fit {d}:\n{}", p.join("\n"))))?;
        sensitive = doc.parameters.iter().filter(|(_, p)| p.sensitive).map(|(k, _)| k.clone()).collect();
    }
    if req.recipe.is_some() && (!req.params.is_empty() || !req.raw_params.is_empty()) {
        return Err(bad("a recipe association takes no parameters (assign the recipe with --params instead)".into()));
    }
    match (req.mode.as_deref(), &req.recipe) {
        (None | Some("apply"), _) => {}
        (Some("audit"), Some(_)) => {}
        (Some("audit"), None) => return Err(bad("--mode audit checks a recipe: it needs --recipe".into())),
        (Some(other), _) => return Err(bad(format!("--mode {other:?}: apply or audit"))),
    }
    if let Some(r) = &req.recipe {
        let (name, version) = split_spec(r);
        if s.store.recipe(name, version).await?.is_none() {
            return Err(Error::not_found(format!("no recipe {r} (push it first)")));
        }
    }
    let created_ms = now_ms();
    if let Schedule::At(t) = &schedule
        && t.as_millisecond() <= created_ms
    {
        return Err(bad(format!("{} is in the past", req.schedule)));
    }
    // The most often it may run: a cron expression counts like a rate.
    if let Schedule::Cron { .. } = &schedule {
        let mut t = jiff::Timestamp::now();
        for _ in 0..50 {
            let (Some(a), Some(b)) =
                (schedule.next_after(t, t), schedule.next_after(t, t).and_then(|a| schedule.next_after(a, a)))
            else {
                break;
            };
            if b.duration_since(a).as_secs() < s.min_rate.as_secs() as i64 {
                return Err(bad(format!(
                    "{} runs more often than this server allows (at least {} s apart)",
                    req.schedule,
                    s.min_rate.as_secs()
                )));
            }
            t = a;
        }
    }
    let row = AssociationRow {
        id: format!("asc-{}", random_hex(6)?),
        document: req.document.clone(),
        recipe: req.recipe.clone(),
        targets: serde_json::to_string(&req.targets)?,
        schedule: req.schedule.clone(),
        timezone: req.timezone.clone(),
        // Sensitive values sealed at rest (crate::secrets); opened when a run fires.
        params: serde_json::to_string(&s.secrets.seal_params(&req.params, &sensitive)?)?,
        raw_params: serde_json::to_string(&s.secrets.seal_raw(&req.raw_params, &sensitive)?)?,
        max_concurrency: req.max_concurrency.clone(),
        max_errors: req.max_errors.clone(),
        apply_only_at_cron_interval: req.apply_only_at_cron_interval,
        mode: req.mode.clone().filter(|m| m == "audit"),
        token_id: op.0.id.clone(),
        token_name: op.0.name.clone(),
        role: op.0.role.to_string(),
        scope: op.0.scope.clone(),
        created_at: now(),
        created_ms,
        // Slots after creation; the first run (unless only at the schedule's
        // times) is the creation itself.
        last_slot_ms: Some(created_ms),
    };
    s.store.create_association(&row).await?;
    let detail = serde_json::json!({
        "id": row.id, "document": row.document, "recipe": row.recipe, "targets": req.targets, "schedule": row.schedule,
    });
    s.store.audit(&op.actor(), "association.create", &detail).await?;
    // A new association runs at once, unless asked not to; an `at()` runs at its time only.
    if !req.apply_only_at_cron_interval && !matches!(schedule, Schedule::At(_)) {
        fire(s, &row, created_ms, "create", 0).await?;
    }
    view(s, row, 20).await
}

pub async fn find(s: &Service, id: &str) -> Result<AssociationRow> {
    s.store.association(id).await?.ok_or_else(|| Error::not_found("no such association"))
}

/// Every association, with its last run.
pub async fn list(s: &Service) -> Result<Vec<AssociationView>> {
    let mut out = Vec::new();
    for a in s.store.list_associations().await? {
        out.push(view(s, a, 1).await?);
    }
    Ok(out)
}

/// An association's runs, newest first.
pub async fn history(s: &Service, id: &str) -> Result<Vec<RunView>> {
    find(s, id).await?;
    Ok(s.store.runs(id, 10_000).await?.into_iter().map(run_view).collect())
}

/// Deletes an association (its runs and compliance stay in the history).
pub async fn delete(s: &Service, op: &Operator, id: &str) -> Result<()> {
    let a = find(s, id).await?;
    op.check_targets(&decode::<Vec<String>>("association targets", &a.targets)?, &[])?;
    s.store.delete_association(id).await?;
    s.store.audit(&op.actor(), "association.delete", &serde_json::json!({ "id": id })).await?;
    Ok(())
}

/// Runs an association now, in a slot of its own that does not move the
/// schedule's; refused while a run is going.
pub async fn run_now(s: &Service, op: &Operator, id: &str) -> Result<AssociationView> {
    let a = find(s, id).await?;
    if let Some(r) = s.store.runs(id, 1).await?.first()
        && r.finished_at.is_none()
    {
        return Err(Error::conflict(format!("association {id} is running ({})", r.command_id)));
    }
    let slot = now_ms();
    fire(s, &AssociationRow { last_slot_ms: a.last_slot_ms, ..a.clone() }, slot, "run-now", 0).await?;
    if let Some(last) = a.last_slot_ms {
        s.store.set_last_slot(id, last).await?;
    }
    s.store.audit(&op.actor(), "association.run-now", &serde_json::json!({ "id": id })).await?;
    view(s, find(s, id).await?, 20).await
}

/// Compliance events, newest first; without `history`, each node's state
/// per association (its newest event).
pub async fn compliance(
    s: &Service,
    association: Option<&str>,
    node: Option<&str>,
    history: bool,
) -> Result<Vec<ComplianceView>> {
    let rows = s.store.compliance(association, node).await?;
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for r in rows {
        if !history && seen.insert((r.association_id.clone(), r.node_id.clone()), ()).is_some() {
            continue;
        }
        out.push(ComplianceView {
            association: r.association_id,
            node: r.node_id,
            hostname: r.hostname,
            status: r.status.to_string(),
            at: r.at,
            reason: r.reason,
            changes: decode("compliance changes", &r.changes)?,
        });
    }
    Ok(out)
}
