//! What the network backends (KMIP, Vault) share about their endpoints: a circuit breaker per
//! endpoint, and the choice of the link a request goes on.
//!
//! A request goes to the first endpoint (in configured order) whose breaker is closed, that is
//! not stalled (a request of it unanswered for the backend's stall time), and that has an idle
//! link; otherwise a link is opened on the first such endpoint not already connecting. A stalled
//! endpoint is used only when no healthy one exists (a slow answer is not a failure). A failure
//! opens the endpoint's breaker for 1 s, doubling to 30 s while failures repeat; after the pause
//! one new request probes it, and an answer closes it.
use super::LinkId;
use crate::time::Instant;
use std::time::Duration;

/// The first pause of an endpoint's breaker.
pub(crate) const BREAKER_BASE: Duration = Duration::from_secs(1);
/// The longest pause of an endpoint's breaker.
pub(crate) const BREAKER_MAX: Duration = Duration::from_secs(30);

/// One endpoint's circuit breaker.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    /// Times it opened (a closed breaker tripping), for `/metrics`.
    opened: u64,
}

/// What [`Breaker::trip`] did.
pub(crate) struct Trip {
    /// How long the endpoint is left alone.
    pub pause: Duration,
    /// Whether it was open already (the failure was logged then).
    pub was_open: bool,
    /// Failures in a row, this one included.
    pub failures: u32,
}

impl Breaker {
    /// Whether requests may go to the endpoint at `now`.
    pub fn closed(&self, now: Instant) -> bool {
        self.open_until.is_none_or(|t| t <= now)
    }

    /// Until when the breaker is open, if it was ever opened since the last success.
    pub fn open_until(&self) -> Option<Instant> {
        self.open_until
    }

    /// Records a failure at `now`: the breaker opens for 1 s, doubling to 30 s.
    pub fn trip(&mut self, now: Instant) -> Trip {
        self.failures = self.failures.saturating_add(1);
        let pause = BREAKER_BASE
            .saturating_mul(1 << (self.failures - 1).min(5))
            .min(BREAKER_MAX);
        let was_open = self.open_until.is_some_and(|t| t > now);
        if !was_open {
            self.opened += 1;
        }
        self.open_until = Some(now + pause);
        Trip {
            pause,
            was_open,
            failures: self.failures,
        }
    }

    /// Records an answer: the endpoint is healthy again.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.open_until = None;
    }
}

/// What a link is doing, as far as choosing one is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connecting (TCP + TLS).
    Connecting,
    /// Up, no request on it.
    Idle,
    /// A request on it since `sent`.
    Busy {
        /// When the request was sent.
        sent: Instant,
    },
}

/// Where the next request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Send it on this idle link.
    Send(LinkId),
    /// Open a link to this endpoint (by index), then wait for it.
    Connect(usize),
    /// Wait: a link is coming or every link is busy.
    Wait,
    /// No endpoint can take it now (every breaker open).
    Nowhere,
}

/// The links one backend holds, by endpoint, as [`pick`] sees them.
pub(crate) struct View<'a> {
    /// One breaker per endpoint, in configured order.
    pub breakers: &'a [Breaker],
    /// Every link: id, endpoint index, phase (in id order).
    pub links: &'a [(LinkId, usize, Phase)],
    /// Now.
    pub now: Instant,
    /// A request unanswered this long stalls its endpoint.
    pub stall_after: Duration,
    /// Most links per endpoint.
    pub pool_size: usize,
}

