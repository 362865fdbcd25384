use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A kernel parameter (`net.ipv4.ip_forward`): applied live through
/// `/proc/sys` and persisted in `/etc/sysctl.d/` so that it survives a boot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SysctlProps {
    /// Required with `state: present`. Several numbers are separated by blanks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `absent` removes the persisted setting; the running value is left as it is.
    #[serde(default)]
    pub state: Presence,
    /// The file under /etc/sysctl.d (default `99-tend-KEY.conf`, one per key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Checks a sysctl key: dotted (or slashed) words, nothing that leaves /proc/sys.
pub fn check_key(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key.len() <= 256
        && key.split(['.', '/']).all(|w| !w.is_empty() && w != "..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'_' | b'-' | b'*' | b':' | b'@'));
    (!ok || key.contains('*')).then(|| format!("{key:?} is not a sysctl key such as net.ipv4.ip_forward"))
}

impl SysctlProps {
    pub fn problems(&self, key: &str) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = check_key(key).map(|e| ("", e)).into_iter().collect();
        match (self.state, &self.value) {
            (Presence::Present, None) => out.push(("value", "`state: present` needs `value`".into())),
            (Presence::Present, Some(v)) if v.trim().is_empty() || v.contains(['\n', '\r']) => {
                out.push(("value", "the value is one non-empty line".into()));
            }
            (Presence::Absent, Some(_)) => out.push(("value", "`state: absent` takes no `value`".into())),
            _ => {}
        }
        if let Some(f) = &self.file {
            let ok = f.ends_with(".conf") && !f.contains('/') && !f.starts_with('.') && f.len() <= 128;
            if !ok {
                out.push(("file", format!("{f:?} is not a file name under /etc/sysctl.d ending in .conf")));
            }
        }
        out
    }

    /// The persisted file's name.
    pub fn file_name(&self, key: &str) -> String {
        self.file.clone().unwrap_or_else(|| format!("99-tend-{}.conf", key.replace('/', ".")))
    }
}
