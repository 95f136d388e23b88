//! keybroker-lite: the blocking server.
fn main() {}
