use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// One SSH public key in a user's authorized_keys, added or removed without
/// touching the other lines (the `user` type's `ssh_authorized_keys` is the
/// exclusive form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKeyProps {
    /// The account whose key it is (it owns a file that tend creates).
    pub user: String,
    /// The public key line: `TYPE BASE64 [COMMENT]`, as in a `.pub` file.
    pub key: String,
    /// sshd options before the key (`from="10.0.0.0/8",no-agent-forwarding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    /// Another file (absolute), such as one named by sshd's `AuthorizedKeysFile`;
    /// default `~USER/.ssh/authorized_keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default)]
    pub state: Presence,
}

/// Key types sshd accepts in authorized_keys.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
];

/// Whether a word is a key type.
pub fn is_key_type(w: &str) -> bool {
    KEY_TYPES.contains(&w)
}

/// A parsed authorized_keys line: its options, type, key blob and comment.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyLine<'a> {
    pub options: Option<&'a str>,
    pub kind: &'a str,
    pub blob: &'a str,
    pub comment: Option<&'a str>,
}

/// Splits off the first word, where blanks inside double quotes (options
/// such as `command="a b"`) do not end it.
fn first_word(s: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&s[..i], s[i..].trim_start()),
            _ => {}
        }
    }
    (s, "")
}

/// Parses one authorized_keys line; None for comments, blanks and lines that
/// hold no key.
pub fn parse_key_line(line: &str) -> Option<KeyLine<'_>> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let (first, rest) = first_word(t);
    let (options, kind, rest) = if is_key_type(first) {
        (None, first, rest)
    } else {
        let (kind, rest) = first_word(rest);
        (Some(first), kind, rest)
    };
    if !is_key_type(kind) {
        return None;
    }
    let (blob, comment) = first_word(rest);
    let base64 =
        |b: &str| !b.is_empty() && b.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
    if !base64(blob) {
        return None;
    }
    Some(KeyLine { options, kind, blob, comment: Some(comment.trim()).filter(|c| !c.is_empty()) })
}

impl AuthorizedKeyProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        out.extend(super::user::check_account_name(&self.user).map(|e| ("user", e)));
        match parse_key_line(&self.key) {
            Some(k) if k.options.is_none() && !self.key.contains(['\n', '\r']) => {}
            Some(_) if !self.key.contains(['\n', '\r']) => {
                out.push(("key", "the key starts with options: put them in `options`".into()));
            }
            _ => out.push((
                "key",
                "not a public key line `TYPE BASE64 [COMMENT]` (ssh-ed25519, ssh-rsa, ecdsa-sha2-*, sk-*)".into(),
            )),
        }
        if let Some(o) = &self.options {
            if o.contains(['\n', '\r']) || o.trim().is_empty() || !first_word(o.trim()).1.is_empty() {
                out.push((
                    "options",
                    "options are one word of comma-separated sshd options (quote values with blanks)".into(),
                ));
            }
        }
        if let Some(p) = &self.path {
            out.extend(super::check_absolute_path(p).map(|e| ("path", e)));
        }
        out
    }

    /// The line the file must hold.
    pub fn line(&self) -> String {
        match &self.options {
            Some(o) => format!("{} {}", o.trim(), self.key.trim()),
            None => self.key.trim().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_into_options_type_blob_and_comment() {
        let k =
            parse_key_line(r#"from="10.0.0.0/8",command="echo a b" ssh-ed25519 AAAAC3Nz ops@example"#).expect("key");
        assert_eq!(k.options, Some(r#"from="10.0.0.0/8",command="echo a b""#));
        assert_eq!((k.kind, k.blob, k.comment), ("ssh-ed25519", "AAAAC3Nz", Some("ops@example")));
        let k = parse_key_line("ssh-rsa AAAAB3== ").expect("key");
        assert_eq!((k.options, k.comment), (None, None));
        assert_eq!(parse_key_line("# ssh-rsa AAAA"), None);
        assert_eq!(parse_key_line("not a key"), None);
    }
}
