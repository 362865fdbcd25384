//! `timezone`: the host's zone. `/etc/localtime` becomes a link into the zone
//! database (relative, as systemd's timedatectl writes it) and, on Debian,
//! `/etc/timezone` names the zone. The zone must exist in the database.

use std::io::Read;
use std::path::Path;

use tend_model::resources::Presence;
use tend_model::{CompiledResource, Spec};

use super::file::FileWant;
use super::support::edit::Part;
use super::{Applied, Ctx, Error, ResourceType, Result, link, mismatch};
use crate::report::Change;

pub struct TimezoneType;

const LOCALTIME: &str = "/etc/localtime";
const ZONEINFO: &str = "/usr/share/zoneinfo";
const TIMEZONE_FILE: &str = "/etc/timezone";

/// Checks that the zone database has the zone (a TZif file).
fn require_zone(zone: &str) -> Result<()> {
    let path = Path::new(ZONEINFO).join(zone);
    let mut magic = [0u8; 4];
    let ok = std::fs::File::open(&path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"TZif";
    if ok {
        return Ok(());
    }
    Err(Error::Failed(format!(
        "unknown time zone {zone:?}: {} is not in the zone database (is tzdata installed?)",
        path.display()
    )))
}

/// The zone /etc/localtime names now, if it is a link into a zone database.
fn current(target: &Path) -> Option<String> {
    let s = target.to_str()?;
    let (_, zone) = s.rsplit_once("/zoneinfo/")?;
    Some(zone.to_string())
}

/// Whether `/etc/timezone` is kept here (Debian and its derivatives).
fn keeps_timezone_file(ctx: &Ctx) -> bool {
    ctx.facts["os"]["family"] == "debian" || Path::new(TIMEZONE_FILE).exists()
}

fn timezone_file(zone: &str) -> String {
    format!("{zone}\n")
}

fn part(content: &str) -> Part<'_> {
    Part { path: Path::new(TIMEZONE_FILE), want: FileWant::system(Presence::Present, Some(content.as_bytes())) }
}

impl ResourceType for TimezoneType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let Spec::Timezone(_) = &r.spec else {
            return Err(mismatch(r));
        };
        let zone = r.id.name.as_str();
        require_zone(zone)?;
        let mut changes = Vec::new();
        let now = std::fs::read_link(LOCALTIME).ok();
        let now_zone = now.as_deref().and_then(current);
        if now_zone.as_deref() != Some(zone) {
            let from = now_zone
                .unwrap_or_else(|| if Path::new(LOCALTIME).exists() { "(a copied file)" } else { "(none)" }.into());
            changes.push(Change::new("zone", Some(from), Some(zone.into())));
        }
        if keeps_timezone_file(ctx) {
            let content = timezone_file(zone);
            changes.extend(part(&content).check(ctx)?);
        }
        Ok(changes)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let zone = r.id.name.as_str();
        if changes.iter().any(|c| c.property == "zone") {
            // A copied file is replaced as timedatectl does; no `force` needed.
            let target = format!("..{ZONEINFO}/{zone}");
            let replaced = match std::fs::symlink_metadata(LOCALTIME) {
                Ok(m) if m.is_dir() => {
                    return Err(Error::Failed(format!("{LOCALTIME} is a directory")));
                }
                Ok(m) if !m.file_type().is_symlink() => {
                    vec![Change::new("ensure", Some("file".into()), Some("link".into()))]
                }
                _ => vec![],
            };
            link::ensure(Path::new(LOCALTIME), &target, &replaced, ctx)?;
        }
        let content = timezone_file(zone);
        part(&content).apply(changes, ctx)?;
        Ok(Applied::Done)
    }
}
