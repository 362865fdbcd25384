use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// One line in a file the recipe does not otherwise own (`sshd_config`, PAM,
/// `limits.conf`). The rest of the file is kept byte for byte, with its owner
/// and mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileLineProps {
    /// The file to edit (absolute).
    pub path: String,
    #[serde(default)]
    pub state: Presence,
    /// The line's exact text (without the newline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// A regular expression: the line that must become `line` (with `state:
    /// absent`, every line it matches is removed). It must match `line` itself,
    /// or the edit could never converge.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// A new line goes after the last line this regex matches (else at the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// A new line goes before the first line this regex matches (else at the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Replace every line `match` matches, not only the last.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiple: bool,
    /// Create the file (with just this line) when it is missing; false fails instead.
    #[serde(default = "yes")]
    pub create: bool,
    /// A command run on the staged new content before it replaces the file,
    /// with `%s` for its path (`sshd -t -f %s`); a failure leaves the file as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<String>,
}

fn yes() -> bool {
    true
}

/// The largest pattern `line` accepts (compiled size), so that a recipe cannot
/// make the agent build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a user's regular expression with bounded size and nesting.
pub fn regex(pattern: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(64)
        .build()
        .map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))
}

impl FileLineProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(e) = super::check_absolute_path(&self.path) {
            out.push(("path", e));
        }
        let mut compiled = None;
        for (field, p) in [("match", &self.pattern), ("after", &self.after), ("before", &self.before)] {
            if let Some(p) = p {
                match regex(p) {
                    Ok(r) if field == "match" => compiled = Some(r),
                    Ok(_) => {}
                    Err(e) => out.push((field, e)),
                }
            }
        }
        if self.after.is_some() && self.before.is_some() {
            out.push(("before", "give `after` or `before`, not both".into()));
        }
        match (self.state, &self.line) {
            (Presence::Present, None) => out.push(("line", "`state: present` needs `line`: the text to ensure".into())),
            (Presence::Absent, None) if self.pattern.is_none() => {
                out.push(("match", "`state: absent` needs `match` or `line`: what to remove".into()));
            }
            _ => {}
        }
        if let Some(l) = &self.line {
            if l.contains('\n') || l.contains('\r') {
                out.push(("line", "`line` is one line: it must not contain a newline".into()));
            }
            if let (Some(r), Presence::Present) = (&compiled, self.state) {
                if !r.is_match(l) {
                    out.push((
                        "match",
                        format!(
                            "{:?} does not match the line {l:?} itself, so the edit would never converge",
                            r.as_str()
                        ),
                    ));
                }
            }
        }
        if self.state == Presence::Absent && (self.after.is_some() || self.before.is_some()) {
            out.push(("state", "`after` and `before` place a new line; `state: absent` adds none".into()));
        }
        out.extend(super::validate_problems(&self.validate));
        out
    }
}
