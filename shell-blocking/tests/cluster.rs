//! The shared cluster suite (shell-smol/tests/suites/cluster.rs) against `keybroker-lite serve`.
#[path = "../../shell-smol/tests/common/mod.rs"]
mod common;

/// The server under test.
const BIN: &str = env!("CARGO_BIN_EXE_keybroker-lite");

include!("../../shell-smol/tests/suites/cluster.rs");
