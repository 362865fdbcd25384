//! Run command over HTTP: documents, commands for operators, and the
//! agents' side (long-poll, acknowledge, result).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use tend_model::bundle::Bundle;
use tend_model::command::{
    AckAnswer, CommandCreate, CommandView, DeliveredRecipe, DeliveredStep, Delivery, DocumentVersion, InvocationResult,
    InvocationStatus, Limit, Poll,
};
use tend_model::document::{self, Action, Document, param_ref};
use tend_model::params::Overrides;
use tend_model::wire::{Role, matches_targets};

use crate::api::{ApiFailure, ApiResult, AppState, fail, internal, split_spec};
use crate::auth::{Agent, Operator};
use crate::intake::{Caller, Guard, KIB, MIB};
use crate::pki::{random_hex, sha256_hex};
use crate::store::{CommandRow, NewCommand};

pub fn routes(s: &AppState) -> Router<AppState> {
    use axum::routing::{get, post};
    let op = Caller::Token(Role::Operator);
    Router::new()
        .route("/v1/documents", post(push_document).guard(s, op, 2 * MIB).get(list_documents))
        .route("/v1/documents/{spec}", get(show_document))
        .route("/v1/commands", post(create_command).guard(s, op, 256 * KIB).get(list_commands))
        .route("/v1/commands/{id}", get(show_command))
        .route("/v1/commands/{id}/output/{node}", get(command_output))
        .route("/v1/commands/{id}/cancel", post(cancel_command).guard(s, op, KIB))
        .route("/v1/agent/commands", get(agent_poll))
        .route("/v1/agent/commands/{id}/ack", post(agent_ack).guard(s, Caller::Agent, 16 * KIB))
        // Both output streams, capped by the agent, JSON-escaped.
        .route("/v1/agent/commands/{id}/result", post(agent_result).guard(s, Caller::Agent, 16 * MIB))
}

/// Longest long-poll an agent may ask for.
const MAX_WAIT: u64 = 60;
const DEFAULT_CONCURRENCY: &str = "50";
const DEFAULT_DELIVERY_TIMEOUT: u64 = 600;

// --- documents ---

#[derive(Deserialize)]
struct DocumentPush {
    file: String,
    text: String,
}

async fn push_document(
    State(s): State<AppState>,
    op: Operator,
    Json(req): Json<DocumentPush>,
) -> Result<Response, ApiFailure> {
    op.require(Role::Operator)?;
    op.require_unscoped("push documents")?;
    // The kind decides the parser: a command document or an automation.
    let automation = tend_model::automation::is_automation(&req.text);
    let parsed = if automation {
        tend_model::automation::Automation::parse(&req.file, &req.text).map(|a| a.name)
    } else {
        Document::parse(&req.file, &req.text).map(|d| d.name)
    };
    let name = match parsed {
        Ok(n) => n,
        Err(d) => return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(d)).into_response()),
    };
    let kind = if automation { "Automation" } else { "Command" }.to_string();
    if document::builtin(&name).is_some() {
        return Err(fail(StatusCode::CONFLICT, format!("{name} is a built-in document; choose another name")));
    }
    let version = sha256_hex(req.text.as_bytes())[..16].to_string();
    let new = s.store.put_document(&name, &version, &kind, &req.text, &op.actor()).await.map_err(internal)?;
    if new {
        let detail = serde_json::json!({ "name": name, "version": version, "kind": kind });
        s.store.audit(&op.actor(), "document.push", &detail).await.map_err(internal)?;
    }
    let (_, _, _, at) =
        s.store.document(&name, Some(&version)).await.map_err(internal)?.ok_or_else(|| internal("just stored"))?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    let v = DocumentVersion { name, version, kind, created_at: at, builtin: false };
    Ok((status, Json(v)).into_response())
}

async fn list_documents(State(s): State<AppState>, op: Operator) -> ApiResult<Json<Vec<DocumentVersion>>> {
    op.require(Role::Viewer)?;
    let mut out: Vec<DocumentVersion> = document::BUILTINS
        .iter()
        .map(|n| DocumentVersion {
            name: n.to_string(),
            version: "builtin".into(),
            kind: "Command".into(),
            created_at: String::new(),
            builtin: true,
        })
        .collect();
    for (name, version, kind, created_at) in s.store.list_documents().await.map_err(internal)? {
        out.push(DocumentVersion { name, version, kind, created_at, builtin: false });
    }
    Ok(Json(out))
}

async fn show_document(
    State(s): State<AppState>,
    op: Operator,
    Path(spec): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    op.require(Role::Viewer)?;
    let (name, version) = split_spec(&spec);
    let (version, kind, text, at) = find_document(&s, name, version).await?;
    Ok(Json(serde_json::json!({ "name": name, "version": version, "kind": kind, "created_at": at, "text": text })))
}

