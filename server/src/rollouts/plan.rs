//! Change sets (`tend plan RECIPE@VERSION`): every target node is asked,
//! through the command channel (the built-in `Converge` document with
//! `dryRun` and `replace`), what its assigned set would do with that version
//! in place: the agent compiles and checks with its real facts and state
//! and changes nothing. The answers are the command's invocation reports;
//! [`aggregate`] sums them per resource, grouping identical changes.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use tend_model::command::{CommandCreate, InvocationStatus};
use tend_model::rollout::{ChangeGroup, ChangeSet, Effect, PlanCreate, ResourceChange, Silent};

use super::Service;
use super::store::PlanRow;
use crate::auth::Operator;
use crate::commands::store::InvocationReport;
use crate::error::{Error, Result};
use crate::pki::random_hex;
use crate::store::{decode, now};

const DEFAULT_TIMEOUT: u64 = 120;

pub async fn create(s: &Service, op: &Operator, req: PlanCreate) -> Result<ChangeSet> {
    let r = super::service::resolve(s, op, &req.recipe, &req.targets).await?;
    let timeout = req.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if !(1..=tend_model::document::MAX_TIMEOUT).contains(&timeout) {
        return Err(Error::bad_request(format!(
            "timeout {timeout} is outside 1..={} s",
            tend_model::document::MAX_TIMEOUT
        )));
    }
    let hex = random_hex(6)?;
    let id = format!("cs-{hex}");
    let command_id = format!("cmd-cs-{hex}");
    let mut params = serde_json::Map::new();
    params.insert("dryRun".into(), Value::Bool(true));
    params.insert("replace".into(), Value::from(format!("{}@{}", r.name, r.version)));
    let cmd = CommandCreate {
        document: "Converge".into(),
        params,
        raw_params: Vec::new(),
        targets: req.targets.clone(),
        max_concurrency: Some("100%".into()),
        max_errors: Some("100%".into()),
        timeout: Some(timeout),
        delivery_timeout: Some(timeout),
        comment: Some(format!("change set {id}")),
    };
    let row = PlanRow {
        id: id.clone(),
        recipe: r.name.clone(),
        version: r.version.clone(),
        targets: serde_json::to_string(&req.targets)?,
        not_assigned: serde_json::to_string(&r.not_assigned)?,
        command_id: command_id.clone(),
        created_at: now(),
        created_by: op.actor(),
    };
    s.store.create_plan(&row).await?;
    let nodes: Vec<String> = r.nodes.iter().map(|n| n.id.clone()).collect();
    crate::commands::start_on(&s.commands, op, cmd, Some(command_id), Some(&nodes)).await?;
    let detail = serde_json::json!({ "id": id, "recipe": r.name, "version": r.version, "targets": req.targets });
    s.store.audit(&op.actor(), "plan.create", &detail).await?;
    show(s, op, &id).await
}

pub async fn show(s: &Service, op: &Operator, id: &str) -> Result<ChangeSet> {
    let p = s.store.plan(id).await?.ok_or_else(|| Error::not_found(format!("no change set {id}")))?;
    let answers = s.store.invocation_reports(&p.command_id).await?;
    if op.0.scope.is_some() {
        let nodes = s.store.list_nodes().await?;
        if !answers.iter().all(|a| nodes.iter().any(|n| n.id == a.node && op.in_scope(&n.tags))) {
            return Err(Error::not_found(format!("no change set {id}")));
        }
    }
    let finished = s.store.command(&p.command_id).await?.is_some_and(|c| c.finished_at.is_some());
    // Aggregating a large fleet is CPU work: off the runtime's workers.
    let sums = tokio::task::spawn_blocking(move || aggregate(&answers)).await??;
    Ok(ChangeSet {
        id: p.id,
        recipe: p.recipe,
        version: p.version,
        targets: decode("plan targets", &p.targets)?,
        status: if finished { "Complete" } else { "InProgress" }.into(),
        created_at: p.created_at,
        created_by: p.created_by,
        command_id: p.command_id,
        hosts: sums.hosts,
        answered: sums.answered,
        failed_hosts: sums.failed_hosts,
        silent: sums.silent,
        not_assigned: decode("plan nodes", &p.not_assigned)?,
        resources: sums.resources,
        unchanged: sums.unchanged,
    })
}

