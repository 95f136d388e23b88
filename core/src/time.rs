//! Time as the shells hand it in: a monotonic instant plus the wall clock.
use std::ops::{Add, Sub};
use std::time::Duration;

/// A monotonic point in time, as a duration since an epoch chosen by the shell.
///
/// Shells map their own clock onto it (`base.elapsed()`); the simulator uses a virtual clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The instant `d` after the shell's epoch.
    pub const fn from_epoch(d: Duration) -> Self {
        Instant(d)
    }
    /// Time since the shell's epoch.
    pub const fn since_epoch(self) -> Duration {
        self.0
    }
    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

/// What the shell knows of the time when it calls into the core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for timeouts.
    pub mono: Instant,
    /// Wall-clock seconds since the Unix epoch, for certificate validity and logs.
    pub unix_secs: i64,
}

impl Now {
    /// Moves to `now`: the monotonic part never goes back, the wall clock follows as given.
    pub fn advance(&mut self, now: Now) {
        if now.mono > self.mono || *self == Now::default() {
            *self = now;
        } else {
            self.unix_secs = now.unix_secs;
        }
    }
}
