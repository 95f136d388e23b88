//! Counters for `/metrics`, rendered in the Prometheus text format.
use std::collections::BTreeMap;
use std::fmt::Write;

/// Everything the broker counts.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Answers by (operation, status).
    pub requests: BTreeMap<(&'static str, u16), u64>,
    /// Sum of request durations in seconds, by operation.
    pub duration_sum: BTreeMap<&'static str, f64>,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Connections closed for a header or idle timeout.
    pub timeouts: u64,
}

impl Metrics {
    /// Records one answered request.
    pub fn record(&mut self, op: &'static str, status: u16, seconds: f64) {
        *self.requests.entry((op, status)).or_default() += 1;
        *self.duration_sum.entry(op).or_default() += seconds;
    }

    /// Renders the Prometheus text exposition, with extra gauges appended.
    pub fn render(
        &self,
        backend_ready: bool,
        cert_expiry: &[(String, i64)],
        unix_now: i64,
        cache: &crate::cache::CacheStats,
    ) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP keybroker_requests_total API answers by operation and status."
        );
        let _ = writeln!(s, "# TYPE keybroker_requests_total counter");
        for ((op, status), n) in &self.requests {
            let _ = writeln!(
                s,
                "keybroker_requests_total{{op=\"{op}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP keybroker_request_duration_seconds_sum Time spent answering, by operation."
        );
        let _ = writeln!(s, "# TYPE keybroker_request_duration_seconds_sum counter");
        for (op, secs) in &self.duration_sum {
            let _ = writeln!(
                s,
                "keybroker_request_duration_seconds_sum{{op=\"{op}\"}} {secs:.6}"
            );
        }
        let _ = writeln!(s, "# TYPE keybroker_connections_accepted_total counter");
        let _ = writeln!(
            s,
            "keybroker_connections_accepted_total {}",
            self.connections_accepted
        );
        let _ = writeln!(s, "# TYPE keybroker_connections_open gauge");
        let _ = writeln!(s, "keybroker_connections_open {}", self.connections_open);
        let _ = writeln!(s, "# TYPE keybroker_connection_timeouts_total counter");
        let _ = writeln!(s, "keybroker_connection_timeouts_total {}", self.timeouts);
        let _ = writeln!(
            s,
            "# HELP keybroker_cache_total Decrypt cache lookups by result."
        );
        let _ = writeln!(s, "# TYPE keybroker_cache_total counter");
        let _ = writeln!(s, "keybroker_cache_total{{result=\"hit\"}} {}", cache.hits);
        let _ = writeln!(
            s,
            "keybroker_cache_total{{result=\"miss\"}} {}",
            cache.misses
        );
        let _ = writeln!(
            s,
            "keybroker_cache_total{{result=\"error\"}} {}",
            cache.errors
        );
        let _ = writeln!(s, "# TYPE keybroker_backend_ready gauge");
        let _ = writeln!(s, "keybroker_backend_ready {}", u8::from(backend_ready));
        let _ = writeln!(s, "# HELP keybroker_certificate_expiry_days Days until each keystore certificate expires.");
        let _ = writeln!(s, "# TYPE keybroker_certificate_expiry_days gauge");
        for (alias, not_after) in cert_expiry {
            let days = (not_after - unix_now) as f64 / 86_400.0;
            let alias = alias.replace(['\\', '"', '\n'], "_");
            let _ = writeln!(
                s,
                "keybroker_certificate_expiry_days{{alias=\"{alias}\"}} {days:.2}"
            );
        }
        s
    }
}
