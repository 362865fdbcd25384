//! Associations and compliance on the wire (`tend association`, `tend compliance`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/associations`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AssociationCreate {
    #[serde(default)]
    pub document: Option<String>,
    #[serde(default)]
    pub recipe: Option<String>,
    pub targets: Vec<String>,
    pub schedule: String,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    #[serde(default)]
    pub raw_params: Vec<(String, String)>,
    #[serde(default)]
    pub max_concurrency: Option<String>,
    #[serde(default)]
    pub max_errors: Option<String>,
    #[serde(default)]
    pub apply_only_at_cron_interval: bool,
    /// A recipe association: `apply` (default) converges; `audit` only
    /// checks (a dry-run on schedule) and reports drift as NonCompliant.
    #[serde(default)]
    pub mode: Option<String>,
}

/// One run of an association: the slot it ran for and its command.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RunView {
    pub slot: String,
    pub trigger: String,
    pub command_id: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub skipped: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AssociationView {
    pub id: String,
    pub document: Option<String>,
    pub recipe: Option<String>,
    pub targets: Vec<String>,
    pub schedule: String,
    pub timezone: Option<String>,
    pub params: serde_json::Map<String, Value>,
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    pub apply_only_at_cron_interval: bool,
    /// `apply` or `audit` (recipe associations).
    #[serde(default)]
    pub mode: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub next_run: Option<String>,
    pub last_run: Option<RunView>,
    pub runs: Vec<RunView>,
}

/// An association's status on a node (now, or one event of its history).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ComplianceView {
    pub association: String,
    pub node: String,
    #[serde(default)]
    pub hostname: String,
    pub status: String,
    pub at: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub changes: Vec<String>,
}
