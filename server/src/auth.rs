//! Who is asking: an operator with a bearer token (role and optional tag
//! scope), or an agent with its client certificate.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use tend_model::wire::{Node, Role, Tags};

use crate::error::{Error, Result};
use crate::pki::sha256_hex;
use crate::store::{Store, StoreError, TokenRecord};
use crate::tls::PeerCert;

/// An operator, authenticated by token.
#[derive(Clone)]
pub struct Operator(pub TokenRecord);

impl Operator {
    /// Refuses unless the token has at least `role`.
    pub fn require(&self, role: Role) -> Result<()> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(Error::forbidden(format!("this needs the {role} role; token `{}` is {}", self.0.name, self.0.role)))
        }
    }

    /// Refuses scoped tokens for fleet-wide actions.
    pub fn require_unscoped(&self, what: &str) -> Result<()> {
        match &self.0.scope {
            None => Ok(()),
            Some(sc) => Err(Error::forbidden(format!("token `{}` is scoped to {sc} and cannot {what}", self.0.name))),
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
    pub fn check_targets(&self, targets: &[String], nodes: &[Node]) -> Result<()> {
        let Some((k, v)) = self.0.scope.as_deref().and_then(parse_scope) else { return Ok(()) };
        for t in targets {
            let ok = match t.strip_prefix("tag:") {
                // Every tag of a combined target (`tag:a=b,c=d`) narrows it;
                // one of them must be the scope.
                Some(kvs) => kvs.split(',').filter_map(|kv| kv.split_once('=')).any(|(tk, tv)| tk == k && tv == v),
                None => nodes.iter().any(|n| &n.id == t && self.in_scope(&n.tags)),
            };
            if !ok {
                return Err(Error::forbidden(format!(
                    "token `{}` is scoped to tag:{k}={v} and cannot target {t}",
                    self.0.name
                )));
            }
        }
        Ok(())
    }

    /// The token something stored (an execution, an association) acts as:
    /// the one that created it, with the role and scope it had then. The
    /// role is parsed as the store parses every role: an unknown one is
    /// corrupt data, never a lesser role.
    pub fn acting_as(
        id: &str,
        name: &str,
        role: &str,
        scope: Option<&str>,
    ) -> std::result::Result<Operator, StoreError> {
        let role = role.parse::<Role>().map_err(|e| StoreError::Corrupt(format!("role of token {name}: {e}")))?;
        Ok(Operator(TokenRecord {
            id: id.to_string(),
            name: name.to_string(),
            role,
            scope: scope.map(str::to_string),
            revoked: false,
        }))
    }

    pub fn actor(&self) -> String {
        format!("token:{}", self.0.name)
    }
}

/// `tag:key=value` → (key, value).
pub fn parse_scope(s: &str) -> Option<(&str, &str)> {
    s.strip_prefix("tag:").and_then(|kv| kv.split_once('='))
}

impl<S: Send + Sync> FromRequestParts<S> for Operator
where
    Store: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        // Already authenticated by the route's guard (crate::intake).
        if let Some(op) = parts.extensions.remove::<Operator>() {
            return Ok(op);
        }
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(secret) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(Error::unauthenticated("an API token is required (Authorization: Bearer TOKEN)"));
        };
        let record = Store::from_ref(state).token_by_hash(&sha256_hex(secret.trim().as_bytes())).await?;
        match record {
            Some(t) if !t.revoked => Ok(Operator(t)),
            Some(_) => Err(Error::unauthenticated("this API token was revoked")),
            None => Err(Error::unauthenticated("unknown API token")),
        }
    }
}

/// An agent, authenticated by its client certificate.
#[derive(Clone)]
pub struct Agent(pub Node);

impl<S: Send + Sync> FromRequestParts<S> for Agent
where
    Store: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        if let Some(agent) = parts.extensions.remove::<Agent>() {
            return Ok(agent);
        }
        let Some(fp) = parts.extensions.get::<PeerCert>().and_then(|p| p.0.clone()) else {
            return Err(Error::unauthenticated("agents must present their client certificate"));
        };
        match Store::from_ref(state).node_by_cert(&fp).await? {
            Some(node) => Ok(Agent(node)),
            None => Err(Error::forbidden("this certificate belongs to no registered node (deregistered?)")),
        }
    }
}
