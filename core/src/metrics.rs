//! Counters for `/metrics`, rendered in the Prometheus text format.
use crate::backend::EndpointStatus;
use crate::cache::CacheStats;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

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

    /// Renders the Prometheus text exposition: the counters, then the gauges of `now`.
    pub fn render(&self, now: &Snapshot<'_>) -> String {
        let mut s = String::new();
        family(
            &mut s,
            "keybroker_build_info",
            "gauge",
            "The running version and TLS provider (always 1).",
        );
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
        family(
            &mut s,
            "keybroker_requests_total",
            "counter",
            "API answers by operation and status.",
        );
        for ((op, status), n) in &self.requests {
            let _ = writeln!(
                s,
                "keybroker_requests_total{{op=\"{op}\",status=\"{status}\"}} {n}"
            );
        }
        family(
            &mut s,
            "keybroker_request_duration_seconds",
            "histogram",
            "From a request's first byte to its answer's last byte written, by operation.",
        );
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
        let plain: [Family<u64>; 3] = [
            (
                "keybroker_connections_accepted_total",
                "counter",
                "Client connections accepted.",
                self.connections_accepted,
            ),
            (
                "keybroker_connections_open",
                "gauge",
                "Client connections open now.",
                self.connections_open,
            ),
            (
                "keybroker_connection_timeouts_total",
                "counter",
                "Client connections closed for a header or idle timeout.",
                self.timeouts,
            ),
        ];
        for (name, kind, help, v) in plain {
            family(&mut s, name, kind, help);
            let _ = writeln!(s, "{name} {v}");
        }
        family(
            &mut s,
            "keybroker_cache_total",
            "counter",
            "Decrypt cache lookups by result.",
        );
        let c = now.cache;
        for (result, n) in [("hit", c.hits), ("miss", c.misses), ("error", c.errors)] {
            let _ = writeln!(s, "keybroker_cache_total{{result=\"{result}\"}} {n}");
        }
        family(
            &mut s,
            "keybroker_backend_ready",
            "gauge",
            "Whether the backend can serve requests (as /readyz).",
        );
        let _ = writeln!(
            s,
            "keybroker_backend_ready{{backend=\"{}\"}} {}",
            now.backend,
            u8::from(now.backend_ready)
        );
        let endpoint_families: [Family<EndpointValue>; 3] = [
            (
                "keybroker_backend_endpoint_up",
                "gauge",
                "Whether requests go to this backend endpoint now (breaker closed, answering).",
                |e| u64::from(e.up),
            ),
            (
                "keybroker_backend_endpoint_breaker_open",
                "gauge",
                "Whether this backend endpoint's circuit breaker is open.",
                |e| u64::from(e.breaker_open),
            ),
            (
                "keybroker_backend_endpoint_failovers_total",
                "counter",
                "Times this backend endpoint's breaker opened, moving requests to other endpoints.",
                |e| e.failovers,
            ),
        ];
        for (name, kind, help, value) in endpoint_families {
            if now.endpoints.is_empty() {
                continue;
            }
            family(&mut s, name, kind, help);
            for e in now.endpoints {
                let _ = writeln!(
                    s,
                    "{name}{{backend=\"{}\",endpoint=\"{}\"}} {}",
                    now.backend,
                    label(&e.name),
                    value(e)
                );
            }
        }
        if let Some(left) = now.token_expires_in {
            family(
                &mut s,
                "keybroker_vault_token_expiry_seconds",
                "gauge",
                "Seconds until the Vault token held expires (absent: none held, or it never expires).",
            );
            let _ = writeln!(
                s,
                "keybroker_vault_token_expiry_seconds {:.3}",
                left.as_secs_f64()
            );
        }
        family(
            &mut s,
            "keybroker_certificate_expiry_timestamp_seconds",
            "gauge",
            "When each keystore certificate expires (its notAfter), as Unix seconds.",
        );
        for (alias, not_after) in now.cert_expiry {
            let _ = writeln!(
                s,
                "keybroker_certificate_expiry_timestamp_seconds{{alias=\"{}\"}} {not_after}",
                label(alias)
            );
        }
        s
    }
}

