use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryProps {
    #[serde(default)]
    pub state: Presence,
    /// User name or numeric uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group name or numeric gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::mode::Mode>,
    /// With `state: absent`, remove the directory even if it is not empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}
