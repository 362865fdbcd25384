//! Human output: one line per changed, failed or skipped resource, diffs in
//! dry-run (or with --diff), and a summary line. Coloured on a terminal.

use std::io::Write;

use crate::report::{Report, ResourceReport, Status};

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub diffs: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

pub fn print(report: &Report, style: Style, out: &mut impl Write) -> std::io::Result<()> {
    for r in &report.resources {
        match r.status {
            Status::Unchanged => {}
            Status::Changed => {
                let verb = if report.dry_run { "would change" } else { "changed" };
                let tag = if r.corrective == Some(true) { " (corrective)" } else { "" };
                let why = r.reason.as_deref().map(|w| format!(" ({w})")).unwrap_or_default();
                writeln!(out, "{} {}{}  {}{why}", style.paint("33", verb), r.id, tag, describe(r))?;
                if style.diffs || report.dry_run {
                    for c in &r.changes {
                        if let Some(d) = &c.diff {
                            for line in d.lines() {
                                let painted = match line.chars().next() {
                                    Some('+') if !line.starts_with("+++") => style.paint("32", line),
                                    Some('-') if !line.starts_with("---") => style.paint("31", line),
                                    Some('@') => style.paint("36", line),
                                    _ => line.to_string(),
                                };
                                writeln!(out, "    {painted}")?;
                            }
                        }
                    }
                }
            }
            Status::Failed => {
                writeln!(out, "{} {}  {}", style.paint("31;1", "failed"), r.id, r.error.as_deref().unwrap_or(""))?;
            }
            Status::Skipped => {
                writeln!(out, "{} {}  {}", style.paint("2", "skipped"), r.id, r.reason.as_deref().unwrap_or(""))?;
            }
        }
    }
    writeln!(out, "{}", summary_line(report))
}

fn describe(r: &ResourceReport) -> String {
    r.changes
        .iter()
        .map(|c| match (&c.from, &c.to) {
            _ if c.diff.is_some() => c.property.clone(),
            (Some(f), Some(t)) => format!("{} {f} -> {t}", c.property),
            (None, Some(t)) => format!("{} {t}", c.property),
            (Some(f), None) => format!("{} {f} -> (none)", c.property),
            (None, None) => c.property.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `N resources: X changed, Y unchanged, Z failed, W skipped in T ms`
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let changed = if report.dry_run { "would change" } else { "changed" };
    format!(
        "{} resources: {} {changed}, {} unchanged, {} failed, {} skipped in {:.0} ms{}",
        s.total,
        s.changed,
        s.unchanged,
        s.failed,
        s.skipped,
        s.duration_ms,
        if report.dry_run { " (dry run: nothing was changed)" } else { "" }
    )
}
