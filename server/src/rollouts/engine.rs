//! The rollout driver, on the replica that leads. For each batch in turn:
//! check the minimum of healthy nodes, pin the batch to the new version and
//! wake it (a `Converge` command), judge the gates (every node converged
//! the new version without a failure within `--batch-timeout`; the health
//! document, if any, succeeded), bake, go on. A failed gate stops the
//! rollout and, unless `--no-rollback`, pins every node that took the new
//! version back to the one it had, wakes them, and checks that they report
//! it. Each step is a written row and each command has an id fixed before
//! it is created, so a restarted server resumes where it was: a batch is
//! pinned once (a conditional update) and never skipped.

use std::time::Duration;

use serde_json::Value;
use tend_model::command::{CommandCreate, InvocationStatus};
use tend_model::rollout::{GateResult, RolloutCreate, may_start};
use tokio::sync::Notify;

use super::Service;
use super::service::options;
use super::store::{BatchRow, BatchStatus, NodeRow, NodeState, RolloutRow, RolloutStatus};
use crate::auth::Operator;
use crate::commands::store::InvocationReport;
use crate::error::Result;
use crate::store::{decode, now_ms};

/// Wakes the driver at once (a start, a control request).
#[derive(Default)]
pub struct Engine {
    pub kick: Notify,
    lock: tokio::sync::Mutex<()>,
}

/// The driver loop: every active rollout, twice a second, when kicked,
/// and when a command finishes (a batch's answers are in).
pub async fn run(s: Service) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = s.engine.kick.notified() => {},
            _ = s.commands.dispatcher.finished.notified() => {},
        }
        if !s.leader.leads() {
            continue;
        }
        let ids = match s.store.active_rollouts().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "listing rollouts");
                continue;
            }
        };
        for id in ids {
            if let Err(e) = advance(&s, &id).await {
                tracing::error!(rollout = id, error = %e, "advancing a rollout");
            }
        }
    }
}

/// Moves one rollout as far as it can go now.
pub async fn advance(s: &Service, id: &str) -> Result<()> {
    let _one = s.engine.lock.lock().await;
    for _ in 0..8 {
        let Some(r) = s.store.rollout(id).await? else { return Ok(()) };
        let moved = match r.status {
            RolloutStatus::Running => step(s, &r).await?,
            RolloutStatus::Paused if r.request.as_deref() == Some("rollback") => {
                roll_back_locked(s, &r, "rolled back by an operator").await?;
                true
            }
            RolloutStatus::Paused if r.request.as_deref() == Some("stop") => {
                s.store.skip_pending_batches(&r.id).await?;
                s.store.set_rollout_status(&r.id, RolloutStatus::Stopped, Some("stopped by an operator")).await?;
                audit(s, &r, "rollout.stopped", serde_json::json!({ "id": r.id })).await?;
                true
            }
            RolloutStatus::RollingBack => check_rollback(s, &r).await?,
            _ => false,
        };
        if !moved {
            return Ok(());
        }
    }
    Ok(())
}

/// The token the rollout acts as: the one that started it.
fn operator(r: &RolloutRow) -> Result<Operator> {
    Ok(Operator::acting_as(&r.token_id, &r.token_name, &r.role, r.scope.as_deref())?)
}

fn actor(r: &RolloutRow) -> String {
    format!("rollout:{}", r.id)
}

fn short(r: &RolloutRow) -> &str {
    r.id.trim_start_matches("rlo-")
}

fn converge_id(r: &RolloutRow, b: i64) -> String {
    format!("cmd-{}-b{b}", short(r))
}

fn health_id(r: &RolloutRow, b: i64) -> String {
    format!("cmd-{}-b{b}-health", short(r))
}

/// Starts (or finds, after a restart) a command with a fixed id, on
/// exactly `nodes` of the rollout's targets.
async fn command(s: &Service, r: &RolloutRow, id: &str, nodes: Vec<String>, mut req: CommandCreate) -> Result<()> {
    req.targets = decode("rollout targets", &r.targets)?;
    crate::commands::start_on(&s.commands, &operator(r)?, req, Some(id.to_string()), Some(&nodes)).await.map(|_| ())
}

