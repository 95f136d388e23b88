//! Incremental HTTP/1.1 request parsing.
//!
//! Bytes are buffered by [`Parser::push`]; [`Parser::next_request`] scans them once, in order,
//! and every decision (a request, an error, "need more bytes") depends only on the bytes seen
//! so far, so the outcome is the same however the stream is split into pieces.
//!
//! Choices made where HTTP/1.1 leaves room (RFC 9112):
//! - Lines end in CRLF; a bare LF anywhere in the head, a chunk-size line or the trailers is
//!   refused with 400 (never treated as a line end, which is how smuggling starts).
//! - Empty lines before a request line are skipped (RFC 9112 §2.2) and count toward no limit.
//! - Obsolete line folding, whitespace between a field name and its colon, and CR, LF, NUL or
//!   other control characters (except HTAB) in field values are refused with 400.
//! - A request with neither Content-Length nor Transfer-Encoding has an empty body.
//! - Transfer-Encoding must be exactly `chunked` (501 otherwise), is refused together with
//!   Content-Length (400) and in HTTP/1.0 requests (400). Chunk extensions are ignored;
//!   trailer fields are checked like header fields and dropped.
//! - A Content-Length repeated with the same value is accepted; differing values are refused.
//! - More than one Host field is refused (400); a missing Host is tolerated.
//! - Versions other than HTTP/1.0 and HTTP/1.1 get 505.
//! - The request line plus header block (with the final empty line) may be at most
//!   `max_header_bytes`; the trailer section has its own budget of the same size. Chunk-size
//!   lines (with extensions) may be at most [`MAX_CHUNK_LINE`] bytes.
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::satisfy;

use super::{HttpError, Limits};

/// Longest chunk-size line accepted, extensions and CRLF included.
pub const MAX_CHUNK_LINE: usize = 4096;

/// Most bytes of client input quoted in an error message.
const MAX_QUOTE: usize = 48;

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

/// Where the parser is within the current request.
#[derive(Debug)]
enum State {
    /// Looking for the end of the head; offsets are relative to `Parser::pos`.
    Head { scanned: usize, line_start: usize },
    /// Head parsed; the body is `len` bytes.
    Fixed { req: Request, len: usize },
    /// Head parsed; reading a chunked body.
    Chunked { req: Request, phase: Chunk },
}

/// Position within a chunked body; line offsets are relative to `Parser::pos`.
#[derive(Debug)]
enum Chunk {
    /// Reading a chunk-size line.
    Size { scanned: usize },
    /// Copying chunk data; this many bytes left.
    Data { left: usize },
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading trailer lines; `used` bytes of earlier trailer lines already consumed.
    Trailers { scanned: usize, used: usize },
}

/// Incremental request parser for one connection.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    /// Received bytes; those before `pos` are consumed.
    buf: Vec<u8>,
    pos: usize,
    state: State,
    /// Set once the parser refused the stream; returned again on every call.
    poisoned: Option<HttpError>,
    /// A `100 Continue` is owed to the client.
    continue_pending: bool,
}

/// What a framing decision says about the body.
enum Framing {
    Length(usize),
    Chunked,
}

impl Parser {
    /// A parser with these limits.
    pub fn new(limits: Limits) -> Self {
        Parser {
            limits,
            buf: Vec::new(),
            pos: 0,
            state: State::Head {
                scanned: 0,
                line_start: 0,
            },
            poisoned: None,
            continue_pending: false,
        }
    }

