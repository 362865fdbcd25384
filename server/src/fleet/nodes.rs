//! Tokens, activations, registration (which signs the agent's
//! certificate), nodes and the audit log: what the fleet's routes call.
//! Every change is audited.

use std::time::{Duration, SystemTime};

use tend_model::wire::{
    Activation, ActivationCreate, AuditEntry, Node, RegisterRequest, RegisterResponse, Token, TokenCreate,
};

use super::Service;
use crate::auth::{Operator, parse_scope};
use crate::error::{Error, Result};
use crate::pki::{random_hex, sha256_hex};
use crate::store::{NewNode, RegisterRefusal, decode};

pub async fn create_token(s: &Service, op: &Operator, req: TokenCreate) -> Result<Token> {
    op.require_unscoped("manage tokens")?;
    tend_model::names::object_name("token", &req.name).map_err(Error::bad_request)?;
    if let Some(sc) = &req.scope {
        if parse_scope(sc).is_none() {
            return Err(Error::bad_request(format!("scope {sc:?} is not of the form tag:key=value")));
        }
    }
    let id = format!("tok-{}", random_hex(6)?);
    let secret = format!("tend_{}", random_hex(24)?);
    let at =
        s.store.create_token(&id, &req.name, req.role, req.scope.as_deref(), &sha256_hex(secret.as_bytes())).await?;
    let detail = serde_json::json!({ "id": id, "name": req.name, "role": req.role, "scope": req.scope });
    s.store.audit(&op.actor(), "token.create", &detail).await?;
    Ok(Token {
        id,
        name: req.name,
        role: req.role,
        scope: req.scope,
        token: Some(secret),
        created_at: at,
        revoked_at: None,
    })
}

pub async fn list_tokens(s: &Service) -> Result<Vec<Token>> {
    Ok(s.store.list_tokens().await?)
}

pub async fn revoke_token(s: &Service, op: &Operator, id: &str) -> Result<()> {
    op.require_unscoped("manage tokens")?;
    if !s.store.revoke_token(id).await? {
        return Err(Error::not_found(format!("no active token {id}")));
    }
    s.store.audit(&op.actor(), "token.revoke", &serde_json::json!({ "id": id })).await?;
    Ok(())
}

pub async fn create_activation(s: &Service, op: &Operator, req: ActivationCreate) -> Result<Activation> {
    if !op.in_scope(&req.tags) {
        return Err(Error::forbidden(format!(
            "token `{}` is scoped to {}: activations must carry that tag",
            op.0.name,
            op.0.scope.as_deref().unwrap_or("")
        )));
    }
    tend_model::names::tags(&req.tags).map_err(Error::bad_request)?;
    if req.limit == 0 || req.expires_in == 0 {
        return Err(Error::bad_request("an activation needs a limit and an expiry above zero"));
    }
    let id = format!("act-{}", random_hex(6)?);
    let code = random_hex(16)?;
    let expires = SystemTime::now() + Duration::from_secs(req.expires_in.min(10 * 365 * 86_400));
    let expires_at = humantime::format_rfc3339_seconds(expires).to_string();
    let mut act = s
        .store
        .create_activation(&id, &sha256_hex(code.as_bytes()), &req.tags, req.limit, &expires_at, &op.actor())
        .await?;
    let detail = serde_json::json!({ "id": id, "tags": req.tags, "limit": req.limit, "expires_at": expires_at });
    s.store.audit(&op.actor(), "activation.create", &detail).await?;
    act.code = Some(code);
    Ok(act)
}

pub async fn list_activations(s: &Service, op: &Operator) -> Result<Vec<Activation>> {
    let all = s.store.list_activations().await?;
    Ok(all.into_iter().filter(|a| op.in_scope(&a.tags)).collect())
}

pub async fn register(s: &Service, req: RegisterRequest) -> Result<RegisterResponse> {
    // Checked before anything is looked up or written.
    tend_model::names::hostname(&req.hostname).map_err(Error::bad_request)?;
    tend_model::names::tags(&req.tags).map_err(Error::bad_request)?;
    let id_ok = req.activation_id.len() <= 64
        && req.activation_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && req.activation_code.len() <= 128;
    if !id_ok {
        s.metrics.refused("register_malformed");
        return Err(Error::forbidden("registration refused: unknown activation id or wrong activation code"));
    }
    let node_id = format!("n-{}", random_hex(8)?);
    let (cert_pem, key_fp) = s
        .pki
        .sign_agent(&req.csr_pem, &node_id)
        .map_err(|e| Error::bad_request(format!("invalid certificate signing request: {e}")))?;
    let cert_der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
        .map(|c: rustls_pki_types::CertificateDer| sha256_hex(&c))
        .map_err(Error::internal)?;
    let new = NewNode {
        id: node_id.clone(),
        hostname: req.hostname.clone(),
        tags: req.tags.clone(),
        key_fingerprint: key_fp,
        cert_fingerprint: cert_der,
    };
    let refused = |msg: &str| Error::forbidden(format!("registration refused: {msg}"));
    let outcome =
        s.store.register(&req.activation_id, &sha256_hex(req.activation_code.trim().as_bytes()), &new).await?;
    let detail = serde_json::json!({ "activation": req.activation_id, "hostname": req.hostname });
    match outcome {
        Ok(tags) => {
            let detail = serde_json::json!({ "node": node_id, "hostname": req.hostname, "tags": tags, "activation": req.activation_id });
            s.store.audit(&format!("node:{node_id}"), "node.register", &detail).await?;
            Ok(RegisterResponse { node_id, cert_pem, ca_pem: s.pki.ca_pem.clone() })
        }
        Err(why) => {
            // Anonymous: one entry per kind of refusal a minute, with the count left out.
            let action = format!("node.register.refused.{why:?}");
            if let Some(skipped) = s.refusals.admit(&action) {
                let mut detail = detail;
                detail["refused_since_last_entry"] = skipped.into();
                s.store.audit("anonymous", &action, &detail).await?;
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

pub async fn list_nodes(s: &Service, op: &Operator) -> Result<Vec<Node>> {
    let all = s.store.list_nodes().await?;
    Ok(all.into_iter().filter(|n| op.in_scope(&n.tags)).collect())
}

pub async fn show_node(s: &Service, op: &Operator, id: &str) -> Result<Node> {
    match s.store.node(id).await? {
        Some(mut n) if op.in_scope(&n.tags) => {
            n.facts = s.store.facts(id).await?;
            n.last_report =
                s.store.reports(Some(id), 1).await?.first().map(|(_, _, r)| decode("report", r)).transpose()?;
            Ok(n)
        }
        _ => Err(Error::not_found(format!("no node {id}"))),
    }
}

pub async fn deregister(s: &Service, op: &Operator, id: &str) -> Result<()> {
    let node = s.store.node(id).await?;
    match node {
        Some(n) if op.in_scope(&n.tags) && n.deregistered_at.is_none() => {}
        _ => return Err(Error::not_found(format!("no registered node {id}"))),
    }
    s.store.deregister(id).await?;
    s.store.audit(&op.actor(), "node.deregister", &serde_json::json!({ "node": id })).await?;
    Ok(())
}

pub async fn whoami(s: &Service, node: Node) -> Result<Node> {
    s.store.touch_node(&node.id).await?;
    Ok(node)
}

pub async fn audit(s: &Service) -> Result<Vec<AuditEntry>> {
    Ok(s.store.audit_log(1000).await?)
}
