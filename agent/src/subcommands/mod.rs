//! What the binary's longer subcommands do: `apply`/`validate` (one local
//! converge, or a check) and `run` (the daemon). `main.rs` parses the
//! command line and calls these; the short ones (`facts`, `disable`,
//! `register`, …) call their module directly.

pub mod apply;
pub mod daemon;
