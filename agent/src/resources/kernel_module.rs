//! `kernel_module`: a module loaded now and at boot, absent, or blacklisted.
//! Persistence is two files of tend's: `/etc/modules-load.d/NAME.conf`
//! (loaded at boot) and `/etc/modprobe.d/tend-NAME.conf` (`options`, or the
//! blacklist: `blacklist NAME` and `install NAME /bin/false`, so that not even
//! a dependency or an alias loads it). The running kernel is compared through
//! `/sys/module` and changed with modprobe; inside a container the kernel is
//! the host's and cannot be changed, so only the files are managed there.

use std::path::{Path, PathBuf};

use tend_model::resources::kernel_module::{KernelModuleProps, ModuleState};
use tend_model::{CompiledResource, Spec};

use super::support::edit::Part;
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch, run_ok};
use crate::report::Change;

pub struct KernelModuleType;

fn props(r: &CompiledResource) -> Result<&KernelModuleProps> {
    match &r.spec {
        Spec::KernelModule(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

/// Whether the module is in the running kernel (loaded, or built in).
fn loaded(name: &str) -> bool {
    Path::new("/sys/module").join(name.replace('-', "_")).exists()
}

/// Built into the kernel: in /sys/module without the `initstate` a loaded
/// module has. It cannot be unloaded; a blacklist only matters at the next
/// boot of a kernel that has it as a module.
fn built_in(name: &str) -> bool {
    let dir = Path::new("/sys/module").join(name.replace('-', "_"));
    dir.exists() && !dir.join("initstate").exists()
}

/// A container shares the host's kernel: its modules are not this host's to change.
fn in_container(ctx: &Ctx) -> bool {
    ctx.facts["virtualization"]["type"] == "container"
}

struct Files {
    load: PathBuf,
    load_text: Option<String>,
    modprobe: PathBuf,
    modprobe_text: Option<String>,
}

fn files(name: &str, p: &KernelModuleProps, id: &str) -> Files {
    let header = format!("# Managed by tend ({id}).\n");
    let (load_text, modprobe_text) = match p.state {
        ModuleState::Loaded => (
            Some(format!("{header}{name}\n")),
            p.options.as_ref().map(|o| format!("{header}options {name} {}\n", o.trim())),
        ),
        ModuleState::Absent => (None, None),
        ModuleState::Blacklisted => (None, Some(format!("{header}blacklist {name}\ninstall {name} /bin/false\n"))),
    };
    Files {
        load: Path::new("/etc/modules-load.d").join(format!("{name}.conf")),
        load_text,
        modprobe: Path::new("/etc/modprobe.d").join(format!("tend-{name}.conf")),
        modprobe_text,
    }
}

impl Files {
    fn parts(&self) -> [Part<'_>; 2] {
        [Part::owned(&self.load, &self.load_text), Part::owned(&self.modprobe, &self.modprobe_text)]
    }
}

impl ResourceType for KernelModuleType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let name = r.id.name.as_str();
        let mut changes = Vec::new();
        if !in_container(ctx) {
            let is = loaded(name);
            let want = p.state == ModuleState::Loaded;
            if is && !want && built_in(name) {
                if p.state == ModuleState::Absent {
                    return Err(Error::Failed(format!(
                        "{name} is built into the running kernel: it cannot be unloaded (blacklist it for kernels that have it as a module)"
                    )));
                }
            } else if is != want {
                let show = |b: bool| if b { "loaded" } else { "not loaded" }.to_string();
                changes.push(Change::new("running", Some(show(is)), Some(show(want))));
            }
        }
        let f = files(name, p, &r.id.to_string());
        for part in f.parts() {
            changes.extend(part.check(ctx)?);
        }
        Ok(changes)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let name = r.id.name.as_str();
        // The files first: the blacklist then also holds for the unload.
        let f = files(name, p, &r.id.to_string());
        for part in f.parts() {
            part.apply(changes, ctx)?;
        }
        if changes.iter().any(|c| c.property == "running") {
            match p.state {
                ModuleState::Loaded => run_ok(ctx.runner, &["modprobe", name], &[])?,
                _ => run_ok(ctx.runner, &["modprobe", "-r", name], &[])?,
            };
        }
        Ok(Applied::Done)
    }
}
