use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A systemd unit file in /etc/systemd/system, or a drop-in when the name is
/// `UNIT/DROPIN` (`nginx.service/10-limits` → `nginx.service.d/10-limits.conf`).
/// `daemon-reload` runs once, only when a unit changed, and the service using
/// the unit is restarted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemdUnitProps {
    #[serde(default)]
    pub state: Presence,
    /// The unit file's text (rendered with handlebars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// A file relative to the recipe, copied byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Unit suffixes systemd knows.
pub const UNIT_SUFFIXES: &[&str] =
    &[".service", ".socket", ".timer", ".target", ".mount", ".automount", ".path", ".slice", ".scope", ".swap"];

impl SystemdUnitProps {
    /// (unit, drop-in) from a resource name.
    pub fn split(name: &str) -> (&str, Option<&str>) {
        match name.split_once('/') {
            Some((u, d)) => (u, Some(d)),
            None => (name, None),
        }
    }

    /// Where the file goes.
    pub fn path(name: &str) -> String {
        match Self::split(name) {
            (u, Some(d)) => format!("/etc/systemd/system/{u}.d/{d}.conf"),
            (u, None) => format!("/etc/systemd/system/{u}"),
        }
    }

    pub fn problems(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let (unit, dropin) = Self::split(name);
        let ok_chars = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'\\' | b':'))
        };
        if !ok_chars(unit) || !UNIT_SUFFIXES.iter().any(|s| unit.ends_with(s)) {
            out.push(("", format!("{unit:?} is not a unit name (e.g. app.service, backup.timer)")));
        }
        if let Some(d) = dropin {
            if !ok_chars(d) || d.contains('/') {
                out.push(("", format!("{d:?} is not a drop-in name (e.g. 10-limits)")));
            }
        }
        if self.content.is_some() && self.source.is_some() {
            out.push(("source", "give either `content` or `source`, not both".to_string()));
        }
        if self.state == Presence::Present && self.content.is_none() && self.source.is_none() {
            out.push(("content", "a unit needs `content` or `source`".to_string()));
        }
        out
    }
}
