//! keybroker-host: everything both servers (`keybroker` on smol, `keybroker-lite` on std
//! threads) share that needs no async runtime — loading a node (configuration, keystore,
//! backend) into a broker, the TLS configurations, files, signals, reload, the timer policy —
//! and [`driver::Host`], the one driver that feeds the broker its inputs and routes its outputs.
//!
//! A server supplies only what differs between runtimes through [`driver::Runtime`].
#![forbid(unsafe_code)]

pub mod commands;
pub mod driver;
pub mod files;
pub mod node;
pub mod tls;
