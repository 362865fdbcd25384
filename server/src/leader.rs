//! Which replica leads: the one that fires association schedules and
//! advances automation executions. On SQLite (one replica) it always leads;
//! on PostgreSQL it holds a session advisory lock ([`Store::try_lead`]),
//! which PostgreSQL releases the moment the replica dies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::store::{Leadership, Store};

/// Set while this replica holds the lock.
#[derive(Default)]
pub struct Leader(AtomicBool);

impl Leader {
    pub fn leads(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Takes the lock when free and keeps it, checking it every second.
    pub async fn run(self: std::sync::Arc<Self>, store: Store) {
        let mut lead: Option<Leadership> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(l) = &mut lead
                && !l.alive().await
            {
                tracing::warn!("lost the scheduler lock");
                lead = None;
                self.0.store(false, Ordering::SeqCst);
            }
            if lead.is_none() {
                match store.try_lead().await {
                    Ok(Some(l)) => {
                        tracing::info!("this replica fires the schedules and runs the automations");
                        lead = Some(l);
                        self.0.store(true, Ordering::SeqCst);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "trying to lead the scheduler"),
                }
            }
            tick.tick().await;
        }
    }
}