/// (version, kind, text, created_at) of a built-in or stored document.
pub async fn find_document(
    s: &AppState,
    name: &str,
    version: Option<&str>,
) -> ApiResult<(String, String, String, String)> {
    if version.is_none_or(|v| v == "builtin") {
        let text = match name {
            "RunShellScript" => Some(document::RUN_SHELL_SCRIPT),
            "ApplyRecipe" => Some(document::APPLY_RECIPE),
            _ => None,
        };
        if let Some(t) = text {
            return Ok(("builtin".into(), "Command".into(), t.to_string(), String::new()));
        }
    }
    let spec = version.map(|v| format!("{name}@{v}")).unwrap_or_else(|| name.to_string());
    s.store
        .document(name, version)
        .await
        .map_err(internal)?
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no document {spec} (push it with `tend document push`)")))
}

// --- commands ---

async fn create_command(
    State(s): State<AppState>,
    op: Operator,
    Json(req): Json<CommandCreate>,
) -> ApiResult<(StatusCode, Json<CommandView>)> {
    Ok((StatusCode::CREATED, Json(start_command(&s, &op, req, None).await?)))
}

/// Creates a command as `op` (role, scope and audit as for `POST
/// /v1/commands`). With `id`, the command gets that id, and a command that
/// already has it is returned as it is: an automation step creates its
/// command exactly once, whatever restarts happen.
pub async fn start_command(
    s: &AppState,
    op: &Operator,
    req: CommandCreate,
    id: Option<String>,
) -> ApiResult<CommandView> {
    if let Some(id) = &id
        && s.store.command(id).await.map_err(internal)?.is_some()
    {
        return view(s, id, true).await;
    }
    op.require(Role::Operator)?;
    tend_model::names::targets(&req.targets).map_err(|e| fail(StatusCode::BAD_REQUEST, format!("a command: {e}")))?;
    if let Some(c) = &req.comment {
        tend_model::names::comment(c).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    }
    let nodes = s.store.list_nodes().await.map_err(internal)?;
    op.check_targets(&req.targets, &nodes)?;
    let (name, version) = split_spec(&req.document);
    let (version, kind, text, _) = find_document(s, name, version).await?;
    if kind != "Command" {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!("{name} is an {kind} document: start it with `tend automation start {name}`"),
        ));
    }
    let doc = Document::parse(name, &text).map_err(internal)?;
    let overrides = Overrides { raw: req.raw_params.clone(), typed: req.params.clone(), placeholders: false };
    let values = doc.resolve_params(&overrides).map_err(|p| {
        fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("these parameters do not fit {}:\n{}", req.document, p.join("\n")),
        )
    })?;
    let parse_limit = |v: Option<&str>, default: &str, what: &str| {
        Limit::parse(v.unwrap_or(default)).map_err(|e| fail(StatusCode::BAD_REQUEST, format!("{what}: {e}")))
    };
    let concurrency = parse_limit(req.max_concurrency.as_deref(), DEFAULT_CONCURRENCY, "max concurrency")?;
    let max_errors = parse_limit(req.max_errors.as_deref(), "0", "max errors")?;
    if let Some(t) = req.timeout
        && !(1..=document::MAX_TIMEOUT).contains(&t)
    {
        return Err(fail(StatusCode::BAD_REQUEST, format!("timeout {t} is outside 1..={} s", document::MAX_TIMEOUT)));
    }

    // Targets: live nodes that match, in scope; named nodes that are
    // deregistered (or unknown) are Undeliverable.
    let mut targets: Vec<(String, String, InvocationStatus)> = nodes
        .iter()
        .filter(|n| matches_targets(&req.targets, &n.id, &n.tags) && op.in_scope(&n.tags))
        .map(|n| (n.id.clone(), n.hostname.clone(), InvocationStatus::Pending))
        .collect();
    for t in req.targets.iter().filter(|t| !t.starts_with("tag:")) {
        if !targets.iter().any(|(id, _, _)| id == t) {
            let host = s.store.node(t).await.map_err(internal)?.map(|n| n.hostname).unwrap_or_default();
            targets.push((t.clone(), host, InvocationStatus::Undeliverable));
        }
    }
    if targets.is_empty() {
        return Err(fail(StatusCode::BAD_REQUEST, format!("no registered node matches {}", req.targets.join(" "))));
    }

    let id = match id {
        Some(id) => id,
        None => format!("cmd-{}", random_hex(8).map_err(internal)?),
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
            let text = serde_json::to_string(&delivery).map_err(internal)?;
            // The delivery carries sensitive values (environment, redactions): sealed.
            if delivery.sensitive.is_empty() { text } else { s.secrets.seal_text(&text).map_err(internal)? }
        },
        params_shown: serde_json::to_string(&shown).map_err(internal)?,
        targets: serde_json::to_string(&req.targets).map_err(internal)?,
        max_concurrency: concurrency.of(targets.len(), true) as i64,
        max_errors: max_errors.of(targets.len(), false) as i64,
        run_timeout_ms: steps_timeout_ms,
        delivery_timeout_ms: (req.delivery_timeout.unwrap_or(DEFAULT_DELIVERY_TIMEOUT).clamp(1, 86_400) * 1000) as i64,
        status: crate::dispatch::PENDING.into(),
        cancel_requested: false,
        comment: req.comment.clone(),
        created_at: crate::store::now(),
        created_by: op.actor(),
        finished_at: None,
    };
    s.store.create_command(NewCommand { row: &row, nodes: &targets }).await.map_err(internal)?;
    let detail = serde_json::json!({
        "id": id, "document": row.document, "params": shown, "targets": req.targets,
        "nodes": targets.len(), "max_concurrency": row.max_concurrency, "max_errors": row.max_errors,
        "comment": req.comment,
    });
    s.store.audit(&op.actor(), "command.run", &detail).await.map_err(internal)?;
    s.dispatcher.advance(&id).await.map_err(internal)?;
    view(s, &id, true).await
}

