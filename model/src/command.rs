//! Run command on the wire: what operators send and see, and what agents
//! receive and answer. Statuses follow AWS SSM Run Command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bundle::Bundle;
use crate::document::{Action, OnFailure, Precondition};

/// One node's invocation of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
pub enum InvocationStatus {
    /// Not yet sent: waiting for a concurrency slot or for the agent to take it.
    Pending,
    /// Sent while the node was not connected: waiting for it to come back.
    Delayed,
    InProgress,
    Success,
    Failed,
    TimedOut,
    Cancelled,
    /// The node did not take the invocation before the delivery timeout.
    DeliveryTimedOut,
    /// The node is deregistered.
    Undeliverable,
}

impl InvocationStatus {
    pub const ALL: [InvocationStatus; 9] = [
        Self::Pending,
        Self::Delayed,
        Self::InProgress,
        Self::Success,
        Self::Failed,
        Self::TimedOut,
        Self::Cancelled,
        Self::DeliveryTimedOut,
        Self::Undeliverable,
    ];

    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Delayed | Self::InProgress)
    }

    /// Counts against `max_errors` (delivery problems do not).
    pub fn is_error(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Delayed => "Delayed",
            Self::InProgress => "InProgress",
            Self::Success => "Success",
            Self::Failed => "Failed",
            Self::TimedOut => "TimedOut",
            Self::Cancelled => "Cancelled",
            Self::DeliveryTimedOut => "DeliveryTimedOut",
            Self::Undeliverable => "Undeliverable",
        }
    }

    pub fn parse(s: &str) -> Option<InvocationStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for InvocationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Inline output kept per stream (characters), as SSM.
pub const INLINE_OUTPUT: usize = 24_000;

/// A limit given as a count or a percentage of the targets (`10`, `10%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Count(u32),
    Percent(u32),
}

impl Limit {
    pub fn parse(s: &str) -> Result<Limit, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not a count or a percentage (10, 10%)");
        match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<u32>() {
                Ok(n) if n <= 100 => Ok(Limit::Percent(n)),
                _ => Err(bad()),
            },
            None => s.parse::<u32>().map(Limit::Count).map_err(|_| bad()),
        }
    }

    /// The count for `targets` targets. A percentage rounds down, but a
    /// concurrency is at least 1 (`at_least_one`).
    pub fn of(self, targets: usize, at_least_one: bool) -> usize {
        let n = match self {
            Limit::Count(n) => n as usize,
            Limit::Percent(p) => targets * p as usize / 100,
        };
        if at_least_one { n.max(1) } else { n }
    }
}

/// `POST /v1/commands`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CommandCreate {
    /// `NAME` or `NAME@VERSION`; a built-in (`RunShellScript`, `ApplyRecipe`) or a pushed document.
    pub document: String,
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    /// `--param k=v` as typed: coerced by the declared type on the server.
    #[serde(default)]
    pub raw_params: Vec<(String, String)>,
    /// `tag:k=v` (several tags joined with `,` must all match) or node ids.
    pub targets: Vec<String>,
    /// `10` or `10%` (default 50).
    #[serde(default)]
    pub max_concurrency: Option<String>,
    /// `0` or `5%` (default 0).
    #[serde(default)]
    pub max_errors: Option<String>,
    /// Overrides every step's timeout (seconds).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Seconds a node may take to receive the invocation (default 600).
    #[serde(default)]
    pub delivery_timeout: Option<u64>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// One invocation as operators see it: the node, and the result its agent
/// reported (the same JSON fields, side by side). Its output is inline,
/// capped at [`INLINE_OUTPUT`] characters (the start is kept).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct InvocationView {
    pub node: String,
    pub hostname: String,
    #[serde(flatten)]
    pub result: InvocationResult,
}

