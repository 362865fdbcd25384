//! Reading an archive entry by entry (tar, tar.gz, tar.xz, tar.zst, zip; all
//! pure Rust), with every entry's path checked before it is used: absolute
//! paths, `..`, symbolic links that point outside the destination and hard
//! links to outside it are refused, and the total size and number of entries
//! are bounded, so a hostile archive fails before anything is extracted
//! (the check reads it whole before apply writes anything).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tend_model::resources::archive::ArchiveFormat;

use crate::resources::{Error, Result};

/// Entries in one archive, at most.
const MAX_ENTRIES: usize = 1_000_000;
/// The longest entry path or link target.
const MAX_PATH: usize = 4096;
/// Decompressed tar bytes allowed beyond the files' own (headers, names).
const METADATA_SLACK: u64 = 64 << 20;
/// The most memory the xz decoder may use (the largest preset needs 64 MiB).
const XZ_MEM_KB: u32 = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// The target as written in the archive (relative, checked to stay inside).
    Symlink(PathBuf),
    /// The entry it links to, relative to the destination.
    Hardlink(PathBuf),
}

/// One entry, its path relative to the destination (after stripping).
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Permission bits (setuid and setgid are dropped).
    pub mode: u32,
    pub size: u64,
    pub mtime: Option<u64>,
}

pub struct Limits {
    pub strip: usize,
    pub max_bytes: u64,
}

fn show(raw: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(raw))
}

/// The path below the destination after dropping `strip` leading
/// components; None when nothing is left. An error when it would leave
/// the destination.
pub fn inside(raw: &[u8], strip: usize) -> std::result::Result<Option<PathBuf>, String> {
    if raw.len() > MAX_PATH {
        return Err(format!("has a path longer than {MAX_PATH} bytes"));
    }
    if raw.starts_with(b"/") {
        return Err("is an absolute path".into());
    }
    let mut parts = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("leaves the destination (`..`)".into()),
            c if c.contains(&0) => return Err("has a NUL byte in its path".into()),
            c => parts.push(c),
        }
    }
    if parts.len() <= strip {
        return Ok(None);
    }
    Ok(Some(PathBuf::from(OsStr::from_bytes(&parts[strip..].join(&b'/')))))
}

/// Refuses a symbolic link at `entry` whose target resolves outside the destination.
pub fn link_inside(entry: &Path, target: &[u8]) -> std::result::Result<PathBuf, String> {
    let shown = show(target);
    if target.is_empty() || target.len() > MAX_PATH || target.contains(&0) {
        return Err(format!("is a symbolic link with an unusable target {shown}"));
    }
    if target.starts_with(b"/") {
        return Err(format!("is a symbolic link to the absolute path {shown}, outside the destination"));
    }
    // `..` only before the first name: the link's own directory is a real
    // one, so those are exact; after a name (which may itself be a link)
    // the kernel's `..` is not the lexical one.
    let mut depth = entry.components().count().saturating_sub(1);
    let mut named = false;
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if named => {
                return Err(format!("is a symbolic link to {shown}: `..` is accepted only at the start of a target"));
            }
            b".." if depth == 0 => {
                return Err(format!("is a symbolic link to {shown}, outside the destination"));
            }
            b".." => depth -= 1,
            _ => {
                named = true;
                depth += 1;
            }
        }
    }
    Ok(PathBuf::from(OsStr::from_bytes(target)))
}

