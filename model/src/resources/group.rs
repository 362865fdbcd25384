use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A local group, managed with groupadd, groupmod, gpasswd and groupdel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupProps {
    #[serde(default)]
    pub state: Presence,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// A system group (gid from the system range) when created.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system: bool,
    /// Members: exactly these users, unless `append` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// Only add the listed members; never remove others.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub append: bool,
}
