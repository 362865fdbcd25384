//! The HTTP API (JSON over HTTPS): tokens, activations, registration, nodes
//! and the audit log. Every change is audited.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tend_model::wire::{
    Activation, ActivationCreate, ApiError, AuditEntry, Node, RegisterRequest, RegisterResponse, Role, Token,
    TokenCreate,
};

use crate::auth::{Agent, Operator, parse_scope};
use crate::intake::{Caller, Guard, KIB, MIB};
use crate::pki::{Pki, random_hex, sha256_hex};
use crate::store::{NewNode, RegisterRefusal, Store};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub pki: Arc<Pki>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub dispatcher: Arc<crate::dispatch::Dispatcher>,
    /// Characters of each output stream stored per invocation.
    pub output_cap: usize,
    /// Agent packages and their MANIFEST, served to install.sh.
    pub packages_dir: Option<std::path::PathBuf>,
    pub engine: crate::automation::Shared,
    /// The most often an association may run (`rate(…)`).
    pub min_rate: std::time::Duration,
    /// Body limits and deadlines shared by the routes' guards.
    pub intake: Arc<crate::intake::Intake>,
    /// Refused anonymous requests, audited at most once a minute per kind.
    pub refusals: Arc<crate::audit::Throttle>,
    /// Seals sensitive parameter values at rest.
    pub secrets: Arc<crate::secrets::Secrets>,
}

pub type ApiFailure = (StatusCode, Json<ApiError>);
pub type ApiResult<T> = Result<T, ApiFailure>;

/// `NAME` or `NAME@VERSION` (recipes, documents).
pub fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    }
}

pub fn fail(status: StatusCode, msg: impl Into<String>) -> ApiFailure {
    (status, Json(ApiError { error: msg.into() }))
}

/// An internal failure: logged in full (the same error repeated within ten
/// seconds is counted, not logged again), reported briefly.
pub fn internal<E: std::fmt::Display + 'static>(e: E) -> ApiFailure {
    if let Some(se) = (&e as &dyn std::any::Any).downcast_ref::<crate::store::StoreError>() {
        crate::health::note(se);
    }
    static LAST: std::sync::Mutex<Option<(std::time::Instant, String, u64)>> = std::sync::Mutex::new(None);
    let msg = e.to_string();
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    match last.as_mut() {
        Some((at, m, repeated)) if *m == msg && at.elapsed() < Duration::from_secs(10) => *repeated += 1,
        _ => {
            let repeated = last.as_ref().map_or(0, |l| l.2);
            tracing::error!(error = %msg, earlier_error_repeated = repeated, "request failed");
            *last = Some((std::time::Instant::now(), msg, 0));
        }
    }
    fail(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log")
}

pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    let s = &state.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(crate::metrics::render))
        .route("/v1/tokens", post(create_token).guard(s, Caller::Token(Role::Admin), 16 * KIB).get(list_tokens))
        .route("/v1/tokens/{id}", delete(revoke_token).guard(s, Caller::Token(Role::Admin), KIB))
        .route(
            "/v1/activations",
            post(create_activation).guard(s, Caller::Token(Role::Operator), 64 * KIB).get(list_activations),
        )
        .route("/v1/register", post(register).guard(s, Caller::Anyone, 16 * KIB))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/nodes/{id}", get(show_node).merge(delete(deregister).guard(s, Caller::Token(Role::Operator), KIB)))
        .route("/v1/agent/whoami", get(whoami))
        .route("/v1/audit", get(audit))
        .merge(crate::fleet_api::routes(s))
        .merge(crate::command_api::routes(s))
        .merge(crate::install_api::routes())
        .merge(crate::automation_api::routes(s))
        .merge(crate::association_api::routes(s))
        // A backstop: every route with a body has its own, smaller limit.
        .layer(axum::extract::DefaultBodyLimit::max(16 * MIB))
        .layer(axum::middleware::from_fn(crate::intake::json_errors))
        .route_layer(axum::middleware::from_fn_with_state(metrics, crate::metrics::track))
        .with_state(state)
}

