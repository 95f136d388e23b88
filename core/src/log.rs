//! How much a log line matters to the operator.
use std::fmt;

/// The level of a log line the core asks the shell to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed: a request, a backend, a file.
    Error,
    /// Something degraded or was refused, and service goes on.
    Warn,
    /// Something the operator may want to know (a reconnect, a refused client).
    Info,
}

impl Level {
    /// `error`, `warn` or `info`, as the log line shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
