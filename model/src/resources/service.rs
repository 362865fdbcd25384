use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether a service should be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Stopped,
}

/// A systemd service. Restarted (or reloaded) at most once per run when a
/// resource that notifies it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceProps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
    /// Started at boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Masked: cannot be started at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked: Option<bool>,
    /// On notification, reload instead of restart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reload_on_notify: bool,
    /// The systemd unit; defaults to NAME.service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

impl ServiceProps {
    /// The unit this service resource manages.
    pub fn unit_name(&self, name: &str) -> String {
        match &self.unit {
            Some(u) => u.clone(),
            None if name.contains('.') => name.to_string(),
            None => format!("{name}.service"),
        }
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.masked == Some(true) && (self.state == Some(RunState::Running) || self.enabled == Some(true)) {
            out.push(("masked", "a masked service can be neither running nor enabled".to_string()));
        }
        out
    }
}