    /// Appends received bytes (ignored once the parser has refused the stream).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.poisoned.is_some() {
            return;
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete request, `Ok(None)` if more bytes are needed.
    pub fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        match self.advance() {
            Ok(Some(req)) => {
                self.continue_pending = false;
                Ok(Some(req))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.poisoned = Some(e.clone());
                self.buf = Vec::new();
                self.pos = 0;
                self.continue_pending = false;
                self.state = State::Head {
                    scanned: 0,
                    line_start: 0,
                };
                Err(e)
            }
        }
    }

    /// Whether part of a request has been received (header timeout applies) or none (idle).
    pub fn is_mid_request(&self) -> bool {
        self.poisoned.is_none()
            && (self.pos < self.buf.len() || !matches!(self.state, State::Head { .. }))
    }

    /// Whether a `100 Continue` should be sent now; true at most once per request.
    pub fn take_continue(&mut self) -> bool {
        std::mem::take(&mut self.continue_pending)
    }

    /// Bytes held for requests not yet returned (unparsed input plus de-chunked body so far).
    pub fn buffered_len(&self) -> usize {
        let body = match &self.state {
            State::Chunked { req, .. } => req.body.len(),
            _ => 0,
        };
        self.buf.len() - self.pos + body
    }

    /// The refusal this parser is stuck on, if any.
    pub fn error(&self) -> Option<&HttpError> {
        self.poisoned.as_ref()
    }

    /// Unconsumed input.
    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Runs the state machine as far as the buffered bytes allow.
    fn advance(&mut self) -> Result<Option<Request>, HttpError> {
        let State::Head {
            scanned,
            line_start,
        } = self.state
        else {
            return self.advance_body();
        };
        match self.scan_head(scanned, line_start)? {
            HeadScan::Partial {
                scanned,
                line_start,
            } => {
                self.state = State::Head {
                    scanned,
                    line_start,
                };
                Ok(None)
            }
            HeadScan::Done { len } => {
                let head = &self.buf[self.pos..self.pos + len];
                let (req, framing, expect) = parse_head(head, &self.limits)?;
                self.pos += len;
                self.state = match framing {
                    Framing::Length(len) => State::Fixed { req, len },
                    Framing::Chunked => State::Chunked {
                        req,
                        phase: Chunk::Size { scanned: 0 },
                    },
                };
                let done = self.advance_body()?;
                if done.is_none() {
                    self.continue_pending = expect;
                }
                Ok(done)
            }
        }
    }

    /// Finds the end of the head (the empty line), skipping leading empty lines.
    fn scan_head(
        &mut self,
        mut scanned: usize,
        mut line_start: usize,
    ) -> Result<HeadScan, HttpError> {
        let max = self.limits.max_header_bytes;
        let mut i = scanned;
        while i < self.rest().len() {
            if i >= max {
                return Err(too_large_head(max));
            }
            let rest = self.rest();
            if rest[i] == b'\n' {
                if i == 0 || rest[i - 1] != b'\r' {
                    return Err(bad("bare LF in request head; lines must end in CRLF"));
                }
                if i == line_start + 1 {
                    if line_start == 0 {
                        // An empty line before the request line: skip it.
                        self.pos += 2;
                        i = 0;
                        line_start = 0;
                        continue;
                    }
                    return Ok(HeadScan::Done { len: i + 1 });
                }
                line_start = i + 1;
            }
            i += 1;
        }
        scanned = i;
        Ok(HeadScan::Partial {
            scanned,
            line_start,
        })
    }

    /// Reads as much of the current body as is buffered; the request once it is whole.
    fn advance_body(&mut self) -> Result<Option<Request>, HttpError> {
        let state = std::mem::replace(
            &mut self.state,
            State::Head {
                scanned: 0,
                line_start: 0,
            },
        );
        match state {
            State::Head {
                scanned,
                line_start,
            } => {
                self.state = State::Head {
                    scanned,
                    line_start,
                };
                Ok(None)
            }
            State::Fixed { mut req, len } => {
                if self.rest().len() < len {
                    self.state = State::Fixed { req, len };
                    return Ok(None);
                }
                req.body = self.rest()[..len].to_vec();
                self.pos += len;
                Ok(Some(req))
            }
            State::Chunked { mut req, mut phase } => loop {
                match self.chunk_step(&mut req, phase)? {
                    Step::Next(next) => phase = next,
                    Step::Wait(next) => {
                        self.state = State::Chunked { req, phase: next };
                        return Ok(None);
                    }
                    Step::Done => {
                        self.state = State::Head {
                            scanned: 0,
                            line_start: 0,
                        };
                        return Ok(Some(req));
                    }
                }
            },
        }
    }

    /// One step of the chunked decoder.
    fn chunk_step(&mut self, req: &mut Request, phase: Chunk) -> Result<Step, HttpError> {
        match phase {
            Chunk::Size { scanned } => match scan_line(self.rest(), scanned, MAX_CHUNK_LINE) {
                LineScan::Partial(scanned) => Ok(Step::Wait(Chunk::Size { scanned })),
                LineScan::TooLong => Err(bad("chunk-size line too long")),
                LineScan::BareLf => Err(bad("bare LF in chunk-size line")),
                LineScan::Line(len) => {
                    let size = parse_chunk_size(&self.rest()[..len - 2])?;
                    self.pos += len;
                    if size == 0 {
                        return Ok(Step::Next(Chunk::Trailers {
                            scanned: 0,
                            used: 0,
                        }));
                    }
                    let max = self.limits.max_body_bytes;
                    if size > (max - req.body.len().min(max)) as u64 {
                        return Err(too_large_body(max));
                    }
                    Ok(Step::Next(Chunk::Data {
                        left: size as usize,
                    }))
                }
            },
            Chunk::Data { left } => {
                let n = left.min(self.rest().len());
                req.body.extend_from_slice(&self.rest()[..n]);
                self.pos += n;
                if n == left {
                    Ok(Step::Next(Chunk::DataEnd))
                } else {
                    Ok(Step::Wait(Chunk::Data { left: left - n }))
                }
            }
            Chunk::DataEnd => {
                let rest = self.rest();
                if rest.first().is_some_and(|&b| b != b'\r')
                    || rest.get(1).is_some_and(|&b| b != b'\n')
                {
                    return Err(bad("chunk data not followed by CRLF"));
                }
                if rest.len() < 2 {
                    return Ok(Step::Wait(Chunk::DataEnd));
                }
                self.pos += 2;
                Ok(Step::Next(Chunk::Size { scanned: 0 }))
            }
            Chunk::Trailers { scanned, used } => {
                let max = self.limits.max_header_bytes;
                match scan_line(self.rest(), scanned, max.saturating_sub(used)) {
                    LineScan::Partial(scanned) => Ok(Step::Wait(Chunk::Trailers { scanned, used })),
                    LineScan::TooLong => Err(HttpError {
                        status: 431,
                        code: "headers_too_large",
                        message: format!("trailer section larger than {max} bytes"),
                    }),
                    LineScan::BareLf => Err(bad("bare LF in trailer section")),
                    LineScan::Line(2) => {
                        self.pos += 2;
                        Ok(Step::Done)
                    }
                    LineScan::Line(len) => {
                        field_line(&self.rest()[..len - 2], "trailer")?;
                        self.pos += len;
                        Ok(Step::Next(Chunk::Trailers {
                            scanned: 0,
                            used: used + len,
                        }))
                    }
                }
            }
        }
    }
}

