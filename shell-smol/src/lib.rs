//! keybroker: the production shell (smol + rustls) around keybroker-core, and its commands.
#![forbid(unsafe_code)]

pub mod client;
pub mod commands;
pub mod demo;
pub mod files;
pub mod serve;
pub mod tls;
