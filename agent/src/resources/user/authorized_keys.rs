//! `~/.ssh/authorized_keys` for the `user` type: read and compared without
//! following a symlink below the home directory (the user controls it, and
//! root must not be led to write elsewhere), written atomically with the
//! owner and modes sshd requires.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use similar::TextDiff;

use super::{KEYS_READ_LIMIT, count};
use crate::report::Change;
use crate::resources::{Error, Result};

/// The home the keys go in and who must own them, once this run is done.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeysTarget {
    pub(crate) user: String,
    pub(crate) home: PathBuf,
    pub(crate) uid: u32,
    /// None in a dry-run where the primary group does not exist yet.
    pub(crate) gid: Option<u32>,
}

/// The file the recipe asks for: one key a line.
pub(crate) fn keys_content(keys: &[String]) -> String {
    keys.iter().map(|k| format!("{}\n", k.trim())).collect()
}

/// What is on disk now under the home directory.
#[derive(Debug)]
pub(crate) struct OnDisk {
    /// ~/.ssh, when it exists.
    dir: Option<FileStat>,
    /// ~/.ssh/authorized_keys, when it exists (lstat: a symlink is itself).
    file: Option<FileStat>,
    /// Its content, when it is a regular file of a sane size.
    content: Option<Vec<u8>>,
}

pub(crate) fn is(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

pub(crate) fn nix_err(what: String) -> impl FnOnce(Errno) -> Error {
    move |e| Error::Io { context: what, source: std::io::Error::from(e) }
}

pub(crate) fn open_home(t: &KeysTarget) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match nix::fcntl::open(&t.home, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Err(Error::Failed(format!(
            "home directory {} of user {} does not exist (needed for ssh_authorized_keys)",
            t.home.display(),
            t.user
        ))),
        Err(e) => Err(nix_err(format!("open {}", t.home.display()))(e)),
    }
}

/// Opens ~/.ssh without following a symlink: the user controls their home,
/// and root must not be led to write elsewhere.
pub(crate) fn open_ssh_dir(home: &OwnedFd, t: &KeysTarget) -> Result<Option<OwnedFd>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match nix::fcntl::openat(home, ".ssh", flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => Err(Error::Failed(format!(
            "{}/.ssh is not a directory (a symlink or a file); refusing to manage ssh_authorized_keys",
            t.home.display()
        ))),
        Err(e) => Err(nix_err(format!("open {}/.ssh", t.home.display()))(e)),
    }
}

pub(crate) fn read_keys(t: &KeysTarget) -> Result<OnDisk> {
    let path = t.home.join(".ssh/authorized_keys");
    let home = open_home(t)?;
    let Some(dir) = open_ssh_dir(&home, t)? else {
        return Ok(OnDisk { dir: None, file: None, content: None });
    };
    let dir_st = nix::sys::stat::fstat(&dir).map_err(nix_err(format!("stat {}/.ssh", t.home.display())))?;
    let file = match nix::sys::stat::fstatat(&dir, "authorized_keys", AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(OnDisk { dir: Some(dir_st), file: None, content: None }),
        Err(e) => return Err(nix_err(format!("stat {}", path.display()))(e)),
    };
    let mut content = None;
    if is(&file, SFlag::S_IFREG) && (file.st_size as u64) <= KEYS_READ_LIMIT {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&dir, "authorized_keys", flags, Mode::empty())
            .map_err(nix_err(format!("open {}", path.display())))?;
        let mut buf = Vec::new();
        File::from(fd)
            .take(KEYS_READ_LIMIT + 1)
            .read_to_end(&mut buf)
            .map_err(Error::io(format!("read {}", path.display())))?;
        content = Some(buf);
    }
    Ok(OnDisk { dir: Some(dir_st), file: Some(file), content })
}

/// The file's content (None: missing), for edits of single keys; fails on a
/// file that is not regular or too large to read.
pub(crate) fn read_content(t: &KeysTarget) -> Result<Option<Vec<u8>>> {
    let found = read_keys(t)?;
    match (found.file, found.content) {
        (None, _) => Ok(None),
        (Some(_), Some(c)) => Ok(Some(c)),
        (Some(_), None) => Err(Error::Failed(format!(
            "{}/.ssh/authorized_keys is not a regular file of at most {KEYS_READ_LIMIT} bytes",
            t.home.display()
        ))),
    }
}

