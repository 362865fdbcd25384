//! `sysctl`: a kernel parameter, applied live through `/proc/sys` and
//! persisted in `/etc/sysctl.d/` so that it holds after a boot. The running
//! value is written first, so a value the kernel refuses is never persisted.
//! `state: absent` removes the persisted file and leaves the running value.

use std::path::{Path, PathBuf};

use tend_model::resources::Presence;
use tend_model::resources::sysctl::SysctlProps;
use tend_model::{CompiledResource, Spec};

use super::file::FileWant;
use super::support::edit::Part;
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct SysctlType;

const SYSCTL_D: &str = "/etc/sysctl.d";

fn props(r: &CompiledResource) -> Result<&SysctlProps> {
    match &r.spec {
        Spec::Sysctl(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

/// The key's file under /proc/sys. As sysctl(8) reads it: with a `/` in the
/// key the dots are literal (`net.ipv4.conf.eth0/1.rp_filter` is not), else
/// dots separate.
pub fn proc_path(key: &str) -> PathBuf {
    let rel = if key.contains('/') { key.to_string() } else { key.replace('.', "/") };
    Path::new("/proc/sys").join(rel)
}

/// Values compare with blanks normalised (the kernel separates several
/// numbers with tabs).
fn normalised(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn running(key: &str) -> Result<String> {
    let path = proc_path(key);
    match std::fs::read_to_string(&path) {
        Ok(v) => Ok(normalised(&v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::Failed(format!("{key}: no such kernel parameter ({} does not exist)", path.display())))
        }
        Err(e) => Err(Error::io(format!("read {}", path.display()))(e)),
    }
}

struct Persisted {
    path: PathBuf,
    content: Option<String>,
}

fn persisted(key: &str, p: &SysctlProps, id: &str) -> Persisted {
    Persisted {
        path: Path::new(SYSCTL_D).join(p.file_name(key)),
        content: p.value.as_deref().map(|v| format!("# Managed by tend ({id}).\n{key} = {}\n", normalised(v))),
    }
}

impl Persisted {
    fn part(&self, presence: Presence) -> Part<'_> {
        Part { path: &self.path, want: FileWant::system(presence, self.content.as_deref().map(str::as_bytes)) }
    }
}

impl ResourceType for SysctlType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let key = r.id.name.as_str();
        let file = persisted(key, p, &r.id.to_string());
        let mut changes = Vec::new();
        if let (Presence::Present, Some(v)) = (p.state, &p.value) {
            let now = running(key)?;
            if now != normalised(v) {
                changes.push(Change::new("value", Some(now), Some(normalised(v))));
            }
        }
        changes.extend(file.part(p.state).check(ctx)?);
        Ok(changes)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let key = r.id.name.as_str();
        if let (true, Some(v)) = (changes.iter().any(|c| c.property == "value"), &p.value) {
            let path = proc_path(key);
            std::fs::write(&path, format!("{}\n", normalised(v))).map_err(|e| {
                let why = match e.raw_os_error() {
                    Some(nix::libc::EROFS) => {
                        " (/proc/sys is read-only here: a container without its own namespace for this key)".to_string()
                    }
                    Some(nix::libc::EINVAL) => " (the kernel refused the value)".to_string(),
                    _ => String::new(),
                };
                Error::Failed(format!("could not set {key} to {:?}: {e}{why}; nothing was persisted", normalised(v)))
            })?;
        }
        persisted(key, p, &r.id.to_string()).part(p.state).apply(changes, ctx)?;
        Ok(Applied::Done)
    }
}
