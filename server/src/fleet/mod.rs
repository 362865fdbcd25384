//! The fleet: who may act (tokens), how hosts join (activations and
//! registration, which signs the agent's certificate), the nodes and their
//! facts, recipes and their assignments to nodes, and the reports agents
//! send back. [`nodes`] and [`recipes`] are the service; [`routes`] serves
//! it over HTTP.

pub mod nodes;
pub mod recipes;
pub mod routes;
pub mod store;

use std::sync::Arc;

use axum::Router;

use crate::audit::Throttle;
use crate::intake::Gate;
use crate::metrics::Metrics;
use crate::pki::Pki;
use crate::secrets::Secrets;
use crate::store::Store;

#[derive(Clone)]
pub struct Service {
    pub store: Store,
    pub pki: Arc<Pki>,
    pub metrics: Arc<Metrics>,
    /// Refused anonymous requests, audited at most once a minute per kind.
    pub refusals: Arc<Throttle>,
    /// Seals sensitive parameter values at rest.
    pub secrets: Arc<Secrets>,
}

impl axum::extract::FromRef<Service> for Store {
    fn from_ref(s: &Service) -> Store {
        s.store.clone()
    }
}

pub fn routes(svc: Service, gate: &Gate) -> Router {
    routes::routes(gate).with_state(svc)
}