/// Calls `each` for every entry in archive order, with a reader of its
/// content (empty but for files). Returns the number of entries left
/// after stripping.
pub fn for_each(
    archive: &Path,
    file: File,
    format: ArchiveFormat,
    limits: &Limits,
    mut each: impl FnMut(&Entry, &mut dyn Read) -> Result<()>,
) -> Result<usize> {
    let file = BufReader::new(file);
    let mut seen = Seen { archive, limits, count: 0, kept: 0, bytes: 0, links: Default::default() };
    // The whole decompressed tar stream is bounded too: headers and the
    // long names and PAX records the tar reader reads into memory.
    let bound = limits.max_bytes.saturating_add(METADATA_SLACK);
    match format {
        ArchiveFormat::Tar => tar_entries(file.take(bound), &mut seen, &mut each),
        ArchiveFormat::TarGz => tar_entries(flate2::read::MultiGzDecoder::new(file).take(bound), &mut seen, &mut each),
        ArchiveFormat::TarXz => {
            let dec = lzma_rust2::XzReader::new_mem_limit(file, true, XZ_MEM_KB);
            tar_entries(dec.take(bound), &mut seen, &mut each)
        }
        ArchiveFormat::TarZst => {
            let dec = ruzstd::decoding::StreamingDecoder::new(file)
                .map_err(|e| Error::Failed(format!("{} is not a zstd stream: {e}", archive.display())))?;
            tar_entries(dec.take(bound), &mut seen, &mut each)
        }
        ArchiveFormat::Zip => zip_entries(file.into_inner(), &mut seen, &mut each),
    }?;
    Ok(seen.kept)
}

/// Counts and bounds, and turns raw entries into checked ones.
struct Seen<'a> {
    archive: &'a Path,
    limits: &'a Limits,
    count: usize,
    /// Entries left after stripping.
    kept: usize,
    bytes: u64,
    /// The archive's own symbolic links: nothing is extracted through one.
    links: std::collections::HashSet<PathBuf>,
}

impl Seen<'_> {
    fn refuse(&self, raw: &[u8], why: &str) -> Error {
        Error::Failed(format!("{}: entry {} {why}; nothing was extracted", self.archive.display(), show(raw)))
    }

    fn broken(&self, e: impl std::fmt::Display) -> Error {
        Error::Failed(format!("{} is not a readable archive: {e}", self.archive.display()))
    }

    /// The checked entry; None when stripping leaves nothing of it.
    fn entry(&mut self, raw: &[u8], kind: RawKind, mode: u32, size: u64, mtime: Option<u64>) -> Result<Option<Entry>> {
        self.count += 1;
        if self.count > MAX_ENTRIES {
            return Err(Error::Failed(format!(
                "{} has more than {MAX_ENTRIES} entries; nothing was extracted",
                self.archive.display()
            )));
        }
        let Some(path) = inside(raw, self.limits.strip).map_err(|e| self.refuse(raw, &e))? else {
            return Ok(None);
        };
        self.kept += 1;
        if let Some(link) = path.ancestors().skip(1).find(|a| self.links.contains(*a)) {
            let why = format!("goes through the archive's own symbolic link {}", link.display());
            return Err(self.refuse(raw, &why));
        }
        let kind = match kind {
            RawKind::Dir => EntryKind::Dir,
            RawKind::File => {
                self.bytes = self.bytes.saturating_add(size);
                if self.bytes > self.limits.max_bytes {
                    return Err(Error::Failed(format!(
                        "{} expands to more than max_size ({} bytes); nothing was extracted",
                        self.archive.display(),
                        self.limits.max_bytes
                    )));
                }
                EntryKind::File
            }
            RawKind::Symlink(t) => {
                let target = link_inside(&path, &t).map_err(|e| self.refuse(raw, &e))?;
                self.links.insert(path.clone());
                EntryKind::Symlink(target)
            }
            RawKind::Hardlink(t) => match inside(&t, self.limits.strip) {
                Ok(Some(to)) if to.ancestors().skip(1).any(|a| self.links.contains(a)) => {
                    return Err(self.refuse(raw, "is a hard link through the archive's own symbolic link"));
                }
                Ok(Some(to)) => EntryKind::Hardlink(to),
                _ => {
                    let why = format!(
                        "is a hard link to {}, outside the destination (or removed by strip_components)",
                        show(&t)
                    );
                    return Err(self.refuse(raw, &why));
                }
            },
        };
        Ok(Some(Entry { path, kind, mode: mode & 0o1777, size, mtime }))
    }
}

enum RawKind {
    Dir,
    File,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
}

