//! TODO
/// Connection id.
pub type ConnId = u64;
/// Broker.
pub struct Broker;
/// Input.
pub enum Input {}
/// Output.
pub enum Output {}
/// Listener.
pub enum Listener {}