/// Outcome of one chunked-decoder step.
enum Step {
    /// Progress made; continue in this phase.
    Next(Chunk),
    /// More bytes are needed in this phase.
    Wait(Chunk),
    /// Body and trailers are complete.
    Done,
}

/// Progress of the head scan.
enum HeadScan {
    Partial { scanned: usize, line_start: usize },
    Done { len: usize },
}

/// Progress of a single-line scan.
enum LineScan {
    /// No LF yet; resume from here.
    Partial(usize),
    /// A line of this many bytes, CRLF included.
    Line(usize),
    /// The line would exceed its limit.
    TooLong,
    /// An LF without CR before it.
    BareLf,
}

/// Looks for a CRLF-terminated line at the start of `buf`, at most `max` bytes long.
fn scan_line(buf: &[u8], scanned: usize, max: usize) -> LineScan {
    for (i, &b) in buf.iter().enumerate().skip(scanned) {
        if i >= max {
            return LineScan::TooLong;
        }
        if b == b'\n' {
            return if i > 0 && buf[i - 1] == b'\r' {
                LineScan::Line(i + 1)
            } else {
                LineScan::BareLf
            };
        }
    }
    LineScan::Partial(buf.len().max(scanned))
}

/// Nom result with no error detail (messages are built by the caller).
type Res<'a, O> = nom::IResult<&'a [u8], O, ()>;

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte allowed in a request target: visible ASCII.
fn is_target_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// A byte allowed in a field value: VCHAR, obs-text, SP, HTAB.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Optional whitespace.
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A 400 with this message.
fn bad(message: impl Into<String>) -> HttpError {
    HttpError {
        status: 400,
        code: "bad_request",
        message: message.into(),
    }
}

/// The 431 for a head over `max` bytes.
fn too_large_head(max: usize) -> HttpError {
    HttpError {
        status: 431,
        code: "headers_too_large",
        message: format!("request line and headers larger than {max} bytes"),
    }
}

/// The 413 for a body over `max` bytes.
fn too_large_body(max: usize) -> HttpError {
    HttpError {
        status: 413,
        code: "body_too_large",
        message: format!("request body larger than {max} bytes"),
    }
}