fn tar_entries(
    r: impl Read,
    seen: &mut Seen,
    each: &mut impl FnMut(&Entry, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    use tar::EntryType as T;
    let mut ar = tar::Archive::new(r);
    for e in ar.entries().map_err(|e| seen.broken(e))? {
        let mut e = e.map_err(|e| seen.broken(e))?;
        let raw = e.path_bytes().into_owned();
        let link = || e.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
        let kind = match e.header().entry_type() {
            T::Regular | T::Continuous => RawKind::File,
            T::Directory => RawKind::Dir,
            T::Symlink => RawKind::Symlink(link()),
            T::Link => RawKind::Hardlink(link()),
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            other => {
                return Err(seen
                    .refuse(&raw, &format!("is a {other:?} entry: only files, directories and links are extracted")));
            }
        };
        let mode = e.header().mode().unwrap_or(0o644);
        let mtime = e.header().mtime().ok();
        let size = e.size();
        if let Some(entry) = seen.entry(&raw, kind, mode, size, mtime)? {
            each(&entry, &mut e)?;
        }
    }
    Ok(())
}

fn zip_entries(file: File, seen: &mut Seen, each: &mut impl FnMut(&Entry, &mut dyn Read) -> Result<()>) -> Result<()> {
    let mut ar = zip::ZipArchive::new(file).map_err(|e| seen.broken(e))?;
    for i in 0..ar.len() {
        let mut f = ar.by_index(i).map_err(|e| seen.broken(e))?;
        let raw = f.name_raw().to_vec();
        let is_dir = f.is_dir();
        let mode = f.unix_mode().unwrap_or(if is_dir { 0o755 } else { 0o644 });
        let size = f.size();
        let kind = if is_dir {
            RawKind::Dir
        } else if f.is_symlink() {
            let mut target = Vec::new();
            (&mut f).take(MAX_PATH as u64 + 1).read_to_end(&mut target).map_err(|e| seen.broken(e))?;
            RawKind::Symlink(target)
        } else {
            RawKind::File
        };
        if let Some(entry) = seen.entry(&raw, kind, mode, size, None)? {
            // The declared size bounds what is read, whatever the stream holds.
            each(&entry, &mut (&mut f).take(size))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_destination() {
        assert_eq!(inside(b"app-1.2/bin/app", 1), Ok(Some(PathBuf::from("bin/app"))));
        assert_eq!(inside(b"./app-1.2/", 1), Ok(None));
        assert_eq!(inside(b"a//b/./c", 0), Ok(Some(PathBuf::from("a/b/c"))));
        assert!(inside(b"/etc/passwd", 0).unwrap_err().contains("absolute"));
        assert!(inside(b"a/../../etc/passwd", 0).unwrap_err().contains(".."));
        assert!(inside(b"top/../x", 1).is_err(), "`..` is refused even where it would be stripped");
    }

    /// A tar with a link `lib -> sub` (inside) and then a file through it.
    #[test]
    fn nothing_is_extracted_through_the_archives_own_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.tar");
        let mut b = tar::Builder::new(File::create(&path).expect("create"));
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "lib", "sub").expect("link");
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "lib/x", &b"x\n"[..]).expect("file");
        b.into_inner().expect("finish");
        let limits = Limits { strip: 0, max_bytes: 1 << 20 };
        let mut seen = Vec::new();
        let file = File::open(&path).expect("open");
        let e = for_each(&path, file, ArchiveFormat::Tar, &limits, |e, _| {
            seen.push(e.path.clone());
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("entry \"lib/x\" goes through the archive's own symbolic link lib"), "{e}");
        assert_eq!(seen, [PathBuf::from("lib")]);
    }

    #[test]
    fn links_may_not_point_out() {
        let at = Path::new("app/lib/libx.so");
        assert_eq!(link_inside(at, b"libx.so.1"), Ok(PathBuf::from("libx.so.1")));
        assert!(link_inside(at, b"../../bin/x").is_ok());
        assert!(link_inside(at, b"../../../etc/shadow").unwrap_err().contains("outside"));
        assert!(link_inside(at, b"/etc/shadow").unwrap_err().contains("absolute"));
        assert!(link_inside(Path::new("x"), b"..").is_err());
        assert!(link_inside(Path::new("x"), b"dot/../y").is_err(), "`dot` may itself be a link to `.`");
    }
}
