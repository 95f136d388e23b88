//! Property tests for the HTTP/1.1 parser: robustness on any input, independence from how the
//! input is split, and round-tripping of serialized valid requests (pipelined).
use keybroker_core::http::{HttpError, Limits, Parser, Request, MAX_CHUNK_LINE};
use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Debug, PartialEq)]
enum Outcome {
    Req(Request),
    Err(HttpError),
}

/// Cuts `data` at the given points (any order, duplicates allowed).
fn split<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// Feeds `pieces` one at a time, draining after each; checks the memory bound and that
/// errors are sticky. Returns the outcomes and whether a request was left incomplete.
fn feed(limits: Limits, pieces: &[&[u8]]) -> (Vec<Outcome>, bool) {
    let bound = limits.max_header_bytes + limits.max_body_bytes + MAX_CHUNK_LINE;
    let mut p = Parser::new(limits);
    let mut out = Vec::new();
    for piece in pieces {
        p.push(piece);
        loop {
            match p.next_request() {
                Ok(Some(r)) => out.push(Outcome::Req(r)),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(p.next_request(), Err(e.clone()), "errors are sticky");
                    p.push(b"GET / HTTP/1.1\r\n\r\n");
                    assert_eq!(p.next_request(), Err(e.clone()), "errors are sticky");
                    assert_eq!(p.buffered_len(), 0);
                    out.push(Outcome::Err(e));
                    return (out, false);
                }
            }
        }
        assert!(
            p.buffered_len() <= bound,
            "holds {} bytes, bound {bound}",
            p.buffered_len()
        );
    }
    (out, p.is_mid_request())
}

/// Byte streams that look enough like HTTP to reach deep states, with random noise.
fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        3 => prop::sample::select(vec![
            &b"GET"[..], b"POST", b" ", b"/", b"/v1/keys/default/encrypt", b"HTTP/1.1", b"HTTP/1.0",
            b"HTTP/2.0", b"\r\n", b"\n", b"\r", b":", b": ", b"\r\n\r\n", b"Host: h\r\n",
            b"Content-Length: ", b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip\r\n",
            b"Expect: 100-continue\r\n", b"0", b"1", b"5", b"10", b"ff", b";ext=1", b"hello",
            b"GET / HTTP/1.1\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"3\r\nabc\r\n", b"0\r\n\r\n",
            b"\x00", b"\t", b"\xff",
        ])
        .prop_map(|f| f.to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ];
    let fragments = prop::collection::vec(fragment, 0..40).prop_map(|v| v.concat());
    prop_oneof![fragments, mutated_requests()]
}

/// Valid pipelined requests with a few bytes replaced, inserted or deleted.
fn mutated_requests() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<Index>(), any::<u8>(), 0u8..3);
    (
        prop::collection::vec(valid_request(), 1..4),
        prop::collection::vec(edit, 0..3),
    )
        .prop_map(|(cases, edits)| {
            let mut wire: Vec<u8> = cases.into_iter().flat_map(|c| c.wire).collect();
            for (at, byte, kind) in edits {
                let i = at.index(wire.len() + 1);
                match kind {
                    0 if i < wire.len() => wire[i] = byte,
                    1 => wire.insert(i, byte),
                    _ if i < wire.len() => {
                        wire.remove(i);
                    }
                    _ => {}
                }
            }
            wire
        })
}

fn small_limits() -> impl Strategy<Value = Limits> {
    let head = prop_oneof![0usize..300, 300usize..2000];
    let body = prop_oneof![0usize..40, 40usize..400];
    (head, body).prop_map(|(h, b)| Limits {
        max_header_bytes: h,
        max_body_bytes: b,
    })
}

/// A valid request and its serialization.
#[derive(Clone, Debug)]
struct Case {
    req: Request,
    wire: Vec<u8>,
}

fn tchar_string(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[!#$%&'*+.^_`|~0-9A-Za-z-]{{1,{max}}}")).unwrap()
}

fn field_value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => 0x21u8..=0x7e,
        1 => Just(b' '),
        1 => Just(b'\t'),
        1 => 0x80u8..=0xff,
    ];
    prop::collection::vec(byte, 0..20).prop_map(|v| {
        let start = v
            .iter()
            .position(|b| !b" \t".contains(b))
            .unwrap_or(v.len());
        let end = v
            .iter()
            .rposition(|b| !b" \t".contains(b))
            .map_or(start, |e| e + 1);
        v[start..end].to_vec()
    })
}

