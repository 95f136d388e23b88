//! Counters for `/metrics`, rendered in the Prometheus text format.
use std::collections::BTreeMap;
use std::fmt::Write;

/// Everything the broker counts.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Answers by (operation, status).
    pub requests: BTreeMap<(&'static str, u16), u64>,
    /// Request durations (first byte received to last answer byte written), by operation.
    pub durations: BTreeMap<&'static str, Histogram>,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Connections closed for a header or idle timeout.
    pub timeouts: u64,
    /// The shell's TLS implementation, for `keybroker_build_info` (empty: `unknown`).
    pub tls_provider: &'static str,
}

/// Upper bounds (seconds) of the duration histogram's buckets.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A Prometheus histogram: cumulative counts per bucket, sum and count.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Observations at or below each of [`BUCKETS`] (not cumulative).
    pub buckets: [u64; BUCKETS.len()],
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Adds one observation.
    pub fn observe(&mut self, v: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}

impl Metrics {
    /// Counts one answer.
    pub fn record(&mut self, op: &'static str, status: u16) {
        *self.requests.entry((op, status)).or_default() += 1;
    }

    /// Times one answer, once its last byte was written.
    pub fn observe(&mut self, op: &'static str, seconds: f64) {
        self.durations.entry(op).or_default().observe(seconds);
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
            "# HELP keybroker_build_info The running version and TLS provider (always 1)."
        );
        let _ = writeln!(s, "# TYPE keybroker_build_info gauge");
        let provider = if self.tls_provider.is_empty() {
            "unknown"
        } else {
            self.tls_provider
        };
        let _ = writeln!(
            s,
            "keybroker_build_info{{version=\"{}\",tls_provider=\"{provider}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
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
            "# HELP keybroker_request_duration_seconds From a request's first byte to its answer's last byte written, by operation."
        );
        let _ = writeln!(s, "# TYPE keybroker_request_duration_seconds histogram");
        for (op, h) in &self.durations {
            let mut cumulative = 0;
            for (le, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    s,
                    "keybroker_request_duration_seconds_bucket{{op=\"{op}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                s,
                "keybroker_request_duration_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                s,
                "keybroker_request_duration_seconds_sum{{op=\"{op}\"}} {:.6}",
                h.sum
            );
            let _ = writeln!(
                s,
                "keybroker_request_duration_seconds_count{{op=\"{op}\"}} {}",
                h.count
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_sum_and_count() {
        let mut m = Metrics::default();
        m.observe("decrypt", 0.003);
        m.observe("decrypt", 0.2);
        m.observe("decrypt", 60.0);
        let text = m.render(true, &[], 0, &crate::cache::CacheStats::default());
        assert!(text.contains("# TYPE keybroker_request_duration_seconds histogram"));
        assert!(text
            .contains("keybroker_request_duration_seconds_bucket{op=\"decrypt\",le=\"0.001\"} 0"));
        assert!(text
            .contains("keybroker_request_duration_seconds_bucket{op=\"decrypt\",le=\"0.005\"} 1"));
        assert!(text
            .contains("keybroker_request_duration_seconds_bucket{op=\"decrypt\",le=\"0.25\"} 2"));
        assert!(
            text.contains("keybroker_request_duration_seconds_bucket{op=\"decrypt\",le=\"10\"} 2")
        );
        assert!(text
            .contains("keybroker_request_duration_seconds_bucket{op=\"decrypt\",le=\"+Inf\"} 3"));
        assert!(text.contains("keybroker_request_duration_seconds_sum{op=\"decrypt\"} 60.203000"));
        assert!(text.contains("keybroker_request_duration_seconds_count{op=\"decrypt\"} 3"));
        assert!(text.contains("keybroker_build_info{version=\"0.1.0\",tls_provider=\"unknown\"} 1"));
    }
}