async fn create_token(State(s): State<AppState>, op: Operator, Json(req): Json<TokenCreate>) -> ApiResult<Json<Token>> {
    op.require(Role::Admin)?;
    op.require_unscoped("manage tokens")?;
    tend_model::names::object_name("token", &req.name).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    if let Some(sc) = &req.scope {
        if parse_scope(sc).is_none() {
            return Err(fail(StatusCode::BAD_REQUEST, format!("scope {sc:?} is not of the form tag:key=value")));
        }
    }
    let id = format!("tok-{}", random_hex(6).map_err(internal)?);
    let secret = format!("tend_{}", random_hex(24).map_err(internal)?);
    let at = s
        .store
        .create_token(&id, &req.name, req.role, req.scope.as_deref(), &sha256_hex(secret.as_bytes()))
        .await
        .map_err(internal)?;
    let detail = serde_json::json!({ "id": id, "name": req.name, "role": req.role, "scope": req.scope });
    s.store.audit(&op.actor(), "token.create", &detail).await.map_err(internal)?;
    Ok(Json(Token {
        id,
        name: req.name,
        role: req.role,
        scope: req.scope,
        token: Some(secret),
        created_at: at,
        revoked_at: None,
    }))
}

async fn list_tokens(State(s): State<AppState>, op: Operator) -> ApiResult<Json<Vec<Token>>> {
    op.require(Role::Admin)?;
    Ok(Json(s.store.list_tokens().await.map_err(internal)?))
}

async fn revoke_token(State(s): State<AppState>, op: Operator, Path(id): Path<String>) -> ApiResult<StatusCode> {
    op.require(Role::Admin)?;
    op.require_unscoped("manage tokens")?;
    if !s.store.revoke_token(&id).await.map_err(internal)? {
        return Err(fail(StatusCode::NOT_FOUND, format!("no active token {id}")));
    }
    s.store.audit(&op.actor(), "token.revoke", &serde_json::json!({ "id": id })).await.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_activation(
    State(s): State<AppState>,
    op: Operator,
    Json(req): Json<ActivationCreate>,
) -> ApiResult<Json<Activation>> {
    op.require(Role::Operator)?;
    if !op.in_scope(&req.tags) {
        return Err(fail(
            StatusCode::FORBIDDEN,
            format!(
                "token `{}` is scoped to {}: activations must carry that tag",
                op.0.name,
                op.0.scope.as_deref().unwrap_or("")
            ),
        ));
    }
    tend_model::names::tags(&req.tags).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    if req.limit == 0 || req.expires_in == 0 {
        return Err(fail(StatusCode::BAD_REQUEST, "an activation needs a limit and an expiry above zero"));
    }
    let id = format!("act-{}", random_hex(6).map_err(internal)?);
    let code = random_hex(16).map_err(internal)?;
    let expires = SystemTime::now() + Duration::from_secs(req.expires_in.min(10 * 365 * 86_400));
    let expires_at = humantime::format_rfc3339_seconds(expires).to_string();
    let mut act = s
        .store
        .create_activation(&id, &sha256_hex(code.as_bytes()), &req.tags, req.limit, &expires_at, &op.actor())
        .await
        .map_err(internal)?;
    let detail = serde_json::json!({ "id": id, "tags": req.tags, "limit": req.limit, "expires_at": expires_at });
    s.store.audit(&op.actor(), "activation.create", &detail).await.map_err(internal)?;
    act.code = Some(code);
    Ok(Json(act))
}

async fn list_activations(State(s): State<AppState>, op: Operator) -> ApiResult<Json<Vec<Activation>>> {
    op.require(Role::Viewer)?;
    let all = s.store.list_activations().await.map_err(internal)?;
    Ok(Json(all.into_iter().filter(|a| op.in_scope(&a.tags)).collect()))
}

async fn register(State(s): State<AppState>, Json(req): Json<RegisterRequest>) -> ApiResult<Json<RegisterResponse>> {
    // Checked before anything is looked up or written.
    tend_model::names::hostname(&req.hostname).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    tend_model::names::tags(&req.tags).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let id_ok = req.activation_id.len() <= 64
        && req.activation_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && req.activation_code.len() <= 128;
    if !id_ok {
        s.metrics.refused("register_malformed");
        return Err(fail(
            StatusCode::FORBIDDEN,
            "registration refused: unknown activation id or wrong activation code",
        ));
    }
    let node_id = format!("n-{}", random_hex(8).map_err(internal)?);
    let (cert_pem, key_fp) = s
        .pki
        .sign_agent(&req.csr_pem, &node_id)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("invalid certificate signing request: {e}")))?;
    let cert_der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
        .map(|c: rustls_pki_types::CertificateDer| sha256_hex(&c))
        .map_err(internal)?;
    let new = NewNode {
        id: node_id.clone(),
        hostname: req.hostname.clone(),
        tags: req.tags.clone(),
        key_fingerprint: key_fp,
        cert_fingerprint: cert_der,
    };
    let refused = |msg: &str| fail(StatusCode::FORBIDDEN, format!("registration refused: {msg}"));
    let outcome = s
        .store
        .register(&req.activation_id, &sha256_hex(req.activation_code.trim().as_bytes()), &new)
        .await
        .map_err(internal)?;
    let detail = serde_json::json!({ "activation": req.activation_id, "hostname": req.hostname });
    match outcome {
        Ok(tags) => {
            let detail = serde_json::json!({ "node": node_id, "hostname": req.hostname, "tags": tags, "activation": req.activation_id });
            s.store.audit(&format!("node:{node_id}"), "node.register", &detail).await.map_err(internal)?;
            Ok(Json(RegisterResponse { node_id, cert_pem, ca_pem: s.pki.ca_pem.clone() }))
        }
        Err(why) => {
            // Anonymous: one entry per kind of refusal a minute, with the count left out.
            let action = format!("node.register.refused.{why:?}");
            if let Some(skipped) = s.refusals.admit(&action) {
                let mut detail = detail;
                detail["refused_since_last_entry"] = skipped.into();
                s.store.audit("anonymous", &action, &detail).await.map_err(internal)?;
            }
            Err(match why {
                RegisterRefusal::UnknownActivation | RegisterRefusal::WrongCode => {
                    refused("unknown activation id or wrong activation code")
                }
                RegisterRefusal::Expired => refused("the activation has expired"),
                RegisterRefusal::LimitReached => refused("the activation's registration limit is reached"),
                RegisterRefusal::KeyAlreadyRegistered => {
                    refused("this key is already registered (a replayed request?); make a new key pair")
                }
            })
        }
    }
}