/// The broker's state at one `/metrics` request: what is rendered beside the counters.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    /// Backend kind (`soft`, `kmip`, `vault`).
    pub backend: &'static str,
    /// Whether the backend can serve requests.
    pub backend_ready: bool,
    /// Each remote endpoint's health.
    pub endpoints: &'a [EndpointStatus],
    /// Time left on the Vault token.
    pub token_expires_in: Option<Duration>,
    /// (alias, not-after as Unix seconds) of every keystore certificate.
    pub cert_expiry: &'a [(String, i64)],
    /// Decrypt cache counters.
    pub cache: &'a CacheStats,
}

/// A metric family: name, type, help text, and how to read its value.
type Family<V> = (&'static str, &'static str, &'static str, V);

/// Reads one endpoint gauge or counter.
type EndpointValue = fn(&EndpointStatus) -> u64;

/// Writes a metric family's `# HELP` and `# TYPE` lines.
fn family(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
}

/// A label value with the characters the text format would need escaped replaced.
fn label(v: &str) -> String {
    v.replace(['\\', '"', '\n'], "_")
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
        let text = m.render(&snapshot(&[], None, &CacheStats::default()));
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

    fn snapshot<'a>(
        endpoints: &'a [EndpointStatus],
        token_expires_in: Option<Duration>,
        cache: &'a CacheStats,
    ) -> Snapshot<'a> {
        Snapshot {
            backend: "kmip",
            backend_ready: true,
            endpoints,
            token_expires_in,
            cert_expiry: &[],
            cache,
        }
    }

    #[test]
    fn endpoints_and_token_expiry_have_one_series_each() {
        let eps = [
            EndpointStatus {
                name: "hsm1:5696".into(),
                up: false,
                breaker_open: true,
                failovers: 3,
            },
            EndpointStatus {
                name: "hsm2:5696".into(),
                up: true,
                breaker_open: false,
                failovers: 0,
            },
        ];
        let text = Metrics::default().render(&snapshot(
            &eps,
            Some(Duration::from_millis(1500)),
            &CacheStats::default(),
        ));
        for line in [
            "keybroker_backend_endpoint_up{backend=\"kmip\",endpoint=\"hsm1:5696\"} 0",
            "keybroker_backend_endpoint_up{backend=\"kmip\",endpoint=\"hsm2:5696\"} 1",
            "keybroker_backend_endpoint_breaker_open{backend=\"kmip\",endpoint=\"hsm1:5696\"} 1",
            "keybroker_backend_endpoint_failovers_total{backend=\"kmip\",endpoint=\"hsm1:5696\"} 3",
            "keybroker_vault_token_expiry_seconds 1.500",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        let no_token = Metrics::default().render(&snapshot(&[], None, &CacheStats::default()));
        assert!(!no_token.contains("keybroker_vault_token_expiry_seconds"));
        assert!(!no_token.contains("keybroker_backend_endpoint_up"));
    }

    #[test]
    fn every_metric_the_dashboard_queries_is_exported() {
        let eps = [EndpointStatus {
            name: "hsm:5696".into(),
            up: true,
            breaker_open: false,
            failovers: 0,
        }];
        let mut m = Metrics::default();
        m.observe("decrypt", 0.001);
        let cache = CacheStats::default();
        let mut snap = snapshot(&eps, Some(Duration::from_secs(60)), &cache);
        let certs = [("cmxBackend".to_string(), 1_900_000_000)];
        snap.cert_expiry = &certs;
        let text = m.render(&snap);
        let dashboard = include_str!("../../docs/grafana/keybroker.json");
        let mut names: Vec<&str> = dashboard
            .match_indices("keybroker_")
            .map(|(i, _)| {
                let rest = &dashboard[i..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        names.sort();
        names.dedup();
        assert!(names.len() >= 10, "{names:?}");
        for name in names {
            let family = name.strip_suffix("_bucket").unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "the dashboard queries {name}, which /metrics does not export"
            );
        }
    }
}
