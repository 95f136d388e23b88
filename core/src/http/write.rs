//! HTTP/1.1 response writing.

/// A response to serialize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra header fields (Content-Length and Date are not added here).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// The interim response owed after [`super::Parser::take_continue`] says so.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The standard reason phrase for `status` (empty for codes keybroker never sends).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Whether a response with this status carries no body and no Content-Length.
fn bodiless(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Appends the serialized response (status line, headers, Content-Length, body) to `out`.
///
/// Defensive against header injection: fields whose name is not a token, and any caller-given
/// Content-Length or Transfer-Encoding (the writer owns framing), are skipped; CR, LF and
/// other control characters in values are written as spaces. 1xx, 204 and 304 responses get
/// neither Content-Length nor body.
pub fn write_response(resp: &Response, out: &mut Vec<u8>) {
    let headers: Vec<(&str, &str)> = resp
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    write_parts(resp.status, &headers, &resp.body, out);
}

/// [`write_response`] from borrowed parts, for answers built per request without a
/// [`Response`] (and its owned header strings).
pub fn write_parts(status: u16, headers: &[(&str, &str)], body: &[u8], out: &mut Vec<u8>) {
    use std::io::Write as _;
    let reason = reason_phrase(status);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {status:03} {reason}\r\n");
    for &(name, value) in headers {
        if name.is_empty()
            || !name.bytes().all(is_tchar)
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend(value.trim_matches([' ', '\t']).bytes().map(|b| {
            if b.is_ascii_control() && b != b'\t' {
                b' '
            } else {
                b
            }
        }));
        out.extend_from_slice(b"\r\n");
    }
    if bodiless(status) {
        out.extend_from_slice(b"\r\n");
        return;
    }
    let _ = write!(out, "content-length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}
