use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// An apt repository (`apt_repository: nginx`): its deb822 file
/// `/etc/apt/sources.list.d/NAME.sources` and its signing key in
/// `/etc/apt/keyrings/NAME.asc`, named by `Signed-By`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AptRepositoryProps {
    #[serde(default)]
    pub state: Presence,
    /// `deb`, `deb-src`.
    #[serde(default = "deb")]
    pub types: Vec<String>,
    #[serde(default)]
    pub uris: Vec<String>,
    #[serde(default)]
    pub suites: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// The signing key, ASCII-armored (`-----BEGIN PGP PUBLIC KEY BLOCK-----`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where to fetch the armored key (`https://`); requires `key_fingerprint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_url: Option<String>,
    /// The key's fingerprint (40 hex digits, 64 for a v6 key; blanks allowed), checked before the key is installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// False writes `Enabled: no`.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn deb() -> Vec<String> {
    vec!["deb".into()]
}

fn yes() -> bool {
    true
}

/// A fingerprint without blanks, upper-case; None when it is not 40 (v4
/// key) or 64 (v6 key) hex digits.
pub fn normal_fingerprint(f: &str) -> Option<String> {
    let s: String = f.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    (matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// Checks a repository name: it names files.
pub fn check_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    (!ok).then(|| format!("{name:?} is not a repository name (letters, digits, `_`, `-`, `.`): it names its files"))
}

impl AptRepositoryProps {
    pub fn problems(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = check_name(name).map(|e| ("", e)).into_iter().collect();
        if self.state == Presence::Absent {
            return out;
        }
        let word = |s: &String| !s.is_empty() && !s.contains(char::is_whitespace);
        for (field, list, required) in [
            ("types", &self.types, true),
            ("uris", &self.uris, true),
            ("suites", &self.suites, true),
            ("components", &self.components, false),
        ] {
            if required && list.is_empty() {
                out.push((field, format!("a repository needs `{field}`")));
            } else if !list.iter().all(word) {
                out.push((field, "each entry is one word (no blanks)".into()));
            }
        }
        if self.uris.iter().any(|u| !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with("file:/")))
        {
            out.push(("uris", "each URI is http://, https:// or file:/".into()));
        }
        if self.architectures.as_ref().is_some_and(|a| a.is_empty() || !a.iter().all(word)) {
            out.push(("architectures", "one word each, at least one".into()));
        }
        match (&self.key, &self.key_url, &self.key_fingerprint) {
            (Some(_), Some(_), _) => out.push(("key_url", "give `key` or `key_url`, not both".into())),
            (None, Some(_), None) => out.push((
                "key_fingerprint",
                "a key fetched from `key_url` needs `key_fingerprint`: tend installs only the key it was told to trust"
                    .into(),
            )),
            (None, None, Some(_)) => out.push(("key_fingerprint", "there is no `key` or `key_url` to check".into())),
            _ => {}
        }
        if let Some(k) = &self.key {
            if !k.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
                out.push(("key", "an ASCII-armored public key (`-----BEGIN PGP PUBLIC KEY BLOCK-----`)".into()));
            }
        }
        if let Some(u) = &self.key_url {
            if !u.starts_with("https://") || u.contains(char::is_whitespace) {
                out.push(("key_url", format!("{u:?} is not an https:// URL")));
            }
        }
        if self.key_fingerprint.as_deref().is_some_and(|f| normal_fingerprint(f).is_none()) {
            out.push((
                "key_fingerprint",
                "40 hex digits (64 for a v6 key; blanks allowed), as `gpg --fingerprint` prints".into(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(yaml: &str) -> AptRepositoryProps {
        serde_yaml::from_str(yaml).expect("props")
    }

    #[test]
    fn a_fetched_key_needs_its_fingerprint() {
        let p = props("uris: [https://deb.example.org/]\nsuites: [stable]\nkey_url: https://deb.example.org/key.asc\n");
        assert_eq!(p.problems("x")[0].0, "key_fingerprint");
        let p = props(
            "uris: [https://deb.example.org/]\nsuites: [stable]\nkey_url: https://deb.example.org/key.asc\n\
             key_fingerprint: 'EEA9 0FA1 55D4 0764 B52B  DD5E C9EC 27F5 00D0 CC00'\n",
        );
        assert!(p.problems("x").is_empty(), "{:?}", p.problems("x"));
    }

    #[test]
    fn names_uris_and_fingerprints_are_checked() {
        let p = props("uris: [ftp://x/]\nsuites: []\nkey_fingerprint: ABC\n");
        let fields: Vec<&str> = p.problems("../etc").iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["", "suites", "uris", "key_fingerprint", "key_fingerprint"]);
        assert_eq!(
            normal_fingerprint("eea9 0fa1 55d4 0764 b52b dd5e c9ec 27f5 00d0 cc00").as_deref().map(str::len),
            Some(40)
        );
    }
}