/// A `Converge` wake-up (of the nodes given to [`command`]).
fn wake(timeout: Duration, comment: String) -> CommandCreate {
    let mut params = serde_json::Map::new();
    params.insert("dryRun".into(), Value::Bool(false));
    CommandCreate {
        document: "Converge".into(),
        params,
        raw_params: Vec::new(),
        targets: Vec::new(),
        max_concurrency: Some("100%".into()),
        max_errors: Some("100%".into()),
        timeout: Some(timeout.as_secs().max(1)),
        delivery_timeout: Some(timeout.as_secs().max(1)),
        comment: Some(comment),
    }
}

/// Whether a node's converge answer shows it running `recipe@version`
/// without a failure; else what went wrong.
fn verdict(inv: Option<&InvocationReport>, recipe: &str, version: &str) -> std::result::Result<(), String> {
    let Some(inv) = inv else { return Err("no invocation".into()) };
    let report: Option<Value> = inv.report.as_deref().and_then(|t| serde_json::from_str(t).ok());
    if let Some(rep) = &report {
        if let Some(e) = rep["errors"].as_array().and_then(|e| e.first()) {
            return Err(e.as_str().unwrap_or_default().lines().next().unwrap_or_default().to_string());
        }
        let failed: Vec<String> = rep["resources"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|x| x["status"] == "failed")
            .map(|x| format!("{}: {}", x["id"].as_str().unwrap_or("?"), x["error"].as_str().unwrap_or("failed")))
            .collect();
        if !failed.is_empty() {
            return Err(failed.join("; "));
        }
    }
    if inv.status != InvocationStatus::Success {
        return Err(format!("{}{}", inv.status, inv.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()));
    }
    let Some(rep) = report else { return Err("no report".into()) };
    match rep["versions"][recipe].as_str() {
        Some(v) if v == version => Ok(()),
        Some(v) => Err(format!("converged {recipe}@{v}, not {version}")),
        None => Err(format!("its report names no version of {recipe}")),
    }
}

/// Judges each node of `nodes` by the command's answers; the invocations
/// not finished count as not answered within the deadline.
async fn judge(
    s: &Service,
    command: &str,
    nodes: &[&NodeRow],
    recipe: &str,
    version: impl Fn(&NodeRow) -> String,
) -> Result<Vec<(String, std::result::Result<(), String>)>> {
    let answers = s.store.invocation_reports(command).await?;
    Ok(nodes
        .iter()
        .map(|n| {
            let inv = answers.iter().find(|a| a.node == n.node);
            let v = match inv {
                Some(i) if !i.status.is_terminal() => Err(format!("did not answer in time ({})", i.status)),
                _ => verdict(inv, recipe, &version(n)),
            };
            (n.hostname.clone(), v)
        })
        .collect())
}

fn summary(verdicts: &[(String, std::result::Result<(), String>)], what: &str) -> (bool, String) {
    let bad: Vec<String> = verdicts.iter().filter_map(|(h, v)| v.as_ref().err().map(|e| format!("{h}: {e}"))).collect();
    if bad.is_empty() {
        (true, format!("{} of {} {what}", verdicts.len(), verdicts.len()))
    } else {
        (false, format!("{} of {} failed: {}", bad.len(), verdicts.len(), bad.join("; ")))
    }
}

async fn audit(s: &Service, r: &RolloutRow, action: &str, detail: Value) -> Result<()> {
    s.store.audit(&actor(r), action, &detail).await?;
    Ok(())
}

