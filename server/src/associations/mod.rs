//! Associations: a command document or a recipe applied to targets on a
//! schedule ([`schedule`]), fired by the [`engine`] on the leading replica,
//! and the compliance each node's result gives; [`service`] manages them
//! and [`routes`] serves that over HTTP.

pub mod engine;
pub mod routes;
pub mod schedule;
pub mod service;
pub mod store;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use self::store::{AssociationRow, Compliance, ComplianceRow, RunRow, RunStatus};
use crate::commands;
use crate::leader::Leader;
use crate::secrets::Secrets;
use crate::store::Store;

#[derive(Clone)]
pub struct Service {
    pub store: Store,
    pub secrets: Arc<Secrets>,
    /// Each run starts its command here.
    pub commands: commands::Service,
    /// Only the leading replica fires schedules.
    pub leader: Arc<Leader>,
    /// The most often an association may run (`rate(…)`).
    pub min_rate: std::time::Duration,
}

impl Service {
    pub fn new(commands: commands::Service, leader: Arc<Leader>, min_rate: std::time::Duration) -> Service {
        Service { store: commands.store.clone(), secrets: commands.secrets.clone(), commands, leader, min_rate }
    }
}

impl axum::extract::FromRef<Service> for Store {
    fn from_ref(s: &Service) -> Store {
        s.store.clone()
    }
}
