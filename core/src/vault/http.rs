//! A small HTTP/1.1 response parser for backend links: status line, headers, and a body framed
//! by `Content-Length`, `Transfer-Encoding: chunked`, or the end of the connection.
use std::fmt;

/// Largest response head accepted (bytes).
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest response body accepted (bytes).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// One parsed response.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl HttpResponse {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// Whether the server will close the connection after this response.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Why bytes are not a valid HTTP/1.1 response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError(pub &'static str);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed HTTP response: {}", self.0)
    }
}

/// Incremental response parser; feed bytes, take whole responses.
#[derive(Debug, Default)]
pub struct ResponseParser {
    buf: Vec<u8>,
    /// The request being answered was HEAD (no body).
    pub head_request: bool,
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl ResponseParser {
    /// A parser with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// Bytes buffered but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
    /// Forgets everything buffered.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
    /// The next complete response, `Ok(None)` if more bytes are needed. With `eof` the peer
    /// has closed, which ends a body framed by the connection's end.
    pub fn next(&mut self, eof: bool) -> Result<Option<HttpResponse>, HttpError> {
        loop {
            let Some(head_end) = find(&self.buf, b"\r\n\r\n") else {
                if self.buf.len() > MAX_HEAD {
                    return Err(HttpError("header block too large"));
                }
                return Ok(None);
            };
            let head = std::str::from_utf8(&self.buf[..head_end])
                .map_err(|_| HttpError("header block is not UTF-8"))?;
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            let mut parts = status_line.splitn(3, ' ');
            let version = parts.next().unwrap_or("");
            if version != "HTTP/1.1" && version != "HTTP/1.0" {
                return Err(HttpError("status line is not HTTP/1.x"));
            }
            let status: u16 = parts
                .next()
                .filter(|s| s.len() == 3)
                .and_then(|s| s.parse().ok())
                .filter(|s| (100..600).contains(s))
                .ok_or(HttpError("bad status code"))?;
            let mut headers = Vec::new();
            for line in lines {
                let (n, v) = line
                    .split_once(':')
                    .ok_or(HttpError("header line without colon"))?;
                if n.is_empty() || n.contains(' ') {
                    return Err(HttpError("bad header name"));
                }
                headers.push((n.to_ascii_lowercase(), v.trim().to_owned()));
            }
            let body_start = head_end + 4;
            if (100..200).contains(&status) {
                self.buf.drain(..body_start);
                continue;
            }
            let resp = |body| HttpResponse {
                status,
                headers: headers.clone(),
                body,
            };
            let get = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            let framing = if self.head_request || status == 204 || status == 304 {
                Framing::Length(0)
            } else if get("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().ends_with("chunked"))
            {
                Framing::Chunked
            } else if let Some(cl) = get("content-length") {
                let n: usize = cl.parse().map_err(|_| HttpError("bad Content-Length"))?;
                if n > MAX_BODY {
                    return Err(HttpError("body too large"));
                }
                Framing::Length(n)
            } else {
                Framing::UntilClose
            };
            return match framing {
                Framing::Length(n) => {
                    if self.buf.len() < body_start + n {
                        return Ok(None);
                    }
                    let body = self.buf[body_start..body_start + n].to_vec();
                    self.buf.drain(..body_start + n);
                    Ok(Some(resp(body)))
                }
                Framing::UntilClose => {
                    if !eof {
                        if self.buf.len() - body_start > MAX_BODY {
                            return Err(HttpError("body too large"));
                        }
                        return Ok(None);
                    }
                    let body = self.buf[body_start..].to_vec();
                    self.buf.clear();
                    Ok(Some(resp(body)))
                }
                Framing::Chunked => {
                    let mut pos = body_start;
                    let mut body = Vec::new();
                    loop {
                        let Some(le) = find(&self.buf[pos..], b"\r\n") else {
                            return Ok(None);
                        };
                        let size_line = std::str::from_utf8(&self.buf[pos..pos + le])
                            .map_err(|_| HttpError("chunk size is not text"))?;
                        let hex = size_line.split(';').next().unwrap_or("").trim();
                        let size = usize::from_str_radix(hex, 16)
                            .map_err(|_| HttpError("bad chunk size"))?;
                        if body.len() + size > MAX_BODY {
                            return Err(HttpError("body too large"));
                        }
                        pos += le + 2;
                        if size == 0 {
                            // trailers until an empty line
                            loop {
                                let Some(te) = find(&self.buf[pos..], b"\r\n") else {
                                    return Ok(None);
                                };
                                pos += te + 2;
                                if te == 0 {
                                    break;
                                }
                            }
                            self.buf.drain(..pos);
                            return Ok(Some(resp(body)));
                        }
                        if self.buf.len() < pos + size + 2 {
                            return Ok(None);
                        }
                        body.extend_from_slice(&self.buf[pos..pos + size]);
                        if &self.buf[pos + size..pos + size + 2] != b"\r\n" {
                            return Err(HttpError("chunk not followed by CRLF"));
                        }
                        pos += size + 2;
                    }
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(bytes: &[u8]) -> HttpResponse {
        let mut p = ResponseParser::new();
        p.push(bytes);
        p.next(false).unwrap().unwrap()
    }

    #[test]
    fn content_length_and_keep_alive_sequence() {
        let mut p = ResponseParser::new();
        p.push(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\n");
        let a = p.next(false).unwrap().unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"hi"[..]));
        let b = p.next(false).unwrap().unwrap();
        assert_eq!((b.status, b.body.len()), (204, 0));
        assert_eq!(p.next(false).unwrap(), None);
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let r = one(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n");
        assert_eq!(r.body, b"abc0123456789");
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        let mut p = ResponseParser::new();
        let mut got = None;
        for b in raw.iter() {
            p.push(&[*b]);
            if let Some(r) = p.next(false).unwrap() {
                got = Some(r);
            }
        }
        let r = got.unwrap();
        assert_eq!(
            (r.status, r.header("retry-after"), r.body.as_slice()),
            (503, Some("7"), &b"{}"[..])
        );
    }

    #[test]
    fn until_close_needs_eof() {
        let mut p = ResponseParser::new();
        p.push(b"HTTP/1.0 200 OK\r\n\r\n{\"a\":1}");
        assert_eq!(p.next(false).unwrap(), None);
        assert_eq!(p.next(true).unwrap().unwrap().body, b"{\"a\":1}");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            let mut p = ResponseParser::new();
            p.push(bad);
            assert!(p.next(false).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut p = ResponseParser::new();
            p.push(&bytes);
            let _ = p.next(true);
        }
    }
}
