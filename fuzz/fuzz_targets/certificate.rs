//! Fuzzes what keybroker reads from certificates itself: the names an HSM certificate is
//! matched on (subject CNs, whether a subjectAltName is present) and the TLS-profile fit
//! (key type and size, signature algorithm). Any bytes give an answer or `None`, never a panic.
#![no_main]
use keybroker_core::config::settings::TlsProfile;
use keybroker_host::hsm_verify::{cert_names, cn_matches_dns};
use keybroker_host::tls_profile::cert_misfit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(names) = cert_names(data) {
        for cn in &names.common_names {
            let _ = cn_matches_dns(cn, "hsm.example.com");
        }
    }
    let _ = cert_misfit(data, TlsProfile::Cnsa);
    assert!(cert_misfit(data, TlsProfile::Default).is_none());
});
