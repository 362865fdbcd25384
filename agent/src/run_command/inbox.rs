//! Invocations on disk (`STATE/commands/ID.json`, 0600): persisted before
//! they are acknowledged, marked running before the process starts, and
//! kept with their result until the server has it. The command id is the
//! deduplication key: a command with a record here never runs again.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tend_model::command::{Delivery, InvocationResult};

use crate::state::{StateDir, write_atomic};

/// Where an invocation is in its life on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Persisted; not started.
    Received,
    /// Its process may have started: it must never be started again.
    Running,
    /// Ended (or refused by the server before it started).
    Finished,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub delivery: Delivery,
    pub phase: Phase,
    pub received_at: String,
    /// The process group of the step running, for the record.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub result: Option<InvocationResult>,
    /// The server has the result.
    #[serde(default)]
    pub result_acked: bool,
}

/// Finished records are kept this long as deduplication markers.
const KEEP: Duration = Duration::from_secs(14 * 86_400);

pub struct Inbox {
    dir: PathBuf,
}

/// Command ids come from the server; only these characters make a file name.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Inbox {
    pub fn new(state: &StateDir) -> anyhow::Result<Inbox> {
        let dir = state.path("commands");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(Inbox { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn load(&self, id: &str) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(self.path(id)).ok()?).ok()
    }

    /// Writes the record durably (temporary file, fsync, rename).
    pub fn save(&self, r: &Record) -> anyhow::Result<()> {
        let id = &r.delivery.command_id;
        anyhow::ensure!(valid_id(id), "command id {id:?} is not valid");
        write_atomic(&self.path(id), &serde_json::to_vec(r)?, 0o600)
            .with_context(|| format!("persisting command {id}"))?;
        Ok(())
    }

    /// Every record, oldest first; finished ones past their keep time are removed.
    pub fn all(&self) -> Vec<Record> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return out };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Some(r) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Record>(&b).ok()) else {
                continue;
            };
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age > KEEP);
            if old && r.phase == Phase::Finished && r.result_acked {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            out.push(r);
        }
        out.sort_by(|a, b| a.received_at.cmp(&b.received_at));
        out
    }
}

use std::os::unix::fs::DirBuilderExt;
