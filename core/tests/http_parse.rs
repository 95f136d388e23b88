//! Unit tests for the incremental HTTP/1.1 request parser: one or more per rule.
use keybroker_core::http::{HttpError, Limits, Parser, Request, MAX_CHUNK_LINE};

fn limits(head: usize, body: usize) -> Limits {
    Limits {
        max_header_bytes: head,
        max_body_bytes: body,
    }
}

/// Feeds `input` in one piece and returns every outcome until `None` or an error.
fn run(input: &[u8]) -> (Vec<Request>, Option<HttpError>) {
    run_with(Limits::default(), &[input])
}

fn run_with(limits: Limits, pieces: &[&[u8]]) -> (Vec<Request>, Option<HttpError>) {
    let mut p = Parser::new(limits);
    let mut reqs = Vec::new();
    for piece in pieces {
        p.push(piece);
        loop {
            match p.next_request() {
                Ok(Some(r)) => reqs.push(r),
                Ok(None) => break,
                Err(e) => return (reqs, Some(e)),
            }
        }
    }
    (reqs, None)
}

fn one(input: &[u8]) -> Request {
    let (mut reqs, err) = run(input);
    assert_eq!(
        err,
        None,
        "unexpected error for {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(reqs.len(), 1, "expected one request");
    reqs.remove(0)
}

fn err(input: &[u8]) -> HttpError {
    let (_, e) = run(input);
    e.unwrap_or_else(|| panic!("expected an error for {:?}", String::from_utf8_lossy(input)))
}

fn assert_bad(input: &[u8], needle: &str) {
    let e = err(input);
    assert_eq!((e.status, e.code), (400, "bad_request"), "{e:?}");
    assert!(
        e.message.to_lowercase().contains(&needle.to_lowercase()),
        "message {:?} should mention {needle:?}",
        e.message
    );
}

// ---- basic requests ----

#[test]
fn simple_get() {
    let r = one(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, "/healthz");
    assert_eq!(r.minor_version, 1);
    assert_eq!(r.headers, vec![("Host".to_string(), b"x".to_vec())]);
    assert!(r.body.is_empty());
    assert!(r.keep_alive());
}

#[test]
fn http10_and_keep_alive() {
    let r = one(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.minor_version, 0);
    assert!(!r.keep_alive());
    let r = one(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(r.keep_alive());
    let r = one(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(!r.keep_alive());
}

#[test]
fn header_values_are_trimmed_and_lookup_is_case_insensitive() {
    let r = one(b"GET / HTTP/1.1\r\nX-A: \t one two \t\r\nX-Empty:\r\nx-a: second\r\n\r\n");
    assert_eq!(r.header("x-a"), Some(&b"one two"[..]));
    assert_eq!(r.header("X-EMPTY"), Some(&b""[..]));
    assert_eq!(r.headers.len(), 3);
    assert_eq!(r.headers[2].0, "x-a");
}

#[test]
fn obs_text_in_values_is_kept() {
    let r = one(b"GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n");
    assert_eq!(r.header("x"), Some(&b"caf\xc3\xa9"[..]));
}

#[test]
fn leading_empty_lines_are_skipped() {
    let r = one(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_eq!(r.method, "GET");
}

#[test]
fn post_without_length_has_empty_body() {
    let (reqs, e) = run(b"POST /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    assert_eq!(e, None);
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].body.is_empty());
    assert_eq!(reqs[1].target, "/b");
}

// ---- incremental and pipelined ----

#[test]
fn byte_by_byte_gives_none_until_complete() {
    let input = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    let mut p = Parser::new(Limits::default());
    assert!(!p.is_mid_request());
    for (i, b) in input.iter().enumerate() {
        p.push(&[*b]);
        let out = p.next_request().unwrap();
        if i + 1 < input.len() {
            assert_eq!(out, None, "complete too early at byte {i}");
            assert!(p.is_mid_request());
        } else {
            assert_eq!(out.unwrap().body, b"hello");
        }
    }
    assert!(!p.is_mid_request());
    assert_eq!(p.next_request().unwrap(), None);
}

#[test]
fn pipelined_requests_come_out_in_order() {
    let input = b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\nGET /4 HTTP/1.1\r\n\r\nGET /5";
    let mut p = Parser::new(Limits::default());
    p.push(input);
    let mut targets = Vec::new();
    while let Some(r) = p.next_request().unwrap() {
        targets.push((r.target, r.body));
    }
    assert_eq!(
        targets,
        vec![
            ("/1".into(), vec![]),
            ("/2".into(), b"abc".to_vec()),
            ("/3".into(), b"xy".to_vec()),
            ("/4".into(), vec![]),
        ]
    );
    assert!(p.is_mid_request());
    assert_eq!(p.buffered_len(), 6);
    p.push(b" HTTP/1.1\r\n\r\n");
    assert_eq!(p.next_request().unwrap().unwrap().target, "/5");
}

#[test]
fn extra_bytes_after_body_are_kept() {
    let mut p = Parser::new(Limits::default());
    p.push(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGE");
    assert_eq!(p.next_request().unwrap().unwrap().body, b"ok");
    assert_eq!(p.next_request().unwrap(), None);
    p.push(b"T / HTTP/1.1\r\n\r\n");
    assert_eq!(p.next_request().unwrap().unwrap().method, "GET");
}

// ---- Content-Length ----

#[test]
fn content_length_body() {
    let r = one(b"POST / HTTP/1.1\r\nContent-Length: 0011\r\n\r\nhello world");
    assert_eq!(r.body, b"hello world");
}

#[test]
fn duplicate_equal_content_length_is_accepted() {
    let r = one(b"POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 02\r\n\r\nab");
    assert_eq!(r.body, b"ab");
}

#[test]
fn duplicate_differing_content_length_is_refused() {
    assert_bad(
        b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        "conflicting Content-Length",
    );
}

#[test]
fn non_numeric_content_length_is_refused() {
    for v in ["abc", "-1", "+1", "1 2", "0x10", "", "1,1", "1.0"] {
        let input = format!("POST / HTTP/1.1\r\nContent-Length: {v}\r\n\r\n");
        assert_bad(input.as_bytes(), "invalid Content-Length");
    }
}

// ---- chunked ----

#[test]
fn chunked_body_is_dechunked_with_extensions_and_trailers() {
    let r = one(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n\
5;name=value;x\r\nhello\r\n1 ; ext\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\nY: u\r\n\r\n");
    assert_eq!(r.body, b"hello 0123456789");
    assert_eq!(r.header("x-trailer"), None, "trailers are discarded");
}

#[test]
fn chunked_with_uppercase_hex_and_leading_zeros() {
    let body = vec![b'z'; 0x1f];
    let mut input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n001F\r\n".to_vec();
    input.extend_from_slice(&body);
    input.extend_from_slice(b"\r\n0000\r\n\r\n");
    assert_eq!(one(&input).body, body);
}

#[test]
fn chunked_framing_errors() {
    let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (chunks, needle) in [
        ("zz\r\n", "chunk size"),
        ("\r\n", "chunk size"),
        ("5x\r\n", "after chunk size"),
        ("2\r\nabX\r\n", "not followed by CRLF"),
        ("2\r\nab\rX", "not followed by CRLF"),
        ("2\nab\r\n", "bare LF"),
        ("0\r\nbad trailer\r\n\r\n", "trailer"),
        ("0\r\nX: a\x00b\r\n\r\n", "trailer"),
        ("1;e=\x01\r\n", "chunk extension"),
    ] {
        assert_bad(format!("{head}{chunks}").as_bytes(), needle);
    }
}

#[test]
fn chunk_size_line_is_bounded() {
    let mut input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    input.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE));
    assert_bad(&input, "chunk-size line too long");
}

#[test]
fn other_transfer_codings_are_not_implemented() {
    for te in [
        "gzip",
        "gzip, chunked",
        "chunked, gzip",
        "chunked, chunked",
        "identity",
    ] {
        let input = format!("POST / HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n");
        let e = err(input.as_bytes());
        assert_eq!(
            (e.status, e.code),
            (501, "unsupported_transfer_encoding"),
            "{te}"
        );
    }
    // Split over two fields counts as a list too.
    let e =
        err(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(e.status, 501);
}

#[test]
fn content_length_with_transfer_encoding_is_refused() {
    let e =
        err(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!((e.status, e.code), (400, "bad_request"));
    assert!(e.message.contains("smuggling"), "{}", e.message);
    // Even with an unsupported coding, smuggling wins.
    let e = err(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(e.status, 400);
}

#[test]
fn transfer_encoding_in_http10_is_refused() {
    assert_bad(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.0",
    );
}

// ---- limits ----

#[test]
fn head_at_limit_is_accepted_and_one_more_byte_is_431() {
    let head = b"GET / HTTP/1.1\r\nX: aaaa\r\n\r\n";
    let (reqs, e) = run_with(limits(head.len(), 0), &[head]);
    assert_eq!((reqs.len(), e), (1, None));
    let (_, e) = run_with(limits(head.len() - 1, 0), &[head]);
    let e = e.expect("431");
    assert_eq!((e.status, e.code), (431, "headers_too_large"));
}

#[test]
fn incomplete_oversized_head_is_refused_early() {
    let mut p = Parser::new(limits(100, 10));
    p.push(b"GET / HTTP/1.1\r\nX: ");
    assert_eq!(p.next_request().unwrap(), None);
    p.push(&[b'a'; 100]);
    let e = p.next_request().unwrap_err();
    assert_eq!(e.status, 431);
    assert_eq!(p.buffered_len(), 0, "poisoned parser holds nothing");
}

#[test]
fn default_header_limit_is_16k() {
    let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 16 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(err(&big).status, 431);
}

#[test]
fn content_length_over_limit_is_413_before_the_body_arrives() {
    let (_, e) = run_with(
        limits(1024, 10),
        &[b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"],
    );
    let e = e.expect("413");
    assert_eq!((e.status, e.code), (413, "body_too_large"));
    let (reqs, e) = run_with(
        limits(1024, 10),
        &[b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"],
    );
    assert_eq!((reqs.len(), e), (1, None));
    let e = err(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n");
    assert_eq!(e.status, 413);
}

#[test]
fn chunked_sizes_over_limit_are_413_as_they_accumulate() {
    let head: &[u8] = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (reqs, e) = run_with(
        limits(1024, 10),
        &[head, b"5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"],
    );
    assert_eq!((reqs.len(), e), (1, None));
    // The second size line pushes the total to 11: refused before its data arrives.
    let (_, e) = run_with(limits(1024, 10), &[head, b"5\r\n01234\r\n6\r\n"]);
    assert_eq!(e.expect("413").status, 413);
    let (_, e) = run_with(limits(1024, 10), &[head, b"ffffffffffffffffffffffff\r\n"]);
    assert_eq!(e.expect("413").status, 413);
}

#[test]
fn trailers_are_bounded() {
    let mut input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
    for _ in 0..20 {
        input.extend_from_slice(b"X-T: 0123456789\r\n");
    }
    let (_, e) = run_with(limits(200, 10), &[&input]);
    assert_eq!(e.expect("431").status, 431);
}

// ---- malformed request line ----

#[test]
fn request_line_errors() {
    for (input, needle) in [
        (&b"G@T / HTTP/1.1\r\n\r\n"[..], "method"),
        (b" / HTTP/1.1\r\n\r\n", "method"),
        (b"GET  HTTP/1.1\r\n\r\n", "empty request target"),
        (b"GET / x HTTP/1.1\r\n\r\n", "HTTP version"),
        (b"GET /a\x7fb HTTP/1.1\r\n\r\n", "request target"),
        (b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", "request target"),
        (b"GET /\tHTTP/1.1\r\n\r\n", "request target"),
        (b"GET /\r\n\r\n", "no HTTP version"),
        (b"GET / HTTP/1.1 \r\n\r\n", "after HTTP version"),
        (b"GET / http/1.1\r\n\r\n", "HTTP version"),
        (b"GET / HTTP/11\r\n\r\n", "HTTP version"),
        (b"GET / HTTP/1.\r\n\r\n", "HTTP version"),
        (b"GET\r\n\r\n", "method"),
        (b"GET / HTTP/1.1\rX\r\n\r\n", "after HTTP version"),
        (b"\x00GET / HTTP/1.1\r\n\r\n", "method"),
    ] {
        assert_bad(input, needle);
    }
}

#[test]
fn unsupported_versions_are_505() {
    for v in ["2.0", "1.2", "0.9", "3.1"] {
        let e = err(format!("GET / HTTP/{v}\r\n\r\n").as_bytes());
        assert_eq!(
            (e.status, e.code),
            (505, "http_version_not_supported"),
            "{v}"
        );
    }
}

#[test]
fn bare_lf_is_refused() {
    assert_bad(b"GET / HTTP/1.1\nHost: x\r\n\r\n", "bare LF");
    assert_bad(b"GET / HTTP/1.1\r\nHost: x\n\r\n", "bare LF");
    assert_bad(b"GET / HTTP/1.1\r\n\n", "bare LF");
    assert_bad(b"\nGET / HTTP/1.1\r\n\r\n", "bare LF");
}

// ---- malformed headers ----

#[test]
fn header_errors() {
    for (line, needle) in [
        (&b"NoColon"[..], "no colon"),
        (b"Bad Name: x", "invalid"),
        (b"Name : x", "whitespace between"),
        (b": x", "empty header name"),
        (b"X: a\x00b", "0x00"),
        (b"X: a\rb", "0x0d"),
        (b"X: a\x1bb", "0x1b"),
        (b"X: a\x7fb", "0x7f"),
        (b"B@d: x", "header name"),
    ] {
        let mut input = b"GET / HTTP/1.1\r\n".to_vec();
        input.extend_from_slice(line);
        input.extend_from_slice(b"\r\n\r\n");
        assert_bad(&input, needle);
    }
}

#[test]
fn obs_fold_is_refused() {
    assert_bad(b"GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n", "folding");
    assert_bad(b"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", "folding");
}

#[test]
fn duplicate_host_is_refused() {
    assert_bad(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", "Host");
}

#[test]
fn error_messages_quote_little_client_input() {
    let long_name = "N".repeat(10_000);
    let e = err(format!("GET / HTTP/1.1\r\n{long_name}: a\x00\r\n\r\n").as_bytes());
    assert_eq!(e.status, 400);
    assert!(
        e.message.len() < 200,
        "message too long: {}",
        e.message.len()
    );
    let e = err(format!("POST / HTTP/1.1\r\nContent-Length: {long_name}\r\n\r\n").as_bytes());
    assert!(
        e.message.len() < 200,
        "message too long: {}",
        e.message.len()
    );
    let e = err(format!("GET / HTTP/{long_name}\r\n\r\n").as_bytes());
    assert!(
        e.message.len() < 200,
        "message too long: {}",
        e.message.len()
    );
}

// ---- poisoning ----

#[test]
fn errors_are_sticky() {
    let mut p = Parser::new(Limits::default());
    p.push(b"BAD@ / HTTP/1.1\r\n\r\n");
    let e = p.next_request().unwrap_err();
    p.push(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(p.next_request().unwrap_err(), e);
    assert_eq!(p.next_request().unwrap_err(), e);
    assert_eq!(p.error(), Some(&e));
    assert!(!p.is_mid_request());
}

// ---- 100-continue ----

#[test]
fn expect_continue_is_offered_once_while_body_is_pending() {
    let mut p = Parser::new(Limits::default());
    p.push(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert!(!p.take_continue(), "not before the head is parsed");
    assert_eq!(p.next_request().unwrap(), None);
    assert!(p.take_continue());
    assert!(!p.take_continue(), "only once");
    p.push(b"ab");
    assert_eq!(p.next_request().unwrap(), None);
    assert!(!p.take_continue());
    p.push(b"cd");
    assert_eq!(p.next_request().unwrap().unwrap().body, b"abcd");
}

#[test]
fn expect_continue_not_offered_when_body_complete_or_http10() {
    let mut p = Parser::new(Limits::default());
    p.push(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nab");
    assert!(p.next_request().unwrap().is_some());
    assert!(!p.take_continue());
    let mut p = Parser::new(Limits::default());
    p.push(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(p.next_request().unwrap(), None);
    assert!(!p.take_continue());
}

#[test]
fn expect_continue_with_chunked_body() {
    let mut p = Parser::new(Limits::default());
    p.push(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(p.next_request().unwrap(), None);
    assert!(p.take_continue());
    p.push(b"0\r\n\r\n");
    assert!(p.next_request().unwrap().is_some());
}

#[test]
fn expect_continue_is_cleared_when_request_completes_untaken() {
    let mut p = Parser::new(Limits::default());
    p.push(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert_eq!(p.next_request().unwrap(), None);
    p.push(b"x");
    assert!(p.next_request().unwrap().is_some());
    assert!(!p.take_continue());
}
