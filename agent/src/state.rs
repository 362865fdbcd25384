//! The agent's state directory: the run lock, the disable switch, the last
//! report and the desired-state hashes that tell drift from recipe changes.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("another tend-agent run holds the lock {path} (pid {pid})")]
    Locked { path: PathBuf, pid: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

/// The state directory, created 0700 on first use.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

/// Why converges are switched off, as `tend-agent disable` recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Disabled {
    pub reason: String,
    pub since: String,
    pub by: String,
}

/// Held for the whole run; released when dropped (or when the process dies).
pub struct RunLock {
    _lock: Flock<File>,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn ensure(&self) -> Result<(), StateError> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.root).map_err(io(&self.root))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Takes the run lock, or says which process holds it.
    pub fn lock(&self) -> Result<RunLock, StateError> {
        self.ensure()?;
        let path = self.path("run.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                let _ = lock.set_len(0);
                let _ = lock.rewind();
                let _ = write!(lock, "{}", std::process::id());
                Ok(RunLock { _lock: lock })
            }
            Err((mut file, _)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                Err(StateError::Locked { path, pid: pid.trim().to_string() })
            }
        }
    }

    pub fn disabled(&self) -> Option<Disabled> {
        let bytes = std::fs::read(self.path("disabled.json")).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap_or(Disabled {
            reason: String::from_utf8_lossy(&bytes).trim().to_string(),
            since: String::new(),
            by: String::new(),
        }))
    }

    pub fn disable(&self, reason: &str) -> Result<(), StateError> {
        self.ensure()?;
        let d = Disabled {
            reason: reason.to_string(),
            since: crate::report::now_rfc3339(),
            by: std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "root".into()),
        };
        let path = self.path("disabled.json");
        write_atomic(&path, &serde_json::to_vec_pretty(&d).unwrap_or_default(), 0o600).map_err(io(&path))
    }

    /// Returns true if converges were disabled.
    pub fn enable(&self) -> Result<bool, StateError> {
        let path = self.path("disabled.json");
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The desired-state hash of each resource at the last real run.
    /// Forgets this host's identity and everything learned as it (for an
    /// image: each instance then registers as itself). Keeps the disabled
    /// marker. Returns what was removed.
    pub fn reset_identity(&self) -> Result<Vec<PathBuf>, StateError> {
        let _lock = self.lock()?;
        let mut removed = Vec::new();
        for name in [
            "identity",
            "cache",
            "queue",
            "commands",
            "ec2-facts.json",
            "exec-facts.json",
            "last_report.json",
            "desired.json",
        ] {
            let path = self.path(name);
            let gone = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match gone {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(removed)
    }

    pub fn desired_hashes(&self) -> HashMap<String, u64> {
        std::fs::read(self.path("desired.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub fn save_desired_hashes(&self, hashes: &HashMap<String, u64>) -> Result<(), StateError> {
        let path = self.path("desired.json");
        write_atomic(&path, &serde_json::to_vec(hashes).unwrap_or_default(), 0o600).map_err(io(&path))
    }

    pub fn save_report(&self, json: &[u8]) -> Result<(), StateError> {
        let path = self.path("last_report.json");
        write_atomic(&path, json, 0o600).map_err(io(&path))
    }
}

/// Writes a small file atomically and durably: temporary file in the same
/// directory, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.NAME.tend-PID-N` beside `path`: unique per process and call.
pub fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = PID.get_or_init(std::process::id);
    path.with_file_name(format!(".{name}.tend-{pid}-{n}"))
}

/// True (after saying why) when converges are disabled.
pub fn refused_while_disabled(state: &StateDir) -> bool {
    let Some(d) = state.disabled() else { return false };
    eprintln!(
        "tend-agent is disabled{}{}: {}\nrun `tend-agent enable` to resume converges",
        if d.by.is_empty() { String::new() } else { format!(" by {}", d.by) },
        if d.since.is_empty() { String::new() } else { format!(" since {}", d.since) },
        d.reason
    );
    true
}

/// Records the last report and the desired state of each converged resource.
pub fn save_run<'a>(
    pairs: impl Iterator<Item = (&'a tend_model::CompiledResource, &'a crate::report::ResourceReport)>,
    report: &crate::report::Report,
    mut previous: std::collections::HashMap<String, u64>,
    state: &StateDir,
) -> anyhow::Result<()> {
    let mut hashes = std::collections::HashMap::new();
    for (r, rep) in pairs {
        let id = r.id.to_string();
        match rep.status {
            crate::report::Status::Changed | crate::report::Status::Unchanged => {
                hashes.insert(id, r.desired_hash);
            }
            _ => {
                if let Some(h) = previous.remove(&id) {
                    hashes.insert(id, h);
                }
            }
        }
    }
    state.save_desired_hashes(&hashes)?;
    state.save_report(&serde_json::to_vec_pretty(report)?)?;
    Ok(())
}
