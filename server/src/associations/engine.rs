//! Associations: a command document or a recipe applied to targets on a
//! schedule, and the compliance their results give each node.
//!
//! One replica fires the schedules (the leader: see `Store::try_lead`).
//! Every slot fires at most once, whatever restarts or replicas do: its
//! run row is keyed by the slot and written before the command, and the
//! command's id is made from the slot. After downtime the missed slots give
//! one catch-up run, and a run still going when its next slot comes is not
//! overlapped: the slot waits, and becomes the catch-up.

use std::time::Duration;

use serde_json::Value;
use tend_model::command::CommandCreate;

use super::Service;
use super::schedule::{Schedule, from_ms as ts};
use super::store::{AssociationRow, Compliance, ComplianceRow, RunRow, RunStatus};
use crate::auth::Operator;
use crate::store::{StoreError, decode, now, now_ms};

type Res<T> = crate::error::Result<T>;

/// The scheduler loop: on the leading replica, looks at every association each second.
pub async fn run(s: Service) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if !s.leader.leads() {
            continue;
        }
        let all = match s.store.list_associations().await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "listing associations");
                continue;
            }
        };
        for a in all {
            if let Err(e) = tick(&s, &a).await {
                tracing::error!(association = a.id, error = %format!("{e:#}"), "association");
            }
        }
    }
}

/// The stored schedule (checked when the association was created).
pub fn schedule_of(a: &AssociationRow) -> Result<Schedule, StoreError> {
    Schedule::parse(&a.schedule, a.timezone.as_deref(), Duration::ZERO)
        .map_err(|e| StoreError::Corrupt(format!("schedule of {}: {e}", a.id)))
}

/// Finishes the last run when its command has, then fires a due slot.
pub async fn tick(s: &Service, a: &AssociationRow) -> Res<()> {
    let running = match s.store.runs(&a.id, 1).await?.into_iter().next() {
        Some(r) if r.finished_at.is_none() => !settle(s, a, &r).await?,
        _ => false,
    };
    let due = schedule_of(a)?.due(a.last_slot_ms.map(ts), ts(a.created_ms), ts(now_ms()), running);
    if let Some(slot) = due.run {
        let trigger = if due.skipped > 0 { "catch-up" } else { "schedule" };
        fire(s, a, slot.as_millisecond(), trigger, due.skipped as i64).await?;
    }
    Ok(())
}

/// Looks at a run in progress: true once it has finished (its compliance recorded).
async fn settle(s: &Service, a: &AssociationRow, r: &RunRow) -> Res<bool> {
    let Some(cmd) = s.store.command(&r.command_id).await? else {
        // The run was recorded but its command not created (a crash in between): create it now.
        start(s, a, r.slot_ms, &r.command_id).await?;
        return Ok(false);
    };
    if cmd.finished_at.is_none() {
        return Ok(false);
    }
    if !s.store.compliance_recorded(&r.command_id).await? {
        record_compliance(s, a, &r.command_id).await?;
    }
    s.store.finish_run(&a.id, r.slot_ms, &RunStatus::Ended(cmd.status)).await?;
    Ok(true)
}

/// The token it acts as: the one that created it.
fn operator(a: &AssociationRow) -> Result<Operator, StoreError> {
    Operator::acting_as(&a.token_id, &a.token_name, &a.role, a.scope.as_deref())
}

pub fn command_request(a: &AssociationRow, secrets: &crate::secrets::Secrets) -> Res<CommandCreate> {
    let stored: serde_json::Map<String, Value> = decode("association parameters", &a.params)?;
    let mut params = secrets.open_params(&stored)?;
    let raw_params = secrets.open_raw(&decode::<Vec<(String, String)>>("association parameters", &a.raw_params)?)?;
    let document = match (&a.document, &a.recipe) {
        (Some(d), _) => d.clone(),
        (None, Some(r)) => {
            params = serde_json::Map::new();
            params.insert("recipe".into(), Value::from(r.clone()));
            if a.mode.as_deref() == Some("audit") {
                params.insert("dryRun".into(), Value::Bool(true));
            }
            "ApplyRecipe".into()
        }
        (None, None) => String::new(),
    };
    Ok(CommandCreate {
        document,
        params,
        raw_params: if a.recipe.is_some() { Vec::new() } else { raw_params },
        targets: decode("association targets", &a.targets)?,
        max_concurrency: a.max_concurrency.clone(),
        max_errors: a.max_errors.clone(),
        timeout: None,
        delivery_timeout: None,
        comment: Some(format!("association {}", a.id)),
    })
}

/// Creates the run's command. A refusal (no node matches any more, a
/// document gone) ends the run as Failed, so that later slots still fire.
async fn start(s: &Service, a: &AssociationRow, slot_ms: i64, command_id: &str) -> Res<()> {
    let req = command_request(a, &s.secrets)?;
    if let Err(why) = crate::commands::start(&s.commands, &operator(a)?, req, Some(command_id.to_string())).await {
        tracing::warn!(association = a.id, error = %why, "the association's command was refused");
        s.store.finish_run(&a.id, slot_ms, &RunStatus::Refused(why.to_string())).await?;
    }
    Ok(())
}

