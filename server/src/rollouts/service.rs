//! Starting, showing and steering rollouts (pause, resume, stop, manual
//! rollback), and what plans share with them: which nodes a recipe version
//! goes to, and which version each has now.

use std::time::Duration;

use tend_model::command::Limit;
use tend_model::rollout::{BatchView, Cutting, RolloutCreate, RolloutNode, RolloutView, Strategy, batches};
use tend_model::wire::{Assignment, Node, Role, matches_targets};

use super::Service;
use super::store::{NewRollout, NodeRow, NodeState, RolloutRow, RolloutStatus};
use crate::auth::Operator;
use crate::commands::split_spec;
use crate::error::{Error, Result};
use crate::pki::random_hex;
use crate::store::{decode, now};

/// A recipe version and the target nodes that have an assignment of it.
pub struct Resolved {
    pub name: String,
    pub version: String,
    /// Target nodes (in scope) with an assignment of the recipe, by hostname.
    pub nodes: Vec<Node>,
    /// Target nodes without one.
    pub not_assigned: Vec<String>,
    pub assignments: Vec<Assignment>,
}

/// Resolves `RECIPE[@VERSION]` (the newest without a version) and the
/// targets, as `op` may see them.
pub async fn resolve(s: &Service, op: &Operator, spec: &str, targets: &[String]) -> Result<Resolved> {
    op.require(Role::Operator)?;
    tend_model::names::targets(targets).map_err(|e| Error::bad_request(e.to_string()))?;
    let all = s.store.list_nodes().await?;
    op.check_targets(targets, &all)?;
    let (name, version) = split_spec(spec);
    let Some((version, _, _)) = s.store.recipe(name, version).await? else {
        return Err(Error::not_found(format!("no recipe {spec} (push it first)")));
    };
    let assignments: Vec<Assignment> =
        s.store.list_assignments().await?.into_iter().filter(|a| a.recipe == name).collect();
    let mut nodes = Vec::new();
    let mut not_assigned = Vec::new();
    for n in all.into_iter().filter(|n| matches_targets(targets, &n.id, &n.tags) && op.in_scope(&n.tags)) {
        if assignments.iter().any(|a| matches_targets(&a.targets, &n.id, &n.tags)) {
            nodes.push(n);
        } else {
            not_assigned.push(n.id);
        }
    }
    if nodes.is_empty() {
        return Err(Error::bad_request(format!(
            "no node matching {} has an assignment of {name} (assign it first: `tend assign {name} --targets …`)",
            targets.join(" ")
        )));
    }
    Ok(Resolved { name: name.to_string(), version, nodes, not_assigned, assignments })
}

/// The version of the recipe this node converges now: its pin, else its
/// assignment's version, else the one it last reported, else the newest
/// when that is not the version being rolled out.
async fn current_version(s: &Service, r: &Resolved, node: &Node) -> Result<Option<String>> {
    if let Some(v) = s.store.pins_of(&node.id).await?.remove(&r.name) {
        return Ok(Some(v));
    }
    let a = r.assignments.iter().find(|a| matches_targets(&a.targets, &node.id, &node.tags));
    if let Some(v) = a.and_then(|a| a.version.clone()) {
        return Ok(Some(v));
    }
    if let Some((_, _, report)) = s.store.reports(Some(&node.id), 1).await?.into_iter().next() {
        let report: serde_json::Value = decode("report", &report)?;
        if let Some(v) = report["versions"][&r.name].as_str() {
            return Ok(Some(v.to_string()));
        }
    }
    let newest = s.store.recipe(&r.name, None).await?.map(|(v, _, _)| v);
    Ok(newest.filter(|v| *v != r.version))
}

fn duration(what: &str, v: Option<&str>, default: Duration) -> Result<Duration> {
    match v {
        None => Ok(default),
        Some(t) => {
            humantime::parse_duration(t).map_err(|_| Error::bad_request(format!("{what} {t:?} is not a duration")))
        }
    }
}

