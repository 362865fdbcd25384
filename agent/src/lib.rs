//! tend-agent: converges a host to its recipes.
//!
//! The pieces, in the order a run uses them: [`facts`] about the host, the
//! recipes (from the command line, or from [`sources`]: the server or S3),
//! [`tend_model`] to compile them into a plan, the [`engine`] to check,
//! diff, apply and verify each resource through its type in [`resources`],
//! and [`report`] to say what happened. [`subcommands`] holds what the
//! binary's subcommands do; [`run_command`] is the run-command channel;
//! [`config`], [`identity`] and [`state`] are the agent's own files;
//! [`system`] is process and systemd plumbing.
#![deny(unsafe_code)]

pub mod aws;
pub mod config;
pub mod engine;
pub mod facts;
pub mod identity;
pub mod output;
pub mod report;
pub mod resources;
pub mod run_command;
pub mod sources;
pub mod state;
pub mod subcommands;
pub mod system;
