//! Located diagnostics: every problem in a recipe set, reported at once.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a recipe, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub col: usize,
    /// The resource the problem belongs to, if any (`file:/etc/motd`).
    pub resource: Option<String>,
    pub message: String,
    /// "did you mean" and other hints.
    pub hint: Option<String>,
    /// Where in the expansion the problem arose: the loop items and
    /// component instances (`for_each item "bob"`, `use:vhost[shop]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self { file: file.into(), line: 0, col: 0, resource: None, message: message.into(), hint: None, context: None }
    }

    pub fn at(mut self, (line, col): (usize, usize)) -> Self {
        self.line = line;
        self.col = col;
        self
    }

    pub fn resource(mut self, id: impl Into<String>) -> Self {
        self.resource = Some(id.into());
        self
    }

    pub fn hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        write!(f, ": ")?;
        if let Some(id) = &self.resource {
            write!(f, "{id}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        if let Some(c) = &self.context {
            write!(f, " [in {c}]")?;
        }
        Ok(())
    }
}

/// Every problem found, in file and line order.
#[derive(Debug, Default, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Sorts by file, line and column, and drops exact duplicates.
    pub fn sorted(mut self) -> Self {
        self.0.sort_by(|a, b| (&a.file, a.line, a.col, &a.message).cmp(&(&b.file, b.line, b.col, &b.message)));
        self.0.dedup();
        self
    }

    /// `Ok(())` when no problem was found.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.is_empty() { Ok(()) } else { Err(self.sorted()) }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "error: {d}")?;
        }
        let n = self.0.len();
        write!(f, "{n} problem{} found; nothing was changed", if n == 1 { "" } else { "s" })
    }
}