fn valid_request() -> impl Strategy<Value = Case> {
    let headers = prop::collection::vec((tchar_string(12), field_value()), 0..6).prop_map(|hs| {
        hs.into_iter()
            .filter(|(n, _)| {
                !["content-length", "transfer-encoding", "host"]
                    .iter()
                    .any(|f| n.eq_ignore_ascii_case(f))
            })
            .collect::<Vec<_>>()
    });
    let chunking = prop::collection::vec((any::<Index>(), any::<bool>()), 0..6);
    let trailers = prop::collection::vec((tchar_string(8), field_value()), 0..3);
    (
        tchar_string(8),
        proptest::string::string_regex("/[!-~]{0,30}").unwrap(),
        0u8..=1,
        headers,
        prop::collection::vec(any::<u8>(), 0..200),
        0u8..3,
        chunking,
        trailers,
        0usize..3,
    )
        .prop_map(
            |(method, target, minor, mut headers, body, framing, chunking, trailers, leading)| {
                let mut wire = b"\r\n".repeat(leading);
                wire.extend_from_slice(format!("{method} {target} HTTP/1.{minor}\r\n").as_bytes());
                let chunked = framing == 1 && minor == 1;
                if chunked {
                    headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
                } else if framing == 0 || !body.is_empty() {
                    headers.push(("content-length".into(), body.len().to_string().into_bytes()));
                }
                for (n, v) in &headers {
                    wire.extend_from_slice(n.as_bytes());
                    wire.extend_from_slice(b": ");
                    wire.extend_from_slice(v);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"\r\n");
                if chunked {
                    let mut cuts: Vec<(usize, bool)> = chunking
                        .iter()
                        .map(|(i, ext)| (i.index(body.len() + 1), *ext))
                        .collect();
                    cuts.push((body.len(), false));
                    cuts.sort_unstable();
                    let mut at = 0;
                    for (cut, ext) in cuts {
                        if cut == at {
                            continue;
                        }
                        let ext = if ext { ";a=b; c" } else { "" };
                        wire.extend_from_slice(format!("{:X}{ext}\r\n", cut - at).as_bytes());
                        wire.extend_from_slice(&body[at..cut]);
                        wire.extend_from_slice(b"\r\n");
                        at = cut;
                    }
                    wire.extend_from_slice(b"0\r\n");
                    for (n, v) in &trailers {
                        wire.extend_from_slice(n.as_bytes());
                        wire.extend_from_slice(b":");
                        wire.extend_from_slice(v);
                        wire.extend_from_slice(b"\r\n");
                    }
                    wire.extend_from_slice(b"\r\n");
                } else {
                    wire.extend_from_slice(&body);
                }
                Case {
                    req: Request {
                        method,
                        target,
                        minor_version: minor,
                        headers,
                        body,
                    },
                    wire,
                }
            },
        )
}

proptest! {
    /// Any byte stream, split anywhere: no panic, requests then at most one (sticky) error,
    /// and never more buffered than the limits allow.
    #[test]
    fn any_stream_never_panics(
        data in prop_oneof![http_ish(), prop::collection::vec(any::<u8>(), 0..400)],
        cuts in prop::collection::vec(any::<Index>(), 0..12),
        limits in small_limits(),
    ) {
        let (out, _) = feed(limits, &split(&data, &cuts));
        let errors = out.iter().filter(|o| matches!(o, Outcome::Err(_))).count();
        prop_assert!(errors <= 1);
        if errors == 1 {
            prop_assert!(matches!(out.last(), Some(Outcome::Err(_))));
        }
    }

    /// The outcome does not depend on how the stream is split.
    #[test]
    fn split_independent(
        data in http_ish(),
        cuts in prop::collection::vec(any::<Index>(), 0..20),
        limits in small_limits(),
    ) {
        let whole = feed(limits, &[&data]);
        let pieces = feed(limits, &split(&data, &cuts));
        prop_assert_eq!(whole, pieces);
    }

    /// Serialized valid requests (Content-Length, chunked or bodiless), pipelined and split
    /// anywhere, parse back to exactly themselves.
    #[test]
    fn valid_requests_round_trip(
        cases in prop::collection::vec(valid_request(), 1..5),
        cuts in prop::collection::vec(any::<Index>(), 0..10),
    ) {
        let wire: Vec<u8> = cases.iter().flat_map(|c| c.wire.clone()).collect();
        let (out, mid) = feed(Limits::default(), &split(&wire, &cuts));
        let expected: Vec<Outcome> = cases.into_iter().map(|c| Outcome::Req(c.req)).collect();
        prop_assert_eq!(out, expected);
        prop_assert!(!mid);
    }
}

/// The round-trip test can fail: a corrupted serialization does not parse back.
#[test]
fn round_trip_detects_corruption() {
    let wire = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    let (out, _) = feed(Limits::default(), &[&wire[..]]);
    let Outcome::Req(r) = &out[0] else {
        panic!("expected a request")
    };
    assert_eq!(r.body, b"abc");
    let corrupted = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nabc";
    let (out2, mid) = feed(Limits::default(), &[&corrupted[..]]);
    assert_ne!(out, out2);
    assert!(mid, "the stray byte starts a new request");
}