/// One look at a running rollout: true when something moved.
async fn step(s: &Service, r: &RolloutRow) -> Result<bool> {
    let req: RolloutCreate = decode("rollout options", &r.options)?;
    let opts = options(&req)?;
    let batches = s.store.rollout_batches(&r.id).await?;
    let nodes = s.store.rollout_nodes(&r.id).await?;
    // An operator's rollback of a running rollout is done here, by the
    // one driver, so that it never races a batch being pinned.
    if r.request.as_deref() == Some("rollback") {
        roll_back_locked(s, r, "rolled back by an operator").await?;
        return Ok(true);
    }
    if r.request.as_deref() == Some("stop") {
        for b in batches.iter().filter(|b| matches!(b.status, BatchStatus::Converging | BatchStatus::Checking)) {
            cancel(s, &converge_id(r, b.idx)).await?;
            cancel(s, &health_id(r, b.idx)).await?;
        }
        s.store.skip_pending_batches(&r.id).await?;
        s.store.set_rollout_status(&r.id, RolloutStatus::Stopped, Some("stopped by an operator")).await?;
        audit(s, r, "rollout.stopped", serde_json::json!({ "id": r.id })).await?;
        return Ok(true);
    }
    let Some(b) = batches.iter().find(|b| b.status != BatchStatus::Done) else {
        s.store.set_rollout_status(&r.id, RolloutStatus::Succeeded, None).await?;
        audit(s, r, "rollout.succeeded", serde_json::json!({ "id": r.id, "nodes": nodes.len() })).await?;
        tracing::info!(rollout = r.id, "rollout succeeded");
        return Ok(true);
    };
    let members: Vec<&NodeRow> = nodes.iter().filter(|n| n.batch == b.idx).collect();
    let ids: Vec<String> = members.iter().map(|n| n.node.clone()).collect();
    let now = now_ms();
    let mut gates = b.gates.clone();
    match b.status {
        BatchStatus::Pending => {
            if r.request.as_deref() == Some("pause") {
                s.store.set_rollout_status(&r.id, RolloutStatus::Paused, None).await?;
                audit(s, r, "rollout.paused", serde_json::json!({ "id": r.id, "before_batch": b.idx })).await?;
                return Ok(true);
            }
            let fleet = s.store.list_nodes().await?;
            let healthy = nodes
                .iter()
                .filter(|n| !matches!(n.state, NodeState::Failed | NodeState::RollbackFailed))
                .filter(|n| {
                    fleet.iter().any(|f| f.id == n.node && f.last_run.as_ref().is_none_or(|l| l.status != "failed"))
                })
                .count();
            if let Err(why) = may_start(nodes.len(), healthy, members.len(), opts.min_healthy) {
                gates.push(GateResult { gate: "min-healthy".into(), passed: false, detail: why.clone() });
                s.store.set_batch(&r.id, b.idx, BatchStatus::Failed, None, &gates).await?;
                fail(s, r, &format!("batch {}: {why}", b.idx + 1)).await?;
                return Ok(true);
            }
            if !s.store.start_batch(r, b.idx, &ids).await? {
                return Ok(true);
            }
            let hosts: Vec<&str> = members.iter().map(|n| n.hostname.as_str()).collect();
            audit(
                s,
                r,
                "rollout.batch.start",
                serde_json::json!({ "id": r.id, "batch": b.idx, "nodes": ids, "hosts": hosts }),
            )
            .await?;
            let comment = format!("rollout {} batch {}", r.id, b.idx + 1);
            command(s, r, &converge_id(r, b.idx), ids, wake(opts.batch_timeout, comment)).await?;
            Ok(true)
        }
        BatchStatus::Converging => {
            let cid = converge_id(r, b.idx);
            let Some(c) = s.store.command(&cid).await? else {
                // Pinned, then stopped before the command was created: create
                // it now, and its nodes get the whole batch timeout from now.
                let comment = format!("rollout {} batch {}", r.id, b.idx + 1);
                s.store.set_batch(&r.id, b.idx, BatchStatus::Converging, Some(now), &gates).await?;
                command(s, r, &cid, ids, wake(opts.batch_timeout, comment)).await?;
                return Ok(true);
            };
            let late = b.phase_ms.is_some_and(|p| now - p > opts.batch_timeout.as_millis() as i64);
            if c.finished_at.is_none() && !late {
                return Ok(false);
            }
            if c.finished_at.is_none() {
                cancel(s, &cid).await?;
            }
            let verdicts = judge(s, &cid, &members, &r.recipe, |_| r.version.clone()).await?;
            let states: Vec<(String, NodeState, Option<String>)> = members
                .iter()
                .zip(&verdicts)
                .map(|(n, (_, v))| match v {
                    Ok(()) => (n.node.clone(), NodeState::Healthy, None),
                    Err(e) => (n.node.clone(), NodeState::Failed, Some(e.clone())),
                })
                .collect();
            s.store.set_node_states(&r.id, &states).await?;
            let (passed, detail) = summary(&verdicts, &format!("converged {}@{}", r.recipe, r.version));
            gates.push(GateResult { gate: "converge".into(), passed, detail: detail.clone() });
            if !passed {
                s.store.set_batch(&r.id, b.idx, BatchStatus::Failed, None, &gates).await?;
                fail(s, r, &format!("batch {}: {detail}", b.idx + 1)).await?;
                return Ok(true);
            }
            match &req.health_document {
                Some(doc) => {
                    s.store.set_batch(&r.id, b.idx, BatchStatus::Checking, Some(now), &gates).await?;
                    command(s, r, &health_id(r, b.idx), ids, health(doc, &req, opts.batch_timeout, r, b)).await?;
                }
                None => s.store.set_batch(&r.id, b.idx, BatchStatus::Baking, Some(now), &gates).await?,
            }
            Ok(true)
        }
        BatchStatus::Checking => {
            let hid = health_id(r, b.idx);
            let doc = req.health_document.clone().unwrap_or_default();
            let Some(c) = s.store.command(&hid).await? else {
                s.store.set_batch(&r.id, b.idx, BatchStatus::Checking, Some(now), &gates).await?;
                command(s, r, &hid, ids, health(&doc, &req, opts.batch_timeout, r, b)).await?;
                return Ok(true);
            };
            let late = b.phase_ms.is_some_and(|p| now - p > opts.batch_timeout.as_millis() as i64);
            if c.finished_at.is_none() && !late {
                return Ok(false);
            }
            if c.finished_at.is_none() {
                cancel(s, &hid).await?;
            }
            let answers = s.store.invocation_views(&hid).await?;
            let bad: Vec<(String, NodeState, Option<String>)> = members
                .iter()
                .filter_map(|n| {
                    let inv = answers.iter().find(|a| a.node == n.node);
                    match inv {
                        Some(i) if i.result.status == InvocationStatus::Success => {
                            healthy_outputs(&req, &i.result.stdout)
                                .err()
                                .map(|why| format!("health document {doc}: {why}"))
                        }
                        Some(i) => Some(format!(
                            "health document {doc}: {}{}",
                            i.result.status,
                            i.result.reason.as_deref().map(|x| format!(": {x}")).unwrap_or_default()
                        )),
                        None => Some(format!("health document {doc}: no invocation")),
                    }
                    .map(|why| (n.node.clone(), NodeState::Failed, Some(why)))
                })
                .collect();
            if bad.is_empty() {
                let detail = format!("{doc} succeeded on {} of {}", members.len(), members.len());
                gates.push(GateResult { gate: "health".into(), passed: true, detail });
                s.store.set_batch(&r.id, b.idx, BatchStatus::Baking, Some(now), &gates).await?;
                return Ok(true);
            }
            s.store.set_node_states(&r.id, &bad).await?;
            let hosts: Vec<String> = members
                .iter()
                .filter(|n| bad.iter().any(|(id, _, _)| *id == n.node))
                .map(|n| n.hostname.clone())
                .collect();
            let detail = format!("{doc} failed on {} of {}: {}", bad.len(), members.len(), hosts.join(", "));
            gates.push(GateResult { gate: "health".into(), passed: false, detail: detail.clone() });
            s.store.set_batch(&r.id, b.idx, BatchStatus::Failed, None, &gates).await?;
            fail(s, r, &format!("batch {}: {detail}", b.idx + 1)).await?;
            Ok(true)
        }
        BatchStatus::Baking => {
            if b.phase_ms.is_some_and(|p| now < p + b.wait_after_ms) {
                return Ok(false);
            }
            s.store.set_batch(&r.id, b.idx, BatchStatus::Done, None, &gates).await?;
            audit(s, r, "rollout.batch.done", serde_json::json!({ "id": r.id, "batch": b.idx, "gates": gates }))
                .await?;
            Ok(true)
        }
        // A restart between marking the batch failed and acting on it.
        BatchStatus::Failed => {
            let why = gates.iter().rev().find(|g| !g.passed).map(|g| g.detail.clone()).unwrap_or_default();
            fail(s, r, &format!("batch {}: {why}", b.idx + 1)).await?;
            Ok(true)
        }
        BatchStatus::Done | BatchStatus::NotRun => Ok(false),
    }
}

