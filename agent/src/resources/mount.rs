//! `mount`: a filesystem's line in /etc/fstab and its live mount. The line
//! is matched by its mount point and compared field by field (spacing is not
//! a difference); the rest of fstab is kept byte for byte. The live state
//! comes from /proc/self/mountinfo: a missing mount is mounted (`mount MP`,
//! from the fstab line just written), a changed line remounts
//! (`mount -o remount MP`), another filesystem at the mount point is
//! unmounted first. A device that does not exist fails the resource before
//! anything is written.

use std::path::Path;

use tend_model::resources::mount::{MountProps, MountState, escape};
use tend_model::{CompiledResource, Spec};

use super::support::edit::{Edit, join, lines, read_text};
use super::support::systemd;
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch, run_ok};
use crate::report::Change;

pub struct MountType;

const FSTAB: &str = "/etc/fstab";

fn props(r: &CompiledResource) -> Result<&MountProps> {
    match &r.spec {
        Spec::Mount(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

/// What is mounted at a mount point now: (fstype, source), the topmost.
pub fn mounted(mount_point: &str) -> Result<Option<(String, String)>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(Error::io("read /proc/self/mountinfo"))?;
    let want = escape(mount_point);
    let mut found = None;
    for line in text.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER
        let (left, right) = line.split_once(" - ").unwrap_or((line, ""));
        if left.split(' ').nth(4) != Some(want.as_str()) {
            continue;
        }
        let mut r = right.split(' ');
        found = Some((r.next().unwrap_or("").to_string(), r.next().unwrap_or("").to_string()));
    }
    Ok(found)
}

/// /etc/fstab's new text, or None when its line for the mount point is
/// already what `p` wants (or, for `absent`, there is none).
fn fstab_text(text: &str, mount_point: &str, p: &MountProps) -> Option<String> {
    let (old, mut trailing) = lines(text);
    let point = escape(mount_point);
    let ours = |l: &str| {
        let t = l.trim_start();
        !t.starts_with('#') && t.split_whitespace().nth(1) == Some(point.as_str())
    };
    let found: Vec<usize> = (0..old.len()).filter(|&i| ours(old[i])).collect();
    let mut new: Vec<String> = old.iter().map(|s| s.to_string()).collect();
    if p.state == MountState::Absent {
        for &i in found.iter().rev() {
            new.remove(i);
        }
        return (!found.is_empty()).then(|| join(&new, trailing));
    }
    let line = p.fstab_line(mount_point);
    let fields = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    match found.split_first() {
        Some((&first, rest)) => {
            if fields(old[first]) != fields(&line) {
                new[first] = line;
            }
            for &i in rest.iter().rev() {
                new.remove(i);
            }
        }
        None => {
            new.push(line);
            trailing = true;
        }
    }
    let out = join(&new, trailing);
    (out != text).then_some(out)
}

/// The device's path, when it names one that can be checked (`/dev/…`,
/// `UUID=`, `LABEL=`, `PARTUUID=`).
fn device_path(device: &str) -> Option<String> {
    for (prefix, dir) in
        [("UUID=", "by-uuid"), ("LABEL=", "by-label"), ("PARTUUID=", "by-partuuid"), ("PARTLABEL=", "by-partlabel")]
    {
        if let Some(v) = device.strip_prefix(prefix) {
            return Some(format!("/dev/disk/{dir}/{}", v.trim_matches('"')));
        }
    }
    device.starts_with("/dev/").then(|| device.to_string())
}

/// The kernel reports NFS version 4 mounts as `nfs4`.
fn same_type(live: &str, wanted: Option<&str>) -> bool {
    fn norm(t: &str) -> &str {
        if t == "nfs4" { "nfs" } else { t }
    }
    wanted.is_some_and(|w| norm(live) == norm(w))
}

/// Whether what is mounted comes from the wanted device. Only a block
/// device (`/dev/…`, `UUID=`, `LABEL=`… that resolves to one) is compared,
/// both sides resolved through their links (`/dev/mapper/vg-lv` and
/// `/dev/dm-0` are the same); a bind or loop mount, tmpfs or network
/// source is taken as it is.
fn same_source(live: &str, p: &MountProps) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let Some(dev) = p.device.as_deref().and_then(device_path) else { return true };
    let Ok(real) = std::fs::canonicalize(&dev) else { return true };
    if !std::fs::metadata(&real).is_ok_and(|m| m.file_type().is_block_device()) {
        return true;
    }
    // A source that names no path here (`/dev/root`) cannot be told apart.
    std::fs::canonicalize(live).map_or(true, |l| l == real)
}

struct Plan {
    fstab: Option<String>,
    /// Mount, unmount, remount, or replace what is mounted.
    live: Option<Change>,
}

