//! HTTP/1.1 for the client and admin listeners: an incremental request parser and a response writer.
//!
//! The parser is fed bytes as they arrive and yields whole requests in order (pipelining);
//! it enforces the header-block and body limits and never panics on any input.

mod parse;
mod write;

pub use parse::{Parser, Request, MAX_CHUNK_LINE};
pub use write::{reason_phrase, write_parts, write_response, Response, CONTINUE_100};

/// Parser limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request line + header block, in bytes (beyond: 431).
    pub max_header_bytes: usize,
    /// Largest body, in bytes (beyond: 413).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// A request the parser refused; the connection answers `status` and then closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status to answer with (400, 413, 431, 501, 505).
    pub status: u16,
    /// snake_case error code for the JSON error body.
    pub code: &'static str,
    /// Human sentence saying what was wrong.
    pub message: String,
}
