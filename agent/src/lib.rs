//! tend-agent: converges a host to its recipes.
//!
//! The pieces, in the order a run uses them: [`facts`] about the host,
//! [`tend_model`] to load and compile recipes into a plan, [`engine`] to
//! check, diff, apply and verify each resource through its type in
//! [`resources`], and [`report`] / [`output`] to say what happened.
#![deny(unsafe_code)]

pub mod apply;
pub mod aws_profile;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod facts;
pub mod identity;
pub mod notify;
pub mod output;
pub mod process;
pub mod pull;
pub mod report;
pub mod resources;
pub mod s3;
pub mod state;
pub mod trust;
