use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A command, run through `/bin/sh -c`, guarded so that it runs only when needed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecProps {
    /// The command; defaults to the resource's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Skip the command when this path exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creates: Option<String>,
    /// Run only if this read-only guard command exits 0. Evaluated in dry-run too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onlyif: Option<String>,
    /// Run only if this read-only guard command exits non-zero. Evaluated in dry-run too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Run as this user (name or uid), with its groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Seconds before the command's whole process group is killed.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Run only when notified by a resource that changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refreshonly: bool,
    /// Exit codes that count as success.
    #[serde(default = "default_returns")]
    pub returns: Vec<i32>,
}

fn default_timeout() -> u64 {
    300
}

fn default_returns() -> Vec<i32> {
    vec![0]
}

impl ExecProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.timeout == 0 {
            out.push(("timeout", "timeout must be at least 1 second".to_string()));
        }
        if let Some(c) = &self.creates {
            if let Some(e) = super::check_absolute_path(c) {
                out.push(("creates", e));
            }
        }
        if let Some(c) = &self.cwd {
            if let Some(e) = super::check_absolute_path(c) {
                out.push(("cwd", e));
            }
        }
        if self.returns.is_empty() {
            out.push(("returns", "returns needs at least one exit code".to_string()));
        }
        out
    }
}
