//! Fuzzes the `.properties` parser: any bytes give properties or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(props) = keybroker_core::config::properties::parse(data) {
        for p in props {
            assert!(p.line >= 1);
        }
    }
});