/// Client bytes made safe to quote: at most [`MAX_QUOTE`] of them, escaped.
fn quote(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_QUOTE)];
    let mut s = cut.escape_ascii().to_string();
    if bytes.len() > MAX_QUOTE {
        s.push('…');
    }
    s
}

/// Describes the byte at the front of `i` for an error message.
fn describe(i: &[u8]) -> String {
    match i.first() {
        None => "end of line".to_string(),
        Some(b) if b.is_ascii_graphic() => format!("character '{}'", *b as char),
        Some(b) => format!("byte 0x{b:02x}"),
    }
}

/// Parses a complete head (request line, fields, final CRLF): the request without its body,
/// how the body is framed, and whether a `100 Continue` is expected.
fn parse_head(head: &[u8], limits: &Limits) -> Result<(Request, Framing, bool), HttpError> {
    // The scanner guarantees every line ends in CRLF and the head ends in an empty line.
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let (method, target, minor_version) = request_line(lines.next().unwrap_or_default())?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = field_line(line, "header")?;
        headers.push((name, value));
    }
    let req = Request {
        method,
        target,
        minor_version,
        headers,
        body: Vec::new(),
    };
    let framing = framing(&req, limits)?;
    if req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .count()
        > 1
    {
        return Err(bad("more than one Host header"));
    }
    let expect = req.minor_version >= 1
        && req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
    Ok((req, framing, expect))
}

/// Exactly the character `c`.
fn byte(i: &[u8], c: char) -> Res<'_, char> {
    satisfy(|x| x == c)(i)
}

/// `HTTP/` DIGIT `.` DIGIT: the major and minor digits.
fn http_version(i: &[u8]) -> Res<'_, (char, char)> {
    let digit = |i| satisfy(|c: char| c.is_ascii_digit())(i);
    let (i, _) = tag(&b"HTTP/"[..])(i)?;
    let (i, major) = digit(i)?;
    let (i, _) = byte(i, '.')?;
    let (i, minor) = digit(i)?;
    Ok((i, (major, minor)))
}

/// `method SP target SP HTTP/x.y` (without CRLF).
fn request_line(line: &[u8]) -> Result<(String, String, u8), HttpError> {
    let (i, method) = take_while1::<_, _, ()>(is_tchar)(line).map_err(|_| {
        bad(format!(
            "request line must start with a method, found {}",
            describe(line)
        ))
    })?;
    let (i, _) = byte(i, ' ').map_err(|_| bad(format!("invalid {} in method", describe(i))))?;
    let (i, target) = take_while1::<_, _, ()>(is_target_byte)(i).map_err(|_| {
        if i.first().is_none_or(|&b| b == b' ') {
            bad("empty request target")
        } else {
            bad(format!("invalid {} in request target", describe(i)))
        }
    })?;
    let (i, _) = byte(i, ' ').map_err(|_| {
        if i.is_empty() {
            bad("request line has no HTTP version")
        } else {
            bad(format!("invalid {} in request target", describe(i)))
        }
    })?;
    let (rest, (major, minor)) =
        http_version(i).map_err(|_| bad(format!("malformed HTTP version \"{}\"", quote(i))))?;
    if !rest.is_empty() {
        return Err(bad(format!(
            "unexpected {} after HTTP version",
            describe(rest)
        )));
    }
    if major != '1' || (minor != '0' && minor != '1') {
        return Err(HttpError {
            status: 505,
            code: "http_version_not_supported",
            message: format!("HTTP/{major}.{minor} is not supported; use HTTP/1.1 or HTTP/1.0"),
        });
    }
    // Both are ASCII by construction.
    let method = String::from_utf8_lossy(method).into_owned();
    let target = String::from_utf8_lossy(target).into_owned();
    Ok((method, target, if minor == '1' { 1 } else { 0 }))
}

