//! tend-server: stores recipes, documents, nodes, reports and commands
//! (SQLite, or PostgreSQL for several replicas), signs agent certificates,
//! dispatches run commands, runs automation and associations, and serves
//! its API over HTTPS (rustls). The operator CLI is the `tend-cli` crate.
//!
//! The modules, from the top down (an arrow never points up; the test
//! `tests/layering.rs` checks it):
//! - [`serve`] starts everything; [`app`] builds each capability's service
//!   from the shared parts and mounts their routes.
//! - One folder per capability, each a service (the domain logic, returning
//!   [`error::Error`]), its store queries (`store.rs`, an `impl Store`) and
//!   its routes (`routes.rs`: parse, authorize, call the service):
//!   [`fleet`] (tokens, activations, registration, nodes, recipes,
//!   assignments, reports), [`commands`] (documents, run command and its
//!   dispatcher), [`automation`] (executions and their engine),
//!   [`associations`] (schedules, runs, compliance), [`rollouts`] (change
//!   sets, progressive rollouts and their driver), [`install`] (install.sh
//!   and the agent packages). `automation`, `associations` and `rollouts`
//!   start commands through [`commands::Service`], never through HTTP.
//! - Shared plumbing, which knows no capability: [`error`], [`auth`] (who
//!   is asking), [`intake`] (what a request must be before its body is
//!   read), [`store`] (the pool, the migrations, tokens, nodes, audit),
//!   [`leader`], [`health`], [`metrics`], [`audit`], [`secrets`], [`pki`], [`tls`].
#![deny(unsafe_code)]

pub mod app;
pub mod associations;
pub mod audit;
pub mod auth;
pub mod automation;
pub mod commands;
pub mod error;
pub mod fleet;
pub mod health;
pub mod install;
pub mod intake;
pub mod leader;
pub mod metrics;
pub mod pki;
pub mod rollouts;
pub mod secrets;
pub mod serve;
pub mod store;
pub mod tls;