/// Fires `slot`: the run row first (at most one per slot), then its command.
pub async fn fire(s: &Service, a: &AssociationRow, slot_ms: i64, trigger: &str, skipped: i64) -> Res<bool> {
    let command_id = format!("cmd-{}-{slot_ms}", a.id.trim_start_matches("asc-"));
    let run = RunRow {
        slot_ms,
        trigger: trigger.to_string(),
        command_id: command_id.clone(),
        status: RunStatus::Pending,
        started_at: now(),
        finished_at: None,
        skipped,
    };
    if !s.store.add_run(&a.id, &run, Some(slot_ms)).await? {
        return Ok(false);
    }
    tracing::info!(association = a.id, slot = %ts(slot_ms), trigger, "association run");
    start(s, a, slot_ms, &command_id).await?;
    Ok(true)
}

/// Each node's result as compliance: a command document is compliant where
/// it succeeded; a recipe is compliant where it converged, and drift it
/// repaired is recorded as NonCompliant (what was found) then Compliant
/// (repaired), with the corrective changes.
/// In audit mode nothing is repaired: changes a dry-run found are
/// NonCompliant (`drift found`), and their number is the node's pending
/// changes (`tend nodes list`).
async fn record_compliance(s: &Service, a: &AssociationRow, command_id: &str) -> Res<()> {
    let audit = a.recipe.is_some() && a.mode.as_deref() == Some("audit");
    let reports = if audit { s.store.invocation_reports(command_id).await? } else { Vec::new() };
    for inv in s.store.invocation_views(command_id).await? {
        let at = inv.result.ended_at.clone().unwrap_or_else(now);
        let event = |status: Compliance, at: &str, reason: Option<String>, changes: &[String]| ComplianceRow {
            association_id: a.id.clone(),
            node_id: inv.node.clone(),
            hostname: inv.hostname.clone(),
            status,
            at: at.into(),
            reason,
            changes: serde_json::to_string(changes).unwrap_or_else(|_| "[]".into()),
        };
        if inv.result.status != tend_model::command::InvocationStatus::Success {
            let why = match (&inv.result.reason, inv.result.exit_code) {
                (Some(r), _) => format!("{}: {r}", inv.result.status),
                (None, Some(c)) => format!("{} (exit code {c})", inv.result.status),
                (None, None) => inv.result.status.to_string(),
            };
            s.store.add_compliance(&event(Compliance::NonCompliant, &at, Some(why), &[]), command_id).await?;
            continue;
        }
        if audit {
            let report: Value = reports
                .iter()
                .find(|r| r.node == inv.node)
                .and_then(|r| r.report.as_deref())
                .map(|t| decode("an audit's report", t))
                .transpose()?
                .unwrap_or_default();
            if report.is_null() {
                // A skipped step (a disabled agent) audited nothing.
                let why = Some("no audit report (the agent did not check)".to_string());
                s.store.add_compliance(&event(Compliance::NonCompliant, &at, why, &[]), command_id).await?;
                continue;
            }
            let pending: Vec<String> = report["resources"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|r| r["status"] == "changed")
                .map(|r| {
                    let props: Vec<&str> = r["changes"]
                        .as_array()
                        .map(|c| c.iter().filter_map(|c| c["property"].as_str()).collect())
                        .unwrap_or_default();
                    format!("{} ({})", r["id"].as_str().unwrap_or("?"), props.join(", "))
                })
                .collect();
            s.store.set_pending(&inv.node, pending.len() as i64).await?;
            let event = if pending.is_empty() {
                event(Compliance::Compliant, &at, Some("audit: no drift".into()), &[])
            } else {
                let why = format!("drift found: {} pending change(s), not repaired (audit)", pending.len());
                event(Compliance::NonCompliant, &at, Some(why), &pending)
            };
            s.store.add_compliance(&event, command_id).await?;
            continue;
        }
        let corrective: Vec<String> = inv
            .result
            .stdout
            .lines()
            .filter(|l| l.starts_with("changed ") && l.contains(" (corrective)"))
            .map(|l| l.trim_start_matches("changed ").to_string())
            .collect();
        if a.recipe.is_some() && !corrective.is_empty() {
            let found = inv.result.started_at.clone().unwrap_or_else(|| at.clone());
            let why = format!("drift found: {} resource(s) differed from the recipe", corrective.len());
            s.store
                .add_compliance(&event(Compliance::NonCompliant, &found, Some(why), &corrective), command_id)
                .await?;
            let why = Some("drift repaired".to_string());
            s.store.add_compliance(&event(Compliance::Compliant, &at, why, &corrective), command_id).await?;
        } else {
            s.store.add_compliance(&event(Compliance::Compliant, &at, None, &[]), command_id).await?;
        }
    }
    Ok(())
}
