//! `tend-agent run`: the daemon loop. Every interval (plus this host's splay
//! offset and a little jitter) it runs once: fetch, converge, report. While
//! the server is unreachable it backs off exponentially (with jitter) up to
//! the interval. SIGTERM or SIGINT stops it after the current run finishes:
//! a run is never left half-done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::config::AgentConfig;
use crate::facts::FactOptions;
use crate::sources::server;

/// Wakes the loop early when a stop signal arrives.
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Stop {
    fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`; returns true if a stop was requested.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.cv.wait_timeout_while(guard, d, |_| !self.requested());
        self.requested()
    }
}

/// A per-host offset in `0..splay`, stable across runs.
pub fn splay_offset(seed: &str, splay: Duration) -> Duration {
    if splay.is_zero() {
        return Duration::ZERO;
    }
    let h = tend_model::compile::stable_hash(&[seed.as_bytes()]);
    Duration::from_millis(h % splay.as_millis().max(1) as u64)
}

/// Up to a tenth of `d`, from the clock (good enough to spread a fleet).
fn jitter(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    let tenth = (d.as_millis() / 10) as u64;
    if tenth == 0 { Duration::ZERO } else { Duration::from_millis(u64::from(nanos) % tenth) }
}

/// The wait before the next run: the interval when all is well; after
/// `failures` consecutive unreachable runs, 30 s doubling, capped by the interval.
pub fn next_wait(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    let backoff = Duration::from_secs(30).saturating_mul(1 << failures.min(16).saturating_sub(1));
    backoff.min(interval)
}

/// Registers with `register:` from the configuration when the host is not
/// registered; retries while the server cannot be reached.
fn register_if_configured(cfg: &AgentConfig, stop: &Stop) -> anyhow::Result<()> {
    let Some(reg) = &cfg.register else { return Ok(()) };
    if crate::identity::Identity::at(&cfg.state_dir).node().is_some() {
        return Ok(());
    }
    let hostname = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let args = crate::identity::RegisterArgs {
        server: reg.server.clone(),
        ca: reg.ca.clone(),
        activation_id: reg.activation_id.clone(),
        activation_code: reg.code()?,
        hostname,
        tags: reg.tags.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut failures = 0u32;
    loop {
        match rt.block_on(crate::identity::register(&cfg.state_dir, &args)) {
            Ok(node) => {
                println!("registered as {} with {}", node.node_id, node.server);
                return Ok(());
            }
            // The server refused: retrying will not help.
            Err(e) if e.downcast_ref::<crate::identity::Refused>().is_some() => return Err(e),
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = next_wait(Duration::from_secs(300), failures);
                eprintln!("warning: registration failed ({e:#}); retrying in {wait:?}");
                if stop.sleep(wait) {
                    anyhow::bail!("stopped before registering");
                }
            }
        }
    }
}

pub fn run(cfg: &AgentConfig, fopts: &FactOptions) -> anyhow::Result<i32> {
    let stop = Arc::new(Stop::default());
    let watcher = stop.clone();
    let channel_stop = Arc::new(AtomicBool::new(false));
    let channel_watcher = channel_stop.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        });
        channel_watcher.store(true, Ordering::SeqCst);
        watcher.flag.store(true, Ordering::SeqCst);
        watcher.cv.notify_all();
    });
    register_if_configured(cfg, &stop)?;
    // The run-command channel, alongside the converge loop.
    let registered = crate::identity::Identity::at(&cfg.state_dir).node().is_some();
    let channel = (cfg.commands && cfg.source.is_none() && registered).then(|| {
        let (c, s) = (cfg.clone(), channel_stop.clone());
        std::thread::spawn(move || {
            if let Err(e) = crate::run_command::run(c, s) {
                eprintln!("error: run-command channel: {e:#}");
            }
        })
    });
    let seed = crate::identity::Identity::at(&cfg.state_dir).node().map(|n| n.node_id).unwrap_or_default();
    let offset = splay_offset(&seed, cfg.splay);
    tracing::info!(interval = ?cfg.interval, splay_offset = ?offset, "tend-agent daemon started");
    crate::system::notify::notify(&format!(
        "READY=1\nSTATUS=converging every {}",
        humantime::format_duration(cfg.interval)
    ));
    crate::system::notify::spawn_watchdog();
    let mut failures = 0u32;
    let mut first = true;
    loop {
        // The offset sets this host's phase once; every run adds a little jitter.
        // A host that has never converged does so at once; afterwards each
        // run keeps this host's phase (offset) plus a little jitter.
        let never_ran = first && !crate::state::StateDir::new(&cfg.state_dir).path("last_report.json").exists();
        let wait = if never_ran {
            Duration::ZERO
        } else if first {
            offset + jitter(cfg.splay)
        } else {
            next_wait(cfg.interval, failures) + jitter(cfg.splay)
        };
        first = false;
        if stop.sleep(wait) {
            break;
        }
        match server::run_once_with(cfg, fopts) {
            Ok(outcome) => {
                failures = if outcome.reachable { 0 } else { failures.saturating_add(1) };
                tracing::info!(exit = outcome.code, reachable = outcome.reachable, "run finished");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                eprintln!("error: {e:#}");
            }
        }
        if stop.requested() {
            break;
        }
    }
    crate::system::notify::notify("STOPPING=1");
    channel_stop.store(true, Ordering::SeqCst);
    if let Some(t) = channel {
        let _ = t.join();
    }
    println!("tend-agent stopping (signal received; no run in progress)");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splay_is_stable_and_bounded_and_backoff_is_capped() {
        let s = Duration::from_secs(300);
        assert_eq!(splay_offset("n-1", s), splay_offset("n-1", s));
        assert!(splay_offset("n-1", s) < s);
        assert_eq!(splay_offset("n-1", Duration::ZERO), Duration::ZERO);
        let i = Duration::from_secs(1800);
        assert_eq!(next_wait(i, 0), i);
        assert_eq!(next_wait(i, 1), Duration::from_secs(30));
        assert_eq!(next_wait(i, 3), Duration::from_secs(120));
        assert_eq!(next_wait(i, 30), i);
    }
}
