//! Fuzzes the `kb1:` token decoder: any string decodes or errors, never panics, and a decoded
//! envelope re-encodes to a token that decodes to the same envelope.
#![no_main]
use keybroker_core::envelope::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(env) = Envelope::decode(s) {
        let again = Envelope::decode(&env.encode()).expect("re-encoded token decodes");
        assert_eq!(again.encode(), env.encode());
    }
});
