//! keybroker-lite: the core on std threads and rustls `StreamOwned`, no async runtime.
#![forbid(unsafe_code)]

pub mod serve;
