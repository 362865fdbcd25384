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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<String>,
}

/// An error from the API: a message meant for a person.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

/// An audit log entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
}
