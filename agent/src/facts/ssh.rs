//! The SSH host public keys, from /etc/ssh/ssh_host_*_key.pub.

use std::path::Path;

use serde_json::{Map, Value};

/// Key kinds, as named in the file names and the facts.
const KINDS: &[&str] = &["ed25519", "rsa", "ecdsa"];

/// `{ "ed25519": "ssh-ed25519 AAAA…", … }`: the type and key of each host
/// key present (the comment dropped); missing or malformed keys are absent.
pub fn host_keys(root: &Path) -> Value {
    let mut out = Map::new();
    for kind in KINDS {
        let path = root.join(format!("etc/ssh/ssh_host_{kind}_key.pub"));
        // A public key line is well under 16 KiB (RSA 16384 bits: 2.8 KB).
        let text = super::file_head::read(&path, 16 * 1024).map(|b| String::from_utf8_lossy(&b).into_owned());
        if let Some(key) = text.as_deref().and_then(public_key) {
            out.insert((*kind).to_string(), Value::from(key));
        }
    }
    Value::Object(out)
}

/// `TYPE KEY` from a public key line `TYPE KEY [COMMENT]`.
fn public_key(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    let (kind, key) = (words.next()?, words.next()?);
    let plausible = (kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-"))
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    plausible.then(|| format!("{kind} {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_without_comments() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join("etc/ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("ssh_host_ed25519_key.pub"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB root@web-1\n")
            .unwrap();
        std::fs::write(ssh.join("ssh_host_ecdsa_key.pub"), "ecdsa-sha2-nistp256 AAAAE2VjZHNh=\n").unwrap();
        std::fs::write(ssh.join("ssh_host_rsa_key.pub"), "garbage\n").unwrap();
        let keys = host_keys(dir.path());
        assert_eq!(
            keys,
            serde_json::json!({
                "ed25519": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB",
                "ecdsa": "ecdsa-sha2-nistp256 AAAAE2VjZHNh=",
            })
        );
        assert_eq!(host_keys(&dir.path().join("none")), serde_json::json!({}));
    }
}
