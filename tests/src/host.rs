//! Booted, disposable test hosts: a copy of the cached tree under `systemd-nspawn -b`.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{rootfs, sys};

/// How long a host may take to reach `running` (or `degraded`).
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a host may take to power off after `SIGTERM` before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The network a host gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// This machine's network (no network namespace): `apt-get` inside reaches the registry.
    Shared,
    /// Its own network namespace with only a loopback interface (`--private-network`).
    Private,
}

/// How to boot a [`Host`].
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// The machine name, also the guest's host name. It must be unique among running hosts;
    /// [`BootOptions::new`] makes one from a prefix, the process id and a counter.
    pub name: String,
    /// The host's network.
    pub network: Network,
    /// Read-only binds: (path on this machine, path in the guest).
    pub binds_ro: Vec<(PathBuf, PathBuf)>,
    /// Read-write binds: (path on this machine, path in the guest).
    pub binds_rw: Vec<(PathBuf, PathBuf)>,
    /// Capabilities added to the container's default set (`CAP_SYS_RESOURCE`).
    pub capabilities: Vec<String>,
}

impl BootOptions {
    /// Options for a host named `<prefix>-<pid>-<counter>`, on a private network, with no binds.
    pub fn new(prefix: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let mut prefix: String = prefix
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .take(40)
            .collect();
        if prefix.is_empty() {
            prefix.push_str("host");
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        BootOptions {
            name: format!("{prefix}-{}-{n}", std::process::id()),
            network: Network::Private,
            binds_ro: Vec::new(),
            binds_rw: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    /// Sets the network.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Adds a read-only bind of `host` (on this machine) at `guest`.
    pub fn bind_ro(mut self, host: impl Into<PathBuf>, guest: impl Into<PathBuf>) -> Self {
        self.binds_ro.push((host.into(), guest.into()));
        self
    }

    /// Adds a capability to the container's (as `systemd-nspawn --capability=`).
    pub fn capability(mut self, cap: &str) -> Self {
        self.capabilities.push(cap.to_string());
        self
    }

    /// Adds a read-write bind of `host` (on this machine) at `guest`.
    pub fn bind_rw(mut self, host: impl Into<PathBuf>, guest: impl Into<PathBuf>) -> Self {
        self.binds_rw.push((host.into(), guest.into()));
        self
    }
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions::new("host")
    }
}

/// A booted Debian host: a private copy of the cached tree running under `systemd-nspawn -b`.
///
/// Dropping it powers the guest off (killing it after 10 s) and deletes the copy, also when the
/// test panics.
#[derive(Debug)]
pub struct Host {
    name: String,
    dir: PathBuf,
    root: PathBuf,
    log: PathBuf,
    nspawn: Option<Child>,
    /// The container's PID 1 (its systemd) as seen from this machine, and its start time.
    init: Option<(u32, u64)>,
}

impl Host {
    /// Copies the cached tree (building it first if needed), boots it and waits until
    /// `systemctl is-system-running` says `running` or `degraded` (then the failed units are
    /// printed to stderr). Panics, with the end of the console log, if that takes over 60 s.
    pub fn boot(opts: BootOptions) -> Host {
        let rootfs = rootfs::rootfs();
        let hosts = hosts_dir();
        sweep_stale_hosts(hosts);
        check_name(&opts.name);

        let dir = hosts.join(&opts.name);
        fs::create_dir_all(hosts).unwrap_or_else(|e| panic!("create {}: {e}", hosts.display()));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {} (is the name unique?): {e}", dir.display()));
        let me = std::process::id();
        fs::write(dir.join("owner"), format!("{me} {}\n", sys::start_time(me).expect("own start time")))
            .expect("write the host's owner file");
        // From here on, dropping `host` cleans up whatever exists.
        let mut host = Host {
            name: opts.name.clone(),
            root: dir.join("root"),
            log: dir.join("nspawn.log"),
            dir,
            nspawn: None,
            init: None,
        };

        let copy_started = Instant::now();
        let status = Command::new(&sys::tools().cp)
            .arg("-a")
            .arg("--reflink=auto")
            .arg(rootfs)
            .arg(&host.root)
            .stdin(Stdio::null())
            .status()
            .expect("run cp");
        assert!(status.success(), "copying {} to {} failed: {status}", rootfs.display(), host.root.display());
        fs::write(host.root.join("etc/hostname"), format!("{}\n", host.name)).expect("write /etc/hostname");
        fs::write(host.root.join("etc/hosts"), rootfs::hosts_file(&host.name)).expect("write /etc/hosts");

        let started = Instant::now();
        host.spawn_nspawn(&opts);
        host.wait_running(started + BOOT_TIMEOUT);
        eprintln!(
            "tend-e2e: host {} up: copy {:.1} s, boot {:.1} s",
            host.name,
            (started - copy_started).as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        host
    }

    fn spawn_nspawn(&mut self, opts: &BootOptions) {
        let log = File::create(&self.log).unwrap_or_else(|e| panic!("create {}: {e}", self.log.display()));
        let mut cmd = Command::new(&sys::tools().nspawn);
        cmd.args(["-q", "-b", "--register=no", "--keep-unit"]).arg("-D").arg(&self.root).arg("-M").arg(&self.name);
        if opts.network == Network::Private {
            cmd.arg("--private-network");
        }
        if !opts.capabilities.is_empty() {
            cmd.arg(format!("--capability={}", opts.capabilities.join(",")));
        }
        for (flag, binds) in [("--bind-ro=", &opts.binds_ro), ("--bind=", &opts.binds_rw)] {
            for (on_host, in_guest) in binds {
                assert!(on_host.is_absolute() && in_guest.is_absolute(), "bind paths must be absolute");
                let mut arg = flag.to_owned().into_bytes();
                arg.extend(escape_bind(on_host.as_os_str()));
                arg.push(b':');
                arg.extend(escape_bind(in_guest.as_os_str()));
                cmd.arg(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&arg));
            }
        }
        let child = cmd
            .env_clear()
            .env("PATH", sys::GUEST_ENV[0].1)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .expect("spawn systemd-nspawn");
        self.nspawn = Some(child);
    }

    /// Finds the container's PID 1, then polls `systemctl is-system-running` until it is up.
    fn wait_running(&mut self, deadline: Instant) {
        let nspawn_pid = self.nspawn.as_ref().expect("nspawn started").id();
        let mut last = String::new();
        while Instant::now() < deadline {
            self.check_nspawn_alive();
            if self.init.is_none() {
                self.init = sys::children(nspawn_pid)
                    .into_iter()
                    .find(|&pid| sys::is_namespace_init(pid))
                    .and_then(|pid| Some((pid, sys::start_time(pid)?)));
            }
            if self.init.is_some() {
                let mut cmd = self.command("systemctl", ["is-system-running"]);
                if let Some(out) = sys::output_with_timeout(&mut cmd, Duration::from_secs(10)) {
                    last = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    match last.as_str() {
                        "running" => return,
                        "degraded" => {
                            let failed = self.sh("systemctl --failed --no-pager --no-legend");
                            eprintln!(
                                "tend-e2e: host {} booted degraded; failed units:\n{}",
                                self.name,
                                String::from_utf8_lossy(&failed.stdout)
                            );
                            return;
                        }
                        _ => {}
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "host {} did not boot within {} s (last state: {:?}); the end of {}:\n{}",
            self.name,
            BOOT_TIMEOUT.as_secs(),
            last,
            self.log.display(),
            sys::tail(&self.log, 40)
        );
    }

    fn check_nspawn_alive(&mut self) {
        let child = self.nspawn.as_mut().expect("nspawn started");
        if let Some(status) = child.try_wait().expect("wait for systemd-nspawn") {
            self.nspawn = None;
            panic!(
                "systemd-nspawn for host {} exited ({status}); the end of {}:\n{}",
                self.name,
                self.log.display(),
                sys::tail(&self.log, 40)
            );
        }
    }

    /// The machine name, also the guest's host name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory on this machine holding the guest's root filesystem (its `/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The guest's PID 1 (its systemd), as a process id on this machine.
    pub fn pid(&self) -> u32 {
        self.init.expect("the host is booted").0
    }

    /// The systemd-nspawn log: the guest's console output.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// A command that runs `program` inside the guest (through `nsenter` into all of its
    /// namespaces), with a clean environment: the guest's `PATH`, `LANG=C.UTF-8`, `HOME=/root`,
    /// `DEBIAN_FRONTEND=noninteractive`. Add environment or stdin as with any [`Command`].
    pub fn command<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&sys::tools().nsenter);
        cmd.arg("-t").arg(self.pid().to_string()).arg("-a").arg("--").arg(program).args(args);
        cmd.env_clear().envs(sys::GUEST_ENV.iter().copied());
        cmd
    }

    /// Runs `/bin/sh -c script` inside the guest and returns its output, whatever its exit code.
    pub fn sh(&self, script: &str) -> Output {
        self.command("/bin/sh", ["-c", script]).output().expect("run nsenter")
    }

    /// Runs `/bin/sh -c script` inside the guest and returns its stdout; panics with the exit
    /// status, stdout and stderr if it fails.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        if !out.status.success() {
            panic!(
                "on host {}: `{script}` failed ({})\n--- stdout\n{}\n--- stderr\n{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout).expect("the command's stdout is UTF-8")
    }

    /// Writes `bytes` to the absolute guest path `path`, creating missing parent directories.
    ///
    /// It writes through [`Host::root`] on this machine (symbolic links are followed as in the
    /// guest and never lead out of it); a path on a mount of the guest's own (`/tmp`, `/run`, a
    /// bind...) is written from inside instead. New files are owned by root.
    pub fn write(&self, path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) {
        let (path, bytes) = (path.as_ref(), bytes.as_ref());
        match self.on_root_mount(path) {
            Some(on_host) => {
                if let Some(parent) = on_host.parent() {
                    fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
                }
                fs::write(&on_host, bytes).unwrap_or_else(|e| panic!("write {}: {e}", on_host.display()));
            }
            None => {
                let script = r#"mkdir -p "$(dirname "$1")" && cat > "$1""#;
                let mut child = self
                    .command("/bin/sh", [OsStr::new("-c"), OsStr::new(script), OsStr::new("sh"), path.as_os_str()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run nsenter");
                child.stdin.take().expect("piped stdin").write_all(bytes).expect("send the file to the guest");
                let out = child.wait_with_output().expect("wait for nsenter");
                assert!(
                    out.status.success(),
                    "on host {}: writing {} failed: {}",
                    self.name,
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    /// Reads the absolute guest path `path` as UTF-8 text (see [`Host::write`] for how).
    pub fn read(&self, path: impl AsRef<Path>) -> String {
        let path = path.as_ref();
        let bytes = match self.on_root_mount(path) {
            Some(on_host) => fs::read(&on_host).unwrap_or_else(|e| panic!("read {}: {e}", on_host.display())),
            None => {
                let out = self.command("cat", [path.as_os_str()]).output().expect("run nsenter");
                assert!(
                    out.status.success(),
                    "on host {}: reading {} failed: {}",
                    self.name,
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        };
        String::from_utf8(bytes).unwrap_or_else(|_| panic!("{} is not UTF-8", path.display()))
    }

    /// Where the guest path `path` is on this machine, if it lies on the guest's root mount (and
    /// not on a mount of the guest's own, which this machine does not see).
    fn on_root_mount(&self, path: &Path) -> Option<PathBuf> {
        let resolved = sys::resolve_guest_path(&self.root, path);
        let mountinfo = fs::read_to_string(format!("/proc/{}/mountinfo", self.pid())).unwrap_or_default();
        let deepest_mount = mountinfo
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(PathBuf::from)
            .filter(|mount| resolved.starts_with(mount))
            .max_by_key(|mount| mount.components().count());
        match deepest_mount {
            Some(mount) if mount != Path::new("/") => None,
            _ => Some(self.root.join(resolved.strip_prefix("/").expect("resolved paths are absolute"))),
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if std::thread::panicking() && self.log.exists() {
            eprintln!(
                "tend-e2e: host {} console (end of {}):\n{}",
                self.name,
                self.log.display(),
                sys::tail(&self.log, 20)
            );
        }
        if let Some(mut child) = self.nspawn.take() {
            stop(&mut child, self.init);
        }
        remove_host_dir(&self.dir);
    }
}

/// Powers a guest off: `SIGTERM` to systemd-nspawn (it then shuts the guest down), and after
/// [`SHUTDOWN_TIMEOUT`] `SIGKILL` to the guest's PID 1 (which ends all of its processes) and to
/// nspawn. Reaps nspawn.
fn stop(child: &mut Child, init: Option<(u32, u64)>) {
    let nspawn = Pid::from_raw(child.id() as i32);
    let _ = kill(nspawn, Signal::SIGTERM);
    let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some((pid, started)) = init {
        // Only if it is still the same process, not a new one that got its id.
        if sys::start_time(pid) == Some(started) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Deletes a host's directory, unless something is still mounted below it (then deleting could
/// reach into the mounted file system: it is left, with a warning).
fn remove_host_dir(dir: &Path) {
    let mounts = sys::mounts_under(dir);
    if !mounts.is_empty() {
        eprintln!("tend-e2e: not removing {}: still mounted below it: {mounts:?}", dir.display());
        return;
    }
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            eprintln!("tend-e2e: could not remove {}: {e}", dir.display());
        }
        _ => {}
    }
}

/// Where the hosts' copies live: `$TEND_E2E_HOSTS` if set; else `/dev/shm/tend-e2e-hosts` when
/// `/dev/shm` allows set-user-id programs (sudo) and executables and has 4 GiB free; else
/// `<cache>/hosts`. Never `/tmp`.
///
/// Memory first because creating files is slow on this machine's disk (about 1 ms each): copying
/// the tree (about 10,000 files) takes about 9 s to the disk and under 1 s to `/dev/shm`.
pub fn hosts_dir() -> &'static Path {
    static HOSTS: OnceLock<PathBuf> = OnceLock::new();
    HOSTS.get_or_init(|| match std::env::var_os("TEND_E2E_HOSTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ if memory_is_suitable(Path::new("/dev/shm")) => PathBuf::from("/dev/shm/tend-e2e-hosts"),
        _ => rootfs::cache_dir().join("hosts"),
    })
}

// `fsblkcnt_t` and `c_ulong` are `u64` on 64-bit Linux only.
#[allow(clippy::useless_conversion)]
fn memory_is_suitable(dir: &Path) -> bool {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let Ok(st) = statvfs(dir) else { return false };
    let unusable = FsFlags::ST_NOSUID | FsFlags::ST_NOEXEC | FsFlags::ST_RDONLY;
    let free = u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
    !st.flags().intersects(unusable) && free >= 4 << 30
}

/// Once per process: stops and deletes hosts left by test processes that died without dropping
/// them (killed by a signal, say), so they cannot pile up.
fn sweep_stale_hosts(hosts: &Path) {
    static SWEPT: Once = Once::new();
    SWEPT.call_once(|| {
        let Ok(entries) = fs::read_dir(hosts) else { return };
        for entry in entries.flatten() {
            let dir = entry.path();
            if !owner_is_gone(&dir) {
                continue;
            }
            eprintln!("tend-e2e: removing the stale host {}", dir.display());
            let root = dir.join("root");
            let mut killed = Vec::new();
            for pid in sys::all_pids() {
                let args = sys::cmdline(pid);
                let is_nspawn = args.first().is_some_and(|a| Path::new(a).ends_with("systemd-nspawn"));
                if is_nspawn && args.windows(2).any(|w| w[0] == "-D" && Path::new(&w[1]) == root) {
                    // Its children: the guest's PID 1, whose death ends every process of the guest.
                    for child in sys::children(pid) {
                        let _ = kill(Pid::from_raw(child as i32), Signal::SIGKILL);
                    }
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    killed.push(pid);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && killed.iter().any(|&pid| sys::start_time(pid).is_some()) {
                std::thread::sleep(Duration::from_millis(50));
            }
            remove_host_dir(&dir);
        }
    });
}

/// Whether the process that created a host directory is gone (a directory without an owner file
/// counts as gone once it is a minute old).
fn owner_is_gone(dir: &Path) -> bool {
    match fs::read_to_string(dir.join("owner")) {
        Ok(text) => {
            let mut words = text.split_whitespace().map(|w| w.parse::<u64>().ok());
            match (words.next().flatten(), words.next().flatten()) {
                (Some(pid), Some(started)) => u32::try_from(pid).ok().and_then(sys::start_time) != Some(started),
                _ => true,
            }
        }
        Err(_) => fs::metadata(dir)
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60))
            .unwrap_or(false),
    }
}

/// Checks that a machine name is a valid host name, as systemd-nspawn requires.
fn check_name(name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.']);
    assert!(ok, "{name:?} is not a valid machine name (letters, digits, '-', '.'; at most 64)");
}

/// Escapes `\` and `:` in a path for systemd-nspawn's `--bind=SRC:DST`.
fn escape_bind(path: &OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for &b in path.as_bytes() {
        if b == b'\\' || b == b':' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_valid() {
        let a = BootOptions::new("My Test_1");
        let b = BootOptions::new("My Test_1");
        assert_ne!(a.name, b.name);
        assert!(a.name.starts_with("my-test-1-"), "{}", a.name);
        check_name(&a.name);
        check_name(&BootOptions::new("").name);
    }

    #[test]
    fn bind_paths_are_escaped() {
        assert_eq!(escape_bind(OsStr::new("/a:b\\c")), b"/a\\:b\\\\c".to_vec());
    }
}
