//! The composition root: builds each capability's service from the shared
//! parts and mounts every route. Nothing below imports this module.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::audit::Throttle;
use crate::commands::Dispatcher;
use crate::intake::{Gate, Intake, MIB};
use crate::leader::Leader;
use crate::metrics::Metrics;
use crate::pki::Pki;
use crate::secrets::Secrets;
use crate::store::Store;
use crate::{associations, automation, commands, fleet, install, rollouts};

/// The shared parts every service is made from.
pub struct Parts {
    pub store: Store,
    pub pki: Arc<Pki>,
    pub metrics: Arc<Metrics>,
    pub dispatcher: Arc<Dispatcher>,
    pub secrets: Arc<Secrets>,
    pub intake: Arc<Intake>,
    pub leader: Arc<Leader>,
    /// Characters of each output stream stored per invocation.
    pub output_cap: usize,
    /// Agent packages and their MANIFEST, served to install.sh.
    pub packages_dir: Option<std::path::PathBuf>,
    /// The most often an association may run (`rate(…)`).
    pub min_rate: std::time::Duration,
}

/// Every capability's service, built once.
#[derive(Clone)]
pub struct Services {
    pub fleet: fleet::Service,
    pub commands: commands::Service,
    pub automation: automation::Service,
    pub associations: associations::Service,
    pub rollouts: rollouts::Service,
    pub install: install::Service,
    pub gate: Gate,
}

impl Services {
    pub fn new(p: Parts) -> Services {
        let commands = commands::Service {
            store: p.store.clone(),
            dispatcher: p.dispatcher.clone(),
            secrets: p.secrets.clone(),
            output_cap: p.output_cap,
        };
        Services {
            fleet: fleet::Service {
                store: p.store.clone(),
                pki: p.pki.clone(),
                metrics: p.metrics.clone(),
                refusals: Arc::new(Throttle::default()),
                secrets: p.secrets.clone(),
            },
            automation: automation::Service::new(commands.clone(), p.leader.clone()),
            associations: associations::Service::new(commands.clone(), p.leader.clone(), p.min_rate),
            rollouts: rollouts::Service::new(commands.clone(), p.leader.clone()),
            commands,
            install: install::Service { pki: p.pki.clone(), packages_dir: p.packages_dir },
            gate: Gate { intake: p.intake, metrics: p.metrics, store: p.store },
        }
    }

    /// The whole API.
    pub fn router(&self) -> Router {
        let metrics = self.gate.metrics.clone();
        let g = &self.gate;
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(crate::metrics::render).with_state((g.store.clone(), metrics.clone())))
            .merge(fleet::routes(self.fleet.clone(), g))
            .merge(commands::routes::routes(g).with_state(self.commands.clone()))
            .merge(install::routes().with_state(self.install.clone()))
            .merge(automation::routes::routes(g).with_state(self.automation.clone()))
            .merge(associations::routes::routes(g).with_state(self.associations.clone()))
            .merge(rollouts::routes::routes(g).with_state(self.rollouts.clone()))
            // A backstop: every route with a body has its own, smaller limit.
            .layer(axum::extract::DefaultBodyLimit::max(16 * MIB))
            .layer(axum::middleware::from_fn(crate::intake::json_errors))
            .route_layer(axum::middleware::from_fn_with_state(metrics, crate::metrics::track))
    }
}