fn plan(mount_point: &str, p: &MountProps, ctx: &mut Ctx) -> Result<Plan> {
    let fstab = fstab_text(&read_text(Path::new(FSTAB))?.unwrap_or_default(), mount_point, p);
    let now = mounted(mount_point)?;
    let show = |m: &Option<(String, String)>| match m {
        Some((t, s)) => format!("{s} ({t})"),
        None => "not mounted".to_string(),
    };
    let wanted = || format!("{} ({})", p.device.as_deref().unwrap_or(""), p.fstype.as_deref().unwrap_or(""));
    let live = match p.state {
        MountState::Present => None,
        MountState::Unmounted | MountState::Absent => {
            now.as_ref().map(|_| Change::new("mounted", Some(show(&now)), Some("not mounted".into())))
        }
        MountState::Mounted => {
            let same = now.as_ref().is_some_and(|(t, src)| same_type(t, p.fstype.as_deref()) && same_source(src, p));
            match &now {
                Some(_) if same && fstab.is_some() => Some(Change::new("remount", None, Some(p.options.clone()))),
                Some(_) if same => None,
                _ => Some(Change::new("mounted", Some(show(&now)), Some(wanted()))),
            }
        }
    };
    // A mount that cannot succeed fails here, before fstab is written.
    if p.state == MountState::Mounted && live.as_ref().is_some_and(|c| c.property == "mounted") {
        let device = p.device.as_deref().unwrap_or("");
        if let Some(dev) = device_path(device).filter(|d| !Path::new(d).exists()) {
            return Err(Error::Failed(format!("device {device} does not exist ({dev}); nothing was changed")));
        }
        let point = Path::new(mount_point);
        if !(point.is_dir() || ctx.dirs.contains(point)) {
            return Err(Error::Failed(format!(
                "mount point {mount_point} is not a directory (declare it with a directory resource); nothing was changed"
            )));
        }
    }
    Ok(Plan { fstab, live })
}

impl ResourceType for MountType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let plan = plan(&r.id.name, p, ctx)?;
        let mut changes =
            Edit { path: Path::new(FSTAB), text: plan.fstab, validate: None, sensitive: false }.check(ctx)?;
        for c in &mut changes {
            c.property = format!("{FSTAB} {}", c.property);
        }
        changes.extend(plan.live);
        Ok(changes)
    }

    fn apply(&self, r: &CompiledResource, _changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let mp = r.id.name.as_str();
        let plan = plan(mp, p, ctx)?;
        if plan.fstab.is_some() {
            let edit = Edit { path: Path::new(FSTAB), text: plan.fstab, validate: None, sensitive: false };
            let changes = edit.check(ctx)?;
            edit.apply(&changes, ctx)?;
            // systemd's fstab generator must see the new line before `mount` asks it.
            if Path::new("/run/systemd/system").is_dir() {
                ctx.run.systemd.daemon_reload_pending = true;
                systemd::daemon_reload_if_pending(ctx.runner, &mut ctx.run.systemd)?;
            }
        }
        match plan.live.as_ref().map(|c| (c.property.as_str(), c.from.as_deref())) {
            Some(("remount", _)) => {
                run_ok(ctx.runner, &["mount", "-o", "remount", mp], &[])?;
            }
            Some(("mounted", Some("not mounted"))) => {
                run_ok(ctx.runner, &["mount", mp], &[])?;
            }
            Some(("mounted", _)) if p.state == MountState::Mounted => {
                run_ok(ctx.runner, &["umount", mp], &[])?;
                run_ok(ctx.runner, &["mount", mp], &[])?;
            }
            Some(("mounted", _)) => {
                run_ok(ctx.runner, &["umount", mp], &[])?;
            }
            _ => {}
        }
        Ok(Applied::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(yaml: &str) -> MountProps {
        serde_yaml::from_str(yaml).expect("props")
    }

    #[test]
    fn the_fstab_line_is_matched_by_mount_point_and_compared_by_fields() {
        let fstab = "# /etc/fstab\nUUID=abc / ext4 errors=remount-ro 0 1\ntmpfs  /srv/cache  tmpfs  size=64m  0  0\n";
        let same = props("device: tmpfs\nfstype: tmpfs\noptions: size=64m");
        assert_eq!(fstab_text(fstab, "/srv/cache", &same), None, "spacing is not a difference");
        let bigger = props("device: tmpfs\nfstype: tmpfs\noptions: size=128m,mode=0750");
        assert_eq!(
            fstab_text(fstab, "/srv/cache", &bigger).as_deref(),
            Some(
                "# /etc/fstab\nUUID=abc / ext4 errors=remount-ro 0 1\ntmpfs\t/srv/cache\ttmpfs\tsize=128m,mode=0750\t0\t0\n"
            )
        );
        let new = props("device: LABEL=data\nfstype: xfs\noptions: noatime\npass: 2");
        assert!(
            fstab_text(fstab, "/srv/my data", &new)
                .expect("added")
                .ends_with("LABEL=data\t/srv/my\\040data\txfs\tnoatime\t0\t2\n")
        );
        let gone = props("state: absent");
        assert_eq!(
            fstab_text(fstab, "/srv/cache", &gone).as_deref(),
            Some("# /etc/fstab\nUUID=abc / ext4 errors=remount-ro 0 1\n")
        );
        assert_eq!(fstab_text(fstab, "/nothing", &gone), None);
    }

    #[test]
    fn what_is_mounted_is_compared_by_type_and_block_device() {
        assert!(same_type("nfs4", Some("nfs")) && same_type("ext4", Some("ext4")) && !same_type("xfs", Some("ext4")));
        // Not block devices: taken as they are (a loop mount's image, tmpfs, a share).
        assert!(same_source("/dev/loop0", &props("device: /dev/null\nfstype: ext4")));
        assert!(same_source("whatever", &props("device: tmpfs\nfstype: tmpfs")));
        assert!(same_source("nas:/export", &props("device: \"nas:/export\"\nfstype: nfs")));
    }
}