fn limit(what: &str, v: Option<&str>, default: &str) -> Result<Limit> {
    Limit::parse(v.unwrap_or(default)).map_err(|e| Error::bad_request(format!("{what}: {e}")))
}

/// The options a rollout runs with, checked.
pub struct Options {
    pub strategy: Strategy,
    pub cutting: Cutting,
    pub min_healthy: Limit,
    pub batch_timeout: Duration,
}

pub fn options(req: &RolloutCreate) -> Result<Options> {
    let strategy = Strategy::parse(&req.strategy).map_err(|e| Error::bad_request(format!("--strategy: {e}")))?;
    let rest = limit("--batch", req.batch.as_deref(), "25%")?;
    if matches!(rest, Limit::Count(0) | Limit::Percent(0)) {
        return Err(Error::bad_request("--batch: a batch of 0 never finishes"));
    }
    let cutting = Cutting {
        rest,
        by_fact: req.by_fact.is_some(),
        final_bake: duration("--bake", req.bake.as_deref(), Duration::ZERO)?,
    };
    let batch_timeout = duration("--batch-timeout", req.batch_timeout.as_deref(), Duration::from_secs(600))?;
    if batch_timeout.is_zero() || batch_timeout.as_secs() > tend_model::document::MAX_TIMEOUT {
        return Err(Error::bad_request("--batch-timeout must be between 1 s and 48 h"));
    }
    Ok(Options {
        strategy,
        cutting,
        min_healthy: limit("--min-healthy", req.min_healthy.as_deref(), "0")?,
        batch_timeout,
    })
}