fn health(doc: &str, req: &RolloutCreate, timeout: Duration, r: &RolloutRow, b: &BatchRow) -> CommandCreate {
    CommandCreate {
        document: doc.to_string(),
        params: req.health_params.clone(),
        raw_params: req.health_raw_params.clone(),
        targets: Vec::new(),
        max_concurrency: Some("100%".into()),
        max_errors: Some("100%".into()),
        timeout: None,
        delivery_timeout: Some(timeout.as_secs().max(1)),
        comment: Some(format!("rollout {} batch {} health", r.id, b.idx + 1)),
    }
}

/// A node's health outputs, read from its stdout, checked against
/// `--health-condition`; the outputs as the error when they miss it.
fn healthy_outputs(req: &RolloutCreate, stdout: &str) -> std::result::Result<(), String> {
    let Some(cond) = &req.health_condition else { return Ok(()) };
    let outputs: serde_json::Map<String, Value> = req
        .health_outputs
        .iter()
        .filter_map(|o| tend_model::automation::extract(o, stdout).map(|v| (o.name.clone(), v)))
        .collect();
    let resolve = |r: &str| {
        let inner = r.trim().trim_start_matches("{{").trim_end_matches("}}").trim();
        match inner.strip_prefix("outputs.") {
            Some(name) => outputs.get(name).cloned().unwrap_or(Value::Null),
            None => Value::from(inner),
        }
    };
    if tend_model::automation::evaluate(cond, &resolve) {
        Ok(())
    } else {
        Err(format!("the health condition is not met (outputs: {})", Value::Object(outputs.clone())))
    }
}

