//! Fuzzes the incremental HTTP/1.1 parser: the input is cut into pieces (sizes and limits
//! derived from its first bytes) and fed as a connection would, draining after every push.
//! Oracles: no panic, the memory bound, sticky errors, and the same outcome as feeding the
//! whole input at once.
#![no_main]

use keybroker_core::http::{HttpError, Limits, Parser, Request, MAX_CHUNK_LINE};
use libfuzzer_sys::fuzz_target;

/// Feeds `stream` in pieces of the given sizes (cycled); returns requests and the error.
fn feed(
    limits: Limits,
    stream: &[u8],
    mut sizes: impl FnMut() -> usize,
) -> (Vec<Request>, Option<HttpError>) {
    let bound = limits.max_header_bytes + limits.max_body_bytes + MAX_CHUNK_LINE;
    let mut parser = Parser::new(limits);
    let mut reqs = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let end = (at + sizes()).min(stream.len());
        parser.push(&stream[at..end]);
        at = end;
        loop {
            match parser.next_request() {
                Ok(Some(req)) => {
                    assert!(req.body.len() <= limits.max_body_bytes);
                    let _ = req.keep_alive();
                    reqs.push(req);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(matches!(e.status, 400 | 413 | 431 | 501 | 505));
                    assert!(e.message.len() < 300);
                    assert_eq!(parser.next_request(), Err(e.clone()));
                    return (reqs, Some(e));
                }
            }
        }
        assert!(parser.buffered_len() <= bound);
        let _ = parser.take_continue();
    }
    (reqs, None)
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, stream @ ..] = data else {
        return;
    };
    // Small limits reach the 413/431 paths; 0xff means the defaults.
    let limits = if *a == 0xff {
        Limits::default()
    } else {
        Limits {
            max_header_bytes: usize::from(*a) * 4,
            max_body_bytes: usize::from(*b) * 2,
        }
    };
    // Piece sizes 1..=32 from a tiny LCG seeded by `c`.
    let mut state = u32::from(*c);
    let pieces = feed(limits, stream, || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        1 + (state >> 16) as usize % 32
    });
    let whole = feed(limits, stream, || stream.len());
    assert_eq!(pieces, whole, "outcome depends on how the input is split");
});
