//! The shared kmip suite (suites/kmip.rs) against `keybroker serve` (smol).
mod common;

/// The server under test.
const BIN: &str = env!("CARGO_BIN_EXE_keybroker");

include!("suites/kmip.rs");
