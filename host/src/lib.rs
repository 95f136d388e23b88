//! keybroker-host: everything both servers (`keybroker` on smol, `keybroker-lite` on std
//! threads) share that needs no async runtime — loading a node (configuration, keystore,
//! backend) into a broker, the TLS configurations, files, the chained audit log, logging,
//! certificate expiry warnings, the shared command line, signals, reload, the timer policy —
//! and [`driver::Host`], the one driver that feeds the broker its inputs and routes its outputs.
//!
//! A server supplies only what differs between runtimes through [`driver::Runtime`].
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod commands;
pub mod driver;
pub mod expiry;
pub mod files;
pub mod hsm_verify;
#[cfg(feature = "legacy-hsm-tls")]
pub mod legacy_tls;
pub mod logging;
pub mod node;
pub mod timefmt;
pub mod tls;
pub mod tls_profile;
