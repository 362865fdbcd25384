//! Small process and filesystem helpers shared by the root filesystem builder and the hosts.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The tools the harness runs, and the packages that bring them on Debian.
const TOOLS: &[&str] = &["debootstrap", "systemd-nspawn", "nsenter", "cp"];

/// Absolute paths of the external tools, checked once.
pub(crate) struct Tools {
    pub debootstrap: PathBuf,
    pub nspawn: PathBuf,
    pub nsenter: PathBuf,
    pub cp: PathBuf,
}

/// Finds the tools on `PATH` (plus the sbin directories, which root's `PATH` may lack), or panics
/// with what to install.
pub(crate) fn tools() -> &'static Tools {
    static TOOLS_FOUND: std::sync::OnceLock<Tools> = std::sync::OnceLock::new();
    TOOLS_FOUND.get_or_init(|| {
        let found: Vec<Option<PathBuf>> = TOOLS.iter().map(|t| which(t)).collect();
        let missing: Vec<&str> = TOOLS.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(t, _)| *t).collect();
        if !missing.is_empty() {
            panic!(
                "tend-e2e needs {} on this machine (missing: {}). Run `.ci/run`, or install them with \
                 `apt-get install debootstrap systemd-container` (as root).",
                TOOLS.join(", "),
                missing.join(", ")
            );
        }
        let mut found = found.into_iter().map(|f| f.expect("checked above"));
        Tools {
            debootstrap: found.next().expect("debootstrap"),
            nspawn: found.next().expect("systemd-nspawn"),
            nsenter: found.next().expect("nsenter"),
            cp: found.next().expect("cp"),
        }
    })
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The environment commands get inside a guest: nothing from the test process leaks in.
pub(crate) const GUEST_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("LANG", "C.UTF-8"),
    ("HOME", "/root"),
    ("USER", "root"),
    ("LOGNAME", "root"),
    ("SHELL", "/bin/sh"),
    ("TERM", "dumb"),
    ("DEBIAN_FRONTEND", "noninteractive"),
];

/// Runs `cmd` to completion, killing it after `timeout`. Returns `None` on timeout.
pub(crate) fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Option<Output> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn a command");
    // Drain both pipes on threads so that a chatty command cannot block on a full pipe.
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a command") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            kill_and_reap(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    status.map(|status| Output { status, stdout, stderr })
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of a text file (or a note saying it could not be read).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// FNV-1a, 64 bits: a hash that is the same on every toolchain and machine, for cache keys.
pub(crate) fn fnv1a64(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        // A separator byte that cannot occur in the parts keeps ["ab","c"] and ["a","bc"] apart.
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), to tell a live process from a
/// later one that reuses its id.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The children of process `pid`, from `/proc/PID/task/*/children`.
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

/// Whether `pid` is the init (PID 1) of a PID namespace below ours: its `NSpid:` line has more than
/// one id and the last one is 1.
pub(crate) fn is_namespace_init(pid: u32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|ids| {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            ids.len() > 1 && ids.last() == Some(&"1")
        })
        .unwrap_or(false)
}

/// The command line of process `pid`, split at NUL bytes.
pub(crate) fn cmdline(pid: u32) -> Vec<OsString> {
    use std::os::unix::ffi::OsStringExt;
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| OsString::from_vec(a.to_vec())).collect())
        .unwrap_or_default()
}

/// The ids of all processes on the machine.
pub(crate) fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect())
        .unwrap_or_default()
}

/// Mount points at or below `dir` in this process's mount namespace.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|mount| mount.starts_with(dir))
        .collect()
}

/// Undoes the octal escapes (`\040` for a space, ...) of `/proc/self/mountinfo`.
fn unescape_mount_path(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Ok(code) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("x"), 8) {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

/// Resolves an absolute path inside a guest whose tree is at `root` on this machine: follows its
/// symbolic links the way the guest would (an absolute link target starts again at the guest's
/// `/`, `..` stops at it), so a link can never lead out of the tree. Returns the resolved path as
/// the guest sees it (absolute); `root.join(resolved.strip_prefix("/"))` is where it is here.
pub(crate) fn resolve_guest_path(root: &Path, guest: &Path) -> PathBuf {
    assert!(guest.is_absolute(), "a guest path must be absolute: {}", guest.display());
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: Vec<OsString> = components(guest);
    pending.reverse(); // a stack: the next component is at the end
    let mut links_followed = 0;
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some(".") => continue,
            Some("..") => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        resolved.push(part);
        let on_host: PathBuf = root.join(resolved.iter().collect::<PathBuf>());
        let Ok(target) = fs::read_link(&on_host) else { continue };
        links_followed += 1;
        assert!(links_followed <= 40, "too many symbolic links resolving {} in the guest", guest.display());
        resolved.pop();
        if target.is_absolute() {
            resolved.clear();
        }
        let mut target_parts = components(&target);
        target_parts.reverse();
        pending.extend(target_parts);
    }
    Path::new("/").join(resolved.iter().collect::<PathBuf>())
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir => Some(".".into()),
            Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_stay_inside_the_root() {
        let root = PathBuf::from(format!("/var/tmp/tend-e2e-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("etc")).expect("mkdir etc");
        fs::create_dir_all(root.join("run/x")).expect("mkdir run/x");
        std::os::unix::fs::symlink("/run/x", root.join("etc/abs")).expect("symlink abs");
        std::os::unix::fs::symlink("../run/x/f", root.join("etc/rel")).expect("symlink rel");
        std::os::unix::fs::symlink("/../../../../etc", root.join("escape")).expect("symlink escape");

        let resolve = |p: &str| resolve_guest_path(&root, Path::new(p));
        assert_eq!(resolve("/etc/abs/f"), Path::new("/run/x/f"));
        assert_eq!(resolve("/etc/rel"), Path::new("/run/x/f"));
        assert_eq!(resolve("/escape/passwd"), Path::new("/etc/passwd"));
        assert_eq!(resolve("/../../etc/./hostname"), Path::new("/etc/hostname"));
        assert_eq!(resolve("/"), Path::new("/"));
        fs::remove_dir_all(&root).expect("clean up");
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(fnv1a64(&[]), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a64(&["ab", "c"]), fnv1a64(&["a", "bc"]));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount_path("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mount_path("/plain"), PathBuf::from("/plain"));
    }
}
