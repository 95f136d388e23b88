//! Tests for the HTTP/1.1 response writer.
use keybroker_core::http::{reason_phrase, write_response, Response, CONTINUE_100};

fn written(status: u16, headers: &[(&str, &str)], body: &[u8]) -> String {
    let resp = Response {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    };
    let mut out = b"prefix|".to_vec();
    write_response(&resp, &mut out);
    let s = String::from_utf8(out).unwrap();
    s.strip_prefix("prefix|").expect("appends").to_string()
}

#[test]
fn ok_with_headers_and_body() {
    assert_eq!(
        written(
            200,
            &[("content-type", "application/json"), ("X-Request-Id", "r1")],
            b"{}"
        ),
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nX-Request-Id: r1\r\ncontent-length: 2\r\n\r\n{}"
    );
}

#[test]
fn empty_body_still_has_length() {
    assert_eq!(
        written(404, &[], b""),
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn bodiless_statuses_have_no_length_or_body() {
    for status in [100, 101, 204, 304] {
        let s = written(status, &[("X", "y")], b"ignored");
        assert!(!s.contains("content-length"), "{status}: {s}");
        assert!(s.ends_with("X: y\r\n\r\n"), "{status}: {s}");
    }
}

#[test]
fn contract_statuses_have_reason_phrases() {
    let expected = [
        (200, "OK"),
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (408, "Request Timeout"),
        (411, "Length Required"),
        (413, "Content Too Large"),
        (415, "Unsupported Media Type"),
        (429, "Too Many Requests"),
        (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"),
        (501, "Not Implemented"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
        (505, "HTTP Version Not Supported"),
    ];
    for (status, reason) in expected {
        assert_eq!(reason_phrase(status), reason);
        assert!(written(status, &[], b"").starts_with(&format!("HTTP/1.1 {status} {reason}\r\n")));
    }
    assert_eq!(reason_phrase(299), "");
    assert!(written(299, &[], b"").starts_with("HTTP/1.1 299 \r\n"));
}

#[test]
fn caller_framing_headers_are_dropped() {
    let s = written(
        200,
        &[("Content-Length", "99"), ("Transfer-Encoding", "chunked")],
        b"abc",
    );
    assert_eq!(s, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc");
}

#[test]
fn header_injection_is_neutralised() {
    let s = written(
        200,
        &[
            ("X-Id", "a\r\nSet-Cookie: evil"),
            ("Bad Name", "v"),
            ("", "v"),
        ],
        b"",
    );
    assert_eq!(
        s,
        "HTTP/1.1 200 OK\r\nX-Id: a  Set-Cookie: evil\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn continue_constant() {
    assert_eq!(CONTINUE_100, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(
        written(100, &[], b"").as_bytes(),
        CONTINUE_100,
        "writer agrees with the constant"
    );
}
