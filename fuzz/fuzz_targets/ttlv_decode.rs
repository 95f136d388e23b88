//! Fuzzes the TTLV decoder: it must never panic, and whatever it accepts must re-encode to the
//! same bytes and survive the text form unchanged.
#![no_main]

use keybroker_core::kmip::text;
use keybroker_core::kmip::ttlv::{self, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ttlv::frame_len(data, &Limits::DEFAULT);
    if let Ok(item) = ttlv::decode(data) {
        assert_eq!(item.encode(), data, "re-encoding differs");
        let rendered = text::render(&item);
        let parsed = text::parse(&rendered).expect("rendered text parses");
        assert_eq!(parsed, item, "text round trip differs");
    }
    if let Ok(s) = core::str::from_utf8(data) {
        if let Ok(item) = text::parse(s) {
            let bytes = item.encode();
            // Text that parses encodes to bytes the decoder accepts, unless it nests too deep.
            let _ = ttlv::decode(&bytes);
        }
    }
});
