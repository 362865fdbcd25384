use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The host's name (`hostname: web1` or `hostname: web1.example.net`): the
/// name as given in `/etc/hostname` (as hostnamectl keeps it), the `127.0.1.1` line in
/// `/etc/hosts` (the full name, then the short one) and the running name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostnameProps {
    /// Keep the `/etc/hosts` line for this name (default true).
    #[serde(default = "yes")]
    pub hosts_entry: bool,
}

fn yes() -> bool {
    true
}

/// Checks a host name: RFC 1123 labels, at most 253 characters.
pub fn check_hostname(name: &str) -> Option<String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let ok = name.len() <= 253 && name.split('.').all(label_ok);
    (!ok).then(|| format!("{name:?} is not a host name: letters, digits and `-` in dot-separated labels"))
}
