//! In-place edits of files the recipe does not own (`file_line`, `setting`): read
//! the current text (bounded, text only), compute the new text, and converge
//! it like a `file` whose owner and mode are kept, written at once so that
//! the next edit of the same file in this run reads it.

use std::io::Read;
use std::path::Path;

use tend_model::resources::{Ownership, Presence};

use crate::report::Change;
use crate::resources::file::{self, FileWant};
use crate::resources::{Ctx, Error, Result};

/// The largest file an edit reads.
pub const MAX_EDITED: u64 = 16 * 1024 * 1024;

/// The file's text, or None when it is missing. Fails on a file that is not
/// text (NUL bytes or not UTF-8), too large, or not a regular file.
pub fn read_text(path: &Path) -> Result<Option<String>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read {}", path.display()))(e)),
    };
    let md = f.metadata().map_err(Error::io(format!("stat {}", path.display())))?;
    if !md.is_file() {
        return Err(Error::Failed(format!("{} is not a regular file", path.display())));
    }
    if md.len() > MAX_EDITED {
        return Err(Error::Failed(format!(
            "{} is {} bytes; edits read files up to {MAX_EDITED} bytes",
            path.display(),
            md.len()
        )));
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    f.take(MAX_EDITED + 1).read_to_end(&mut buf).map_err(Error::io(format!("read {}", path.display())))?;
    if buf.contains(&0) {
        return Err(Error::Failed(format!("{} is not a text file (it holds NUL bytes)", path.display())));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| Error::Failed(format!("{} is not a text file (not UTF-8)", path.display())))
}

/// What an edit wants the file to become.
pub struct Edit<'a> {
    pub path: &'a Path,
    /// The new text; None: leave the file as it is.
    pub text: Option<String>,
    pub validate: Option<&'a str>,
    pub sensitive: bool,
}

impl Edit<'_> {
    /// The whole file this edit wants.
    pub fn want(&self) -> FileWant<'_> {
        FileWant {
            presence: Presence::Present,
            content: self.text.as_deref().map(str::as_bytes),
            replace: true,
            own: Ownership::default(),
            sensitive: self.sensitive,
            create: true,
            force: false,
            validate: self.validate,
        }
    }

    /// The changes (a content diff, or the file's creation).
    pub fn check(&self, ctx: &mut Ctx) -> Result<Vec<Change>> {
        refuse_link(self.path)?;
        if self.text.is_none() {
            return Ok(vec![]);
        }
        file::check(self.path, &self.want(), ctx)
    }

    /// Writes the new text atomically and durably, now.
    pub fn apply(&self, changes: &[Change], ctx: &mut Ctx) -> Result<()> {
        refuse_link(self.path)?;
        if self.text.is_none() {
            return Ok(());
        }
        file::apply_now(self.path, &self.want(), changes, ctx)
    }
}

/// An edit replaces the file it names: a symbolic link there would become a
/// regular file, so it is refused (whether or not the text would change).
fn refuse_link(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            let target = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
            Err(Error::Failed(format!(
                "{} is a symbolic link (to {target}); edit its target instead (`path: {target}` when absolute)",
                path.display()
            )))
        }
        _ => Ok(()),
    }
}

/// Splits text into lines without their `\n`, and says whether it ended with one.
pub fn lines(text: &str) -> (Vec<&str>, bool) {
    if text.is_empty() {
        return (Vec::new(), true);
    }
    let trailing = text.ends_with('\n');
    let body = if trailing { &text[..text.len() - 1] } else { text };
    (body.split('\n').collect(), trailing)
}

/// Joins lines back; a file that ended without a newline keeps that, unless
/// a line was appended after its last one.
pub fn join(lines: &[String], trailing: bool) -> String {
    let mut s = lines.join("\n");
    if trailing && !lines.is_empty() {
        s.push('\n');
    }
    s
}

/// A file that is one part of another resource's state (`/etc/sysctl.d/…`
/// for `sysctl`, `/etc/timezone`, `/etc/hosts` for `hostname`). Its changes
/// are reported with the file's path before the property
/// (`/etc/timezone content`), and applied at once.
pub struct Part<'a> {
    pub path: &'a Path,
    pub want: FileWant<'a>,
}

impl<'a> Part<'a> {
    /// A root-owned file of tend's that exists exactly when it has text.
    pub fn owned(path: &'a Path, text: &'a Option<String>) -> Self {
        let presence = if text.is_some() { Presence::Present } else { Presence::Absent };
        Part { path, want: FileWant::system(presence, text.as_deref().map(str::as_bytes)) }
    }

    pub fn check(&self, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let mut changes = file::check(self.path, &self.want, ctx)?;
        for c in &mut changes {
            c.property = format!("{} {}", self.path.display(), c.property);
        }
        Ok(changes)
    }

    /// Whether `changes` (of the whole resource) include this file's.
    pub fn changed(&self, changes: &[Change]) -> bool {
        let prefix = format!("{} ", self.path.display());
        changes.iter().any(|c| c.property.starts_with(&prefix))
    }

    /// Converges the file now, if `changes` include it.
    pub fn apply(&self, changes: &[Change], ctx: &mut Ctx) -> Result<()> {
        if !self.changed(changes) {
            return Ok(());
        }
        let own = file::check(self.path, &self.want, ctx)?;
        file::apply_now(self.path, &self.want, &own, ctx)
    }
}
