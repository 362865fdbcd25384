//! `archive`: an archive on the host extracted into a directory. The check
//! reads the whole archive (every path checked: nothing absolute, no `..`,
//! no link out of the destination; size and entry count bounded) and
//! compares each entry with the disk (type, size and content, mode, link
//! target, owner when one is given), so drift below the destination is
//! repaired; with `creates`, an existing path skips all of it. Apply streams
//! each file entry to a temporary file beside its target and renames it into
//! place only when the bytes differ (an unchanged file keeps its inode, and
//! is only given its mode and owner). Nothing is written through a symbolic
//! link found on disk below the destination, nor through one of the
//! archive's own links; the destination itself may be a link the admin made.

use std::collections::HashSet;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tend_model::resource::Kind;
use tend_model::resources::Ownership;
use tend_model::resources::archive::ArchiveProps;
use tend_model::{CompiledResource, Spec};

use super::support::fsmeta::{Meta, kind_of, lstat};
use super::support::staging::Staging;
use super::support::unpack::{Entry, EntryKind, Limits, for_each};
use super::{Applied, Ctx, Error, ResourceType, Result, download, mismatch};
use crate::report::Change;

pub struct ArchiveType;

/// How many differing entries a change names.
const SHOWN: usize = 5;

fn props(r: &CompiledResource) -> Result<&ArchiveProps> {
    match &r.spec {
        Spec::Archive(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

fn limits(p: &ArchiveProps) -> Limits {
    Limits { strip: p.strip_components as usize, max_bytes: p.max_size }
}

fn ownership(p: &ArchiveProps) -> Ownership {
    Ownership { owner: p.owner.clone(), group: p.group.clone(), mode: None }
}

fn format(p: &ArchiveProps) -> Result<tend_model::resources::archive::ArchiveFormat> {
    p.format().ok_or_else(|| Error::Failed(format!("{}: unknown archive format", p.source)))
}

/// Whether the plan downloads the source in this run (dry-run: not there yet).
fn downloaded(ctx: &Ctx, source: &str) -> bool {
    ctx.plan.resources.iter().any(|r| r.enabled && r.id.kind == Kind::Download && r.id.name == source)
}

/// Whether a `download` of the source in this plan expects other content
/// than the file has now (so a real run would extract the new one).
fn replaced_by_download(ctx: &Ctx, p: &ArchiveProps) -> Result<bool> {
    let want = ctx.plan.resources.iter().find_map(|r| match &r.spec {
        Spec::Download(d) if r.enabled && r.id.name == p.source => Some(d.sha256.clone()),
        _ => None,
    });
    match want {
        Some(Some(sha)) => Ok(!download::hash_file(Path::new(&p.source))?.eq_ignore_ascii_case(&sha)),
        _ => Ok(false),
    }
}

/// The archive, opened once: the checksum (if given) is of the very file
/// whose entries are then read, so swapping the path after the check
/// changes nothing. Check and apply each verify it.
fn open_verified(p: &ArchiveProps) -> Result<File> {
    let path = Path::new(&p.source);
    let mut f = File::open(path).map_err(Error::io(format!("read {}", p.source)))?;
    let Some(want) = &p.sha256 else { return Ok(f) };
    let have = download::hash_reader(&mut f, path)?;
    if !have.eq_ignore_ascii_case(want) {
        return Err(Error::Failed(format!(
            "checksum mismatch for {}: expected {}, got {have}; nothing was extracted",
            p.source,
            want.to_ascii_lowercase()
        )));
    }
    f.seek(SeekFrom::Start(0)).map_err(Error::io(format!("read {}", p.source)))?;
    Ok(f)
}

/// The directories from `dest` down to the entry's parent: false when one is
/// missing; an error when one is a symbolic link or not a directory.
fn parents_ok(dest: &Path, rel: &Path, known: &mut HashSet<PathBuf>) -> Result<bool> {
    let mut at = dest.to_path_buf();
    let Some(parent) = rel.parent() else { return Ok(true) };
    for c in parent.components() {
        at.push(c);
        if known.contains(&at) {
            continue;
        }
        match lstat(&at)? {
            None => return Ok(false),
            Some(m) if m.is_dir() => {
                known.insert(at.clone());
            }
            Some(m) => return Err(in_the_way(&at, &m, "a directory")),
        }
    }
    Ok(true)
}

fn in_the_way(path: &Path, md: &Metadata, wanted: &str) -> Error {
    let extra = if md.file_type().is_symlink() { "; tend never extracts through a link" } else { "" };
    Error::Failed(format!(
        "{} is a {}, where the archive has {wanted}{extra}; nothing below it was extracted",
        path.display(),
        kind_of(md)
    ))
}

/// A directory where the archive has a file or link: refused (never removed).
fn refuse_dir(path: &Path, md: &Option<Metadata>, wanted: &str) -> Result<()> {
    match md {
        Some(m) if m.is_dir() => Err(in_the_way(path, m, wanted)),
        _ => Ok(()),
    }
}

fn owned(md: &Metadata, meta: &Meta) -> bool {
    meta.pending_owner.is_none()
        && meta.pending_group.is_none()
        && meta.uid.is_none_or(|u| u == md.uid())
        && meta.gid.is_none_or(|g| g == md.gid())
}

/// Whether two streams hold the same bytes.
fn same_bytes(mut a: impl Read, mut b: impl Read) -> std::io::Result<bool> {
    let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(b.read(&mut y[..1])? == 0);
        }
        if b.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

/// Whether the entry differs from the disk.
fn differs(dest: &Path, e: &Entry, content: &mut dyn Read, meta: &Meta, known: &mut HashSet<PathBuf>) -> Result<bool> {
    if !parents_ok(dest, &e.path, known)? {
        return Ok(true);
    }
    let path = dest.join(&e.path);
    let md = lstat(&path)?;
    let what = || format!("read {}", path.display());
    Ok(match &e.kind {
        EntryKind::Dir => match &md {
            None => true,
            Some(m) if m.is_dir() => !owned(m, meta) || m.mode() & 0o1777 != e.mode,
            Some(m) => return Err(in_the_way(&path, m, "a directory")),
        },
        EntryKind::File => {
            refuse_dir(&path, &md, "a file")?;
            match &md {
                Some(m) if m.is_file() && owned(m, meta) && m.mode() & 0o1777 == e.mode && m.len() == e.size => {
                    let f = File::open(&path).map_err(Error::io(what()))?;
                    !same_bytes(content, f).map_err(Error::io(what()))?
                }
                _ => true,
            }
        }
        EntryKind::Symlink(target) => {
            refuse_dir(&path, &md, "a symbolic link")?;
            match &md {
                Some(m) if m.file_type().is_symlink() && owned(m, meta) => {
                    std::fs::read_link(&path).map_err(Error::io(what()))? != *target
                }
                _ => true,
            }
        }
        EntryKind::Hardlink(to) => {
            refuse_dir(&path, &md, "a hard link")?;
            let other = lstat(&dest.join(to))?;
            !matches!((&md, &other), (Some(a), Some(b)) if a.ino() == b.ino() && a.dev() == b.dev())
        }
    })
}

/// Owner and group (when given) and mode of one extracted path.
fn set_meta(path: &Path, meta: &Meta, mode: Option<u32>) -> Result<()> {
    let what = || format!("chown/chmod {}", path.display());
    if meta.uid.is_some() || meta.gid.is_some() {
        std::os::unix::fs::lchown(path, meta.uid, meta.gid).map_err(Error::io(what()))?;
    }
    if let Some(m) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).map_err(Error::io(what()))?;
    }
    Ok(())
}

/// Creates the missing directories from `dest` down to the entry's parent.
fn make_parents(dest: &Path, rel: &Path, meta: &Meta, known: &mut HashSet<PathBuf>) -> Result<()> {
    if parents_ok(dest, rel, known)? {
        return Ok(());
    }
    let mut at = dest.to_path_buf();
    for c in rel.parent().into_iter().flat_map(Path::components) {
        at.push(c);
        if lstat(&at)?.is_none() {
            std::fs::create_dir(&at).map_err(Error::io(format!("create {}", at.display())))?;
            set_meta(&at, meta, Some(0o755))?;
        }
    }
    parents_ok(dest, rel, known).map(|_| ())
}

/// Replaces `path` by what `make` puts at a temporary path beside it.
fn replace(path: &Path, make: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = crate::state::temp_path(path);
    let done = make(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(Error::io(format!("rename into {}", path.display()))));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Streams a file entry into `tmp` with its mode, owner and time, synced.
fn write_file(tmp: &Path, e: &Entry, content: &mut dyn Read, meta: &Meta) -> Result<File> {
    let what = || format!("write {}", tmp.display());
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(tmp)
        .map_err(Error::io(what()))?;
    std::io::copy(content, &mut f).map_err(Error::io(what()))?;
    f.flush().map_err(Error::io(what()))?;
    if meta.uid.is_some() || meta.gid.is_some() {
        std::os::unix::fs::fchown(&f, meta.uid, meta.gid).map_err(Error::io(what()))?;
    }
    f.set_permissions(std::fs::Permissions::from_mode(e.mode)).map_err(Error::io(what()))?;
    if let Some(t) = e.mtime.and_then(|t| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(t))) {
        let _ = f.set_modified(t);
    }
    f.sync_all().map_err(Error::io(what()))?;
    Ok(f)
}

/// Extracts one entry where it differs.
fn extract(dest: &Path, e: &Entry, content: &mut dyn Read, meta: &Meta, known: &mut HashSet<PathBuf>) -> Result<()> {
    make_parents(dest, &e.path, meta, known)?;
    let path = dest.join(&e.path);
    let md = lstat(&path)?;
    match &e.kind {
        EntryKind::Dir => match &md {
            None => {
                std::fs::create_dir(&path).map_err(Error::io(format!("create {}", path.display())))?;
                set_meta(&path, meta, Some(e.mode))?;
            }
            Some(m) if m.is_dir() => {
                if !owned(m, meta) || m.mode() & 0o1777 != e.mode {
                    set_meta(&path, meta, Some(e.mode))?;
                }
            }
            Some(m) => return Err(in_the_way(&path, m, "a directory")),
        },
        EntryKind::File => {
            refuse_dir(&path, &md, "a file")?;
            let tmp = crate::state::temp_path(&path);
            let written = write_file(&tmp, e, content, meta);
            let same = written.and_then(|_| match &md {
                Some(m) if m.is_file() && m.len() == e.size => {
                    let what = || format!("read {}", path.display());
                    let (a, b) =
                        (File::open(&tmp).map_err(Error::io(what()))?, File::open(&path).map_err(Error::io(what()))?);
                    same_bytes(a, b).map_err(Error::io(what()))
                }
                _ => Ok(false),
            });
            match same {
                // Unchanged content keeps its inode: only owner and mode are fixed.
                Ok(true) => {
                    let _ = std::fs::remove_file(&tmp);
                    set_meta(&path, meta, Some(e.mode))?;
                }
                Ok(false) => {
                    if let Err(err) = std::fs::rename(&tmp, &path) {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(Error::io(format!("rename into {}", path.display()))(err));
                    }
                }
                Err(err) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(err);
                }
            }
        }
        EntryKind::Symlink(target) => {
            refuse_dir(&path, &md, "a symbolic link")?;
            let same = md.as_ref().is_some_and(|m| m.file_type().is_symlink())
                && std::fs::read_link(&path).is_ok_and(|t| t == *target);
            if !same {
                replace(&path, |tmp| {
                    std::os::unix::fs::symlink(target, tmp).map_err(Error::io(format!("link {}", tmp.display())))?;
                    set_meta(tmp, meta, None)
                })?;
            } else {
                set_meta(&path, meta, None)?;
            }
        }
        EntryKind::Hardlink(to) => {
            refuse_dir(&path, &md, "a hard link")?;
            // Its target is reached through real directories only, as an entry is.
            if !parents_ok(dest, to, known)? {
                return Err(Error::Failed(format!(
                    "{}: the target of hard link {} is missing",
                    dest.display(),
                    e.path.display()
                )));
            }
            let from = dest.join(to);
            let other = lstat(&from)?;
            if matches!((&md, &other), (Some(a), Some(b)) if a.ino() == b.ino() && a.dev() == b.dev()) {
                return Ok(());
            }
            replace(&path, |tmp| {
                std::fs::hard_link(&from, tmp).map_err(Error::io(format!(
                    "link {} to {}",
                    tmp.display(),
                    from.display()
                )))
            })?;
        }
    }
    Ok(())
}

