//! Run-command dispatch: releases invocations within max concurrency,
//! stops at max errors, times out deliveries, finishes commands, and wakes
//! the agents' long-polls the moment they have work. All state is in the
//! store, so a restarted server carries on where it was.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tend_model::command::InvocationStatus;
use tokio::sync::Notify;

use super::store::{CommandStatus, InvocationRow};
use crate::store::{Store, StoreError, now_ms};

/// How long past its timeouts an invocation may stay silent (the agent
/// reports after a restart) before the server gives up on it.
pub const SILENCE_GRACE_MS: i64 = 10 * 60 * 1000;

#[derive(Default)]
struct Waiters {
    /// Per node: woken when the node has something to take.
    notify: HashMap<String, Arc<Notify>>,
    /// Long-polls open per node (a node with none is offline: Delayed).
    open: HashMap<String, usize>,
    /// Cancellations already handed to the node (this process's lifetime).
    cancels_sent: HashSet<(String, String)>,
    /// Commands being cancelled: only then do long-polls look for cancels.
    cancelling: HashSet<String>,
}

pub struct Dispatcher {
    store: Store,
    waiters: Mutex<Waiters>,
    /// One advance at a time (per replica).
    advancing: tokio::sync::Mutex<()>,
    /// Commands with news (a result, a cancel), advanced by the background loop.
    dirty: Mutex<HashSet<String>>,
    kick: Notify,
    /// Woken whenever a command finishes (engines waiting on commands).
    pub finished: Notify,
    /// Finished commands are deleted this long after they finished.
    retention: Duration,
}

/// Holds a node's long-poll open; counts it as connected until dropped.
pub struct Connection {
    d: Arc<Dispatcher>,
    node: String,
    pub notify: Arc<Notify>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut w = self.d.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = w.open.get_mut(&self.node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                w.open.remove(&self.node);
            }
        }
    }
}

/// The command's status once every invocation has ended.
pub fn aggregate(statuses: &[InvocationStatus], cancel_requested: bool) -> CommandStatus {
    use InvocationStatus::*;
    let any = |s: InvocationStatus| statuses.contains(&s);
    let s = if cancel_requested && any(Cancelled) {
        Cancelled
    } else if statuses.iter().all(|s| *s == Success) {
        Success
    } else if any(Failed) || (any(Cancelled) && !cancel_requested) {
        // Cancelled without a cancel request: max errors was exceeded.
        Failed
    } else if any(TimedOut) {
        TimedOut
    } else if any(DeliveryTimedOut) {
        DeliveryTimedOut
    } else if any(Undeliverable) {
        Undeliverable
    } else {
        Failed
    };
    CommandStatus::ended(s)
}

