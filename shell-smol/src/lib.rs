//! keybroker: the production server — the shared driver ([`keybroker_host`]) on smol with
//! `futures-rustls` — its demo, and the `keybroker client` commands (on keybroker-client).
#![forbid(unsafe_code)]

pub mod client_cli;
pub mod demo;
pub mod embedded;
pub mod rewrap;
pub mod serve;

pub use keybroker_host::{audit, cli, commands, expiry, files, logging, node, timefmt, tls};
