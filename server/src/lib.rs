//! tend-server: stores tokens, activations and nodes, signs agent
//! certificates, and serves the API over HTTPS (rustls). The `tend` CLI
//! (`src/bin/tend.rs`) is its operator client.
#![deny(unsafe_code)]

pub mod api;
pub mod association;
pub mod association_api;
pub mod audit;
pub mod auth;
pub mod automation;
pub mod automation_api;
pub mod command_api;
pub mod dispatch;
pub mod fleet_api;
pub mod health;
pub mod install_api;
pub mod intake;
pub mod metrics;
pub mod pki;
pub mod schedule;
pub mod secrets;
pub mod serve;
pub mod store;
pub mod tls;
