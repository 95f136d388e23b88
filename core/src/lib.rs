//! keybroker-core: the pure, sans-IO heart of keybroker.
//!
//! Nothing in this crate touches a socket, a file, a clock or an entropy source: shells feed
//! bytes, time ([`Now`]) and random bytes in through [`Broker::handle_input`] and carry out
//! what [`Broker::poll_output`] asks. See [`broker`] for the drain rule. A server drives the
//! two halves behind `Broker` itself: a [`conn::Connection`] per connection on its own task,
//! and the shared [`endpoint::Endpoint`] behind one lock.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod authz;
pub mod backend;
pub mod broker;
pub mod cache;
pub mod config;
pub mod conn;
pub mod drbg;
pub mod endpoint;
pub mod envelope;
pub mod expiry;
pub mod http;
pub mod kmip;
pub mod log;
pub mod metrics;
pub mod secret;
pub mod time;
pub mod vault;

pub use broker::{
    Broker, ConnId, ConnOutput, Effect, Input, LinkOutput, Listener, Output, READ_CHUNK,
};
pub use config::Settings;
pub use log::Level;
pub use secret::Secret;
pub use time::{Instant, Now};
