use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
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
    pub mode: Option<crate::mode::FileMode>,
    /// With `state: absent`, remove the directory even if it is not empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// False: a missing directory stays missing (only an existing one is managed).
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub create: bool,
    /// Apply owner and group to everything below, and `dir_mode`/`file_mode`
    /// (symlinks and special files are left alone, never followed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recurse: bool,
    /// With `recurse`: the mode of the directories below (default `mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir_mode: Option<crate::mode::FileMode>,
    /// With `recurse`: the mode of the files below (default: `mode` when it is
    /// symbolic; an octal `mode` is never applied to files, it would make them executable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<crate::mode::FileMode>,
}

fn yes() -> bool {
    true
}

impl DirectoryProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !self.recurse {
            for (field, v) in [("dir_mode", &self.dir_mode), ("file_mode", &self.file_mode)] {
                if v.is_some() {
                    out.push((field, "applies to the tree below: set `recurse: true`".into()));
                }
            }
        }
        if self.state == Presence::Absent && self.recurse {
            out.push((
                "recurse",
                "`state: absent` removes the directory; use `force: true` to remove its contents".into(),
            ));
        }
        out
    }

    /// The mode of directories below (None: not managed).
    pub fn below_dir_mode(&self) -> Option<&crate::mode::FileMode> {
        self.dir_mode.as_ref().or(self.mode.as_ref())
    }

    /// The mode of files below (None: not managed).
    pub fn below_file_mode(&self) -> Option<&crate::mode::FileMode> {
        self.file_mode.as_ref().or(self.mode.as_ref().filter(|m| m.is_symbolic()))
    }
}
