//! The cached Debian root filesystem that every test host is copied from.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::sys;

/// The Debian release the hosts run.
pub const SUITE: &str = "bookworm";

/// The debootstrap variant: the smallest base, plus [`PACKAGES`].
pub const VARIANT: &str = "minbase";

/// The packages installed on top of the minimal base. Changing this list changes the cache key,
/// so the next run builds a new tree.
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "cron",
    "passwd",
    "chrony",
    "procps",
    "iproute2",
    "ca-certificates",
    "login",
    "sudo",
    "openssh-client",
    "openssh-server",
    "curl",
];

/// The host name written into the cached tree (each booted host then gets its own machine name).
pub const HOSTNAME: &str = "tend-e2e";

/// Bump when the way the tree is built or prepared changes, so old caches are not reused.
const HARNESS_VERSION: &str = "2";

/// The cache directory: `$TEND_E2E_CACHE` if set, else `/var/cache/tend-e2e`.
///
/// It holds the built trees (`rootfs-<key>/`), their build logs, the lock file that serializes
/// builders, and, when memory is not used for them, the per-host copies (see
/// [`hosts_dir`](crate::hosts_dir)).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("TEND_E2E_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/var/cache/tend-e2e"),
    }
}

/// The cache key: a hash of the package list, the suite, the variant and the harness version.
pub fn cache_key() -> String {
    let packages = PACKAGES.join(",");
    format!("{:016x}", sys::fnv1a64(&[HARNESS_VERSION, SUITE, VARIANT, &packages]))
}

/// The prepared root filesystem, built on first use (about a minute) and reused afterwards, by
/// this process and by later runs. Safe to call from many threads and many processes at once.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        sys::tools();
        let cache = cache_dir();
        fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("create the cache dir {}: {e}", cache.display()));
        let _lock = lock(&cache.join("rootfs.lock"));
        let done = cache.join(format!("rootfs-{}", cache_key()));
        if !done.is_dir() {
            build(&cache, &done);
        }
        done
    })
}

/// Takes the exclusive lock that serializes builders (released when the returned guard drops).
fn lock(path: &Path) -> Flock<File> {
    let open = || {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open the lock file {}: {e}", path.display()))
    };
    match Flock::lock(open(), FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((file, Errno::EWOULDBLOCK)) => {
            eprintln!("tend-e2e: another process is building the root filesystem; waiting for it");
            Flock::lock(file, FlockArg::LockExclusive).unwrap_or_else(|(_, e)| panic!("lock {}: {e}", path.display()))
        }
        Err((_, e)) => panic!("lock {}: {e}", path.display()),
    }
}

/// Builds the tree into a temporary sibling of `done` and renames it into place when complete.
/// The caller holds the lock.
fn build(cache: &Path, done: &Path) {
    let name = done.file_name().and_then(|n| n.to_str()).expect("the rootfs dir has a UTF-8 name");
    // Leftovers of interrupted builds: nobody else builds while we hold the lock.
    for entry in fs::read_dir(cache).expect("list the cache dir").flatten() {
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(&format!("{name}.tmp-"))) {
            fs::remove_dir_all(entry.path())
                .unwrap_or_else(|e| panic!("remove the unfinished build {}: {e}", entry.path().display()));
        }
    }
    let tmp = cache.join(format!("{name}.tmp-{}", std::process::id()));
    let log_path = cache.join(format!("{name}.log"));
    let mirror = mirror();
    eprintln!(
        "tend-e2e: building the {SUITE} root filesystem in {} from {mirror} (about a minute; log: {})",
        done.display(),
        log_path.display()
    );
    let started = Instant::now();

    let log = File::create(&log_path).unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
    let status = Command::new(&sys::tools().debootstrap)
        .arg(format!("--variant={VARIANT}"))
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&tmp)
        .arg(&mirror)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log file handle"))
        .stderr(log)
        .status()
        .expect("run debootstrap");
    if !status.success() {
        let _ = fs::remove_dir_all(&tmp);
        panic!("debootstrap failed ({status}); the end of {}:\n{}", log_path.display(), sys::tail(&log_path, 30));
    }

    prepare(&tmp);
    // The rename is the commit point: make the tree durable first.
    nix::unistd::sync();
    fs::rename(&tmp, done).unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), done.display()));
    eprintln!("tend-e2e: built the root filesystem in {:.1} s", started.elapsed().as_secs_f64());
}

