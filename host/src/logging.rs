//! The server log: one line per event on stderr, RFC 3339 UTC time, level, component,
//! message; as text or JSON (`keybroker.log.format`), filtered by `keybroker.log.level`.
//!
//! ```text
//! 2026-01-02T03:04:05.678Z info  serve listening client=127.0.0.1:8443 admin=127.0.0.1:9443
//! {"time":"2026-01-02T03:04:05.678Z","level":"info","component":"serve","message":"listening …"}
//! ```
use crate::timefmt;
use keybroker_core::config::{LogFormat, LogLevel};
use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);
static JSON: AtomicU8 = AtomicU8::new(0);

/// Sets the level and format for every line from now on (at start, from the configuration).
pub fn configure(level: LogLevel, format: LogFormat) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JSON.store((format == LogFormat::Json) as u8, Ordering::Relaxed);
}

/// `notice` is written at every level, as `info`: lines an operator always needs (where the
/// node listens).
fn parse_level(level: &str) -> LogLevel {
    match level {
        "notice" => LogLevel::Error,
        "error" => LogLevel::Error,
        "warn" | "warning" => LogLevel::Warn,
        "debug" => LogLevel::Debug,
        _ => LogLevel::Info,
    }
}

/// The line for one event (without newline), or `None` when its level is filtered out.
pub fn line(level: &str, component: &str, message: &str) -> Option<String> {
    let lv = parse_level(level);
    if lv as u8 > LEVEL.load(Ordering::Relaxed) {
        return None;
    }
    let name = if level == "notice" { "info" } else { lv.name() };
    // One event, one line: a message never spans lines.
    let message = message.replace(['\n', '\r'], " ");
    let time = timefmt::now();
    Some(if JSON.load(Ordering::Relaxed) == 1 {
        // Fields in reading order (serde_json's map would sort them).
        let s = |v: &str| serde_json::Value::from(v).to_string();
        format!(
            "{{\"time\":{},\"level\":{},\"component\":{},\"message\":{}}}",
            s(&time),
            s(name),
            s(component),
            s(&message)
        )
    } else {
        format!("{time} {name:<5} {component} {message}")
    })
}

/// Writes one event to stderr, if its level passes.
pub fn emit(level: &str, component: &str, message: &str) {
    if let Some(l) = line(level, component, message) {
        eprintln!("{l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_lines_and_the_level_filter() {
        configure(LogLevel::Info, LogFormat::Text);
        let l = line("warn", "config", "a\nb").unwrap();
        let (time, rest) = l.split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.len() == 24, "{l}");
        assert_eq!(rest, "warn  config a b");
        assert!(line("debug", "x", "y").is_none());
        configure(LogLevel::Error, LogFormat::Json);
        assert!(line("warn", "x", "y").is_none());
        assert!(line("notice", "serve", "listening")
            .unwrap()
            .contains("\"info\""));
        let v: serde_json::Value =
            serde_json::from_str(&line("error", "tls", "m").unwrap()).unwrap();
        assert_eq!(
            (&v["level"], &v["component"], &v["message"]),
            (&"error".into(), &"tls".into(), &"m".into())
        );
        configure(LogLevel::Info, LogFormat::Text);
    }
}
