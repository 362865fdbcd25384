//! The run-command channel. Outbound only: the agent holds a long-poll to
//! the server, which answers the moment there is work. For each invocation:
//! persist, acknowledge, run (own process group, timeout, cancel), persist
//! the result, and send it until the server acknowledges. A command id that
//! has a record on disk is never run again; one that was running when the
//! agent stopped is reported as failed, not re-run.

pub mod execute;
pub mod inbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tend_model::command::{AckAnswer, Delivery, InvocationResult, InvocationStatus, Poll};
use tokio::sync::mpsc;

use crate::config::AgentConfig;
use crate::identity::Identity;
use crate::state::StateDir;
use inbox::{Inbox, Phase, Record};

/// Seconds the server holds a long-poll.
const WAIT: u64 = 25;

/// Invocations running here, by command id: their cancel switches.
type Running = Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>;

struct Channel {
    cfg: AgentConfig,
    client: reqwest::Client,
    servers: Vec<String>,
    /// The server that answered last (index into `servers`).
    current: usize,
    inbox: Arc<Inbox>,
    running: Running,
    results: mpsc::UnboundedSender<String>,
    /// Deliveries persisted but not acknowledged (the server went away in
    /// between): acknowledged again before the next long-poll, so that an
    /// answer lost with a dying server never leaves one unrun.
    unacked: Vec<Delivery>,
}

/// Runs the channel until `stop` is set. Blocks (its own runtime).
pub fn run(cfg: AgentConfig, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let state = StateDir::new(&cfg.state_dir);
    let id = Identity::at(&cfg.state_dir);
    let node = id.node().context("this host is not registered: no run-command channel")?;
    let client = id.client()?;
    let inbox = Arc::new(Inbox::new(&state)?);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let servers = cfg.server_urls(&node.server);
    let mut ch =
        Channel { cfg, client, servers, current: 0, inbox, running: Arc::default(), results: tx, unacked: Vec::new() };
    rt.block_on(async move {
        tokio::spawn(send_results(ch.client.clone(), ch.servers.clone(), ch.inbox.clone(), rx, ch.cfg.reboot));
        ch.recover().await;
        let mut failures = 0u32;
        while !stop.load(Ordering::SeqCst) {
            match ch.poll_once(&stop).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    ch.current = (ch.current + 1) % ch.servers.len().max(1);
                    // 1 s, 2 s, 4 s … up to 30 s: back soon after a server restart.
                    let wait = Duration::from_secs(1 << failures.min(6).saturating_sub(1)).min(Duration::from_secs(30));
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?wait, "run-command channel");
                    sleep_unless_stopped(wait, &stop).await;
                }
            }
        }
        ch.drain(Duration::from_secs(10)).await;
    });
    Ok(())
}

async fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end && !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100).min(end - tokio::time::Instant::now())).await;
    }
}

impl Channel {
    fn server(&self) -> &str {
        self.servers.get(self.current).map(String::as_str).unwrap_or_default()
    }

    /// After a (re)start: what was running is failed (never re-run), what
    /// was received but not started is started, and unsent results are sent.
    async fn recover(&mut self) {
        for mut r in self.inbox.all() {
            let id = r.delivery.command_id.clone();
            match r.phase {
                Phase::Running => {
                    let group = match r.pid {
                        Some(p) if group_alive(p) => format!(" (process group {p} is still running, unsupervised)"),
                        Some(p) => format!(" (process group {p} has ended)"),
                        None => String::new(),
                    };
                    let why = format!("the agent stopped while this command was running{group}; it was not run again");
                    tracing::warn!(command = id, "{why}");
                    r.result = Some(InvocationResult {
                        status: InvocationStatus::Failed,
                        exit_code: None,
                        stdout: String::new(),
                        stderr: String::new(),
                        started_at: None,
                        ended_at: Some(crate::report::now_rfc3339()),
                        duration_ms: None,
                        reason: Some(why),
                        reboot: false,
                        report: None,
                    });
                    r.phase = Phase::Finished;
                    r.result_acked = false;
                    if let Err(e) = self.inbox.save(&r) {
                        tracing::error!(command = id, error = %e, "persisting a result");
                    }
                    let _ = self.results.send(id);
                }
                Phase::Received => {
                    // Never started: safe to run, once the server says it still wants it.
                    if let Err(e) = self.take(r.delivery.clone()).await {
                        tracing::warn!(command = id, error = %format!("{e:#}"), "resuming a received command");
                    }
                }
                Phase::Finished if r.result.is_some() && !r.result_acked => {
                    let _ = self.results.send(id);
                }
                Phase::Finished => {}
            }
        }
    }