/// One-time preparation of a freshly bootstrapped tree for booting under systemd-nspawn.
fn prepare(root: &Path) {
    let put = |guest: &str, text: &str| {
        let path = root.join(guest.trim_start_matches('/'));
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    };

    // An empty machine id: systemd-nspawn then gives each boot its own (transient) id, and it is
    // not a "first boot" (which would run preset-all and change which units are enabled).
    put("/etc/machine-id", "");
    let dbus_id = root.join("var/lib/dbus/machine-id");
    if dbus_id.symlink_metadata().is_ok() {
        fs::remove_file(&dbus_id).expect("remove the bootstrapped D-Bus machine id");
    }
    if dbus_id.parent().is_some_and(Path::is_dir) {
        std::os::unix::fs::symlink("/etc/machine-id", &dbus_id).expect("link the D-Bus machine id");
    }

    put("/etc/hostname", &format!("{HOSTNAME}\n"));
    put("/etc/hosts", &hosts_file(HOSTNAME));

    // apt inside uses the same Debian sources as this machine.
    let deb822 = Path::new("/etc/apt/sources.list.d/debian.sources");
    let list = Path::new("/etc/apt/sources.list");
    if deb822.is_file() {
        let text = fs::read_to_string(deb822).expect("read this machine's debian.sources");
        put("/etc/apt/sources.list.d/debian.sources", &text);
        // debootstrap wrote a one-line sources.list for the same mirror: drop the duplicate.
        let _ = fs::remove_file(root.join("etc/apt/sources.list"));
    } else if list.is_file() {
        let text = fs::read_to_string(list).expect("read this machine's sources.list");
        put("/etc/apt/sources.list", &text);
    }

    // sshd is there for tests that check its configuration (`sshd -t`), but it must not start at
    // boot: a host on the shared network would listen on this machine's port 22.
    for link in ["etc/systemd/system/multi-user.target.wants/ssh.service", "etc/systemd/system/sshd.service"] {
        let _ = fs::remove_file(root.join(link));
    }

    // What `apt-get clean` does: drop the downloaded packages and the package caches.
    for dir in ["var/cache/apt/archives", "var/cache/apt"] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".deb") || name.ends_with(".bin") {
                fs::remove_file(entry.path()).expect("remove a cached package");
            }
        }
    }

    let mut marker = File::create(root.join("etc/tend-e2e-rootfs")).expect("create the rootfs marker");
    writeln!(marker, "key={}\nsuite={SUITE}\npackages={}", cache_key(), PACKAGES.join(","))
        .expect("write the rootfs marker");
}

/// An `/etc/hosts` for a guest named `hostname`.
pub(crate) fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
    )
}

/// The Debian mirror this machine uses, from the `URIs:` line of
/// `/etc/apt/sources.list.d/debian.sources`, else from `/etc/apt/sources.list`.
pub fn mirror() -> String {
    let deb822 = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok();
    let list = fs::read_to_string("/etc/apt/sources.list").ok();
    deb822
        .as_deref()
        .and_then(|t| mirror_from_deb822(t, SUITE))
        .or_else(|| list.as_deref().and_then(|t| mirror_from_list(t, SUITE)))
        .expect(
            "no Debian mirror found in /etc/apt/sources.list.d/debian.sources (URIs:) \
             nor /etc/apt/sources.list (deb lines)",
        )
}

/// The first URI of the deb822 stanza for `suite`, else of the first non-security `deb` stanza.
fn mirror_from_deb822(text: &str, suite: &str) -> Option<String> {
    let mut stanzas: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            stanzas.push(Vec::new());
        } else if line.starts_with('#') {
            continue;
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = stanzas.last_mut().and_then(|s| s.last_mut()) {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            stanzas.last_mut().expect("one stanza").push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let field = |s: &[(String, String)], key: &str| {
        s.iter().find(|(k, _)| k == key).map(|(_, v)| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    };
    let candidates: Vec<(Vec<String>, Vec<String>)> = stanzas
        .iter()
        .filter(|s| field(s, "enabled").is_none_or(|v| v.first().map(String::as_str) != Some("no")))
        .filter(|s| field(s, "types").is_some_and(|t| t.iter().any(|t| t == "deb")))
        .filter_map(|s| Some((field(s, "uris")?, field(s, "suites").unwrap_or_default())))
        .filter(|(uris, _)| !uris.is_empty())
        .collect();
    candidates
        .iter()
        .find(|(_, suites)| suites.iter().any(|s| s == suite))
        .or_else(|| candidates.iter().find(|(_, suites)| !suites.iter().any(|s| s.contains("security"))))
        .map(|(uris, _)| uris[0].clone())
}

/// The URI of the first `deb` line for `suite` in a one-line-style sources.list, else of the
/// first non-security `deb` line.
fn mirror_from_list(text: &str, suite: &str) -> Option<String> {
    let entries: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("deb "))
        .filter_map(|rest| {
            let rest = rest.trim_start();
            // Skip the options in brackets: `deb [signed-by=...] URI SUITE COMPONENTS`.
            let rest = if rest.starts_with('[') { &rest[rest.find(']')? + 1..] } else { rest };
            let mut words = rest.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect();
    entries
        .iter()
        .find(|(_, s)| s == suite)
        .or_else(|| entries.iter().find(|(_, s)| !s.contains("security")))
        .map(|(uri, _)| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_from_deb822_prefers_the_suite() {
        let text = "Types: deb\n# a comment\nURIs: http://security.example/debian-security\n\
                    Suites: bookworm-security\nComponents: main\n\n\
                    Types: deb deb-src\nURIs: http://mirror.example/debian http://other.example/debian\n\
                    Suites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(mirror_from_deb822(text, "bookworm").as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(mirror_from_deb822(text, "trixie").as_deref(), Some("http://mirror.example/debian"));
        let disabled = "Enabled: no\nTypes: deb\nURIs: http://off.example/\nSuites: bookworm\n";
        assert_eq!(mirror_from_deb822(disabled, "bookworm"), None);
    }

    #[test]
    fn mirror_from_one_line_list() {
        let text = "# deb http://commented.example/ bookworm main\n\
                    deb [signed-by=/k.gpg] http://security.example/ bookworm-security main\n\
                    deb http://mirror.example/debian bookworm main\n";
        assert_eq!(mirror_from_list(text, "bookworm").as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(mirror_from_list("", "bookworm"), None);
    }

    #[test]
    fn cache_key_depends_on_the_package_list() {
        let key = cache_key();
        assert_eq!(key.len(), 16);
        let other = format!("{:016x}", sys::fnv1a64(&[HARNESS_VERSION, SUITE, VARIANT, "systemd"]));
        assert_ne!(key, other);
    }
}
