use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a package resource wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    /// Installed, at `version` if given (any version otherwise).
    #[default]
    Installed,
    /// Installed at the newest version the package sources offer.
    Latest,
    /// Not installed (configuration files kept).
    Absent,
    /// Not installed, configuration files removed too.
    Purged,
}

/// Package managers tend drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageProvider {
    Apt,
    Dnf,
    Yum,
}

/// A system package. All the package resources of a run are installed in one
/// transaction of the package manager.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageProps {
    #[serde(default)]
    pub state: PackageState,
    /// Pin this version (apt: `name=version`; dnf: `name-[epoch:]version[-release]`),
    /// or a glob of it (`1.2.*`): installed when a version matching it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Force a provider; by default it is chosen from the OS family fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<PackageProvider>,
}

impl PackageProps {
    pub fn problems(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'_' | b':'))
            && !name.starts_with('-');
        if !valid {
            out.push(("", format!("{name:?} is not a valid package name")));
        }
        if self.version.is_some()
            && matches!(self.state, PackageState::Latest | PackageState::Absent | PackageState::Purged)
        {
            out.push(("version", "`version` goes with `state: installed` only".to_string()));
        }
        if let Some(v) = &self.version {
            if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == '=') {
                out.push(("version", format!("{v:?} is not a valid version")));
            }
        }
        out
    }
}
