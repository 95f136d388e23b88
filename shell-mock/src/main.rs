//! keybroker-sim.
fn main() {}
