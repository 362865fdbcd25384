//! `file`: content (literal or copied from the recipe), owner, group, mode.
//! Content is written to a temporary file in the same directory and renamed
//! into place, so a reader (or a crash) never sees half a file.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use similar::TextDiff;
use tend_model::resources::{Ownership, Presence};
use tend_model::{CompiledResource, Spec};

use super::support::fsmeta::{Meta, kind_of, lstat, require_parent};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct FileType;

/// What a file-like resource wants; shared with `template`.
pub struct FileWant<'a> {
    pub presence: Presence,
    pub content: Option<&'a [u8]>,
    /// False: leave an existing file's content alone.
    pub replace: bool,
    pub own: Ownership,
    pub sensitive: bool,
    /// False: a missing file stays missing (only an existing one is managed).
    pub create: bool,
    /// Replace a symbolic link standing at the path.
    pub force: bool,
    /// Run on the staged content before the rename (`%s` is its path).
    pub validate: Option<&'a str>,
}

impl<'a> FileWant<'a> {
    /// A system file owned by root:root with mode 0644 (unit files, cron.d
    /// files, daemon configuration).
    pub fn system(presence: Presence, content: Option<&'a [u8]>) -> Self {
        FileWant {
            presence,
            content,
            replace: true,
            own: Ownership {
                owner: Some("root".into()),
                group: Some("root".into()),
                mode: Some(tend_model::mode::Mode(0o644).into()),
            },
            sensitive: false,
            create: true,
            force: false,
            validate: None,
        }
    }
}

/// Files larger than this get a size summary instead of a diff.
const DIFF_LIMIT: usize = 1024 * 1024;

impl ResourceType for FileType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        check(Path::new(&r.id.name), &want(r)?, ctx)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        apply(Path::new(&r.id.name), &want(r)?, changes, ctx)
    }

    fn verify(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        verify(Path::new(&r.id.name), &want(r)?, ctx)
    }
}

fn want(r: &CompiledResource) -> Result<FileWant<'_>> {
    let Spec::File(p) = &r.spec else {
        return Err(mismatch(r));
    };
    Ok(FileWant {
        presence: p.state,
        content: r.payload.as_deref(),
        replace: p.replace,
        own: r.spec.ownership().unwrap_or_default(),
        sensitive: r.sensitive,
        create: p.create,
        force: p.force,
        validate: p.validate.as_deref(),
    })
}

pub fn check(path: &Path, want: &FileWant, ctx: &mut Ctx) -> Result<Vec<Change>> {
    let md = lstat(path)?;
    if want.presence == Presence::Absent {
        return Ok(match md {
            None => vec![],
            Some(m) if m.is_dir() => {
                return Err(Error::Failed(format!("{} is a directory, not a file", path.display())));
            }
            Some(m) => vec![Change::new("ensure", Some(kind_of(&m).into()), Some("absent".into()))],
        });
    }
    let meta = Meta::resolve_in(&want.own, ctx)?;
    let md = match md {
        Some(m) if m.is_file() => m,
        Some(m) if !m.file_type().is_symlink() => {
            return Err(Error::Failed(format!("{} is a {}, not a file", path.display(), kind_of(&m))));
        }
        Some(_) if !want.force => {
            return Err(Error::Failed(format!(
                "{} is a symbolic link; set `force: true` to replace it with a file, or manage it with `link`",
                path.display()
            )));
        }
        None if !want.create => return Ok(vec![]),
        other => {
            // Missing, or a symlink that the file replaces (`force`).
            let from = if other.is_some() { "symlink" } else { "absent" };
            require_parent(path, ctx.dirs)?;
            let mut c = vec![Change::new("ensure", Some(from.into()), Some("file".into()))];
            if let Some(new) = want.content {
                c.push(content_change(b"", new, path, want.sensitive || !ctx.diffs));
            }
            return Ok(c);
        }
    };
    let mut changes = Vec::new();
    if let (Some(new), true) = (want.content, want.replace) {
        let no_diff = want.sensitive || !ctx.diffs;
        if md.size() != new.len() as u64 {
            // Sizes differ: read the old content only to show a diff.
            if no_diff {
                changes.push(size_change(md.size(), new.len()));
            } else {
                changes.push(content_change(&read(path, None)?, new, path, false));
            }
        } else {
            let old = read(path, Some(new.len()))?;
            if old != new {
                changes.push(content_change(&old, new, path, no_diff));
            }
        }
    }
    changes.extend(meta.changes(&md, ctx.accounts));
    Ok(changes)
}

/// What still differs after apply wrote the file: type, size, owner, group
/// and mode (the content is what apply itself wrote, then renamed).
pub fn verify(path: &Path, want: &FileWant, ctx: &mut Ctx) -> Result<Vec<Change>> {
    let md = lstat(path)?;
    let ensure = |from: &str, to: &str| vec![Change::new("ensure", Some(from.into()), Some(to.into()))];
    Ok(match (want.presence, md) {
        (Presence::Absent, None) => vec![],
        (Presence::Present, None) if !want.create => vec![],
        (Presence::Absent, Some(m)) => ensure(kind_of(&m), "absent"),
        (Presence::Present, None) => ensure("absent", "file"),
        (Presence::Present, Some(m)) if !m.is_file() => ensure(kind_of(&m), "file"),
        (Presence::Present, Some(m)) => {
            let mut c = Meta::resolve(&want.own, ctx.accounts)?.changes(&m, ctx.accounts);
            if want.replace && want.content.is_some_and(|b| b.len() as u64 != m.size()) {
                c.push(Change::new("content", None, None));
            }
            c
        }
    })
}

