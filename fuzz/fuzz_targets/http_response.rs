//! Fuzzes the HTTP/1.1 response parser that frames Vault and IMDS answers on backend links
//! and the simulator's client answers: the input is fed in pieces (sizes from its first byte)
//! and drained after every push. Oracles: no panic, bounded buffering, and the same responses
//! and error as feeding the whole input at once.
#![no_main]

use keybroker_core::vault::http::{HttpError, HttpResponse, ResponseParser, MAX_BODY, MAX_HEAD};
use libfuzzer_sys::fuzz_target;

fn feed(stream: &[u8], mut sizes: impl FnMut() -> usize) -> (Vec<HttpResponse>, Option<HttpError>) {
    let mut p = ResponseParser::new();
    let mut out = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let end = (at + sizes()).min(stream.len());
        p.push(&stream[at..end]);
        at = end;
        loop {
            match p.next(false) {
                Ok(Some(r)) => {
                    assert!(r.body.len() <= MAX_BODY);
                    out.push(r);
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        assert!(p.buffered() <= MAX_HEAD + MAX_BODY + stream.len());
    }
    match p.next(true) {
        Ok(Some(r)) => out.push(r),
        Ok(None) => {}
        Err(e) => return (out, Some(e)),
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let [c, stream @ ..] = data else {
        return;
    };
    let mut state = u32::from(*c);
    let pieces = feed(stream, || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        1 + (state >> 16) as usize % 32
    });
    let whole = feed(stream, || stream.len());
    assert_eq!(pieces, whole, "outcome depends on how the input is split");
});
