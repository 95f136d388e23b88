//! keybroker: the production shell (smol + rustls) around keybroker-core, and its commands.
//!
//! Without the default `server` feature this crate is runtime-free: the shared modules
//! (`node`, `tls`, `files`, `commands`, `demo`'s PKI, `client`) are what `keybroker-lite`
//! builds on.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod client;
pub mod commands;
pub mod demo;
pub mod expiry;
pub mod files;
pub mod logging;
pub mod node;
#[cfg(feature = "server")]
pub mod serve;
pub mod timefmt;
pub mod tls;
