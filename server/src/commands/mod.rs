//! Run command: command documents, commands sent to nodes by tag or id,
//! and their per-node invocations. The service below is what the routes,
//! the automation engine and the association scheduler all call; the
//! [`dispatch`]er then releases invocations within the command's limits.

pub mod dispatch;
pub mod routes;
pub mod service;
pub mod store;
#[cfg(test)]
pub mod testkit;

use std::collections::BTreeMap;
use std::sync::Arc;

use tend_model::bundle::Bundle;
use tend_model::command::{
    CommandCreate, CommandView, DeliveredRecipe, DeliveredStep, Delivery, InvocationStatus, Limit,
};
use tend_model::document::{self, Action, Document, param_ref};
use tend_model::params::Overrides;
use tend_model::wire::{Role, matches_targets};

pub use self::dispatch::Dispatcher;
pub use self::store::{CommandRow, CommandStatus, InvocationRow, NewCommand};
use crate::auth::Operator;
use crate::error::{Error, Result};
use crate::pki::random_hex;
use crate::secrets::Secrets;
use crate::store::{Store, decode};

const DEFAULT_CONCURRENCY: &str = "50";
const DEFAULT_DELIVERY_TIMEOUT: u64 = 600;

/// What run command needs: the store, the dispatcher, the sealing key, and
/// how much output is kept per stream.
#[derive(Clone)]
pub struct Service {
    pub store: Store,
    pub dispatcher: Arc<Dispatcher>,
    pub secrets: Arc<Secrets>,
    /// Characters of each output stream stored per invocation.
    pub output_cap: usize,
}

impl axum::extract::FromRef<Service> for Store {
    fn from_ref(s: &Service) -> Store {
        s.store.clone()
    }
}

/// `NAME` or `NAME@VERSION` (recipes, documents).
pub fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    }
}

/// (version, kind, text, created_at) of a built-in or stored document.
pub async fn find_document(
    store: &Store,
    name: &str,
    version: Option<&str>,
) -> Result<(String, String, String, String)> {
    if version.is_none_or(|v| v == "builtin") {
        if let Some(t) = document::builtin_text(name) {
            return Ok(("builtin".into(), "Command".into(), t.to_string(), String::new()));
        }
    }
    let spec = version.map(|v| format!("{name}@{v}")).unwrap_or_else(|| name.to_string());
    store
        .document(name, version)
        .await?
        .ok_or_else(|| Error::not_found(format!("no document {spec} (push it with `tend document push`)")))
}

/// Creates a command as `op` (role, scope and audit as for `POST
/// /v1/commands`). With `id`, the command gets that id, and a command that
/// already has it is returned as it is: an automation step creates its
/// command exactly once, whatever restarts happen.
pub async fn start(s: &Service, op: &Operator, req: CommandCreate, id: Option<String>) -> Result<CommandView> {
    start_on(s, op, req, id, None).await
}

