//! The run report: per resource what was found and done, and a summary.
//! Its JSON form is the contract for `--report`, `--output json` and the server.

/// Exit code for invalid input (nothing ran).
pub const EXIT_INVALID: i32 = 1;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Unchanged,
    Changed,
    Failed,
    Skipped,
}

/// One property that differs (or differed, before the run repaired it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub property: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A unified diff, for file content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Change {
    pub fn new(property: &str, from: Option<String>, to: Option<String>) -> Self {
        Self { property: property.to_string(), from, to, diff: None }
    }

    /// The same change with values and diff replaced, for sensitive resources.
    pub fn redacted(&self) -> Self {
        let hide = |v: &Option<String>| v.as_ref().map(|_| "(sensitive)".to_string());
        Self { property: self.property.clone(), from: hide(&self.from), to: hide(&self.to), diff: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceReport {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: Status,
    pub changes: Vec<Change>,
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why a resource was skipped, or which resources notified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a changed resource: true if it repaired drift (the recipe had not
    /// changed since the last run), false if the recipe asked for something new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrective: Option<bool>,
    /// The component instance(s) that produced it (`use:vhost[shop]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub skipped: usize,
    pub corrective: usize,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub host: String,
    pub started_at: String,
    pub dry_run: bool,
    /// True when the recipes came from the on-disk cache (server unreachable).
    pub cached: bool,
    pub recipes: Vec<String>,
    /// The version of each recipe the server assigned (name → version).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub versions: std::collections::BTreeMap<String, String>,
    /// Recipes that could not be compiled (each with its diagnostics); their
    /// resources did not run. Each counts as a failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Problems that did not stop the run, such as a custom facts file or
    /// program left out. They do not change the exit code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub summary: Summary,
    pub resources: Vec<ResourceReport>,
}

impl Report {
    /// Fills the summary from the resources.
    pub fn summarize(&mut self, duration_ms: f64) {
        let count = |s: Status| self.resources.iter().filter(|r| r.status == s).count();
        self.summary = Summary {
            total: self.resources.len(),
            changed: count(Status::Changed),
            unchanged: count(Status::Unchanged),
            failed: count(Status::Failed),
            skipped: count(Status::Skipped),
            corrective: self.resources.iter().filter(|r| r.corrective == Some(true)).count(),
            duration_ms,
        };
    }

    /// Replaces every occurrence of a secret in what the report says about
    /// resources (changes, diffs, errors).
    pub fn scrub(&mut self, secrets: &[String]) {
        if secrets.is_empty() {
            return;
        }
        let clean = |s: &mut String| {
            for secret in secrets {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), "(sensitive)");
                }
            }
        };
        for r in &mut self.resources {
            for c in &mut r.changes {
                for v in [&mut c.from, &mut c.to, &mut c.diff].into_iter().flatten() {
                    clean(v);
                }
            }
            for v in [&mut r.error, &mut r.reason].into_iter().flatten() {
                clean(v);
            }
        }
    }

    /// Puppet's detailed exit codes: 0 no change, 2 changes, 4 failures, 6 both.
    pub fn exit_code(&self) -> i32 {
        let mut code = 0;
        if self.summary.changed > 0 {
            code |= 2;
        }
        if self.summary.failed > 0 || !self.errors.is_empty() {
            code |= 4;
        }
        code
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
