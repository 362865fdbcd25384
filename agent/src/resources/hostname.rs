//! `hostname`: the host's name, as given (`web1` or `web1.example.net`, as
//! hostnamectl keeps it): `/etc/hostname`, the running name (sethostname), and
//! the `127.0.1.1` line of `/etc/hosts` with the full name and then the short
//! one, so that the name resolves without DNS (Debian's convention).

use std::path::Path;

use tend_model::resources::Presence;
use tend_model::resources::file_line::FileLineProps;
use tend_model::{CompiledResource, Spec};

use super::file::FileWant;
use super::support::edit::{Edit, Part, read_text};
use super::{Applied, Ctx, Error, ResourceType, Result, file_line, mismatch};
use crate::report::Change;

pub struct HostnameType;

const HOSTNAME_FILE: &str = "/etc/hostname";
const HOSTS: &str = "/etc/hosts";

fn running() -> Result<String> {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .map_err(|e| Error::Failed(format!("gethostname: {e}")))
}

/// The names the `127.0.1.1` line lists: the full name, then the short one.
fn names(name: &str) -> Vec<&str> {
    match name.split_once('.') {
        Some((short, _)) => vec![name, short],
        None => vec![name],
    }
}

/// The new text of /etc/hosts, or None when its `127.0.1.1` line already
/// lists exactly these names (however it is spaced).
fn hosts_text(text: Option<&str>, name: &str) -> std::result::Result<Option<String>, String> {
    let want = names(name);
    let listed = |l: &str| {
        let mut w = l.split('#').next().unwrap_or("").split_whitespace();
        w.next() == Some("127.0.1.1") && w.collect::<Vec<_>>() == want
    };
    if text.is_some_and(|t| t.lines().any(listed)) {
        return Ok(None);
    }
    let p = FileLineProps {
        path: HOSTS.into(),
        state: Presence::Present,
        line: Some(format!("127.0.1.1\t{}", want.join(" "))),
        pattern: Some(r"^\s*127\.0\.1\.1\s".into()),
        after: Some(r"^\s*127\.0\.0\.1\s".into()),
        before: None,
        multiple: false,
        create: true,
        validate: None,
    };
    file_line::edited(text, &p)
}

struct Files {
    hostname: String,
    hosts: Option<Edit<'static>>,
}

fn files(name: &str, hosts_entry: bool) -> Result<Files> {
    let hosts = if hosts_entry {
        let path = Path::new(HOSTS);
        let text = hosts_text(read_text(path)?.as_deref(), name).map_err(|e| Error::Failed(format!("{HOSTS}: {e}")))?;
        Some(Edit { path, text, validate: None, sensitive: false })
    } else {
        None
    };
    Ok(Files { hostname: format!("{name}\n"), hosts })
}

impl Files {
    fn hostname(&self) -> Part<'_> {
        Part {
            path: Path::new(HOSTNAME_FILE),
            want: FileWant::system(Presence::Present, Some(self.hostname.as_bytes())),
        }
    }

    fn hosts(&self) -> Option<Part<'_>> {
        self.hosts.as_ref().filter(|e| e.text.is_some()).map(|e| Part { path: e.path, want: e.want() })
    }
}

impl ResourceType for HostnameType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let Spec::Hostname(p) = &r.spec else {
            return Err(mismatch(r));
        };
        let name = r.id.name.as_str();
        let mut changes = Vec::new();
        let now = running()?;
        if now != name {
            changes.push(Change::new("hostname", Some(now), Some(name.into())));
        }
        let f = files(name, p.hosts_entry)?;
        changes.extend(f.hostname().check(ctx)?);
        if let Some(h) = f.hosts() {
            changes.extend(h.check(ctx)?);
        }
        Ok(changes)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let Spec::Hostname(p) = &r.spec else {
            return Err(mismatch(r));
        };
        let name = r.id.name.as_str();
        // The files first: a name that is set but not persisted is lost at boot.
        let f = files(name, p.hosts_entry)?;
        f.hostname().apply(changes, ctx)?;
        if let Some(h) = f.hosts() {
            h.apply(changes, ctx)?;
        }
        if changes.iter().any(|c| c.property == "hostname") {
            nix::unistd::sethostname(name).map_err(|e| Error::Failed(format!("sethostname {name}: {e}")))?;
        }
        Ok(Applied::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_line_lists_the_full_then_the_short_name_after_localhost() {
        let debian = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n";
        let out = hosts_text(Some(debian), "web1.example.net").expect("edit");
        assert_eq!(
            out.as_deref(),
            Some("127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.net web1\n::1\tlocalhost ip6-localhost\n")
        );
        assert_eq!(hosts_text(out.as_deref(), "web1.example.net").expect("again"), None);
        let old = "127.0.0.1 localhost\n127.0.1.1   old  # comment\n";
        assert_eq!(
            hosts_text(Some(old), "web1").expect("edit").as_deref(),
            Some("127.0.0.1 localhost\n127.0.1.1\tweb1\n")
        );
        assert_eq!(hosts_text(Some("127.0.1.1  web1 # x\n"), "web1").expect("edit"), None);
    }
}
