//! Change sets and progressive rollouts of recipe versions (issue 15).
//! [`plan`] asks every target node for a dry-run of a recipe version
//! through the command channel and aggregates the answers; [`service`]
//! starts and steers rollouts; the [`engine`] drives them batch by batch
//! (pin, wake, gates, bake) and rolls back; [`routes`] serves it over HTTP.
//! The strategies and the batch arithmetic are `tend_model::rollout`'s.

pub mod engine;
pub mod plan;
pub mod routes;
pub mod service;
pub mod store;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use self::engine::Engine;
use crate::commands;
use crate::leader::Leader;
use crate::store::Store;

#[derive(Clone)]
pub struct Service {
    pub store: Store,
    /// Plans, wake-ups, health documents and rollbacks are commands.
    pub commands: commands::Service,
    pub engine: Arc<Engine>,
    /// Only the leading replica's loop drives rollouts.
    pub leader: Arc<Leader>,
}

impl Service {
    pub fn new(commands: commands::Service, leader: Arc<Leader>) -> Service {
        Service { store: commands.store.clone(), commands, engine: Arc::default(), leader }
    }
}

impl axum::extract::FromRef<Service> for Store {
    fn from_ref(s: &Service) -> Store {
        s.store.clone()
    }
}
