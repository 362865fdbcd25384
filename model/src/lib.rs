//! The recipe format shared by the agent and the server: schema, loading,
//! validation with located diagnostics, templating and the resource graph.
//!
//! Everything here is pure: no host access beyond reading recipe files.
#![forbid(unsafe_code)]

pub mod association;
pub mod automation;
pub mod bundle;
#[cfg(feature = "cli-assets")]
pub mod cli_assets;
pub mod command;
pub mod compile;
pub mod component;
pub mod condition;
pub mod data;
pub mod diag;
pub mod document;
pub mod expand;
pub mod facts;
pub mod fuzzing;
pub mod graph;
pub mod helpers;
pub mod load;
pub mod locate;
pub mod mode;
pub mod names;
pub mod params;
pub mod render;
pub mod resource;
pub mod resources;
pub mod rollout;
pub mod schema;
pub mod suggest;
pub mod typing;
pub mod values;
pub mod version;
pub mod wire;
pub mod yaml;

pub use compile::{CompileOptions, CompiledResource, Plan, compile};
pub use diag::{Diagnostic, Diagnostics};
pub use load::{RecipeSet, load};
pub use resource::{ResourceId, Spec};
