use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A local user account, managed with useradd, usermod and userdel.
/// (No `Default`: the defaults are serde's, `manage_home: true` among them.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserProps {
    #[serde(default)]
    pub state: Presence,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Primary group: a name or a numeric gid. Created by a `group` resource if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Supplementary groups: exactly these, unless `append` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Only add the listed supplementary groups; never remove others.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub append: bool,
    /// Home directory (created with the skeleton when missing, unless `manage_home: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(default = "yes")]
    pub manage_home: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// The GECOS field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// A system account (uid from the system range) when created.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system: bool,
    /// A crypt(3) hash (`openssl passwd -6`), or `!`/`*` to lock. Always treated as sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Exactly these keys in ~/.ssh/authorized_keys (0600, in a 0700 ~/.ssh owned by the user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_authorized_keys: Option<Vec<String>>,
    /// With `state: absent`, also remove the home directory and mail spool.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove_home: bool,
}

fn yes() -> bool {
    true
}

impl UserProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = &self.password {
            let is_hash = |h: &str| h.starts_with('$') && h.matches('$').count() >= 3;
            let hashed = is_hash(p);
            // Locked: `!`, `*`, `!*`, or `!` before a hash (usermod -L).
            let locked = matches!(p.as_str(), "!" | "*" | "!*" | "!!") || p.strip_prefix('!').is_some_and(is_hash);
            if p.contains(':') || p.contains('\n') {
                out.push(("password", "password must not contain ':' or a newline".to_string()));
            }
            if !hashed && !locked {
                out.push((
                    "password",
                    "password must be a crypt(3) hash such as `openssl passwd -6` prints (or `!` to lock), never plain text"
                        .to_string(),
                ));
            }
        }
        if let Some(h) = &self.home {
            if let Some(e) = super::check_absolute_path(h) {
                out.push(("home", e));
            }
        }
        if let Some(s) = &self.shell {
            if !s.starts_with('/') {
                out.push(("shell", format!("{s:?} is not an absolute path")));
            }
        }
        if self.comment.as_deref().is_some_and(|c| c.contains(':') || c.contains('\n')) {
            out.push(("comment", "comment must not contain ':' or a newline".to_string()));
        }
        if let Some(keys) = &self.ssh_authorized_keys {
            for k in keys {
                if k.contains('\n') || k.split_whitespace().count() < 2 {
                    out.push(("ssh_authorized_keys", format!("{:?} is not a single public key line", short(k))));
                }
            }
        }
        out
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A valid user or group name: what useradd accepts on Debian and RHEL.
pub fn check_account_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.bytes().all(|b| b.is_ascii_digit());
    (!ok).then(|| format!("{name:?} is not a valid account name (letters, digits, '_', '-', '.'; at most 32)"))
}
