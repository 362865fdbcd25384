use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a mount should be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MountState {
    /// In /etc/fstab and mounted now.
    #[default]
    Mounted,
    /// In /etc/fstab; the running state is left alone.
    Present,
    /// In /etc/fstab, not mounted now.
    Unmounted,
    /// Not in /etc/fstab, not mounted.
    Absent,
}

/// A filesystem mount (`mount: /srv/data`): its /etc/fstab line and the live mount.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MountProps {
    #[serde(default)]
    pub state: MountState,
    /// `/dev/sdb1`, `UUID=…`, `LABEL=…`, `server:/export`, or `tmpfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    #[serde(default = "defaults")]
    pub options: String,
    #[serde(default)]
    pub dump: u8,
    #[serde(default)]
    pub pass: u8,
}

fn defaults() -> String {
    "defaults".into()
}

/// One fstab field: no blanks, no `#` at its start, not empty.
fn field_ok(s: &str) -> bool {
    !s.is_empty() && !s.contains(char::is_whitespace) && !s.starts_with('#') && s.len() <= 1024
}

impl MountProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.state != MountState::Absent {
            for (field, v) in [("device", &self.device), ("fstype", &self.fstype)] {
                match v {
                    None => out.push((field, format!("`state: {:?}` needs `{field}`", self.state).to_lowercase())),
                    Some(v) if !field_ok(v) => out.push((field, format!("{v:?} is not one fstab field (no blanks)"))),
                    _ => {}
                }
            }
        }
        if !field_ok(&self.options) {
            out.push((
                "options",
                format!("{:?} is not one fstab field: comma-separated options, no blanks", self.options),
            ));
        }
        if self.pass > 2 || self.dump > 1 {
            out.push(("pass", "`dump` is 0 or 1, `pass` 0, 1 or 2".into()));
        }
        out
    }

    /// The fstab line (tab-separated fields).
    pub fn fstab_line(&self, mount_point: &str) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            self.device.as_deref().unwrap_or(""),
            escape(mount_point),
            self.fstype.as_deref().unwrap_or(""),
            self.options,
            self.dump,
            self.pass
        )
    }
}

/// A path as fstab and mountinfo write it (blanks and `\` octal-escaped).
pub fn escape(path: &str) -> String {
    let mut s = String::new();
    for c in path.chars() {
        match c {
            ' ' => s.push_str("\\040"),
            '\t' => s.push_str("\\011"),
            '\n' => s.push_str("\\012"),
            '\\' => s.push_str("\\134"),
            c => s.push(c),
        }
    }
    s
}
