//! Batched durability for file writes. Each changed file is written to a
//! temporary file beside its target; the batch is then made durable with one
//! syncfs per filesystem (or one fsync per file for small batches), renamed
//! into place, and the directories are fsynced. A crash at any point leaves
//! each target either old or new, never partial.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::resources::Error;

/// Below this many files, one fsync each is cheaper than a syncfs.
const FSYNC_EACH_BELOW: usize = 16;

struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    index: usize,
}

#[derive(Default)]
pub struct Staging {
    items: Vec<Staged>,
    dirs: BTreeSet<PathBuf>,
}

impl Staging {
    pub fn add(&mut self, tmp: PathBuf, target: PathBuf, index: usize) {
        if let Some(p) = target.parent() {
            self.dirs.insert(p.to_path_buf());
        }
        self.items.push(Staged { tmp, target, index });
    }

    /// A directory whose entries changed and must be fsynced at commit.
    pub fn note_dir(&mut self, dir: &Path) {
        self.dirs.insert(dir.to_path_buf());
    }

    pub fn contains(&self, index: usize) -> bool {
        self.items.iter().any(|s| s.index == index)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.dirs.is_empty()
    }

    /// Commits the batch. Returns the resources (by plan index) that were
    /// committed and those that failed.
    pub fn commit(&mut self) -> (Vec<usize>, Vec<(usize, Error)>) {
        let items = std::mem::take(&mut self.items);
        let dirs = std::mem::take(&mut self.dirs);
        let mut failed = Vec::new();
        let mut done = Vec::new();
        if let Err(e) = make_durable(&items) {
            for s in items {
                let _ = std::fs::remove_file(&s.tmp);
                failed.push((s.index, Error::Failed(format!("could not make {} durable: {e}", s.target.display()))));
            }
            return (done, failed);
        }
        for s in items {
            match std::fs::rename(&s.tmp, &s.target) {
                Ok(()) => done.push(s.index),
                Err(e) => {
                    let _ = std::fs::remove_file(&s.tmp);
                    failed.push((s.index, Error::io(format!("rename into {}", s.target.display()))(e)));
                }
            }
        }
        for d in dirs {
            if let Err(e) = File::open(&d).and_then(|f| f.sync_all()) {
                tracing::warn!(dir = %d.display(), error = %e, "could not fsync directory");
            }
        }
        (done, failed)
    }
}

fn make_durable(items: &[Staged]) -> std::io::Result<()> {
    if items.len() < FSYNC_EACH_BELOW {
        for s in items {
            File::open(&s.tmp)?.sync_all()?;
        }
        return Ok(());
    }
    let mut devices = BTreeSet::new();
    for s in items {
        let dir = s.tmp.parent().unwrap_or(Path::new("/"));
        let dev = std::fs::metadata(dir)?.dev();
        if devices.insert(dev) {
            nix::unistd::syncfs(File::open(dir)?).map_err(std::io::Error::from)?;
        }
    }
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        for s in &self.items {
            let _ = std::fs::remove_file(&s.tmp);
        }
    }
}