/// The document's steps as the agent runs them: timeouts settled, and
/// applyRecipe steps carrying their recipe (checked with its parameters now,
/// before anything is sent).
async fn deliver_steps(
    s: &AppState,
    doc: &Document,
    values: &serde_json::Map<String, serde_json::Value>,
    timeout: Option<u64>,
) -> ApiResult<Vec<DeliveredStep>> {
    let mut out = Vec::new();
    for st in &doc.steps {
        let recipe = match st.action {
            Action::RunShellScript => None,
            Action::ApplyRecipe => {
                let raw = st.recipe.clone().unwrap_or_default();
                let spec = match param_ref(&raw) {
                    Some(p) => values.get(p).and_then(|v| v.as_str()).unwrap_or_default().to_string(),
                    None => raw,
                };
                let (rname, rversion) = split_spec(&spec);
                let Some((version, bundle, _)) = s.store.recipe(rname, rversion).await.map_err(internal)? else {
                    return Err(fail(StatusCode::NOT_FOUND, format!("step `{}`: no recipe {spec}", st.name)));
                };
                let bundle: Bundle = serde_json::from_str(&bundle).map_err(internal)?;
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
                    return Err(fail(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("step `{}`: recipe {spec} does not accept these parameters:\n{d}", st.name),
                    ));
                }
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
            run_as: st.run_as.clone(),
            working_directory: st.working_directory.clone(),
            env: st.env.clone(),
            on_failure: st.on_failure,
        });
    }
    Ok(out)
}

pub async fn view(s: &AppState, id: &str, with_invocations: bool) -> ApiResult<CommandView> {
    let c =
        s.store.command(id).await.map_err(internal)?.ok_or_else(|| fail(StatusCode::NOT_FOUND, "no such command"))?;
    let mut counts = BTreeMap::new();
    for (st, n) in s.store.invocation_counts(id).await.map_err(internal)? {
        counts.insert(st, n.max(0) as usize);
    }
    let invocations = if with_invocations { s.store.invocation_views(id).await.map_err(internal)? } else { Vec::new() };
    Ok(CommandView {
        id: c.id,
        document: c.document,
        status: c.status,
        created_at: c.created_at,
        created_by: c.created_by,
        targets: serde_json::from_str(&c.targets).unwrap_or_default(),
        params: serde_json::from_str(&c.params_shown).unwrap_or_default(),
        max_concurrency: c.max_concurrency.max(0) as usize,
        max_errors: c.max_errors.max(0) as usize,
        counts,
        comment: c.comment,
        invocations,
    })
}

/// Viewers see commands that touch only nodes inside their scope.
async fn visible(s: &AppState, op: &Operator, id: &str) -> ApiResult<()> {
    if op.0.scope.is_none() {
        return Ok(());
    }
    let nodes = s.store.list_nodes().await.map_err(internal)?;
    for inv in s.store.invocations(id).await.map_err(internal)? {
        let inside = nodes.iter().any(|n| n.id == inv.node_id && op.in_scope(&n.tags));
        if !inside {
            return Err(fail(StatusCode::NOT_FOUND, "no such command"));
        }
    }
    Ok(())
}

async fn list_commands(State(s): State<AppState>, op: Operator) -> ApiResult<Json<Vec<CommandView>>> {
    op.require(Role::Viewer)?;
    let mut out = Vec::new();
    for c in s.store.list_commands(100).await.map_err(internal)? {
        if visible(&s, &op, &c.id).await.is_ok() {
            out.push(view(&s, &c.id, false).await?);
        }
    }
    Ok(Json(out))
}