async fn list_nodes(State(s): State<AppState>, op: Operator) -> ApiResult<Json<Vec<Node>>> {
    op.require(Role::Viewer)?;
    let all = s.store.list_nodes().await.map_err(internal)?;
    Ok(Json(all.into_iter().filter(|n| op.in_scope(&n.tags)).collect()))
}

async fn show_node(State(s): State<AppState>, op: Operator, Path(id): Path<String>) -> ApiResult<Json<Node>> {
    op.require(Role::Viewer)?;
    match s.store.node(&id).await.map_err(internal)? {
        Some(mut n) if op.in_scope(&n.tags) => {
            n.facts = s.store.facts(&id).await.map_err(internal)?;
            n.last_report = s
                .store
                .reports(Some(&id), 1)
                .await
                .map_err(internal)?
                .first()
                .and_then(|(_, _, r)| serde_json::from_str(r).ok());
            Ok(Json(n))
        }
        _ => Err(fail(StatusCode::NOT_FOUND, format!("no node {id}"))),
    }
}

async fn deregister(State(s): State<AppState>, op: Operator, Path(id): Path<String>) -> ApiResult<StatusCode> {
    op.require(Role::Operator)?;
    let node = s.store.node(&id).await.map_err(internal)?;
    match node {
        Some(n) if op.in_scope(&n.tags) && n.deregistered_at.is_none() => {}
        _ => return Err(fail(StatusCode::NOT_FOUND, format!("no registered node {id}"))),
    }
    s.store.deregister(&id).await.map_err(internal)?;
    s.store.audit(&op.actor(), "node.deregister", &serde_json::json!({ "node": id })).await.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn whoami(State(s): State<AppState>, Agent(node): Agent) -> ApiResult<Json<Node>> {
    s.store.touch_node(&node.id).await.map_err(internal)?;
    Ok(Json(node))
}

async fn audit(State(s): State<AppState>, op: Operator) -> ApiResult<Json<Vec<AuditEntry>>> {
    op.require(Role::Admin)?;
    Ok(Json(s.store.audit_log(1000).await.map_err(internal)?))
}
