//! The invariants checked after every step, and what they need to remember.
//!
//! - every connection holds at most `keybroker.http.max-connection-bytes` and at most
//!   `MAX_PIPELINE` requests; the brokers and the clients agree on which connections are open;
//!   an idle connection is closed by its deadline;
//! - every accepted request is answered within [`deadline`] (slow readers and broken streams
//!   aside);
//! - after a KMIP endpoint fails while another stays healthy, a well-formed request accepted
//!   [`FAILOVER_BUDGET`] after the last fault began succeeds ([`failover_required`]);
//! - (in [`crate::oracle`]) never a wrong plaintext, never a success for another context, a
//!   forged token or a role without the right; every error a 4xx or a 5xx with Retry-After;
//! - (in [`crate::peers`]) no Vault request is sent with an expired token; no HSM key version
//!   is created twice for one rotation.
use crate::{
    net::Net, BackendChoice, Failure, World, CONNECT_TIMEOUT, REDIS_TIMEOUT, REQUEST_TIMEOUT,
};
use keybroker_core::broker::MAX_PIPELINE;
use keybroker_core::Instant;
use std::time::Duration;

/// After a fault begins, how long a healthy KMIP endpoint may take to carry requests again:
/// the stall and request timeout of a request caught on the failing endpoint, a connect
/// timeout, a restart of the start sequence, and slack.
pub const FAILOVER_BUDGET: Duration = Duration::from_secs(12);

/// Longest an accepted request may wait for its answer: a wait for a free link, the request
/// and one retry (each within the backend request timeout), a connect, a Redis lookup, slack.
pub fn deadline() -> Duration {
    REQUEST_TIMEOUT * 3 + CONNECT_TIMEOUT + REDIS_TIMEOUT + Duration::from_secs(2)
}

/// What the checks remember across steps.
#[derive(Debug, Default)]
pub struct State {
    /// When the last fault on a backend endpoint began.
    pub last_backend_fault: Option<Instant>,
}

impl State {
    /// A fault was injected at `now`; remembers it if it touches a backend endpoint.
    pub fn fault_started(&mut self, now: Instant, net: &Net) {
        if net.last_fault_hit_backend {
            self.last_backend_fault = Some(now);
        }
    }
}

/// Why a request accepted at `accepted` had to succeed by `now`, if it had: KMIP with a
/// survivor endpoint that no fault touches, and no backend fault within the budget.
pub(crate) fn failover_required(
    w: &World,
    accepted: Option<Instant>,
    now: Instant,
) -> Option<String> {
    let accepted = accepted?;
    if w.sc.backend != BackendChoice::Kmip || !w.net.survivor {
        return None;
    }
    let from = w.checks.last_backend_fault?;
    if accepted < from + FAILOVER_BUDGET || now < accepted {
        return None;
    }
    Some(format!(
        "a healthy HSM endpoint stayed up, the last fault began {:?} before the request, \
         and the failover budget is {FAILOVER_BUDGET:?}",
        accepted.saturating_since(from)
    ))
}

impl World {
    /// Invariants that hold after every step.
    pub(crate) fn check(&self) -> Result<(), Failure> {
        let mut open = vec![0usize; self.nodes.len()];
        let limit_idle =
            self.idle.max(self.header).max(self.write_timeout) + Duration::from_secs(1);
        let deadline = deadline();
        for (id, c) in &self.conns {
            open[c.node] += 1;
            let b = &self.nodes[c.node].broker;
            if c.refused_answered {
                return Err(self.fail(format!(
                    "connection {id}: refused client still open after its answer"
                )));
            }
            let limit = b.settings().max_connection_bytes;
            if b.held_bytes(*id) > limit {
                return Err(self.fail(format!(
                    "connection {id} holds {} bytes, bound is {limit}",
                    b.held_bytes(*id)
                )));
            }
            if b.in_flight(*id) > MAX_PIPELINE {
                return Err(self.fail(format!(
                    "connection {id}: {} requests held, bound is {MAX_PIPELINE}",
                    b.in_flight(*id)
                )));
            }
            if b.in_flight(*id) == 0 && self.now.saturating_since(c.last_activity) > limit_idle {
                return Err(self.fail(format!(
                    "connection {id} still open {:?} after its last activity (deadline {limit_idle:?})",
                    self.now.saturating_since(c.last_activity)
                )));
            }
            if c.chaos || c.slow_reader {
                continue;
            }
            if let Some(p) = c.pending.iter().find(|p| p.accepted.is_some()) {
                let at = p.accepted.expect("found");
                let waited = self.now.saturating_since(at);
                if waited > deadline {
                    return Err(self.fail(format!(
                        "connection {id}: request {} ({}) unanswered after {waited:?} (deadline {deadline:?})",
                        p.rid,
                        p.expect.name()
                    )));
                }
            }
        }
        let made = [
            self.peers.kmip.as_ref().map(|k| &k.created),
            self.peers.vault.as_ref().map(|v| &v.rotated),
        ];
        for (name, n) in made.into_iter().flatten().flatten() {
            let asked = self.rotations.get(name).copied().unwrap_or(0);
            if *n > asked {
                return Err(self.fail(format!(
                    "the backend made {n} new versions of {name:?} for {asked} rotation requests: a non-idempotent request was sent twice"
                )));
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.broker.connections() != open[i] {
                return Err(self.fail(format!(
                    "node {i} holds {} connections, clients see {}",
                    n.broker.connections(),
                    open[i]
                )));
            }
        }
        Ok(())
    }
}
