//! keybroker: the production server.
fn main() {}
