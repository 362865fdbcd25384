use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a kernel module should be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModuleState {
    /// Loaded now and at every boot (`/etc/modules-load.d`).
    #[default]
    Loaded,
    /// Not loaded, and not loaded at boot by tend's files.
    Absent,
    /// Never loaded, not even on demand (`blacklist` and `install NAME /bin/false`).
    Blacklisted,
}

/// A kernel module (`kernel_module: br_netfilter`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelModuleProps {
    #[serde(default)]
    pub state: ModuleState,
    /// Module parameters for `options NAME …` in /etc/modprobe.d (`nf_conntrack hashsize=65536`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
}

/// Checks a module name: letters, digits, `_` and `-`.
pub fn check_module(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 56
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (!ok).then(|| format!("{name:?} is not a kernel module name (letters, digits, `_`, `-`)"))
}

impl KernelModuleProps {
    pub fn problems(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = check_module(name).map(|e| ("", e)).into_iter().collect();
        if let Some(o) = &self.options {
            if self.state != ModuleState::Loaded {
                out.push(("options", "`options` apply to a loaded module only".into()));
            } else if o.trim().is_empty() || o.contains(['\n', '\r']) {
                out.push(("options", "options are one line of `key=value` words".into()));
            }
        }
        out
    }
}
