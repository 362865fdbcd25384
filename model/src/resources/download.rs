use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A file fetched from `https://` or `s3://` and verified by its SHA-256
/// (`download: /opt/tools/tool.tar.gz`). A file whose checksum already
/// matches is never fetched again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadProps {
    #[serde(default)]
    pub state: Presence,
    /// `https://host/path` or `s3://bucket/key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The expected SHA-256, 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// An `https://` checksum list (`sha256sum` format, or a single checksum):
    /// the line for the source's file name is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::mode::FileMode>,
    /// A PEM file of CA certificates trusted for this download, besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Seconds the whole download may take (default 300).
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// The largest file accepted, in bytes (default 1 GiB).
    #[serde(default = "default_max_size")]
    pub max_size: u64,
}

fn default_timeout() -> u64 {
    300
}

fn default_max_size() -> u64 {
    1 << 30
}

/// Whether `s` is a SHA-256 in hex.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_url(field: &'static str, url: &str, s3: bool) -> Option<(&'static str, String)> {
    let ok = url.strip_prefix("https://").is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        || (s3
            && url
                .strip_prefix("s3://")
                .is_some_and(|r| r.split_once('/').is_some_and(|(b, k)| !b.is_empty() && !k.is_empty())));
    let schemes = if s3 { "https://HOST/PATH or s3://BUCKET/KEY" } else { "https://HOST/PATH" };
    (!ok || url.contains(char::is_whitespace))
        .then(|| (field, format!("{url:?} is not {schemes} (downloads go over TLS)")))
}

impl DownloadProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.state == Presence::Absent {
            if self.source.is_some() || self.sha256.is_some() || self.sha256_url.is_some() {
                out.push(("state", "`state: absent` removes the file; it takes no `source` or checksum".into()));
            }
            return out;
        }
        match &self.source {
            None => out.push(("source", "a download needs `source`".into())),
            Some(s) => out.extend(check_url("source", s, true)),
        }
        match (&self.sha256, &self.sha256_url) {
            (None, None) => out.push((
                "sha256",
                "a download needs `sha256` (or `sha256_url`): tend never installs a file it cannot verify".into(),
            )),
            (Some(_), Some(_)) => out.push(("sha256_url", "give `sha256` or `sha256_url`, not both".into())),
            (Some(h), None) if !is_sha256(h) => out.push(("sha256", format!("{h:?} is not 64 hex digits"))),
            (None, Some(u)) => out.extend(check_url("sha256_url", u, false)),
            _ => {}
        }
        if let Some(ca) = &self.ca {
            out.extend(super::check_absolute_path(ca).map(|e| ("ca", e)));
        }
        if self.timeout == 0 || self.timeout > 86_400 {
            out.push(("timeout", "seconds from 1 to 86400".into()));
        }
        if self.max_size == 0 {
            out.push(("max_size", "at least 1 byte".into()));
        }
        out
    }
}
