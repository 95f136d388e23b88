//! Fuzzes the incremental HTTP/1.1 parser: the input is cut into pieces (sizes and limits
//! derived from its first bytes) and fed as a connection would, draining after every push.
#![no_main]

use keybroker_core::http::{Limits, Parser, MAX_CHUNK_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, c, rest @ ..] = data else {
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
    let bound = limits.max_header_bytes + limits.max_body_bytes + MAX_CHUNK_LINE;
    let mut parser = Parser::new(limits);
    // Piece sizes from a tiny LCG seeded by `c`: 1..=32 bytes, or everything when c == 0.
    let mut state = u32::from(*c);
    let mut at = 0;
    while at < rest.len() {
        let n = if *c == 0 {
            rest.len()
        } else {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            1 + (state >> 16) as usize % 32
        };
        let end = (at + n).min(rest.len());
        parser.push(&rest[at..end]);
        at = end;
        loop {
            match parser.next_request() {
                Ok(Some(req)) => {
                    assert!(req.body.len() <= limits.max_body_bytes);
                    let _ = req.keep_alive();
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(matches!(e.status, 400 | 413 | 431 | 501 | 505));
                    assert!(e.message.len() < 300);
                    assert_eq!(parser.next_request(), Err(e));
                    return;
                }
            }
        }
        assert!(parser.buffered_len() <= bound);
        let _ = parser.take_continue();
    }
});