/// A dotted fact path's value as text (`ec2.availability_zone`).
fn fact_value(facts: &serde_json::Value, path: &str) -> Option<String> {
    let v = path.split('.').try_fold(facts, |v, k| v.get(k))?;
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub async fn start(s: &Service, op: &Operator, req: RolloutCreate) -> Result<RolloutView> {
    let opts = options(&req)?;
    let r = resolve(s, op, &req.recipe, &req.targets).await?;
    if let Some(active) = s.store.active_rollout_of(&r.name).await? {
        return Err(Error::conflict(format!(
            "rollout {active} is rolling out {} already; wait for it, or `tend rollout stop {active}`",
            r.name
        )));
    }
    if let Some(plan) = &req.from_plan {
        let p = s.store.plan(plan).await?.ok_or_else(|| Error::not_found(format!("no change set {plan}")))?;
        if p.recipe != r.name || p.version != r.version {
            return Err(Error::unprocessable(format!(
                "change set {plan} is of {}@{}, not {}@{}",
                p.recipe, p.version, r.name, r.version
            )));
        }
    }
    if (req.health_condition.is_some() || !req.health_outputs.is_empty()) && req.health_document.is_none() {
        return Err(Error::bad_request("--health-output and --health-condition read a --health-document's output"));
    }
    if let Some(why) = req.health_outputs.iter().find_map(|o| o.problem()) {
        return Err(Error::bad_request(format!("--health-output: {why}")));
    }
    if let Some(c) = &req.health_condition {
        let mut refs = Vec::new();
        tend_model::automation::references(&serde_json::to_value(c)?, &mut refs);
        let declared =
            |r: &str| r.strip_prefix("outputs.").is_some_and(|n| req.health_outputs.iter().any(|o| o.name == n));
        if let Some(r) = refs.iter().find(|r| !declared(r)) {
            return Err(Error::bad_request(format!(
                "--health-condition refers to {{{{{r}}}}}: only {{{{outputs.NAME}}}} of a --health-output"
            )));
        }
        if refs.is_empty() {
            return Err(Error::bad_request("--health-condition compares no {{outputs.NAME}} of a --health-output"));
        }
    }
    if let Some(doc) = &req.health_document {
        let (name, version) = split_spec(doc);
        let (_, kind, _, _) = crate::commands::find_document(&s.store, name, version).await?;
        if kind != "Command" {
            return Err(Error::bad_request(format!("--health-document {doc} is an {kind} document, not a command")));
        }
    }
    let mut nodes = Vec::new();
    let mut unknown = Vec::new();
    let mut keyed = Vec::new();
    for n in &r.nodes {
        match current_version(s, &r, n).await? {
            Some(v) => nodes.push((n, v)),
            None => unknown.push(n.hostname.clone()),
        }
        let value = match &req.by_fact {
            Some(path) => s.store.facts(&n.id).await?.and_then(|f| fact_value(&f, path)),
            None => None,
        };
        keyed.push((n.id.clone(), value));
    }
    if !unknown.is_empty() {
        return Err(Error::conflict(format!(
            "these nodes follow the newest version of {} and have not reported one, so there is nothing to roll \
             back to: {} (assign a version first: `tend assign {}@VERSION …`)",
            r.name,
            unknown.join(", "),
            r.name
        )));
    }
    let cut = batches(&keyed, &opts.strategy, &opts.cutting);
    let id = format!("rlo-{}", random_hex(6)?);
    let batch_of = |node: &str| cut.iter().position(|b| b.nodes.iter().any(|n| n == node)).unwrap_or(0) as i64;
    let rows: Vec<NodeRow> = nodes
        .iter()
        .map(|(n, before)| NodeRow {
            node: n.id.clone(),
            hostname: n.hostname.clone(),
            batch: batch_of(&n.id),
            before: before.clone(),
            state: NodeState::Waiting,
            detail: None,
        })
        .collect();
    let shape: Vec<(Option<String>, i64)> =
        cut.iter().map(|b| (b.group.clone(), b.wait_after.as_millis() as i64)).collect();
    let row = RolloutRow {
        id: id.clone(),
        recipe: r.name.clone(),
        version: r.version.clone(),
        targets: serde_json::to_string(&req.targets)?,
        strategy: req.strategy.clone(),
        options: serde_json::to_string(&req)?,
        status: RolloutStatus::Running,
        reason: None,
        request: None,
        token_id: op.0.id.clone(),
        token_name: op.0.name.clone(),
        role: op.0.role.to_string(),
        scope: op.0.scope.clone(),
        created_at: now(),
        rollback_command: None,
        finished_at: None,
    };
    s.store.create_rollout(NewRollout { row: &row, batches: &shape, nodes: &rows }).await?;
    let detail = serde_json::json!({
        "id": id, "recipe": r.name, "version": r.version, "targets": req.targets, "strategy": req.strategy,
        "batches": cut.iter().map(|b| b.nodes.len()).collect::<Vec<_>>(), "from_plan": req.from_plan,
    });
    s.store.audit(&op.actor(), "rollout.start", &detail).await?;
    s.engine.kick.notify_one();
    view(s, op, &id).await
}

/// Scoped tokens see rollouts whose nodes are all inside their scope.
async fn visible(s: &Service, op: &Operator, nodes: &[NodeRow]) -> Result<bool> {
    if op.0.scope.is_none() {
        return Ok(true);
    }
    let all = s.store.list_nodes().await?;
    Ok(nodes.iter().all(|n| all.iter().any(|x| x.id == n.node && op.in_scope(&x.tags))))
}

pub async fn view(s: &Service, op: &Operator, id: &str) -> Result<RolloutView> {
    let r = s.store.rollout(id).await?.ok_or_else(|| Error::not_found(format!("no rollout {id}")))?;
    let nodes = s.store.rollout_nodes(id).await?;
    if !visible(s, op, &nodes).await? {
        return Err(Error::not_found(format!("no rollout {id}")));
    }
    let batches = s
        .store
        .rollout_batches(id)
        .await?
        .into_iter()
        .map(|b| BatchView {
            index: b.idx.max(0) as usize,
            group: b.group,
            status: b.status.to_string(),
            nodes: nodes
                .iter()
                .filter(|n| n.batch == b.idx)
                .map(|n| RolloutNode {
                    node: n.node.clone(),
                    hostname: n.hostname.clone(),
                    before: n.before.clone(),
                    state: n.state.to_string(),
                    detail: n.detail.clone(),
                })
                .collect(),
            gates: b.gates,
            started_at: b.started_at,
            ended_at: b.ended_at,
        })
        .collect();
    Ok(RolloutView {
        id: r.id,
        recipe: r.recipe,
        version: r.version,
        targets: decode("rollout targets", &r.targets)?,
        strategy: r.strategy,
        status: r.status.to_string(),
        reason: r.reason,
        created_at: r.created_at,
        created_by: format!("token:{}", r.token_name),
        finished_at: r.finished_at,
        batches,
    })
}

pub async fn list(s: &Service, op: &Operator) -> Result<Vec<RolloutView>> {
    let mut out = Vec::new();
    for r in s.store.list_rollouts(100).await? {
        match view(s, op, &r.id).await {
            Ok(mut v) => {
                // The list is a summary: node states stay in `show`.
                for b in &mut v.batches {
                    b.nodes.iter_mut().for_each(|n| n.detail = None);
                }
                out.push(v)
            }
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// What an operator asks of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Stop,
    Rollback,
}

impl Control {
    fn as_str(self) -> &'static str {
        match self {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Stop => "stop",
            Control::Rollback => "rollback",
        }
    }
}

pub async fn control(s: &Service, op: &Operator, id: &str, what: Control) -> Result<RolloutView> {
    op.require(Role::Operator)?;
    view(s, op, id).await?;
    let r = s.store.rollout(id).await?.ok_or_else(|| Error::not_found(format!("no rollout {id}")))?;
    let refuse = |why: &str| Err(Error::conflict(format!("rollout {id} is {}: {why}", r.status)));
    match what {
        Control::Pause | Control::Stop if r.status.is_final() || r.status == RolloutStatus::RollingBack => {
            return refuse("there is nothing to stop");
        }
        Control::Pause => s.store.set_rollout_request(id, Some("pause")).await?,
        Control::Stop => s.store.set_rollout_request(id, Some("stop")).await?,
        Control::Resume => match r.status {
            RolloutStatus::Paused => s.store.set_rollout_status(id, RolloutStatus::Running, None).await?,
            RolloutStatus::Running if r.request.as_deref() == Some("pause") => {
                s.store.set_rollout_request(id, None).await?
            }
            _ => return refuse("only a paused rollout resumes"),
        },
        Control::Rollback => match r.status {
            RolloutStatus::RollingBack | RolloutStatus::RolledBack | RolloutStatus::RollbackFailed => {
                return refuse("it is rolled back (or rolling back) already");
            }
            RolloutStatus::Running | RolloutStatus::Paused => s.store.set_rollout_request(id, Some("rollback")).await?,
            _ => {
                // Only the latest rollout of a recipe may be taken back: an
                // older one would undo what came after it.
                // Newest first: the first of this recipe is the latest.
                let latest = s.store.list_rollouts(100).await?.into_iter().find(|x| x.recipe == r.recipe);
                let later = latest.filter(|x| x.id != r.id);
                if let Some(x) = later {
                    return Err(Error::conflict(format!(
                        "rollout {} of {} came after {id}; roll that one back instead",
                        x.id, r.recipe
                    )));
                }
                let why = format!("rolled back by {}", op.actor());
                super::engine::roll_back(s, &r, &why).await?;
            }
        },
    }
    s.store.audit(&op.actor(), &format!("rollout.{}", what.as_str()), &serde_json::json!({ "id": id })).await?;
    s.engine.kick.notify_one();
    view(s, op, id).await
}