/// A command as operators see it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CommandView {
    pub id: String,
    pub document: String,
    pub status: String,
    pub created_at: String,
    pub created_by: String,
    pub targets: Vec<String>,
    /// Parameters, sensitive ones redacted.
    pub params: serde_json::Map<String, Value>,
    pub max_concurrency: usize,
    pub max_errors: usize,
    pub counts: BTreeMap<String, usize>,
    pub comment: Option<String>,
    #[serde(default)]
    pub invocations: Vec<InvocationView>,
}

/// A step as the agent runs it (parameters already turned into environment).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DeliveredStep {
    pub name: String,
    pub action: Action,
    pub precondition: Option<Precondition>,
    pub timeout: u64,
    pub run: Option<String>,
    /// applyRecipe: the recipe's bundle, version and parameters.
    pub recipe: Option<DeliveredRecipe>,
    /// converge: how; applyRecipe: whether it is a dry-run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converge: Option<ConvergeSpec>,
    pub run_as: Option<String>,
    pub working_directory: Option<String>,
    pub env: BTreeMap<String, String>,
    pub on_failure: OnFailure,
}

/// A converge step as delivered: a real run of the node's assigned set, or
/// a dry-run of it with one recipe's version replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ConvergeSpec {
    pub dry_run: bool,
    /// `RECIPE@VERSION` (dry-run only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DeliveredRecipe {
    pub version: String,
    pub bundle: Bundle,
    pub params: serde_json::Map<String, Value>,
}

/// An invocation handed to an agent.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Delivery {
    /// The deduplication key: an agent runs a command id at most once.
    pub command_id: String,
    pub document: String,
    pub steps: Vec<DeliveredStep>,
    /// `TEND_PARAM_*` and `TEND_COMMAND_ID`.
    pub env: BTreeMap<String, String>,
    /// Values to redact from the output before it leaves the host.
    #[serde(default)]
    pub sensitive: Vec<String>,
}

/// `GET /v1/agent/commands?wait=SECONDS`: new invocations, and commands to cancel.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Poll {
    pub deliveries: Vec<Delivery>,
    pub cancels: Vec<String>,
}

/// `POST /v1/agent/commands/{id}/ack`'s answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AckAnswer {
    /// False when the invocation was cancelled (or timed out) meanwhile: do not run it.
    pub run: bool,
}

/// `POST /v1/agent/commands/{id}/result`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct InvocationResult {
    pub status: InvocationStatus,
    pub exit_code: Option<i32>,
    /// Output, capped by the agent.
    pub stdout: String,
    pub stderr: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub reason: Option<String>,
    #[serde(default)]
    pub reboot: bool,
    /// A converge step's run report (the last one, when there are several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
}

/// A stored document version, as listings show it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DocumentVersion {
    pub name: String,
    pub version: String,
    pub kind: String,
    pub created_at: String,
    #[serde(default)]
    pub builtin: bool,
}

/// The first `max` characters of `s` (on a character boundary), marked when cut.
pub fn head_chars(s: &str, max: usize) -> String {
    if s.len() <= max || s.chars().count() <= max {
        return s.to_string();
    }
    let marker = "\n[…output truncated…]";
    let keep = max.saturating_sub(marker.chars().count());
    let end = s.char_indices().nth(keep).map(|(i, _)| i).unwrap_or(s.len());
    format!("{}{marker}", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_tails() {
        assert_eq!(Limit::parse("10").unwrap().of(100, true), 10);
        assert_eq!(Limit::parse("10%").unwrap().of(5, true), 1);
        assert_eq!(Limit::parse("10%").unwrap().of(5, false), 0);
        assert_eq!(Limit::parse("100%").unwrap().of(7, true), 7);
        assert!(Limit::parse("101%").is_err() && Limit::parse("x").is_err());
        let t = head_chars(&"é".repeat(30_000), INLINE_OUTPUT);
        assert_eq!(t.chars().count(), INLINE_OUTPUT);
        assert!(t.starts_with("éé") && t.ends_with("[…output truncated…]"));
        assert_eq!(head_chars("short", 10), "short");
        assert_eq!(InvocationStatus::parse("DeliveryTimedOut"), Some(InvocationStatus::DeliveryTimedOut));
    }
}
