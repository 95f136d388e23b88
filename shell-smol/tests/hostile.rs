//! The shared hostile-client suite (shared/hostile.rs) against `keybroker serve` (smol).
mod common;

/// The server under test.
const BIN: &str = env!("CARGO_BIN_EXE_keybroker");

include!("shared/hostile.rs");
