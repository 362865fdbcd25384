//! Who is asking: an operator with a bearer token (role and optional tag
//! scope), or an agent with its client certificate.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use tend_model::wire::{Node, Role, Tags};

use crate::api::{ApiResult, AppState, fail};
use crate::pki::sha256_hex;
use crate::store::TokenRecord;
use crate::tls::PeerCert;

/// An operator, authenticated by token.
#[derive(Clone)]
pub struct Operator(pub TokenRecord);

impl Operator {
    /// Refuses unless the token has at least `role`.
    pub fn require(&self, role: Role) -> ApiResult<()> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(fail(
                StatusCode::FORBIDDEN,
                format!("this needs the {role} role; token `{}` is {}", self.0.name, self.0.role),
            ))
        }
    }

    /// Refuses scoped tokens for fleet-wide actions.
    pub fn require_unscoped(&self, what: &str) -> ApiResult<()> {
        match &self.0.scope {
            None => Ok(()),
            Some(sc) => {
                Err(fail(StatusCode::FORBIDDEN, format!("token `{}` is scoped to {sc} and cannot {what}", self.0.name)))
            }
        }
    }

    /// True if the token may act on something with these tags.
    pub fn in_scope(&self, tags: &Tags) -> bool {
        match self.0.scope.as_deref().and_then(parse_scope) {
            None => true,
            Some((k, v)) => tags.get(k).is_some_and(|x| x == v),
        }
    }

    /// Refuses targets outside a scoped token's scope: a tag target must be
    /// the scope's own tag, and a node id a node inside the scope.
    pub fn check_targets(&self, targets: &[String], nodes: &[Node]) -> ApiResult<()> {
        let Some((k, v)) = self.0.scope.as_deref().and_then(parse_scope) else { return Ok(()) };
        for t in targets {
            let ok = match t.strip_prefix("tag:") {
                // Every tag of a combined target (`tag:a=b,c=d`) narrows it;
                // one of them must be the scope.
                Some(kvs) => kvs.split(',').filter_map(|kv| kv.split_once('=')).any(|(tk, tv)| tk == k && tv == v),
                None => nodes.iter().any(|n| &n.id == t && self.in_scope(&n.tags)),
            };
            if !ok {
                return Err(fail(
                    StatusCode::FORBIDDEN,
                    format!("token `{}` is scoped to tag:{k}={v} and cannot target {t}", self.0.name),
                ));
            }
        }
        Ok(())
    }

    /// The token something stored (an execution, an association) acts as:
    /// the one that created it, with the role and scope it had then.
    pub fn acting_as(id: &str, name: &str, role: &str, scope: Option<&str>) -> Operator {
        let role = match role {
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            _ => Role::Viewer,
        };
        Operator(TokenRecord {
            id: id.to_string(),
            name: name.to_string(),
            role,
            scope: scope.map(str::to_string),
            revoked: false,
        })
    }

    pub fn actor(&self) -> String {
        format!("token:{}", self.0.name)
    }
}

/// `tag:key=value` → (key, value).
pub fn parse_scope(s: &str) -> Option<(&str, &str)> {
    s.strip_prefix("tag:").and_then(|kv| kv.split_once('='))
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = (StatusCode, axum::Json<tend_model::wire::ApiError>);

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Already authenticated by the route's guard (crate::intake).
        if let Some(op) = parts.extensions.remove::<Operator>() {
            return Ok(op);
        }
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(secret) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(fail(StatusCode::UNAUTHORIZED, "an API token is required (Authorization: Bearer TOKEN)"));
        };
        let record =
            state.store.token_by_hash(&sha256_hex(secret.trim().as_bytes())).await.map_err(crate::api::internal)?;
        match record {
            Some(t) if !t.revoked => Ok(Operator(t)),
            Some(_) => Err(fail(StatusCode::UNAUTHORIZED, "this API token was revoked")),
            None => Err(fail(StatusCode::UNAUTHORIZED, "unknown API token")),
        }
    }
}

/// An agent, authenticated by its client certificate.
#[derive(Clone)]
pub struct Agent(pub Node);

impl FromRequestParts<AppState> for Agent {
    type Rejection = (StatusCode, axum::Json<tend_model::wire::ApiError>);

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(agent) = parts.extensions.remove::<Agent>() {
            return Ok(agent);
        }
        let Some(fp) = parts.extensions.get::<PeerCert>().and_then(|p| p.0.clone()) else {
            return Err(fail(StatusCode::UNAUTHORIZED, "agents must present their client certificate"));
        };
        match state.store.node_by_cert(&fp).await.map_err(crate::api::internal)? {
            Some(node) => Ok(Agent(node)),
            None => Err(fail(StatusCode::FORBIDDEN, "this certificate belongs to no registered node (deregistered?)")),
        }
    }
}
