//! Operating-system plumbing the rest of the agent shares: running a
//! command in its own process group with a timeout and an output cap
//! ([`process`]), and systemd's notification protocol ([`notify`]).

pub mod notify;
pub mod process;