async fn show_command(State(s): State<AppState>, op: Operator, Path(id): Path<String>) -> ApiResult<Json<CommandView>> {
    op.require(Role::Viewer)?;
    visible(&s, &op, &id).await?;
    Ok(Json(view(&s, &id, true).await?))
}

#[derive(Deserialize)]
struct OutputQuery {
    #[serde(default)]
    stream: Option<String>,
}

async fn command_output(
    State(s): State<AppState>,
    op: Operator,
    Path((id, node)): Path<(String, String)>,
    Query(q): Query<OutputQuery>,
) -> ApiResult<String> {
    op.require(Role::Viewer)?;
    visible(&s, &op, &id).await?;
    let stderr = match q.stream.as_deref() {
        None | Some("stdout") => false,
        Some("stderr") => true,
        Some(other) => return Err(fail(StatusCode::BAD_REQUEST, format!("stream {other:?}: stdout or stderr"))),
    };
    s.store
        .invocation_output(&id, &node, stderr)
        .await
        .map_err(internal)?
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("command {id} has no invocation on {node}")))
}

async fn cancel_command(
    State(s): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<CommandView>> {
    op.require(Role::Operator)?;
    visible(&s, &op, &id).await?;
    let c =
        s.store.command(&id).await.map_err(internal)?.ok_or_else(|| fail(StatusCode::NOT_FOUND, "no such command"))?;
    if c.finished_at.is_none() {
        s.store.request_cancel(&id).await.map_err(internal)?;
        s.store.audit(&op.actor(), "command.cancel", &serde_json::json!({ "id": id })).await.map_err(internal)?;
        s.dispatcher.advance(&id).await.map_err(internal)?;
        for inv in s.store.invocations(&id).await.map_err(internal)? {
            if inv.status == InvocationStatus::InProgress {
                s.dispatcher.wake(&inv.node_id);
            }
        }
    }
    Ok(Json(view(&s, &id, true).await?))
}

// --- agents ---

#[derive(Deserialize)]
struct PollQuery {
    #[serde(default)]
    wait: Option<u64>,
}

/// The long-poll: answers at once when the node has work (or cancellations),
/// else waits up to `wait` seconds for it.
async fn agent_poll(
    State(s): State<AppState>,
    Agent(node): Agent,
    Query(q): Query<PollQuery>,
) -> ApiResult<Json<Poll>> {
    s.store.touch_node(&node.id).await.map_err(internal)?;
    let conn = s.dispatcher.connect(&node.id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(25).min(MAX_WAIT));
    loop {
        // Register interest before looking, so a wake between the look and
        // the wait is not lost.
        let notified = conn.notify.notified();
        let poll = collect(&s, &node.id).await?;
        if !poll.deliveries.is_empty() || !poll.cancels.is_empty() {
            return Ok(Json(poll));
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(Json(Poll::default()));
        }
    }
}

async fn collect(s: &AppState, node: &str) -> ApiResult<Poll> {
    let mut deliveries = Vec::new();
    for (id, text) in s.store.pending_deliveries(node).await.map_err(internal)? {
        let text = s.secrets.open_text(&text).map_err(internal)?;
        match serde_json::from_str::<Delivery>(&text) {
            Ok(d) => deliveries.push(d),
            Err(e) => tracing::error!(command = id, error = %e, "a stored delivery does not parse"),
        }
    }
    let cancels = if s.dispatcher.any_cancelling() {
        let running = s.store.cancelled_running(node).await.map_err(internal)?;
        s.dispatcher.take_new_cancels(node, running)
    } else {
        Vec::new()
    };
    Ok(Poll { deliveries, cancels })
}

async fn agent_ack(
    State(s): State<AppState>,
    Agent(node): Agent,
    Path(id): Path<String>,
) -> ApiResult<Json<AckAnswer>> {
    let status = s.store.ack_invocation(&id, &node.id).await.map_err(internal)?;
    match status {
        None => Err(fail(StatusCode::NOT_FOUND, format!("command {id} has no invocation on this node"))),
        Some(st) => Ok(Json(AckAnswer { run: st == InvocationStatus::InProgress })),
    }
}

async fn agent_result(
    State(s): State<AppState>,
    Agent(node): Agent,
    Path(id): Path<String>,
    Json(res): Json<InvocationResult>,
) -> ApiResult<StatusCode> {
    if !res.status.is_terminal() {
        return Err(fail(StatusCode::BAD_REQUEST, format!("{} is not a final status", res.status)));
    }
    let stored = s.store.finish_invocation(&id, &node.id, &res, s.output_cap).await.map_err(internal)?;
    if stored {
        s.dispatcher.touch(&id);
    }
    Ok(StatusCode::NO_CONTENT)
}
