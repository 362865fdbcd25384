use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A file with literal content, or copied from a file beside the recipe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileProps {
    #[serde(default)]
    pub state: Presence,
    /// The exact content (rendered with handlebars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// A file relative to the recipe, copied byte for byte (not rendered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// User name or numeric uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group name or numeric gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::mode::FileMode>,
    /// When false, an existing file's content is left alone (only created if missing).
    #[serde(default = "yes")]
    pub replace: bool,
    /// When false, a missing file is left missing: only an existing file's
    /// owner, group and mode (and content, when given) are managed.
    #[serde(default = "yes")]
    pub create: bool,
    /// Replace a symbolic link standing at the path (never done silently).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// A command run on the staged new content before it replaces the file,
    /// with `%s` for its path (`visudo -cf %s`); a failure leaves the file as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<String>,
}

fn yes() -> bool {
    true
}

impl FileProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.content.is_some() && self.source.is_some() {
            out.push(("source", "give either `content` or `source`, not both".to_string()));
        }
        if self.state == Presence::Absent && (self.content.is_some() || self.source.is_some()) {
            out.push(("state", "a file with `state: absent` takes no `content` or `source`".to_string()));
        }
        out.extend(super::validate_problems(&self.validate));
        out
    }
}