/// Reads a file; with `len`, exactly that many bytes (the size lstat gave).
fn read(path: &Path, len: Option<usize>) -> Result<Vec<u8>> {
    let what = || format!("read {}", path.display());
    let mut f = std::fs::File::open(path).map_err(Error::io(what()))?;
    let mut buf = Vec::new();
    match len {
        Some(n) => {
            buf.resize(n, 0);
            f.read_exact(&mut buf).map_err(Error::io(what()))?;
        }
        None => {
            f.read_to_end(&mut buf).map_err(Error::io(what()))?;
        }
    }
    Ok(buf)
}

fn size_change(old: u64, new: usize) -> Change {
    Change::new("content", Some(format!("{old} bytes")), Some(format!("{new} bytes")))
}

/// A content change with a unified diff when both sides are text, or with
/// the sizes when there is no diff to show.
fn content_change(old: &[u8], new: &[u8], path: &Path, no_diff: bool) -> Change {
    if no_diff {
        return size_change(old.len() as u64, new.len());
    }
    let mut c = Change::new("content", None, None);
    match (std::str::from_utf8(old), std::str::from_utf8(new)) {
        (Ok(o), Ok(n)) if o.len() + n.len() <= DIFF_LIMIT => {
            let name = path.display().to_string();
            let diff = TextDiff::from_lines(o, n).unified_diff().context_radius(3).header(&name, &name).to_string();
            c.diff = Some(diff);
        }
        _ => {
            c.from = Some(format!("{} bytes", old.len()));
            c.to = Some(format!("{} bytes", new.len()));
        }
    }
    c
}

/// Applies and commits at once (durable before returning), for resources
/// that act on the file right after writing it (restart a daemon).
pub fn apply_now(path: &Path, want: &FileWant, changes: &[Change], ctx: &mut Ctx) -> Result<()> {
    let mut own = crate::resources::support::staging::Staging::default();
    std::mem::swap(ctx.staging, &mut own);
    let applied = apply(path, want, changes, ctx);
    std::mem::swap(ctx.staging, &mut own);
    applied?;
    match own.commit().1.pop() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

pub fn apply(path: &Path, want: &FileWant, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
    let has = |p: &str| changes.iter().any(|c| c.property == p);
    if want.presence == Presence::Absent {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("remove {}", path.display()))(e)),
        }
        if let Some(p) = path.parent() {
            ctx.staging.note_dir(p);
        }
        return Ok(Applied::Done);
    }
    let meta = Meta::resolve(&want.own, ctx.accounts)?;
    if !(has("ensure") || has("content")) {
        meta.apply(path, changes)?;
        return Ok(Applied::Done);
    }
    // Keep the existing owner and mode unless the recipe sets them.
    let was_absent = changes.iter().any(|c| c.property == "ensure" && c.from.as_deref() == Some("absent"));
    let existing = if was_absent { None } else { lstat(path)?.filter(|m| m.is_file()) };
    let uid = meta.uid.or(existing.as_ref().map(|m| m.uid())).unwrap_or_else(|| nix::unistd::geteuid().as_raw());
    let gid = meta.gid.or(existing.as_ref().map(|m| m.gid())).unwrap_or_else(|| nix::unistd::getegid().as_raw());
    let mode = match (&meta.mode, &existing) {
        (Some(m), Some(e)) => m.resolve(e.mode() & 0o7777, false),
        (Some(m), None) => m.for_new(false),
        (None, Some(e)) => e.mode() & 0o7777,
        (None, None) => 0o644,
    };
    let content = want.content.unwrap_or_default();
    let tmp = crate::state::temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(content)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(format!("write {}", tmp.display()))(e));
    }
    if let Some(cmd) = want.validate {
        if let Err(e) = validate(cmd, &tmp, path, want.sensitive, ctx.runner) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    ctx.staging.add(tmp, path.to_path_buf(), ctx.index);
    Ok(Applied::Staged)
}

/// Runs a `validate` command on the staged content (no shell: words split on
/// blanks, every `%s` replaced by the staged file's path). Fails with the
/// command's output, and the caller leaves the real file untouched.
pub fn validate(cmd: &str, staged: &Path, path: &Path, sensitive: bool, runner: &dyn super::Runner) -> Result<()> {
    let staged = staged.to_string_lossy();
    let words: Vec<String> = cmd.split_whitespace().map(|w| w.replace("%s", &staged)).collect();
    let argv: Vec<&str> = words.iter().map(String::as_str).collect();
    let out = runner.run(&argv, &[], std::time::Duration::from_secs(120))?;
    if matches!(out.exit, crate::system::process::Exit::Code(0)) {
        return Ok(());
    }
    Err(Error::Failed(format!(
        "validate `{cmd}` refused the new content of {} ({}); the file is unchanged:\n{}",
        path.display(),
        out.describe_exit(),
        if sensitive { "(output withheld: the resource is sensitive)".to_string() } else { out.tail(20) }
    )))
}
