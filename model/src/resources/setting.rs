use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// One key in a key-value or INI file (`sshd_config`, `login.defs`,
/// `sysctl.conf`, `*.ini`), edited in place: the rest of the file is kept
/// byte for byte, and a commented-out default (`#PermitRootLogin yes`) is
/// replaced where it stands rather than duplicated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingProps {
    /// The file to edit (absolute).
    pub path: String,
    /// The INI section (`[section]`); without it, the lines before the first section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    pub key: String,
    /// Required with `state: present`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What is written between key and value: `" = "` by default, `" "` for
    /// sshd_config, `"="` for sysctl.conf and login.defs' neighbours. Any
    /// spacing around `=` (or any run of blanks, for `" "`) is read as the same.
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default)]
    pub state: Presence,
    /// Create the file when it is missing; false fails instead.
    #[serde(default = "yes")]
    pub create: bool,
    /// A command run on the staged new content before it replaces the file,
    /// with `%s` for its path (`sshd -t -f %s`); a failure leaves the file as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<String>,
}

fn default_separator() -> String {
    " = ".into()
}

fn yes() -> bool {
    true
}

impl SettingProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(e) = super::check_absolute_path(&self.path) {
            out.push(("path", e));
        }
        let bad = |s: &str| s.chars().any(|c| c == '\n' || c == '\r');
        if self.key.trim().is_empty() || self.key.trim() != self.key || self.key.contains(char::is_whitespace) {
            out.push(("key", format!("{:?} is not a key: no blanks, not empty", self.key)));
        } else if self.key.starts_with(['#', ';', '[']) || self.key.contains('=') {
            out.push((
                "key",
                format!("{:?} is not a key: it starts with a comment or section mark, or holds `=`", self.key),
            ));
        }
        if let Some(s) = &self.section {
            if bad(s) || s.contains(']') || s.trim().is_empty() {
                out.push(("section", format!("{s:?} is not a section name")));
            }
        }
        if self.value.as_deref().is_some_and(bad) {
            out.push(("value", "a value is one line: it must not contain a newline".into()));
        }
        let sep = self.separator.trim();
        if bad(&self.separator) || self.separator.is_empty() || !(sep.is_empty() || sep == "=" || sep == ":") {
            out.push((
                "separator",
                format!("{:?} is not a separator: blanks, `=` or `:` with optional blanks", self.separator),
            ));
        }
        match (self.state, &self.value) {
            (Presence::Present, None) => out.push(("value", "`state: present` needs `value`".into())),
            (Presence::Absent, Some(_)) => {
                out.push(("value", "`state: absent` removes the key; it takes no `value`".into()))
            }
            _ => {}
        }
        out.extend(super::validate_problems(&self.validate));
        out
    }
}
