//! RFC 3339 UTC timestamps for log and audit lines (the `time` crate does the calendar).
use std::time::{Duration, SystemTime};
use time::format_description::well_known::iso8601::{Config, EncodedConfig, TimePrecision};
use time::format_description::well_known::Iso8601;
use time::OffsetDateTime;

/// `2026-01-02T03:04:05.678Z`: RFC 3339, UTC, milliseconds.
const FORMAT: EncodedConfig = Config::DEFAULT
    .set_year_is_six_digits(false)
    .set_time_precision(TimePrecision::Second {
        decimal_digits: std::num::NonZeroU8::new(3),
    })
    .encode();

/// `at` as RFC 3339 UTC with milliseconds.
pub fn rfc3339(at: SystemTime) -> String {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let t = OffsetDateTime::UNIX_EPOCH + since;
    t.format(&Iso8601::<FORMAT>)
        .unwrap_or_else(|_| format!("{}", since.as_secs()))
}

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_323_045_678);
        assert_eq!(rfc3339(t), "2026-01-02T03:04:05.678Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
