//! The properties of each resource type, one file per type. The agent holds
//! their behaviour; this crate holds their shape and their static checks.

pub mod apt_repository;
pub mod archive;
pub mod authorized_key;
pub mod cron;
pub mod directory;
pub mod download;
pub mod exec;
pub mod file;
pub mod file_line;
pub mod group;
pub mod hostname;
pub mod kernel_module;
pub mod link;
pub mod mount;
pub mod ntp;
pub mod package;
pub mod service;
pub mod setting;
pub mod sysctl;
pub mod systemd_unit;
pub mod template;
pub mod timezone;
pub mod user;
pub mod yum_repository;

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
    pub mode: Option<crate::mode::FileMode>,
}

/// Checks that a resource name is an absolute, normalised path: no `.` or
/// `..` segments, no `//`, no trailing `/`. (`Path::components` would hide
/// `.` and `//`, and `/etc/./motd` must not become a second id for `/etc/motd`.)
pub fn check_absolute_path(name: &str) -> Option<String> {
    if !name.starts_with('/') {
        return Some(format!("{name:?} is not an absolute path"));
    }
    if name == "/" {
        return None;
    }
    if name.ends_with('/') {
        return Some(format!("{name:?} must not end with '/'"));
    }
    if name[1..].split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Some(format!("{name:?} must not contain '//', '.' or '..' segments"));
    }
    None
}

/// Problems of a `validate` command (shared by every type that has one).
pub fn validate_problems(validate: &Option<String>) -> Option<(&'static str, String)> {
    let v = validate.as_deref()?;
    if !v.contains("%s") {
        return Some(("validate", format!("{v:?} has no %s: where the staged file's path goes")));
    }
    if v.split_whitespace().next().is_none_or(|w| w == "%s") {
        return Some(("validate", "the command must start with a program, e.g. `sshd -t -f %s`".into()));
    }
    None
}
