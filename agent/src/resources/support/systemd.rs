//! systemd through systemctl and journalctl: unit state, daemon-reload
//! (deferred and coalesced), and the journal tail for failed starts.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::resources::{Result, Runner, run_ok};

/// What the systemd resources of one run share.
#[derive(Default)]
pub struct SystemdState {
    /// A unit file changed: `daemon-reload` before the next systemctl call.
    pub daemon_reload_pending: bool,
    /// Units started or restarted in this run: a notification needs no restart.
    pub started: HashSet<String>,
}

/// The properties of a unit that tend reads.
#[derive(Debug, Clone, Default)]
pub struct UnitStatus {
    pub load_state: String,
    pub active_state: String,
    pub unit_file_state: String,
}

impl UnitStatus {
    pub fn found(&self) -> bool {
        self.load_state != "not-found" && !self.load_state.is_empty()
    }

    pub fn active(&self) -> bool {
        matches!(self.active_state.as_str(), "active" | "reloading" | "activating")
    }

    pub fn masked(&self) -> bool {
        self.load_state == "masked" || self.unit_file_state.starts_with("masked")
    }

    /// Enabled for boot. Static, indirect and generated units cannot be
    /// enabled or disabled, so they satisfy either wish.
    pub fn enabled(&self) -> Option<bool> {
        match self.unit_file_state.as_str() {
            "enabled" | "enabled-runtime" | "alias" | "linked" | "linked-runtime" => Some(true),
            "disabled" => Some(false),
            _ => None,
        }
    }
}

/// Reads the state of several units with one systemctl call.
pub fn show(runner: &dyn Runner, units: &[&str]) -> Result<HashMap<String, UnitStatus>> {
    let mut argv = vec!["systemctl", "show", "--property=Id,LoadState,ActiveState,UnitFileState", "--"];
    argv.extend_from_slice(units);
    let out = run_ok(runner, &argv, &[])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut result = HashMap::new();
    // One block per unit, in the order asked, separated by blank lines.
    for (unit, block) in units.iter().zip(text.split("\n\n")) {
        let mut s = UnitStatus::default();
        for line in block.lines() {
            match line.split_once('=') {
                Some(("LoadState", v)) => s.load_state = v.to_string(),
                Some(("ActiveState", v)) => s.active_state = v.to_string(),
                Some(("UnitFileState", v)) => s.unit_file_state = v.to_string(),
                _ => {}
            }
        }
        result.insert(unit.to_string(), s);
    }
    Ok(result)
}

/// One unit's state.
pub fn status(runner: &dyn Runner, unit: &str) -> Result<UnitStatus> {
    Ok(show(runner, &[unit])?.remove(unit).unwrap_or_default())
}

pub fn daemon_reload_if_pending(runner: &dyn Runner, state: &mut SystemdState) -> Result<()> {
    if state.daemon_reload_pending {
        run_ok(runner, &["systemctl", "daemon-reload"], &[])?;
        state.daemon_reload_pending = false;
    }
    Ok(())
}

/// `systemctl VERB UNIT`; a failure carries the last lines of the unit's journal.
pub fn systemctl(runner: &dyn Runner, verb: &str, unit: &str) -> Result<()> {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    match run_ok(runner, &["systemctl", verb, unit], &[]) {
        Ok(_) => Ok(()),
        Err(e) if matches!(verb, "start" | "restart" | "reload" | "reload-or-restart" | "try-restart") => {
            // The unit's own processes log asynchronously: give the journal
            // a moment to receive their last words (failure path only).
            std::thread::sleep(Duration::from_millis(300));
            let journal = journal_tail(runner, unit, 20, since);
            Err(crate::resources::Error::Failed(format!("{e}\nlast lines of the journal of {unit}:\n{journal}")))
        }
        Err(e) => Err(e),
    }
}

/// The unit's journal since `since` (seconds since the epoch), last `lines` lines.
pub fn journal_tail(runner: &dyn Runner, unit: &str, lines: usize, since: u64) -> String {
    let n = lines.to_string();
    let since = format!("@{since}");
    let argv = ["journalctl", "-u", unit, "-n", &n, "--since", &since, "--no-pager", "-o", "cat"];
    match runner.run(&argv, &[], Duration::from_secs(10)) {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim_end().to_string(),
        Err(e) => format!("(journal unavailable: {e})"),
    }
}