async fn cancel(s: &Service, command: &str) -> Result<()> {
    if s.store.command(command).await?.is_some_and(|c| c.finished_at.is_none()) {
        s.store.request_cancel(command).await?;
        s.commands.dispatcher.advance(command).await?;
    }
    Ok(())
}

/// A gate failed: roll back, or with `--no-rollback` end `Failed`.
async fn fail(s: &Service, r: &RolloutRow, why: &str) -> Result<()> {
    let req: RolloutCreate = decode("rollout options", &r.options)?;
    tracing::warn!(rollout = r.id, why, "a rollout gate failed");
    let took = s.store.rollout_nodes(&r.id).await?.iter().any(|n| n.state.took_new_version());
    if req.no_rollback || !took {
        // Nothing to roll back when no node took the new version.
        s.store.skip_pending_batches(&r.id).await?;
        s.store.set_rollout_status(&r.id, RolloutStatus::Failed, Some(why)).await?;
        return audit(s, r, "rollout.failed", serde_json::json!({ "id": r.id, "reason": why })).await;
    }
    roll_back_locked(s, r, why).await
}

/// Rolls back a finished rollout (an operator's request; a running one is
/// rolled back by the driver): under the driver's lock.
pub async fn roll_back(s: &Service, r: &RolloutRow, why: &str) -> Result<()> {
    let _one = s.engine.lock.lock().await;
    let Some(r) = s.store.rollout(&r.id).await? else { return Ok(()) };
    roll_back_locked(s, &r, why).await
}