/// Owner or mode problems of a file, as words for the report.
pub(crate) fn meta_problems(what: &str, st: &FileStat, t: &KeysTarget, mode: u32) -> Vec<String> {
    let mut out = Vec::new();
    let have = st.st_mode & 0o7777;
    if have != mode {
        out.push(format!("{what} mode {have:04o}"));
    }
    if st.st_uid != t.uid || t.gid.is_some_and(|g| g != st.st_gid) {
        out.push(format!("{what} owned by {}:{}", st.st_uid, st.st_gid));
    }
    out
}

/// The change to ~/.ssh/authorized_keys, if any: content, or owner and mode
/// of the file and of ~/.ssh.
pub(crate) fn keys_change(t: &KeysTarget, keys: &[String], diffs: bool) -> Result<Option<Change>> {
    let want = keys_content(keys);
    let found = read_keys(t)?;
    let mut problems = Vec::new();
    if let Some(d) = &found.dir {
        problems.extend(meta_problems("~/.ssh", d, t, 0o700));
    }
    let from = match (&found.file, &found.content) {
        (None, _) => None,
        (Some(_), Some(c)) => {
            if *c != want.as_bytes() {
                let n = String::from_utf8_lossy(c)
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .count();
                problems.insert(0, count(n));
            }
            if let Some(f) = &found.file {
                problems.extend(meta_problems("file", f, t, 0o600));
            }
            (!problems.is_empty()).then(|| problems.join(", "))
        }
        (Some(f), None) if is(f, SFlag::S_IFREG) => Some("a file too large to read".to_string()),
        (Some(_), None) => Some("not a regular file".to_string()),
    };
    let missing = found.file.is_none();
    if !missing && from.is_none() {
        return Ok(None);
    }
    let mut c = Change::new("ssh_authorized_keys", from, Some(count(keys.len())));
    if diffs {
        if let Some(old) = found.content.as_deref().and_then(|b| std::str::from_utf8(b).ok()) {
            if old != want {
                let name = t.home.join(".ssh/authorized_keys").display().to_string();
                c.diff = Some(
                    TextDiff::from_lines(old, want.as_str())
                        .unified_diff()
                        .context_radius(3)
                        .header(&name, &name)
                        .to_string(),
                );
            }
        }
    }
    Ok(Some(c))
}

/// Writes ~/.ssh/authorized_keys atomically (temporary file in ~/.ssh,
/// fsync, rename), ~/.ssh 0700 and the file 0600, both owned by the user and
/// its primary group. Never follows a symlink below the home directory.
pub(crate) fn write_keys(t: &KeysTarget, content: &[u8]) -> Result<()> {
    let ssh = t.home.join(".ssh");
    let path = ssh.join("authorized_keys");
    let home = open_home(t)?;
    match nix::sys::stat::mkdirat(&home, ".ssh", Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(nix_err(format!("mkdir {}", ssh.display()))(e)),
    }
    let dir =
        open_ssh_dir(&home, t)?.ok_or_else(|| Error::Failed(format!("{} vanished while writing", ssh.display())))?;
    let gid = t.gid;
    let own = |f: &File, what: &Path, mode: u32| -> Result<()> {
        std::os::unix::fs::fchown(f, Some(t.uid), gid).map_err(Error::io(format!("chown {}", what.display())))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(Error::io(format!("chmod {}", what.display())))
    };
    let dir = File::from(dir);
    own(&dir, &ssh, 0o700)?;

    let tmp = crate::state::temp_path(Path::new("authorized_keys"));
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(&dir, &tmp, flags, Mode::from_bits_truncate(0o600))
        .map_err(nix_err(format!("create {}", ssh.join(&tmp).display())))?;
    let mut f = File::from(fd);
    let written = (|| -> Result<()> {
        f.write_all(content).map_err(Error::io(format!("write {}", ssh.join(&tmp).display())))?;
        own(&f, &path, 0o600)?;
        f.sync_all().map_err(Error::io(format!("fsync {}", ssh.join(&tmp).display())))?;
        nix::fcntl::renameat(&dir, &tmp, &dir, "authorized_keys")
            .map_err(nix_err(format!("rename to {}", path.display())))
    })();
    if let Err(e) = written {
        let _ = nix::unistd::unlinkat(&dir, &tmp, nix::unistd::UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    dir.sync_all().map_err(Error::io(format!("fsync {}", ssh.display())))
}