/// `name ":" OWS value OWS` (without CRLF); `what` is "header" or "trailer".
fn field_line(line: &[u8], what: &str) -> Result<(String, Vec<u8>), HttpError> {
    if line.first().copied().is_some_and(is_ows) {
        return Err(bad(format!(
            "{what} line starts with whitespace (obsolete line folding is not accepted)"
        )));
    }
    let (i, name) = take_while1::<_, _, ()>(is_tchar)(line).map_err(|_| {
        if line.first() == Some(&b':') {
            bad(format!("empty {what} name"))
        } else {
            bad(format!("invalid {} in {what} name", describe(line)))
        }
    })?;
    let name = String::from_utf8_lossy(name).into_owned();
    let (i, _) = byte(i, ':').map_err(|_| match i.first() {
        None => bad(format!(
            "{what} \"{}\" has no colon",
            quote(name.as_bytes())
        )),
        Some(&b) if is_ows(b) && trim_ows(i).first() == Some(&b':') => bad(format!(
            "whitespace between {what} name \"{}\" and colon",
            quote(name.as_bytes())
        )),
        Some(_) => bad(format!(
            "invalid {} in {what} name \"{}\"",
            describe(i),
            quote(name.as_bytes())
        )),
    })?;
    let (i, value) = take_while::<_, _, ()>(is_field_byte)(i).map_err(|_| {
        bad(format!(
            "invalid value of {what} \"{}\"",
            quote(name.as_bytes())
        ))
    })?;
    if !i.is_empty() {
        return Err(bad(format!(
            "invalid {} in value of {what} \"{}\"",
            describe(i),
            quote(name.as_bytes())
        )));
    }
    Ok((name, trim_ows(value).to_vec()))
}

/// `v` without leading and trailing OWS.
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| !is_ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|&b| !is_ows(b)).map_or(start, |e| e + 1);
    &v[start..end]
}

/// How the body of `req` is delimited (RFC 9112 §6.3), with the limit checked up front.
fn framing(req: &Request, limits: &Limits) -> Result<Framing, HttpError> {
    let named = |name: &'static str| {
        req.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    };
    let has_te = named("transfer-encoding").next().is_some();
    let has_cl = named("content-length").next().is_some();
    if has_te && has_cl {
        return Err(bad(
            "both Content-Length and Transfer-Encoding present (possible request smuggling)",
        ));
    }
    if has_te {
        if req.minor_version == 0 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings: Vec<&[u8]> = named("transfer-encoding")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(trim_ows)
            .filter(|c| !c.is_empty())
            .collect();
        return match codings.as_slice() {
            [] => Err(bad("empty Transfer-Encoding")),
            [c] if c.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
            _ => {
                let first = codings
                    .iter()
                    .find(|c| !c.eq_ignore_ascii_case(b"chunked"))
                    .copied()
                    .unwrap_or(&b"chunked"[..]);
                Err(HttpError {
                    status: 501,
                    code: "unsupported_transfer_encoding",
                    message: format!(
                        "transfer coding \"{}\" is not supported; only a single \"chunked\" is",
                        quote(first)
                    ),
                })
            }
        };
    }
    let mut length: Option<u64> = None;
    for v in named("content-length") {
        let n = parse_decimal(v)
            .ok_or_else(|| bad(format!("invalid Content-Length \"{}\"", quote(v))))?;
        if length.is_some_and(|l| l != n) {
            return Err(bad("conflicting Content-Length values"));
        }
        length = Some(n);
    }
    let len = length.unwrap_or(0);
    if len > limits.max_body_bytes as u64 {
        return Err(too_large_body(limits.max_body_bytes));
    }
    Ok(Framing::Length(len as usize))
}

/// `1*DIGIT` as a number, saturating at `u64::MAX`.
fn parse_decimal(v: &[u8]) -> Option<u64> {
    let (rest, digits) = take_while1::<_, _, ()>(|b: u8| b.is_ascii_digit())(v).ok()?;
    if !rest.is_empty() {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// The size in a chunk-size line (without CRLF); extensions are checked loosely and ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let (rest, digits) = nom::character::complete::hex_digit1::<_, ()>(line)
        .map_err(|_| bad(format!("invalid chunk size, found {}", describe(line))))?;
    let (rest, _) = take_while::<_, _, ()>(is_ows)(rest).unwrap_or((rest, &[][..]));
    match rest.first() {
        None => {}
        Some(b';') => {
            if let Some(b) = rest.iter().find(|&&b| !is_field_byte(b)) {
                return Err(bad(format!("invalid byte 0x{b:02x} in chunk extension")));
            }
        }
        Some(_) => return Err(bad(format!("invalid {} after chunk size", describe(rest)))),
    }
    Ok(digits.iter().fold(0u64, |n, &d| {
        let v = (d as char).to_digit(16).unwrap_or(0);
        n.saturating_mul(16).saturating_add(u64::from(v))
    }))
}