impl Dispatcher {
    pub fn new(store: Store, retention: Duration) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            retention,
            store,
            waiters: Mutex::default(),
            advancing: tokio::sync::Mutex::new(()),
            dirty: Mutex::default(),
            kick: Notify::new(),
            finished: Notify::new(),
        })
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a long-poll for `node`.
    pub fn connect(self: &Arc<Self>, node: &str) -> Connection {
        let mut w = self.waiters();
        *w.open.entry(node.to_string()).or_default() += 1;
        let notify = w.notify.entry(node.to_string()).or_default().clone();
        Connection { d: self.clone(), node: node.to_string(), notify }
    }

    fn is_connected(&self, node: &str) -> bool {
        self.waiters().open.contains_key(node)
    }

    pub fn wake(&self, node: &str) {
        let n = self.waiters().notify.entry(node.to_string()).or_default().clone();
        n.notify_one();
    }

    /// True while some command is being cancelled.
    pub fn any_cancelling(&self) -> bool {
        !self.waiters().cancelling.is_empty()
    }

    /// Cancellations not yet handed to this node; marks them handed.
    pub fn take_new_cancels(&self, node: &str, running_cancelled: Vec<String>) -> Vec<String> {
        let mut w = self.waiters();
        running_cancelled.into_iter().filter(|id| w.cancels_sent.insert((id.clone(), node.to_string()))).collect()
    }

    /// Marks a command for the background loop.
    pub fn touch(&self, id: &str) {
        self.dirty.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string());
        self.kick.notify_one();
    }

    /// The background loop: advances commands with news at once, and every
    /// active command each second (delivery timeouts, restarts).
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_purge = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_purge {
                next_purge += Duration::from_secs(3600);
                let cutoff = humantime::format_rfc3339_seconds(std::time::SystemTime::now() - self.retention);
                match self.store.purge_commands(&cutoff.to_string()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(commands = n, "deleted finished commands past their retention"),
                    Err(e) => tracing::error!(error = %e, "purging old commands"),
                }
            }
            let all = tokio::select! {
                _ = tick.tick() => true,
                _ = self.kick.notified() => false,
            };
            let mut ids: Vec<String> =
                std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
            if all {
                match self.store.active_commands().await {
                    Ok(active) => ids.extend(active),
                    Err(e) => tracing::error!(error = %e, "listing active commands"),
                }
                ids.sort();
                ids.dedup();
            }
            for id in ids {
                if let Err(e) = self.advance(&id).await {
                    tracing::error!(command = id, error = %e, "advancing a command");
                }
            }
        }
    }

    /// Moves one command forward: time out deliveries, cancel what must
    /// not start, release what may, and finish it when all have ended.
    pub async fn advance(&self, id: &str) -> Result<(), StoreError> {
        let _one = self.advancing.lock().await;
        // And one replica at a time: max concurrency holds across replicas.
        let _replicas = self.store.command_lock(id).await?;
        let Some(cmd) = self.store.command(id).await? else { return Ok(()) };
        let mut invs = self.store.invocations(id).await?;
        let now = now_ms();
        let mut changes: Vec<(String, InvocationStatus, bool, Option<String>)> = Vec::new();
        let mut set = |inv: &mut InvocationRow, s: InvocationStatus, released: bool, reason: Option<String>| {
            inv.status = s;
            if released {
                inv.released_ms = Some(now);
            }
            changes.push((inv.node_id.clone(), s, released, reason));
        };
        let waiting = |i: &InvocationRow| matches!(i.status, InvocationStatus::Pending | InvocationStatus::Delayed);
        for inv in invs.iter_mut() {
            let released_waiting = waiting(inv) && inv.acked_ms.is_none();
            if let (true, Some(r)) = (released_waiting, inv.released_ms) {
                if now - r > cmd.delivery_timeout_ms {
                    let why = format!("the node did not take the command within {} s", cmd.delivery_timeout_ms / 1000);
                    set(inv, InvocationStatus::DeliveryTimedOut, false, Some(why));
                    continue;
                }
                if cmd.cancel_requested {
                    set(inv, InvocationStatus::Cancelled, false, Some("cancelled before it started".into()));
                }
            } else if inv.status == InvocationStatus::InProgress
                && inv.acked_ms.is_some_and(|a| now - a > cmd.run_timeout_ms + SILENCE_GRACE_MS)
            {
                let why = "no result from the agent within the command's timeouts".to_string();
                set(inv, InvocationStatus::TimedOut, false, Some(why));
            } else if waiting(inv) && cmd.cancel_requested {
                set(inv, InvocationStatus::Cancelled, false, Some("cancelled before it started".into()));
            }
        }
        let errors = invs.iter().filter(|i| i.status.is_error()).count() as i64;
        let stop = errors > cmd.max_errors;
        let mut in_flight = invs.iter().filter(|i| i.released_ms.is_some() && !i.status.is_terminal()).count() as i64;
        let mut woken = Vec::new();
        let gone = if !stop && invs.iter().any(|i| i.released_ms.is_none() && !i.status.is_terminal()) {
            self.store.deregistered_nodes().await?
        } else {
            HashSet::new()
        };
        for inv in invs.iter_mut() {
            if inv.released_ms.is_some() || inv.status.is_terminal() {
                continue;
            }
            if stop {
                let why = format!("not started: {errors} error(s) exceeded max errors {}", cmd.max_errors);
                set(inv, InvocationStatus::Cancelled, false, Some(why));
                continue;
            }
            if in_flight >= cmd.max_concurrency {
                break;
            }
            if gone.contains(&inv.node_id) {
                set(inv, InvocationStatus::Undeliverable, true, Some("the node is deregistered".into()));
                continue;
            }
            let status =
                if self.is_connected(&inv.node_id) { InvocationStatus::Pending } else { InvocationStatus::Delayed };
            set(inv, status, true, None);
            in_flight += 1;
            woken.push(inv.node_id.clone());
        }
        self.store.transition(id, &changes).await?;
        for n in woken {
            self.wake(&n);
        }
        let statuses: Vec<InvocationStatus> = invs.iter().map(|i| i.status).collect();
        {
            let mut w = self.waiters();
            if cmd.cancel_requested && !statuses.iter().all(|s| s.is_terminal()) {
                w.cancelling.insert(id.to_string());
            } else if w.cancelling.remove(id) {
                w.cancels_sent.retain(|(c, _)| c != id);
            }
        }
        let (status, finished) = if statuses.iter().all(|s| s.is_terminal()) {
            (aggregate(&statuses, cmd.cancel_requested), true)
        } else if cmd.cancel_requested {
            (CommandStatus::Cancelling, false)
        } else if invs.iter().any(|i| i.released_ms.is_some()) {
            (CommandStatus::InProgress, false)
        } else {
            (CommandStatus::Pending, false)
        };
        if status != cmd.status || (finished && cmd.finished_at.is_none()) {
            if finished {
                tracing::info!(command = id, %status, "command finished");
            }
            self.store.set_command_status(id, status, finished).await?;
            if finished {
                self.finished.notify_waiters();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvocationStatus::*;

    #[test]
    fn aggregate_follows_ssm() {
        assert_eq!(aggregate(&[Success, Success], false), CommandStatus::Success);
        assert_eq!(aggregate(&[Success, Failed], false), CommandStatus::Failed);
        assert_eq!(aggregate(&[Failed, Cancelled], false), CommandStatus::Failed);
        assert_eq!(aggregate(&[Success, Cancelled], true), CommandStatus::Cancelled);
        assert_eq!(aggregate(&[Success, TimedOut], false), CommandStatus::TimedOut);
        assert_eq!(aggregate(&[Success, DeliveryTimedOut], false), CommandStatus::DeliveryTimedOut);
        assert_eq!(aggregate(&[Undeliverable], false), CommandStatus::Undeliverable);
    }
}
