//! What operators and agents ask of run command besides starting one
//! (that is [`super::start`]): push and list documents; list, show, read
//! the output of and cancel commands; an agent's acknowledgement and result.

use tend_model::command::{AckAnswer, CommandView, DocumentVersion, InvocationResult, InvocationStatus};
use tend_model::document::{self, Document};
use tend_model::wire::Node;

use super::{Service, find_document, split_spec, view};
use crate::auth::Operator;
use crate::error::{Error, Result};
use crate::pki::sha256_hex;

/// Stores a pushed command or automation document (the kind decides the
/// parser; located errors when it does not parse). True when the version is new.
pub async fn push_document(s: &Service, op: &Operator, file: &str, text: &str) -> Result<(bool, DocumentVersion)> {
    op.require_unscoped("push documents")?;
    let automation = tend_model::automation::is_automation(text);
    let parsed = if automation {
        tend_model::automation::Automation::parse(file, text).map(|a| a.name)
    } else {
        Document::parse(file, text).map(|d| d.name)
    };
    let name = match parsed {
        Ok(n) => n,
        Err(d) => return Err(Error::Invalid(Box::new(d))),
    };
    let kind = if automation { "Automation" } else { "Command" }.to_string();
    if document::builtin(&name).is_some() {
        return Err(Error::conflict(format!("{name} is a built-in document; choose another name")));
    }
    let version = sha256_hex(text.as_bytes())[..16].to_string();
    let new = s.store.put_document(&name, &version, &kind, text, &op.actor()).await?;
    if new {
        let detail = serde_json::json!({ "name": name, "version": version, "kind": kind });
        s.store.audit(&op.actor(), "document.push", &detail).await?;
    }
    let (_, _, _, at) = s.store.document(&name, Some(&version)).await?.ok_or_else(|| Error::internal("just stored"))?;
    Ok((new, DocumentVersion { name, version, kind, created_at: at, builtin: false }))
}

/// The built-in documents, then every stored version.
pub async fn list_documents(s: &Service) -> Result<Vec<DocumentVersion>> {
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
    for (name, version, kind, created_at) in s.store.list_documents().await? {
        out.push(DocumentVersion { name, version, kind, created_at, builtin: false });
    }
    Ok(out)
}

/// One document (`NAME` or `NAME@VERSION`) with its text.
pub async fn show_document(s: &Service, spec: &str) -> Result<serde_json::Value> {
    let (name, version) = split_spec(spec);
    let (version, kind, text, at) = find_document(&s.store, name, version).await?;
    Ok(serde_json::json!({ "name": name, "version": version, "kind": kind, "created_at": at, "text": text }))
}

/// Scoped tokens see commands that touch only nodes inside their scope.
async fn visible(s: &Service, op: &Operator, id: &str) -> Result<()> {
    if op.0.scope.is_none() {
        return Ok(());
    }
    let nodes = s.store.list_nodes().await?;
    for inv in s.store.invocations(id).await? {
        let inside = nodes.iter().any(|n| n.id == inv.node_id && op.in_scope(&n.tags));
        if !inside {
            return Err(Error::not_found("no such command"));
        }
    }
    Ok(())
}

/// The latest commands `op` may see, without their invocations.
pub async fn list_commands(s: &Service, op: &Operator) -> Result<Vec<CommandView>> {
    let mut out = Vec::new();
    for c in s.store.list_commands(100).await? {
        if visible(s, op, &c.id).await.is_ok() {
            out.push(view(s, &c.id, false).await?);
        }
    }
    Ok(out)
}

/// One command with its invocations.
pub async fn show_command(s: &Service, op: &Operator, id: &str) -> Result<CommandView> {
    visible(s, op, id).await?;
    view(s, id, true).await
}

/// One invocation's full output stream (`stdout` or `stderr`).
pub async fn output(s: &Service, op: &Operator, id: &str, node: &str, stream: Option<&str>) -> Result<String> {
    visible(s, op, id).await?;
    let stderr = match stream {
        None | Some("stdout") => false,
        Some("stderr") => true,
        Some(other) => return Err(Error::bad_request(format!("stream {other:?}: stdout or stderr"))),
    };
    s.store
        .invocation_output(id, node, stderr)
        .await?
        .ok_or_else(|| Error::not_found(format!("command {id} has no invocation on {node}")))
}

/// Cancels a command: what has not started never will, and the agents
/// running it are told at once.
pub async fn cancel(s: &Service, op: &Operator, id: &str) -> Result<CommandView> {
    visible(s, op, id).await?;
    let c = s.store.command(id).await?.ok_or_else(|| Error::not_found("no such command"))?;
    if c.finished_at.is_none() {
        s.store.request_cancel(id).await?;
        s.store.audit(&op.actor(), "command.cancel", &serde_json::json!({ "id": id })).await?;
        s.dispatcher.advance(id).await?;
        for inv in s.store.invocations(id).await? {
            if inv.status == InvocationStatus::InProgress {
                s.dispatcher.wake(&inv.node_id);
            }
        }
    }
    view(s, id, true).await
}

/// An agent takes a delivered invocation: it runs only if still wanted.
pub async fn ack(s: &Service, node: &Node, id: &str) -> Result<AckAnswer> {
    match s.store.ack_invocation(id, &node.id).await? {
        None => Err(Error::not_found(format!("command {id} has no invocation on this node"))),
        Some(st) => Ok(AckAnswer { run: st == InvocationStatus::InProgress }),
    }
}

/// An agent's final result for an invocation (stored once; a resend is a no-op).
pub async fn result(s: &Service, node: &Node, id: &str, res: &InvocationResult) -> Result<()> {
    if !res.status.is_terminal() {
        return Err(Error::bad_request(format!("{} is not a final status", res.status)));
    }
    if s.store.finish_invocation(id, &node.id, res, s.output_cap).await? {
        s.dispatcher.touch(id);
    }
    Ok(())
}
