use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// Where a cron job lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CronTarget {
    /// A file of its own, /etc/cron.d/NAME, owned by tend.
    #[default]
    System,
    /// One entry in the user's crontab (`crontab -u USER`), marked as tend's;
    /// lines tend does not own are never touched.
    User,
}

/// A cron job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CronProps {
    #[serde(default)]
    pub state: Presence,
    /// Five fields (`*/5 * * * *`) or a macro (`@daily`, `@reboot`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The user the job runs as (default root).
    #[serde(default = "root")]
    pub user: String,
    /// Environment lines (`MAILTO`, `PATH`, …).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub environment: IndexMap<String, String>,
    #[serde(default)]
    pub target: CronTarget,
}

fn root() -> String {
    "root".to_string()
}

pub const MACROS: &[&str] =
    &["@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

/// Checks a cron schedule: five fields or a macro.
pub fn check_schedule(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.starts_with('@') {
        return if MACROS.contains(&s) {
            Ok(())
        } else {
            Err(format!("unknown schedule macro {s:?} (one of {})", MACROS.join(", ")))
        };
    }
    let fields = s.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "schedule {s:?} has {fields} fields; cron needs 5 (minute hour day-of-month month day-of-week)"
        ));
    }
    // Vixie cron (Debian) and cronie (RHEL) know numbers, ranges, steps, lists
    // and month/day names; not Quartz's L, W, # or ?, which croner accepts.
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/' | ' ' | '\t')))
    {
        return Err(format!("invalid schedule {s:?}: cron does not understand {c:?}"));
    }
    const NAMES: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", "sun", "mon", "tue", "wed",
        "thu", "fri", "sat",
    ];
    for word in s.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()) {
        if !NAMES.contains(&word.to_ascii_lowercase().as_str()) {
            return Err(format!("invalid schedule {s:?}: {word:?} is not a month or day name"));
        }
    }
    croner::parser::CronParser::new().parse(s).map(|_| ()).map_err(|e| format!("invalid schedule {s:?}: {e}"))
}

impl CronProps {
    pub fn problems(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.target == CronTarget::User && (name.contains('\n') || name.trim() != name || name.is_empty()) {
            out.push(("", format!("{name:?} is not a usable cron job name (it marks the crontab entry)")));
        }
        if self.target == CronTarget::System
            && !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            out.push(("", format!("{name:?}: names of system cron jobs become /etc/cron.d file names: use letters, digits, '-' and '_' only (cron ignores other files)")));
        }
        if self.state == Presence::Present {
            match &self.schedule {
                Some(s) => {
                    if let Err(e) = check_schedule(s) {
                        out.push(("schedule", e));
                    }
                }
                None => out.push(("schedule", "a cron job needs a `schedule`".to_string())),
            }
            match &self.command {
                Some(c) if c.contains('\n') => out.push(("command", "the command must be a single line".to_string())),
                Some(c) if c.trim().is_empty() => out.push(("command", "the command is empty".to_string())),
                Some(_) => {}
                None => out.push(("command", "a cron job needs a `command`".to_string())),
            }
        }
        for (k, v) in &self.environment {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || v.contains('\n') {
                out.push(("environment", format!("{k:?} is not a valid environment variable line")));
            }
        }
        if let Some(e) = super::user::check_account_name(&self.user) {
            out.push(("user", e));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::check_schedule;

    #[test]
    fn schedules_cron_understands() {
        for ok in ["*/5 * * * *", "0 2 * * sun", "15 3 1-7 jan,jul mon-fri", "@daily", "@reboot"] {
            assert!(check_schedule(ok).is_ok(), "{ok}");
        }
        for bad in ["61 * * * *", "* * * *", "0 0 L * *", "0 0 ? * MON", "0 0 * * 1#2", "@sometimes", "0 0 * * funday"]
        {
            assert!(check_schedule(bad).is_err(), "{bad}");
        }
    }
}