    async fn poll_once(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        for d in std::mem::take(&mut self.unacked) {
            self.take_or_keep(d).await;
        }
        let url = format!("{}/v1/agent/commands?wait={WAIT}", self.server());
        let req = self.client.get(&url).timeout(Duration::from_secs(WAIT + 15));
        // A stop request ends the wait early.
        let resp = tokio::select! {
            r = req.send() => r.with_context(|| format!("long-poll to {}", self.server()))?,
            _ = async { while !stop.load(Ordering::SeqCst) { tokio::time::sleep(Duration::from_millis(200)).await } } => return Ok(()),
        };
        let status = resp.status();
        anyhow::ensure!(status.is_success(), "the server answered the long-poll with {status}");
        let poll: Poll = resp.json().await.context("reading the long-poll answer")?;
        for id in &poll.cancels {
            if let Some(flag) = self.running.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
                tracing::info!(command = id, "cancel requested");
                flag.store(true, Ordering::SeqCst);
            }
        }
        for d in poll.deliveries {
            self.take_or_keep(d).await;
        }
        Ok(())
    }

    /// Takes a delivery; one that could not be taken is tried again later.
    async fn take_or_keep(&mut self, d: Delivery) {
        let id = d.command_id.clone();
        if let Err(e) = self.take(d.clone()).await {
            // Only a request that never got its answer is worth repeating.
            let lost = e.downcast_ref::<reqwest::Error>().is_some();
            tracing::warn!(command = id, error = %format!("{e:#}"), retry = lost, "taking a command");
            if lost && self.unacked.len() < 1024 && !self.unacked.iter().any(|x| x.command_id == id) {
                self.unacked.push(d);
            }
        }
    }

    /// Persist, acknowledge, and start (unless it has a record that says
    /// it already started, or the server no longer wants it).
    async fn take(&mut self, d: Delivery) -> anyhow::Result<()> {
        let id = d.command_id.clone();
        anyhow::ensure!(inbox::valid_id(&id), "command id {id:?} is not valid");
        let record = match self.inbox.load(&id) {
            Some(r) => r,
            None => {
                let r = Record {
                    delivery: d,
                    phase: Phase::Received,
                    received_at: crate::report::now_rfc3339(),
                    pid: None,
                    result: None,
                    result_acked: false,
                };
                self.inbox.save(&r)?;
                r
            }
        };
        let url = format!("{}/v1/agent/commands/{id}/ack", self.server());
        let resp = self.client.post(&url).timeout(Duration::from_secs(30)).send().await?;
        anyhow::ensure!(resp.status().is_success(), "the server answered the acknowledgement with {}", resp.status());
        let ack: AckAnswer = resp.json().await?;
        let already = self.running.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&id);
        match record.phase {
            Phase::Received if ack.run && !already => self.start(record),
            Phase::Received if !ack.run => {
                let mut r = record;
                r.phase = Phase::Finished;
                r.result_acked = true;
                self.inbox.save(&r)?;
            }
            Phase::Finished if !record.result_acked => {
                let _ = self.results.send(id);
            }
            _ => tracing::info!(command = id, "already taken: not run again"),
        }
        Ok(())
    }

    fn start(&self, mut record: Record) {
        let id = record.delivery.command_id.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), cancel.clone());
        let (inbox, running, results, cfg) =
            (self.inbox.clone(), self.running.clone(), self.results.clone(), self.cfg.clone());
        tracing::info!(command = id, document = record.delivery.document, "running");
        std::thread::spawn(move || {
            // Marked running, durably, before any process starts.
            record.phase = Phase::Running;
            if let Err(e) = inbox.save(&record) {
                tracing::error!(command = id, error = %e, "cannot persist; not running");
                running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                return;
            }
            let pid_record = Mutex::new(record.clone());
            let on_start = |pid: u32| {
                let mut r = pid_record.lock().unwrap_or_else(|e| e.into_inner());
                r.pid = Some(pid);
                let _ = inbox.save(&r);
            };
            let ctx = execute::Ctx { cfg: &cfg, cancel, on_start: &on_start };
            let result = execute::execute(&record.delivery, &ctx);
            tracing::info!(command = id, status = %result.status, "finished");
            record.pid = pid_record.lock().unwrap_or_else(|e| e.into_inner()).pid;
            record.result = Some(result);
            record.phase = Phase::Finished;
            if let Err(e) = inbox.save(&record) {
                tracing::error!(command = id, error = %e, "persisting a result");
            }
            running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            let _ = results.send(id);
        });
    }

    /// On stop: give running commands a little time to end.
    async fn drain(&self, max: Duration) {
        let end = tokio::time::Instant::now() + max;
        while tokio::time::Instant::now() < end && !self.running.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Sends results (by command id, read from the inbox) until the server has
/// each; retries with back-off. Reboots afterwards when a script asked.
async fn send_results(
    client: reqwest::Client,
    servers: Vec<String>,
    inbox: Arc<Inbox>,
    mut rx: mpsc::UnboundedReceiver<String>,
    reboot_allowed: bool,
) {
    while let Some(id) = rx.recv().await {
        let mut attempt = 0u32;
        while let Some(mut r) = inbox.load(&id).filter(|r| !r.result_acked) {
            let (Some(res), Some(server)) = (r.result.clone(), servers.get(attempt as usize % servers.len().max(1)))
            else {
                break;
            };
            let sent = client
                .post(format!("{server}/v1/agent/commands/{id}/result"))
                .json(&res)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status().is_success() || resp.status().is_client_error() => {
                    if resp.status().is_client_error() {
                        tracing::warn!(command = id, status = %resp.status(), "the server refused a result; dropped");
                    }
                    r.result_acked = true;
                    let _ = inbox.save(&r);
                    if res.reboot {
                        reboot(reboot_allowed);
                    }
                    break;
                }
                other => {
                    attempt = attempt.saturating_add(1);
                    let wait = Duration::from_millis(500 * u64::from(attempt.min(20)));
                    tracing::warn!(command = id, error = ?other.err(), retry_in = ?wait, "result not sent");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// True if a process group still has members.
fn group_alive(pgid: u32) -> bool {
    i32::try_from(pgid).is_ok_and(|p| p > 1 && nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p), None).is_ok())
}

fn reboot(allowed: bool) {
    if !allowed {
        tracing::warn!("a command asked for a reboot; reboots are disabled (reboot: false)");
        return;
    }
    tracing::warn!("a command asked for a reboot: rebooting through systemd");
    let job = crate::system::process::Job::argv(&["systemctl", "reboot"], Duration::from_secs(60));
    if let Err(e) = crate::system::process::run(&job) {
        tracing::error!(error = %e, "reboot failed");
    }
}
