//! The JSON shapes of the server's API, shared by the server, the `tend` CLI
//! and the agent. Scripts depend on some of them (see the issue contracts):
//! extend, don't change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Operator roles, from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("{s:?} is not a role (admin, operator, viewer)")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivationCreate {
    #[serde(default)]
    pub tags: Tags,
    /// How many hosts may register with it.
    pub limit: u32,
    /// Seconds until it expires.
    pub expires_in: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activation {
    pub id: String,
    /// Only returned when the activation is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub tags: Tags,
    pub limit: u32,
    pub used: u32,
    pub expires_at: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenCreate {
    pub name: String,
    pub role: Role,
    /// `tag:key=value`: the token acts only on nodes with that tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The secret: only returned when the token is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// What an agent sends to register: a CSR made from a key that never leaves the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub activation_id: String,
    pub activation_code: String,
    pub csr_pem: String,
    pub hostname: String,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub node_id: String,
    pub cert_pem: String,
    pub ca_pem: String,
}

/// The last run of a node, as `nodes list` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LastRun {
    pub status: String,
    pub changed: u64,
    pub failed: u64,
    pub cached: bool,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub hostname: String,
    pub tags: Tags,
    pub registered_at: String,
    pub last_seen: Option<String>,
    pub last_run: Option<LastRun>,
    /// Changes the node's last audit (an association in audit mode) found
    /// pending, not repaired: Puppet's `noop_pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<String>,
    /// `node show` only: the facts the agent last uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<serde_json::Value>,
    /// `node show` only: the last report, per resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report: Option<serde_json::Value>,
}

/// An error from the API: a message meant for a person.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

impl ApiError {
    /// The message in an error response's body (the body itself when it is
    /// not an `ApiError`).
    pub fn message_of(body: &[u8]) -> String {
        serde_json::from_slice::<ApiError>(body)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned())
    }
}

/// An audit log entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
}

/// A stored recipe version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipeVersion {
    pub name: String,
    pub version: String,
    pub created_at: String,
    pub files: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssignmentCreate {
    /// `NAME` (the latest version at each fetch) or `NAME@VERSION`.
    pub recipe: String,
    /// `tag:key=value` or node ids; a node matching any of them gets the recipe.
    pub targets: Vec<String>,
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub id: String,
    pub recipe: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub targets: Vec<String>,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub created_at: String,
}

/// One recipe assigned to a node, with everything needed to converge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignedRecipe {
    pub assignment: String,
    pub version: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub bundle: crate::bundle::Bundle,
}

/// What an agent fetches: its resolved recipe set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentRecipes {
    pub recipes: Vec<AssignedRecipe>,
}

/// True if a node with this id and these tags is one of the targets.
pub fn matches_targets(targets: &[String], node_id: &str, tags: &Tags) -> bool {
    targets.iter().any(|t| match t.strip_prefix("tag:") {
        // `tag:a=b,c=d`: every tag must match.
        Some(kvs) => kvs.split(',').all(|kv| match kv.split_once('=') {
            Some((k, v)) => tags.get(k.trim()).is_some_and(|x| x == v.trim()),
            None => false,
        }),
        None => t == node_id,
    })
}
