//! Fuzzes keystore loading (JKS, PKCS12, PEM detection and parsing): never a panic.
#![no_main]
use keybroker_core::config::keystore::Keystore;
use keybroker_core::secret::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let password = Secret::new("changeit".to_string());
    let _ = Keystore::load(data, &password);
});