pub async fn list(s: &Service, op: &Operator) -> Result<Vec<ChangeSet>> {
    let mut out = Vec::new();
    for p in s.store.list_plans(50).await? {
        match show(s, op, &p.id).await {
            Ok(mut cs) => {
                cs.resources.iter_mut().for_each(|r| r.groups.clear());
                out.push(cs);
            }
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The sums over the hosts' answers.
#[derive(Debug, Default)]
pub struct Sums {
    pub hosts: usize,
    pub answered: usize,
    pub failed_hosts: Vec<String>,
    pub silent: Vec<Silent>,
    pub resources: Vec<ResourceChange>,
    pub unchanged: usize,
}

/// How a reported resource would change: `ensure` from `absent` adds it,
/// to `absent` removes it; any other change modifies it.
fn effect(resource: &Value) -> Effect {
    match resource["status"].as_str().unwrap_or_default() {
        "failed" => Effect::Fail,
        "skipped" => Effect::Skip,
        "changed" => {
            let ensure = resource["changes"].as_array().and_then(|cs| cs.iter().find(|c| c["property"] == "ensure"));
            match ensure {
                Some(c) if c["from"].is_null() || c["from"] == "absent" => Effect::Add,
                Some(c) if c["to"].is_null() || c["to"] == "absent" => Effect::Remove,
                _ => Effect::Modify,
            }
        }
        _ => Effect::Unchanged,
    }
}

/// What makes two hosts' changes "the same": everything but the diffs'
/// `---`/`+++` header lines, which name the host's own path (the resource
/// id already says which file it is).
fn group_key(changes: &Value) -> String {
    let mut c = changes.clone();
    for ch in c.as_array_mut().into_iter().flatten() {
        if let Some(d) = ch.get_mut("diff")
            && let Some(text) = d.as_str()
        {
            let body: String =
                text.split_inclusive('\n').filter(|l| !(l.starts_with("--- ") || l.starts_with("+++ "))).collect();
            *d = Value::String(body);
        }
    }
    c.to_string()
}

/// What makes a group: the effect, the changes (as [`group_key`]) and the error.
type GroupKey = (Effect, String, Option<String>);

struct Acc {
    kind: String,
    counts: BTreeMap<Effect, usize>,
    /// (effect, changes without diff headers, error) → (the first host's changes, hosts).
    groups: HashMap<GroupKey, (Value, Vec<String>)>,
    first_seen: usize,
}

/// Sums the answers per resource id: counts per effect, and the hosts of
/// each identical change (same effect, same changes and diffs, same error).
pub fn aggregate(answers: &[InvocationReport]) -> Result<Sums> {
    let mut sums = Sums { hosts: answers.len(), ..Sums::default() };
    let mut acc: HashMap<String, Acc> = HashMap::new();
    let mut add = |id: &str, kind: &str, e: Effect, changes: &Value, error: Option<String>, host: &str| {
        let n = acc.len();
        let a = acc.entry(id.to_string()).or_insert_with(|| Acc {
            kind: kind.to_string(),
            counts: BTreeMap::new(),
            groups: HashMap::new(),
            first_seen: n,
        });
        *a.counts.entry(e).or_default() += 1;
        if e != Effect::Unchanged {
            let key = (e, group_key(changes), error);
            let g = a.groups.entry(key).or_insert_with(|| (changes.clone(), Vec::new()));
            g.1.push(host.to_string());
        }
    };
    for inv in answers {
        let report = match &inv.report {
            Some(text) if matches!(inv.status, InvocationStatus::Success | InvocationStatus::Failed) => text,
            _ => {
                sums.silent.push(Silent {
                    node: inv.node.clone(),
                    hostname: inv.hostname.clone(),
                    status: inv.status.to_string(),
                    reason: inv.reason.clone(),
                });
                continue;
            }
        };
        let report: Value = decode("a plan's report", report)?;
        sums.answered += 1;
        let host = if inv.hostname.is_empty() { inv.node.as_str() } else { inv.hostname.as_str() };
        let errors = report["errors"].as_array().cloned().unwrap_or_default();
        let mut failed = !errors.is_empty();
        for e in &errors {
            add("(compile)", "recipe", Effect::Fail, &Value::Null, e.as_str().map(str::to_string), host);
        }
        for r in report["resources"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let e = effect(r);
            failed |= e == Effect::Fail;
            let id = r["id"].as_str().unwrap_or_default();
            let error = r["error"].as_str().map(str::to_string);
            add(id, r["type"].as_str().unwrap_or_default(), e, &r["changes"], error, host);
        }
        if failed {
            sums.failed_hosts.push(host.to_string());
        }
    }
    let mut resources: Vec<(usize, ResourceChange)> = Vec::new();
    for (id, a) in acc {
        if a.groups.is_empty() {
            sums.unchanged += 1;
            continue;
        }
        let mut groups: Vec<ChangeGroup> = a
            .groups
            .into_iter()
            .map(|((effect, _, error), (changes, mut hosts))| {
                hosts.sort();
                ChangeGroup { effect, hosts, changes, error }
            })
            .collect();
        groups.sort_by(|x, y| {
            x.hosts.len().cmp(&y.hosts.len()).then(x.effect.cmp(&y.effect)).then(x.hosts.cmp(&y.hosts))
        });
        resources.push((a.first_seen, ResourceChange { id, kind: a.kind, counts: a.counts, groups }));
    }
    // Failures first, then in the order the resources first appeared.
    let fails = |r: &ResourceChange| r.counts.get(&Effect::Fail).copied().unwrap_or(0);
    resources.sort_by(|(i, x), (j, y)| (fails(y) > 0).cmp(&(fails(x) > 0)).then(i.cmp(j)));
    sums.resources = resources.into_iter().map(|(_, r)| r).collect();
    sums.failed_hosts.sort();
    Ok(sums)
}
