//! `cron`: a job in its own /etc/cron.d file, or one marked entry in a
//! user's crontab. In a crontab, tend edits only the two lines it owns (its
//! marker comment and the entry below it); every other line stays as it is.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tend_model::resources::Presence;
use tend_model::resources::cron::{CronProps, CronTarget};
use tend_model::{CompiledResource, Spec};

use super::file::{self, FileWant};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch, run_ok};
use crate::report::Change;

pub struct CronType;

const CRON_D: &str = "/etc/cron.d";

fn props(r: &CompiledResource) -> Result<&CronProps> {
    match &r.spec {
        Spec::Cron(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

/// The whole /etc/cron.d file for a system job.
pub fn system_file(name: &str, p: &CronProps) -> String {
    let mut s = format!("# Managed by tend (cron:{name}). Local changes are overwritten.\n");
    for (k, v) in &p.environment {
        s.push_str(&format!("{k}={v}\n"));
    }
    s.push_str(&format!(
        "{} {} {}\n",
        p.schedule.as_deref().unwrap_or_default().trim(),
        p.user,
        p.command.as_deref().unwrap_or_default()
    ));
    s
}

/// The marker line that precedes tend's entry in a crontab.
fn marker(name: &str) -> String {
    format!("# tend: {name}")
}

/// The crontab entry: environment as `NAME='value'` prefixes, since crontab
/// environment lines would change every job below them.
pub fn user_entry(p: &CronProps) -> String {
    let env: String = p.environment.iter().map(|(k, v)| format!("{k}='{}' ", v.replace('\'', "'\\''"))).collect();
    format!("{} {env}{}", p.schedule.as_deref().unwrap_or_default().trim(), p.command.as_deref().unwrap_or_default())
}

/// Replaces (or removes, with None) tend's entry in crontab text, leaving
/// every other line untouched.
pub fn edit_crontab(text: &str, name: &str, entry: Option<&str>) -> String {
    let mark = marker(name);
    let mut out: Vec<&str> = Vec::new();
    let mut lines = text.lines().peekable();
    let mut placed = false;
    while let Some(line) = lines.next() {
        if line == mark {
            // Drop our marker and the entry line that follows it.
            if lines.peek().is_some_and(|l| !l.starts_with("# tend: ")) {
                lines.next();
            }
            if let (Some(e), false) = (entry, placed) {
                out.push(&mark);
                out.push(e);
                placed = true;
            }
            continue;
        }
        out.push(line);
    }
    let mut s = out.join("\n");
    if let (Some(e), false) = (entry, placed) {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&mark);
        s.push('\n');
        s.push_str(e);
    }
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// The user's crontab, or None when the user has none (or does not exist yet).
fn read_crontab(ctx: &Ctx, user: &str) -> Result<Option<String>> {
    let out = ctx.runner.run(&["crontab", "-u", user, "-l"], &[], std::time::Duration::from_secs(30))?;
    match out.exit {
        crate::system::process::Exit::Code(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned())),
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("no crontab for") {
                Ok(Some(String::new()))
            } else if ctx.dry_run && err.contains("does not exist") {
                Ok(None)
            } else {
                Err(Error::Failed(format!("crontab -u {user} -l: {}", err.trim())))
            }
        }
    }
}

/// The /etc/cron.d file of a system job, and its content (None when absent).
fn system_target(name: &str, p: &CronProps) -> (std::path::PathBuf, Option<Vec<u8>>) {
    let content = (p.state == Presence::Present).then(|| system_file(name, p).into_bytes());
    (Path::new(CRON_D).join(name), content)
}

impl ResourceType for CronType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        match p.target {
            CronTarget::System => {
                let (path, content) = system_target(&r.id.name, p);
                file::check(&path, &FileWant::system(p.state, content.as_deref()), ctx)
            }
            CronTarget::User => {
                let Some(current) = read_crontab(ctx, &p.user)? else {
                    // Dry-run, and the user is created earlier in this run.
                    if p.state == Presence::Absent {
                        return Ok(vec![]);
                    }
                    return Ok(vec![Change::new("entry", None, Some(user_entry(p)))]);
                };
                let entry = (p.state == Presence::Present).then(|| user_entry(p));
                let next = edit_crontab(&current, &r.id.name, entry.as_deref());
                if next == current {
                    return Ok(vec![]);
                }
                let have = current.lines().skip_while(|l| *l != marker(&r.id.name)).nth(1).map(str::to_string);
                Ok(vec![Change::new("entry", have, entry)])
            }
        }
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        match p.target {
            CronTarget::System => {
                let (path, content) = system_target(&r.id.name, p);
                file::apply_now(&path, &FileWant::system(p.state, content.as_deref()), changes, ctx)?;
                Ok(Applied::Done)
            }
            CronTarget::User => {
                let current = read_crontab(ctx, &p.user)?.unwrap_or_default();
                let entry = (p.state == Presence::Present).then(|| user_entry(p));
                let next = edit_crontab(&current, &r.id.name, entry.as_deref());
                install_crontab(ctx, &p.user, &next)?;
                Ok(Applied::Done)
            }
        }
    }
}

/// Installs crontab text for a user through `crontab -u USER FILE`, which
/// validates it and signals cron.
fn install_crontab(ctx: &Ctx, user: &str, text: &str) -> Result<()> {
    let dir = std::env::temp_dir();
    let tmp = crate::state::temp_path(&dir.join(format!("crontab-{user}")));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    write().map_err(Error::io(format!("write {}", tmp.display())))?;
    let tmp_s = tmp.to_string_lossy().into_owned();
    let result = run_ok(ctx.runner, &["crontab", "-u", user, &tmp_s], &[]);
    let _ = std::fs::remove_file(&tmp);
    result.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crontab_edits_touch_only_our_lines() {
        let theirs = "MAILTO=ops\n# nightly report\n0 3 * * * /usr/local/bin/report\n";
        let added = edit_crontab(theirs, "backup", Some("15 2 * * * /usr/local/bin/backup"));
        assert_eq!(added, format!("{theirs}# tend: backup\n15 2 * * * /usr/local/bin/backup\n"));
        let changed = edit_crontab(&added, "backup", Some("30 2 * * * /usr/local/bin/backup"));
        assert_eq!(changed, format!("{theirs}# tend: backup\n30 2 * * * /usr/local/bin/backup\n"));
        assert_eq!(edit_crontab(&changed, "backup", None), theirs);
        assert_eq!(edit_crontab("", "x", None), "");
    }
}
