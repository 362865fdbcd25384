//! The properties of each resource type, one file per type. The agent holds
//! their behaviour; this crate holds their shape and their static checks.

pub mod directory;
pub mod exec;
pub mod file;
pub mod template;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether a file-like resource should exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    #[default]
    Present,
    Absent,
}

/// Owner, group and mode of a file-like resource, as the agent applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Ownership {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<crate::mode::Mode>,
}

/// Checks that a resource name is an absolute, normalised path.
pub fn check_absolute_path(name: &str) -> Option<String> {
    let p = std::path::Path::new(name);
    if !p.is_absolute() {
        return Some(format!("{name:?} is not an absolute path"));
    }
    if name.len() > 1 && name.ends_with('/') {
        return Some(format!("{name:?} must not end with '/'"));
    }
    if p.components().any(|c| matches!(c, std::path::Component::ParentDir | std::path::Component::CurDir)) {
        return Some(format!("{name:?} must not contain '.' or '..' components"));
    }
    None
}