/// As [`start`], on `only` those of the matching nodes when given (a
/// rollout's batch, a plan's assigned nodes: more nodes than a target list
/// may name, and the command still shows the operator's targets).
pub async fn start_on(
    s: &Service,
    op: &Operator,
    req: CommandCreate,
    id: Option<String>,
    only: Option<&[String]>,
) -> Result<CommandView> {
    if let Some(id) = &id
        && s.store.command(id).await?.is_some()
    {
        return view(s, id, true).await;
    }
    op.require(Role::Operator)?;
    tend_model::names::targets(&req.targets).map_err(|e| Error::bad_request(format!("a command: {e}")))?;
    if let Some(c) = &req.comment {
        tend_model::names::comment(c).map_err(Error::bad_request)?;
    }
    let nodes = s.store.list_nodes().await?;
    op.check_targets(&req.targets, &nodes)?;
    let (name, version) = split_spec(&req.document);
    let (version, kind, text, _) = find_document(&s.store, name, version).await?;
    if kind != "Command" {
        return Err(Error::bad_request(format!(
            "{name} is an {kind} document: start it with `tend automation start {name}`"
        )));
    }
    let doc = Document::parse(name, &text).map_err(Error::internal)?;
    let overrides = Overrides { raw: req.raw_params.clone(), typed: req.params.clone(), placeholders: false };
    let values = doc.resolve_params(&overrides).map_err(|p| {
        Error::unprocessable(format!("these parameters do not fit {}:\n{}", req.document, p.join("\n")))
    })?;
    let parse_limit = |v: Option<&str>, default: &str, what: &str| {
        Limit::parse(v.unwrap_or(default)).map_err(|e| Error::bad_request(format!("{what}: {e}")))
    };
    let concurrency = parse_limit(req.max_concurrency.as_deref(), DEFAULT_CONCURRENCY, "max concurrency")?;
    let max_errors = parse_limit(req.max_errors.as_deref(), "0", "max errors")?;
    if let Some(t) = req.timeout
        && !(1..=document::MAX_TIMEOUT).contains(&t)
    {
        return Err(Error::bad_request(format!("timeout {t} is outside 1..={} s", document::MAX_TIMEOUT)));
    }

    // Targets: live nodes that match, in scope; named nodes that are
    // deregistered (or unknown) are Undeliverable.
    let mut targets: Vec<(String, String, InvocationStatus)> = nodes
        .iter()
        .filter(|n| matches_targets(&req.targets, &n.id, &n.tags) && op.in_scope(&n.tags))
        .filter(|n| only.is_none_or(|o| o.contains(&n.id)))
        .map(|n| (n.id.clone(), n.hostname.clone(), InvocationStatus::Pending))
        .collect();
    for t in req.targets.iter().filter(|t| !t.starts_with("tag:") && only.is_none_or(|o| o.contains(t))) {
        if !targets.iter().any(|(id, _, _)| id == t) {
            let host = s.store.node(t).await?.map(|n| n.hostname).unwrap_or_default();
            targets.push((t.clone(), host, InvocationStatus::Undeliverable));
        }
    }
    if targets.is_empty() {
        return Err(Error::bad_request(format!("no registered node matches {}", req.targets.join(" "))));
    }

    let id = match id {
        Some(id) => id,
        None => format!("cmd-{}", random_hex(8)?),
    };
    let steps = deliver_steps(s, &doc, &values, req.timeout).await?;
    let steps_timeout_ms = steps.iter().map(|st| st.timeout as i64 * 1000).sum::<i64>();
    let mut env: BTreeMap<String, String> =
        values.iter().map(|(k, v)| (document::env_name(k), document::env_value(v))).collect();
    env.insert("TEND_COMMAND_ID".into(), id.clone());
    let delivery = Delivery {
        command_id: id.clone(),
        document: format!("{name}@{version}"),
        steps,
        env,
        sensitive: doc.sensitive_values(&values),
    };
    let shown = doc.shown_params(&values);
    let row = CommandRow {
        id: id.clone(),
        document: delivery.document.clone(),
        delivery: {
            let text = serde_json::to_string(&delivery)?;
            // The delivery carries sensitive values (environment, redactions): sealed.
            if delivery.sensitive.is_empty() { text } else { s.secrets.seal_text(&text)? }
        },
        params_shown: serde_json::to_string(&shown)?,
        targets: serde_json::to_string(&req.targets)?,
        max_concurrency: concurrency.of(targets.len(), true) as i64,
        max_errors: max_errors.of(targets.len(), false) as i64,
        run_timeout_ms: steps_timeout_ms,
        delivery_timeout_ms: (req.delivery_timeout.unwrap_or(DEFAULT_DELIVERY_TIMEOUT).clamp(1, 86_400) * 1000) as i64,
        status: CommandStatus::Pending,
        cancel_requested: false,
        comment: req.comment.clone(),
        created_at: crate::store::now(),
        created_by: op.actor(),
        finished_at: None,
    };
    s.store.create_command(NewCommand { row: &row, nodes: &targets }).await?;
    let detail = serde_json::json!({
        "id": id, "document": row.document, "params": shown, "targets": req.targets,
        "nodes": targets.len(), "max_concurrency": row.max_concurrency, "max_errors": row.max_errors,
        "comment": req.comment,
    });
    s.store.audit(&op.actor(), "command.run", &detail).await?;
    s.dispatcher.advance(&id).await?;
    view(s, &id, true).await
}

