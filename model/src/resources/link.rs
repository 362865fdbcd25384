use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A symbolic link at the resource's path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkProps {
    #[serde(default)]
    pub state: Presence,
    /// What the link points to, exactly as `readlink` shows it (relative or absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Replace a regular file (or an empty directory) standing at the path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

impl LinkProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        match (self.state, &self.target) {
            (Presence::Present, None) => vec![("target", "a link needs `target`: what it points to".into())],
            (Presence::Present, Some(t)) if t.is_empty() || t.contains('\0') => {
                vec![("target", "the target must be a non-empty path".into())]
            }
            (Presence::Absent, Some(_)) => {
                vec![("target", "`state: absent` removes the link; it takes no `target`".into())]
            }
            _ => vec![],
        }
    }
}
