//! Shared support for the agent's integration tests: each test gets a scratch
//! directory with a root to converge, a state directory and an empty custom
//! facts directory, and runs the built `tend-agent` binary against them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_tend-agent");

/// The repository root (for `recipes/` and `tests/fixtures/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let s = Scratch { dir: tempfile::tempdir().expect("tempdir") };
        for d in ["root/etc", "root/srv", "root/var/lib", "root/var/log", "facts.d"] {
            std::fs::create_dir_all(s.path().join(d)).expect("mkdir");
        }
        s
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> PathBuf {
        self.path().join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    /// `tend-agent` with this scratch's state and facts, and no EC2 probe.
    pub fn agent(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("TEND_STATE_DIR", self.state())
            .env("TEND_FACTS_DIR", self.path().join("facts.d"))
            .env("TEND_EC2", "off")
            .env("NO_COLOR", "1");
        c
    }

    /// `tend-agent apply RECIPE --param root=ROOT EXTRA...`
    pub fn apply(&self, recipe: &Path, extra: &[&str]) -> Output {
        let mut c = self.agent();
        c.arg("apply").arg(recipe).arg("--param").arg(format!("root={}", self.root().display()));
        c.args(extra);
        c.output().expect("run tend-agent")
    }

    /// Writes a recipe file into the scratch directory.
    pub fn recipe(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write recipe");
        p
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses a JSON report from stdout (`--output json`).
pub fn report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

/// Path → (mode, uid, gid, content hash) for every entry under `dir`.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, (u32, u32, u32, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            let hash = if md.is_file() { fnv(&std::fs::read(&p).expect("read")) } else { 0 };
            if md.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p, (md.mode(), md.uid(), md.gid(), hash));
        }
    }
    out
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3))
}