/// The document's steps as the agent runs them: timeouts settled, and
/// applyRecipe steps carrying their recipe (checked with its parameters now,
/// before anything is sent).
async fn deliver_steps(
    s: &Service,
    doc: &Document,
    values: &serde_json::Map<String, serde_json::Value>,
    timeout: Option<u64>,
) -> Result<Vec<DeliveredStep>> {
    let mut out = Vec::new();
    for st in &doc.steps {
        let mut converge = None;
        let dry_run = match &st.dry_run {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(r)) => {
                param_ref(r).and_then(|p| values.get(p)).and_then(|v| v.as_bool()).unwrap_or(false)
            }
            _ => false,
        };
        let recipe = match st.action {
            Action::RunShellScript => None,
            Action::Converge => {
                let replace = st
                    .replace
                    .as_deref()
                    .map(|r| match param_ref(r) {
                        Some(p) => values.get(p).and_then(|v| v.as_str()).unwrap_or_default().to_string(),
                        None => r.to_string(),
                    })
                    .filter(|r| !r.is_empty());
                if let Some(r) = &replace {
                    if !dry_run {
                        return Err(Error::bad_request(format!(
                            "step `{}`: replace ({r}) previews a version; it needs dryRun",
                            st.name
                        )));
                    }
                    let (rname, rversion) = split_spec(r);
                    if s.store.recipe(rname, rversion).await?.is_none() {
                        return Err(Error::not_found(format!("step `{}`: no recipe {r}", st.name)));
                    }
                }
                converge = Some(tend_model::command::ConvergeSpec { dry_run, replace });
                None
            }
            Action::ApplyRecipe => {
                let raw = st.recipe.clone().unwrap_or_default();
                let spec = match param_ref(&raw) {
                    Some(p) => values.get(p).and_then(|v| v.as_str()).unwrap_or_default().to_string(),
                    None => raw,
                };
                let (rname, rversion) = split_spec(&spec);
                let Some((version, bundle, _)) = s.store.recipe(rname, rversion).await? else {
                    return Err(Error::not_found(format!("step `{}`: no recipe {spec}", st.name)));
                };
                let bundle: Bundle = serde_json::from_str(&bundle)?;
                let params: serde_json::Map<String, serde_json::Value> = st
                    .params
                    .iter()
                    .map(|(k, v)| {
                        let v = match v.as_str().and_then(param_ref) {
                            Some(p) => values.get(p).cloned().unwrap_or_default(),
                            None => v.clone(),
                        };
                        (k.clone(), v)
                    })
                    .collect();
                let o = Overrides { raw: Vec::new(), typed: params.clone(), placeholders: false };
                if let Err(d) = bundle.validate_with(&tend_model::facts::skeleton(), &o) {
                    return Err(Error::unprocessable(format!(
                        "step `{}`: recipe {spec} does not accept these parameters:\n{d}",
                        st.name
                    )));
                }
                converge = dry_run.then_some(tend_model::command::ConvergeSpec { dry_run, replace: None });
                Some(DeliveredRecipe { version, bundle, params })
            }
        };
        out.push(DeliveredStep {
            name: st.name.clone(),
            action: st.action,
            precondition: st.precondition.clone(),
            timeout: timeout.unwrap_or(st.timeout_secs()),
            run: st.run.clone(),
            recipe,
            converge,
            run_as: st.run_as.clone(),
            working_directory: st.working_directory.clone(),
            env: st.env.clone(),
            on_failure: st.on_failure,
        });
    }
    Ok(out)
}

pub async fn view(s: &Service, id: &str, with_invocations: bool) -> Result<CommandView> {
    let c = s.store.command(id).await?.ok_or_else(|| Error::not_found("no such command"))?;
    let mut counts = BTreeMap::new();
    for (st, n) in s.store.invocation_counts(id).await? {
        counts.insert(st, n.max(0) as usize);
    }
    let invocations = if with_invocations { s.store.invocation_views(id).await? } else { Vec::new() };
    Ok(CommandView {
        id: c.id,
        document: c.document,
        status: c.status.to_string(),
        created_at: c.created_at,
        created_by: c.created_by,
        targets: decode("command targets", &c.targets)?,
        params: decode("command parameters", &c.params_shown)?,
        max_concurrency: c.max_concurrency.max(0) as usize,
        max_errors: c.max_errors.max(0) as usize,
        counts,
        comment: c.comment,
        invocations,
    })
}
