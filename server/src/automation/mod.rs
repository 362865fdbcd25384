//! Automation: documents of steps (sleep, approve, pause, branch, run a
//! command, apply a recipe) executed on the server by the [`engine`], one
//! written transition at a time; [`service`] starts, shows and steers them,
//! and [`routes`] serves that over HTTP.

pub mod engine;
pub mod routes;
pub mod service;
pub mod store;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use self::engine::Engine;
pub use self::store::{Approval, ExecutionRow, ExecutionStatus, StepRow, StepStatus, Verdict};
use crate::commands;
use crate::leader::Leader;
use crate::secrets::Secrets;
use crate::store::Store;

#[derive(Clone)]
pub struct Service {
    pub store: Store,
    pub secrets: Arc<Secrets>,
    /// Command and recipe steps start their commands here.
    pub commands: commands::Service,
    pub engine: Arc<Engine>,
    /// Only the leading replica's loop advances executions (requests still
    /// advance the one they touch).
    pub leader: Arc<Leader>,
}

impl Service {
    pub fn new(commands: commands::Service, leader: Arc<Leader>) -> Service {
        Service {
            store: commands.store.clone(),
            secrets: commands.secrets.clone(),
            commands,
            engine: Arc::default(),
            leader,
        }
    }
}

impl axum::extract::FromRef<Service> for Store {
    fn from_ref(s: &Service) -> Store {
        s.store.clone()
    }
}
