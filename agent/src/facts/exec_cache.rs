//! The cache of executable facts: `exec-facts.json` in the state directory.
//! An entry is used while it is younger than the cache time and the program
//! is unchanged (same path, modification time and size). Only successful
//! runs are kept, so a failing program runs again the next time.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const FILE_NAME: &str = "exec-facts.json";

/// What identifies a version of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub mtime_s: i64,
    pub mtime_ns: i64,
    pub size: u64,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp { mtime_s: meta.mtime(), mtime_ns: meta.mtime_nsec(), size: meta.size() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    stamp: Stamp,
    /// When it ran, in milliseconds since the Unix epoch.
    ran_at_ms: u64,
    facts: Map<String, Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    /// Program path → its last successful output.
    entries: BTreeMap<String, Entry>,
}

/// The cache, read once per gathering (and only when there are programs).
#[derive(Debug)]
pub struct Cache {
    path: Option<PathBuf>,
    ttl_ms: u64,
    now_ms: u64,
    file: File,
    dirty: bool,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Cache {
    /// The cache in `dir` (None, or a zero `ttl`: no cache).
    pub fn open(dir: Option<&Path>, ttl: Duration) -> Cache {
        Cache::open_at(dir, ttl, now_ms())
    }

    fn open_at(dir: Option<&Path>, ttl: Duration, now_ms: u64) -> Cache {
        let path = dir.filter(|_| !ttl.is_zero()).map(|d| d.join(FILE_NAME));
        let file = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| match serde_json::from_slice(&bytes) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::debug!(error = %e, "unreadable executable facts cache; ignored");
                    None
                }
            })
            .unwrap_or_default();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        Cache { path, ttl_ms, now_ms, file, dirty: false }
    }

    /// The facts of the last run of this version of `program`, if recent enough.
    pub fn get(&self, program: &str, stamp: Stamp) -> Option<&Map<String, Value>> {
        self.path.as_ref()?;
        let e = self.file.entries.get(program)?;
        let age = self.now_ms.checked_sub(e.ran_at_ms)?;
        (e.stamp == stamp && age < self.ttl_ms).then_some(&e.facts)
    }

    /// Records a successful run.
    pub fn put(&mut self, program: &str, stamp: Stamp, facts: &Map<String, Value>) {
        if self.path.is_none() {
            return;
        }
        let entry = Entry { stamp, ran_at_ms: self.now_ms, facts: facts.clone() };
        self.file.entries.insert(program.to_string(), entry);
        self.dirty = true;
    }

    /// Forgets a program (it failed, or is gone).
    pub fn forget(&mut self, program: &str) {
        self.dirty |= self.file.entries.remove(program).is_some();
    }

    /// Forgets every program not in `programs`.
    pub fn keep_only(&mut self, programs: &[&str]) {
        let before = self.file.entries.len();
        self.file.entries.retain(|p, _| programs.contains(&p.as_str()));
        self.dirty |= self.file.entries.len() != before;
    }

    /// Writes the cache (atomically, mode 0600) if it changed.
    pub fn save(&self) {
        let Some(path) = self.path.as_ref().filter(|_| self.dirty) else { return };
        let bytes = match serde_json::to_vec(&self.file) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(error = %e, "could not encode the executable facts cache");
                return;
            }
        };
        if let Err(e) = crate::state::write_atomic(path, &bytes, 0o600) {
            tracing::debug!(error = %e, path = %path.display(), "could not write the executable facts cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp { mtime_s: 1_700_000_000, mtime_ns: 5, size: 42 };

    fn facts() -> Map<String, Value> {
        serde_json::from_value(serde_json::json!({ "role": "web" })).unwrap()
    }

    #[test]
    fn hit_while_fresh_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(300);
        let mut c = Cache::open_at(Some(dir.path()), ttl, 1_000_000);
        assert!(c.get("/f/a", STAMP).is_none());
        c.put("/f/a", STAMP, &facts());
        c.save();
        let later = Cache::open_at(Some(dir.path()), ttl, 1_000_000 + 299_999);
        assert_eq!(later.get("/f/a", STAMP), Some(&facts()));
        let changed = Stamp { size: 43, ..STAMP };
        assert!(later.get("/f/a", changed).is_none());
        let touched = Stamp { mtime_ns: 6, ..STAMP };
        assert!(later.get("/f/a", touched).is_none());
        assert!(later.get("/f/b", STAMP).is_none());
        let expired = Cache::open_at(Some(dir.path()), ttl, 1_000_000 + 300_000);
        assert!(expired.get("/f/a", STAMP).is_none());
        // A clock that went back does not make an entry fresh forever.
        let past = Cache::open_at(Some(dir.path()), ttl, 999_999);
        assert!(past.get("/f/a", STAMP).is_none());
    }

    #[test]
    fn no_cache_without_a_directory_or_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut off = Cache::open_at(Some(dir.path()), Duration::ZERO, 1);
        off.put("/f/a", STAMP, &facts());
        off.save();
        assert!(!dir.path().join(FILE_NAME).exists());
        let mut none = Cache::open_at(None, Duration::from_secs(60), 1);
        none.put("/f/a", STAMP, &facts());
        assert!(none.get("/f/a", STAMP).is_none());
    }

    #[test]
    fn forgotten_and_removed_programs_leave_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(60);
        let mut c = Cache::open_at(Some(dir.path()), ttl, 1);
        c.put("/f/a", STAMP, &facts());
        c.put("/f/b", STAMP, &facts());
        c.put("/f/c", STAMP, &facts());
        c.forget("/f/a");
        c.keep_only(&["/f/a", "/f/b"]);
        c.save();
        let again = Cache::open_at(Some(dir.path()), ttl, 2);
        assert_eq!(again.file.entries.keys().collect::<Vec<_>>(), ["/f/b"]);
        std::fs::write(dir.path().join(FILE_NAME), "not json").unwrap();
        assert!(Cache::open_at(Some(dir.path()), ttl, 2).get("/f/b", STAMP).is_none());
    }
}
