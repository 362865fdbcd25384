use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A file rendered from a handlebars template beside the recipe (strict mode,
/// no HTML escaping), against `facts`, `params` and `vars`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateProps {
    #[serde(default)]
    pub state: Presence,
    /// The template file, relative to the recipe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Extra values for the template, available as `vars.NAME`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub vars: IndexMap<String, serde_json::Value>,
    /// User name or numeric uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group name or numeric gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::mode::FileMode>,
    /// Replace a symbolic link standing at the path (never done silently).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// A command run on the rendered content before it replaces the file,
    /// with `%s` for its path (`sshd -t -f %s`); a failure leaves the file as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<String>,
}

impl TemplateProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = match (self.state, &self.source) {
            (Presence::Present, None) => vec![("source", "a template needs `source`: the template file".into())],
            _ => vec![],
        };
        out.extend(super::validate_problems(&self.validate));
        out
    }
}
