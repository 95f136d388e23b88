//! Fuzzes the endpoint URL parser: any text gives a URL or an error, never a panic, and a
//! parsed endpoint prints back to an authority that parses to the same host and port.
#![no_main]
use keybroker_core::config::endpoint::{parse, UrlKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let kind = [UrlKind::Kmip, UrlKind::Vault, UrlKind::Redis, UrlKind::Imds][usize::from(k % 4)];
    let port = (k >= 128).then_some(8200);
    if let Ok(u) = parse(kind, text, port) {
        assert!(!u.endpoint.host.is_empty());
        assert!(u.endpoint.port > 0);
        let again = parse(UrlKind::Kmip, &u.endpoint.to_string(), None).expect("printed endpoint parses");
        assert_eq!(again.endpoint, u.endpoint);
    }
});
