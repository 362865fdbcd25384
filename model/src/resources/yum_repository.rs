use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A dnf/yum repository (`yum_repository: epel`): its file
/// `/etc/yum.repos.d/NAME.repo` with one `[NAME]` section.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct YumRepositoryProps {
    #[serde(default)]
    pub state: Presence,
    /// The `name=` line (default: the repository id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// One or more base URLs (`$releasever` and `$basearch` are dnf's to expand).
    #[serde(default)]
    pub baseurl: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirrorlist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metalink: Option<String>,
    /// URLs of the signing keys (`https://…` or `file:///etc/pki/rpm-gpg/…`).
    #[serde(default)]
    pub gpgkey: Vec<String>,
    /// Check package signatures (default true).
    #[serde(default = "yes")]
    pub gpgcheck: bool,
    /// Check the repository metadata's signature.
    #[serde(default)]
    pub repo_gpgcheck: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// 1 (highest) to 99; dnf's default is 99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Package globs this repository must not provide.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn yes() -> bool {
    true
}

impl YumRepositoryProps {
    pub fn problems(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> =
            super::apt_repository::check_name(name).map(|e| ("", e)).into_iter().collect();
        if self.state == Presence::Absent {
            return out;
        }
        if self.baseurl.is_empty() && self.mirrorlist.is_none() && self.metalink.is_none() {
            out.push(("baseurl", "a repository needs `baseurl`, `mirrorlist` or `metalink`".into()));
        }
        let url = |u: &String| {
            ["http://", "https://", "ftp://", "file:///"].iter().any(|s| u.starts_with(s))
                && !u.contains(char::is_whitespace)
        };
        for (field, list) in [("baseurl", &self.baseurl), ("gpgkey", &self.gpgkey)] {
            if let Some(bad) = list.iter().find(|u| !url(u)) {
                out.push((field, format!("{bad:?} is not an http(s)://, ftp:// or file:/// URL")));
            }
        }
        for (field, v) in [("mirrorlist", &self.mirrorlist), ("metalink", &self.metalink)] {
            if let Some(bad) = v.as_ref().filter(|u| !url(u)) {
                out.push((field, format!("{bad:?} is not an http(s)://, ftp:// or file:/// URL")));
            }
        }
        if (self.gpgcheck || self.repo_gpgcheck) && self.gpgkey.is_empty() {
            out.push((
                "gpgkey",
                "checking signatures needs `gpgkey` (or say `gpgcheck: false` for an unsigned repository)".into(),
            ));
        }
        if self.mirrorlist.is_some() && self.metalink.is_some() {
            out.push(("metalink", "give `mirrorlist` or `metalink`, not both".into()));
        }
        if self.description.as_deref().is_some_and(|d| d.contains('\n')) {
            out.push(("description", "one line".into()));
        }
        if self.priority.is_some_and(|p| !(1..=99).contains(&p)) {
            out.push(("priority", "from 1 (highest) to 99".into()));
        }
        if self.exclude.iter().any(|e| e.is_empty() || e.contains(char::is_whitespace)) {
            out.push(("exclude", "one package glob per entry, without blanks".into()));
        }
        out
    }

    /// The `.repo` file's text.
    pub fn render(&self, name: &str, id: &str) -> String {
        let mut s =
            format!("# Managed by tend ({id}).\n[{name}]\nname={}\n", self.description.as_deref().unwrap_or(name));
        let mut line = |k: &str, v: &str| s.push_str(&format!("{k}={v}\n"));
        if !self.baseurl.is_empty() {
            line("baseurl", &self.baseurl.join(" "));
        }
        if let Some(m) = &self.mirrorlist {
            line("mirrorlist", m);
        }
        if let Some(m) = &self.metalink {
            line("metalink", m);
        }
        line("enabled", if self.enabled { "1" } else { "0" });
        line("gpgcheck", if self.gpgcheck { "1" } else { "0" });
        if self.repo_gpgcheck {
            line("repo_gpgcheck", "1");
        }
        if !self.gpgkey.is_empty() {
            line("gpgkey", &self.gpgkey.join(" "));
        }
        if let Some(p) = self.priority {
            line("priority", &p.to_string());
        }
        if !self.exclude.is_empty() {
            line("exclude", &self.exclude.join(" "));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_section_and_checks_its_urls() {
        let p: YumRepositoryProps = serde_yaml::from_str(
            "baseurl: [\"https://dl.example.org/$releasever/$basearch/\"]\n\
             gpgkey: [file:///etc/pki/rpm-gpg/RPM-GPG-KEY-example]\npriority: 10\n",
        )
        .expect("props");
        assert!(p.problems("example").is_empty());
        assert_eq!(
            p.render("example", "yum_repository:example"),
            "# Managed by tend (yum_repository:example).\n[example]\nname=example\n\
             baseurl=https://dl.example.org/$releasever/$basearch/\nenabled=1\ngpgcheck=1\n\
             gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-example\npriority=10\n"
        );
        let p: YumRepositoryProps = serde_yaml::from_str("baseurl: [\"dl.example.org\"]\n").expect("props");
        let fields: Vec<&str> = p.problems("x").iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["baseurl", "gpgkey"]);
    }
}
