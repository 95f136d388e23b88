//! When to warn about certificates running out: pure decisions, the time comes in.
//!
//! A running node checks its keystore's certificates at start and once a day. Each certificate
//! is warned about once as it passes 90, 60, 15 and 7 days before its expiry (a node that
//! starts late warns at the closest threshold passed, once), and every day once expired. An
//! expired certificate of the node's own TLS identity is an error: clients will refuse it.
use std::collections::HashMap;

/// Days before expiry at which a certificate is warned about.
pub const THRESHOLDS: [i64; 4] = [90, 60, 15, 7];

const DAY: i64 = 86_400;

/// A certificate to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// The keystore alias.
    pub alias: String,
    /// What it is for the node, in words (`server (TLS)`, `backend`, `server (CA)`, …).
    pub role: String,
    /// Not-after, Unix seconds.
    pub not_after: i64,
    /// The node's own TLS server certificate: expired is an error, not a warning.
    pub server_own: bool,
}

/// How loud a notice is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something to renew.
    Warn,
    /// The node's own certificate is expired.
    Error,
}

/// One line for the operator's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// How loud.
    pub level: Level,
    /// The alias concerned.
    pub alias: String,
    /// The message (alias, role, days).
    pub message: String,
}

/// What has been said about each certificate, so each threshold is said once.
#[derive(Default, Debug)]
pub struct ExpiryWatch {
    /// (alias lower-cased, not-after) → the last threshold warned, or for an expired
    /// certificate `-(day number)` of the last daily warning.
    said: HashMap<(String, i64), i64>,
}

impl ExpiryWatch {
    /// A watch that has said nothing yet.
    pub fn new() -> ExpiryWatch {
        ExpiryWatch::default()
    }

    /// The notices due at `now` (Unix seconds) for `certs`. Call it at start, once a day and
    /// after a keystore reload; it says each thing once (a renewed certificate, with another
    /// not-after, starts afresh).
    pub fn check(&mut self, certs: &[Watched], now: i64) -> Vec<Notice> {
        let mut out = Vec::new();
        let live: Vec<(String, i64)> = certs
            .iter()
            .map(|c| (c.alias.to_ascii_lowercase(), c.not_after))
            .collect();
        self.said.retain(|k, _| live.contains(k));
        for c in certs {
            let key = (c.alias.to_ascii_lowercase(), c.not_after);
            let left = c.not_after - now;
            if left <= 0 {
                let day = now.div_euclid(DAY);
                if self.said.get(&key) == Some(&-day) {
                    continue;
                }
                self.said.insert(key, -day);
                let ago = (-left).div_euclid(DAY);
                let (level, tail) = if c.server_own {
                    (
                        Level::Error,
                        ": clients refuse this node until it is renewed",
                    )
                } else {
                    (Level::Warn, "")
                };
                out.push(Notice {
                    level,
                    alias: c.alias.clone(),
                    message: format!(
                        "certificate {} ({}) expired {ago} day(s) ago{tail}",
                        c.alias, c.role
                    ),
                });
                continue;
            }
            let days = left.div_euclid(DAY);
            let Some(threshold) = THRESHOLDS.iter().rev().copied().find(|t| days < *t) else {
                continue;
            };
            match self.said.get(&key) {
                Some(&t) if t > 0 && t <= threshold => continue,
                _ => {}
            }
            self.said.insert(key, threshold);
            out.push(Notice {
                level: Level::Warn,
                alias: c.alias.clone(),
                message: format!(
                    "certificate {} ({}) expires in {days} day(s): renew it (under {threshold} days)",
                    c.alias, c.role
                ),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn cert(alias: &str, days: f64, server_own: bool) -> Watched {
        Watched {
            alias: alias.into(),
            role: if server_own {
                "server (TLS)"
            } else {
                "backend"
            }
            .into(),
            not_after: NOW + (days * DAY as f64) as i64,
            server_own,
        }
    }

    /// Runs a daily check for `days` days and returns (day, message) of every notice.
    fn daily(certs: &[Watched], days: i64) -> Vec<(i64, Level, String)> {
        let mut w = ExpiryWatch::new();
        let mut out = Vec::new();
        for d in 0..days {
            for n in w.check(certs, NOW + d * DAY) {
                out.push((d, n.level, n.message));
            }
        }
        out
    }

    #[test]
    fn nothing_for_a_certificate_far_from_expiry() {
        assert!(daily(&[cert("a", 200.0, false)], 100).is_empty());
    }

    #[test]
    fn warns_at_90_60_15_and_7_days_then_daily_once_expired() {
        let got = daily(&[cert("a", 100.5, false)], 104);
        let days: Vec<i64> = got.iter().map(|g| g.0).collect();
        // 100.5 days left at day 0: under 90 on day 11, 60 on day 41, 15 on day 86, 7 on day
        // 94; expired from day 101 (100.5 days), then every day.
        assert_eq!(days, vec![11, 41, 86, 94, 101, 102, 103]);
        assert!(got[0].2.contains("under 90 days"), "{got:?}");
        assert!(got[2].2.contains("expires in 14 day(s)"), "{got:?}");
        assert!(got[4].2.contains("expired 0 day(s) ago"), "{got:?}");
        assert!(got.iter().all(|g| g.1 == Level::Warn));
    }

    #[test]
    fn a_start_within_15_days_warns_once_with_the_15_day_warning() {
        let mut w = ExpiryWatch::new();
        let c = [cert("a", 10.0, false)];
        let n = w.check(&c, NOW);
        assert_eq!(n.len(), 1);
        assert!(n[0].message.contains("under 15 days"), "{n:?}");
        // The same day again (a reload): nothing new.
        assert!(w.check(&c, NOW + 3600).is_empty());
        // Three days later it passes 7.
        let n = w.check(&c, NOW + 3 * DAY + 1);
        assert!(n[0].message.contains("under 7 days"), "{n:?}");
    }

    #[test]
    fn the_servers_own_expired_certificate_is_an_error() {
        let got = daily(&[cert("kmsServer", -2.0, true), cert("b", -2.0, false)], 2);
        assert_eq!(
            got.iter().map(|g| (g.0, g.1)).collect::<Vec<_>>(),
            vec![
                (0, Level::Error),
                (0, Level::Warn),
                (1, Level::Error),
                (1, Level::Warn)
            ]
        );
        assert!(got[0]
            .2
            .contains("kmsServer (server (TLS)) expired 2 day(s) ago"));
    }

    #[test]
    fn a_renewed_certificate_starts_afresh() {
        let mut w = ExpiryWatch::new();
        assert_eq!(w.check(&[cert("a", 10.0, false)], NOW).len(), 1);
        assert!(w.check(&[cert("a", 400.0, false)], NOW + 60).is_empty());
        assert_eq!(w.check(&[cert("a", 5.0, false)], NOW + 120).len(), 1);
    }
}
