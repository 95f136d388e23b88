//! Property tests of the HTTP/1.1 response parser (`vault::http::ResponseParser`): responses
//! written by the core's own writer, or chunked, parse back to what was written however the
//! byte stream is cut.
use keybroker_core::http::{write_response, Response};
use keybroker_core::vault::http::ResponseParser;
use proptest::prelude::*;

fn chunked(status: u16, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\ntransfer-encoding: chunked\r\n\r\n").into_bytes();
    for c in body.chunks(chunk.max(1)) {
        out.extend(format!("{:x}\r\n", c.len()).bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

proptest! {
    #[test]
    fn written_responses_parse_back_however_cut(
        answers in prop::collection::vec(
            (prop::sample::select(vec![200u16, 204, 400, 403, 404, 500, 503]),
             prop::collection::vec(any::<u8>(), 0..300),
             any::<bool>(),
             1usize..40),
            1..6),
        cuts in prop::collection::vec(1usize..64, 1..20),
    ) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (status, body, chunk, size) in &answers {
            let body = if *status == 204 { Vec::new() } else { body.clone() };
            if *chunk && *status != 204 {
                stream.extend(chunked(*status, &body, *size));
            } else {
                write_response(
                    &Response { status: *status, headers: vec![("x-n".into(), "1".into())], body: body.clone() },
                    &mut stream,
                );
            }
            want.push((*status, body));
        }
        let mut p = ResponseParser::new();
        let mut got = Vec::new();
        let (mut at, mut i) = (0, 0);
        while at < stream.len() {
            let end = (at + cuts[i % cuts.len()]).min(stream.len());
            i += 1;
            p.push(&stream[at..end]);
            at = end;
            while let Some(r) = p.next(false).expect("well-formed") {
                got.push((r.status, r.body));
            }
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut p = ResponseParser::new();
        p.push(&bytes);
        for _ in 0..8 {
            match p.next(true) {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
}