impl View<'_> {
    /// Each endpoint's health for `/metrics`, named by `names` (in configured order).
    pub fn statuses(&self, names: impl Iterator<Item = String>) -> Vec<super::EndpointStatus> {
        names
            .zip(self.breakers)
            .enumerate()
            .map(|(ep, (name, b))| super::EndpointStatus {
                name,
                up: b.failures == 0 && !self.stalled(ep),
                breaker_open: !b.closed(self.now),
                failovers: b.opened,
            })
            .collect()
    }

    fn stalled(&self, ep: usize) -> bool {
        self.links.iter().any(|(_, e, p)| {
            *e == ep && matches!(p, Phase::Busy { sent } if *sent + self.stall_after <= self.now)
        })
    }

    fn idle_link(&self, ep: usize) -> Option<LinkId> {
        self.links
            .iter()
            .find(|(_, e, p)| *e == ep && *p == Phase::Idle)
            .map(|(id, _, _)| *id)
    }

    /// (links, one of them connecting) of endpoint `ep`.
    fn count(&self, ep: usize) -> (usize, bool) {
        self.links
            .iter()
            .filter(|(_, e, _)| *e == ep)
            .fold((0, false), |(c, k), (_, _, p)| {
                (c + 1, k || *p == Phase::Connecting)
            })
    }

    /// Where the next request goes: healthy endpoints first, in configured order.
    pub fn pick(&self) -> Pick {
        let n = self.breakers.len();
        let pool = self.pool_size.max(1);
        let usable: Vec<usize> = (0..n)
            .filter(|&ep| self.breakers[ep].closed(self.now))
            .collect();
        let healthy: Vec<usize> = usable
            .iter()
            .copied()
            .filter(|&ep| !self.stalled(ep))
            .collect();
        if let Some(id) = healthy.iter().find_map(|&ep| self.idle_link(ep)) {
            return Pick::Send(id);
        }
        let mut waiting = false;
        for &ep in &healthy {
            let (count, connecting) = self.count(ep);
            if connecting {
                waiting = true;
                continue;
            }
            if count < pool {
                return Pick::Connect(ep);
            }
            waiting = true;
        }
        if waiting {
            return Pick::Wait;
        }
        if let Some(id) = usable.iter().find_map(|&ep| self.idle_link(ep)) {
            return Pick::Send(id);
        }
        for &ep in &usable {
            let (count, connecting) = self.count(ep);
            if !connecting && count < pool {
                return Pick::Connect(ep);
            }
        }
        if usable.is_empty() {
            Pick::Nowhere
        } else {
            Pick::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_epoch(Duration::from_millis(ms))
    }

    #[test]
    fn breaker_doubles_to_thirty_seconds_and_resets() {
        let mut b = Breaker::default();
        let pauses: Vec<u64> = (0..8).map(|_| b.trip(at(0)).pause.as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert!(!b.closed(at(29_999)));
        assert!(b.closed(at(30_000)));
        b.reset();
        assert!(b.closed(at(0)));
        let t = b.trip(at(0));
        assert_eq!((t.pause.as_secs(), t.was_open, t.failures), (1, false, 1));
        assert!(b.trip(at(500)).was_open);
    }

    #[test]
    fn healthy_endpoints_first_then_stalled_then_nowhere() {
        let mut breakers = vec![Breaker::default(), Breaker::default()];
        let view = |breakers: &[Breaker], links: &[(LinkId, usize, Phase)], now| {
            View {
                breakers,
                links,
                now: at(now),
                stall_after: Duration::from_secs(1),
                pool_size: 2,
            }
            .pick()
        };
        assert_eq!(view(&breakers, &[], 0), Pick::Connect(0));
        let links = [(1, 0, Phase::Connecting)];
        assert_eq!(view(&breakers, &links, 0), Pick::Connect(1));
        let links = [(1, 0, Phase::Busy { sent: at(0) }), (2, 1, Phase::Idle)];
        assert_eq!(view(&breakers, &links, 100), Pick::Send(2));
        let links = [
            (1, 0, Phase::Busy { sent: at(0) }),
            (2, 1, Phase::Busy { sent: at(0) }),
        ];
        assert_eq!(view(&breakers, &links, 100), Pick::Connect(0));
        let links = [
            (1, 0, Phase::Busy { sent: at(0) }),
            (2, 0, Phase::Idle),
            (3, 1, Phase::Idle),
        ];
        assert_eq!(view(&breakers, &links, 100), Pick::Send(2));
        // Endpoint 0 stalled: its idle link waits, endpoint 1's is used.
        assert_eq!(view(&breakers, &links, 1_000), Pick::Send(3));
        breakers[1].trip(at(1_000));
        assert_eq!(view(&breakers, &links, 1_000), Pick::Send(2));
        breakers[0].trip(at(1_000));
        assert_eq!(view(&breakers, &links, 1_500), Pick::Nowhere);
        assert_eq!(view(&breakers, &links, 2_000), Pick::Send(3));
    }
}