async fn roll_back_locked(s: &Service, r: &RolloutRow, why: &str) -> Result<()> {
    let req: RolloutCreate = decode("rollout options", &r.options)?;
    let opts = options(&req)?;
    for b in s.store.rollout_batches(&r.id).await? {
        if matches!(b.status, BatchStatus::Converging | BatchStatus::Checking) {
            cancel(s, &converge_id(r, b.idx)).await?;
            cancel(s, &health_id(r, b.idx)).await?;
        }
    }
    s.store.skip_pending_batches(&r.id).await?;
    let took: Vec<NodeRow> =
        s.store.rollout_nodes(&r.id).await?.into_iter().filter(|n| n.state.took_new_version()).collect();
    if took.is_empty() {
        s.store.set_rollout_status(&r.id, RolloutStatus::RolledBack, Some(why)).await?;
        return audit(s, r, "rollout.rolled_back", serde_json::json!({ "id": r.id, "nodes": 0, "reason": why })).await;
    }
    let cid = format!("cmd-{}-rollback", short(r));
    if !s.store.begin_rollback(r, &took, &cid, why).await? {
        return Ok(());
    }
    let ids: Vec<String> = took.iter().map(|n| n.node.clone()).collect();
    audit(s, r, "rollout.rollback.start", serde_json::json!({ "id": r.id, "nodes": ids, "reason": why })).await?;
    command(s, r, &cid, ids, wake(opts.batch_timeout, format!("rollout {} rollback", r.id))).await
}

/// One look at a rollback: done when every node pinned back reported its
/// old version without a failure.
async fn check_rollback(s: &Service, r: &RolloutRow) -> Result<bool> {
    let req: RolloutCreate = decode("rollout options", &r.options)?;
    let opts = options(&req)?;
    let nodes = s.store.rollout_nodes(&r.id).await?;
    let back: Vec<&NodeRow> = nodes.iter().filter(|n| n.state == NodeState::RollingBack).collect();
    let cid = r.rollback_command.clone().unwrap_or_else(|| format!("cmd-{}-rollback", short(r)));
    let Some(c) = s.store.command(&cid).await? else {
        let ids = back.iter().map(|n| n.node.clone()).collect();
        command(s, r, &cid, ids, wake(opts.batch_timeout, format!("rollout {} rollback", r.id))).await?;
        return Ok(true);
    };
    if c.finished_at.is_none() {
        return Ok(false);
    }
    let verdicts = judge(s, &cid, &back, &r.recipe, |n| n.before.clone()).await?;
    let states: Vec<(String, NodeState, Option<String>)> = back
        .iter()
        .zip(&verdicts)
        .map(|(n, (_, v))| match v {
            // What failed on it, if anything, stays shown.
            Ok(()) => (n.node.clone(), NodeState::RolledBack, n.detail.clone()),
            Err(e) => (n.node.clone(), NodeState::RollbackFailed, Some(format!("rollback: {e}"))),
        })
        .collect();
    s.store.set_node_states(&r.id, &states).await?;
    // With the nodes a pass before a restart already judged failed.
    let mut failed: Vec<&str> = verdicts.iter().filter(|(_, v)| v.is_err()).map(|(h, _)| h.as_str()).collect();
    failed.extend(nodes.iter().filter(|n| n.state == NodeState::RollbackFailed).map(|n| n.hostname.as_str()));
    let original = r.reason.clone().unwrap_or_default();
    if failed.is_empty() {
        s.store.set_rollout_status(&r.id, RolloutStatus::RolledBack, None).await?;
        audit(s, r, "rollout.rolled_back", serde_json::json!({ "id": r.id, "nodes": back.len(), "reason": original }))
            .await?;
    } else {
        let why = format!("{original}; the rollback failed on {}", failed.join(", "));
        s.store.set_rollout_status(&r.id, RolloutStatus::RollbackFailed, Some(&why)).await?;
        audit(s, r, "rollout.rollback_failed", serde_json::json!({ "id": r.id, "nodes": failed, "reason": why }))
            .await?;
    }
    Ok(true)
}