impl ResourceType for ArchiveType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let dest = Path::new(&r.id.name);
        if let Some(c) = &p.creates {
            if lstat(Path::new(c))?.is_some() {
                return Ok(vec![]);
            }
        }
        let source = Path::new(&p.source);
        let to = format!("extracted from {}", p.source);
        if lstat(source)?.is_none() {
            if ctx.dry_run && downloaded(ctx, &p.source) {
                return Ok(vec![Change::new(
                    "entries",
                    Some("absent".into()),
                    Some(format!("{to} (downloaded in this run)")),
                )]);
            }
            return Err(Error::Failed(format!("the archive {} does not exist", p.source)));
        }
        // Dry-run: a download in this run that replaces the archive.
        if ctx.dry_run && replaced_by_download(ctx, p)? {
            return Ok(vec![Change::new(
                "entries",
                Some(format!("{} as it is", p.source)),
                Some(format!("{to} (downloaded in this run)")),
            )]);
        }
        let file = open_verified(p)?;
        // The destination itself: present, or (dry-run) created earlier in this run.
        let is_dir = lstat(dest)?.is_some_and(|m| m.is_dir()) || (ctx.dry_run && ctx.dirs.contains(dest));
        if !is_dir {
            return Err(Error::Failed(format!(
                "{} does not exist (declare it with a directory resource)",
                dest.display()
            )));
        }
        let meta = Meta::resolve_in(&ownership(p), ctx)?;
        let (mut differ, mut shown, mut known) = (0usize, Vec::new(), HashSet::new());
        let total = for_each(source, file, format(p)?, &limits(p), |e, content| {
            if differs(dest, e, content, &meta, &mut known)? {
                differ += 1;
                if shown.len() < SHOWN {
                    shown.push(e.path.display().to_string());
                }
            }
            Ok(())
        })?;
        if differ == 0 {
            return Ok(vec![]);
        }
        let first = if differ > shown.len() { format!("first {}: ", shown.len()) } else { String::new() };
        Ok(vec![Change::new(
            "entries",
            Some(format!("{differ} of {total} entries differ: {first}{}", shown.join(", "))),
            Some(to),
        )])
    }

    fn apply(&self, r: &CompiledResource, _changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let dest = Path::new(&r.id.name);
        let meta = Meta::resolve(&ownership(p), ctx.accounts)?;
        let staging: &mut Staging = ctx.staging;
        let mut known = HashSet::new();
        let mut dirs = HashSet::new();
        let file = open_verified(p)?;
        for_each(Path::new(&p.source), file, format(p)?, &limits(p), |e, content| {
            extract(dest, e, content, &meta, &mut known)?;
            if let Some(parent) = dest.join(&e.path).parent() {
                dirs.insert(parent.to_path_buf());
            }
            Ok(())
        })?;
        for d in &dirs {
            staging.note_dir(d);
        }
        Ok(Applied::Done)
    }
}
