//! What a request must be before its body is read: who may send it, how
//! large the body may be and how long it may take to arrive.
//!
//! Every route that takes a body declares its [`Caller`] and its body limit
//! where it is mounted (`post(handler).guard(s, Caller::Token(Role::Operator), 64 * KIB)`).
//! The guard then, in this order:
//! 1. authenticates the caller (token and role, or the agent's certificate),
//!    so that nobody without the right role makes the server read a byte of
//!    the body; anonymous requests take one of a few permits instead;
//! 2. refuses a declared `Content-Length` over the limit at once (413);
//! 3. reads the body within the limit and the read deadline (413, 408);
//! 4. hands the handler the buffered body and the authenticated caller.
//!
//! The limits are listed in `docs/limits.md`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use tend_model::wire::Role;
use tokio::sync::Semaphore;

use crate::auth::{Agent, Operator};
use crate::error::{Error, json_error};
use crate::metrics::Metrics;
use crate::store::Store;

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

/// Who may send a request to a route.
#[derive(Debug, Clone, Copy)]
pub enum Caller {
    /// No credentials (registration): takes an anonymous permit.
    Anyone,
    /// A registered agent, by its client certificate.
    Agent,
    /// An operator token with at least this role.
    Token(Role),
}

/// The server-wide settings the guards share.
pub struct Intake {
    /// Requests without credentials being read or handled at once.
    anonymous: Semaphore,
    pub max_anonymous: usize,
    /// The longest a whole request body may take to arrive.
    pub body_timeout: Duration,
}

impl Intake {
    pub fn new(max_anonymous: usize, body_timeout: Duration) -> Arc<Intake> {
        Arc::new(Intake { anonymous: Semaphore::new(max_anonymous), max_anonymous, body_timeout })
    }
}

impl Default for Intake {
    fn default() -> Self {
        Intake { anonymous: Semaphore::new(32), max_anonymous: 32, body_timeout: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Copy)]
struct Policy {
    caller: Caller,
    max_body: usize,
}

/// What every guard needs: the settings, the metrics it counts refusals
/// in, and the store it authenticates callers against.
#[derive(Clone)]
pub struct Gate {
    pub intake: Arc<Intake>,
    pub metrics: Arc<Metrics>,
    pub store: Store,
}

impl FromRef<Gate> for Store {
    fn from_ref(g: &Gate) -> Store {
        g.store.clone()
    }
}

/// Mounts a guard on the methods of a route added so far.
pub trait Guard {
    fn guard(self, gate: &Gate, caller: Caller, max_body: usize) -> Self;
}

impl<S: Clone + Send + Sync + 'static> Guard for MethodRouter<S> {
    fn guard(self, gate: &Gate, caller: Caller, max_body: usize) -> Self {
        self.route_layer(axum::middleware::from_fn_with_state((gate.clone(), Policy { caller, max_body }), check))
    }
}

async fn check(State((s, policy)): State<(Gate, Policy)>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let _permit = match policy.caller {
        Caller::Anyone => match s.intake.anonymous.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => {
                s.metrics.refused("anonymous_inflight");
                return Error::Busy(format!(
                    "too many requests without credentials in flight (limit: http.max_anonymous_inflight = {}); retry shortly",
                    s.intake.max_anonymous
                ))
                .into_response();
            }
        },
        Caller::Agent => match Agent::from_request_parts(&mut parts, &s).await {
            Ok(a) => {
                parts.extensions.insert(a);
                None
            }
            Err(e) => return e.into_response(),
        },
        Caller::Token(role) => match Operator::from_request_parts(&mut parts, &s).await {
            Ok(op) => {
                if let Err(e) = op.require(role) {
                    return e.into_response();
                }
                parts.extensions.insert(op);
                None
            }
            Err(e) => return e.into_response(),
        },
    };
    let route = format!("{} {}", parts.method, parts.uri.path());
    let too_large = |n: Option<u64>| {
        let size = n.map(|n| format!("of {n} bytes ")).unwrap_or_default();
        Error::TooLarge(format!(
            "the request body {size}is over the limit of {} bytes for {route} (limit: http.max_body)",
            policy.max_body
        ))
        .into_response()
    };
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = declared
        && n > policy.max_body as u64
    {
        s.metrics.refused("body_too_large");
        return too_large(Some(n));
    }
    let bytes = match tokio::time::timeout(s.intake.body_timeout, axum::body::to_bytes(body, policy.max_body)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            // Over the limit, or the connection broke mid-body.
            if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
                s.metrics.refused("body_too_large");
                return too_large(None);
            }
            return Error::bad_request(format!("reading the request body: {e}")).into_response();
        }
        Err(_) => {
            s.metrics.refused("body_timeout");
            return Error::BodyTimeout(format!(
                "the request body did not arrive within {} s (limit: http.body_timeout)",
                s.intake.body_timeout.as_secs()
            ))
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Answers every error the API gives as `{"error": …}`: axum's own
/// rejections (malformed JSON, a wrong path, a wrong method) are plain text.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * KIB).await.unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_string();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_lowercase();
    }
    let mut out = json_error(status, message);
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
