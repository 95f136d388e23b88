//! The committed fixture keystores (testvectors/keystores/, made by its make.sh) load on fixed bytes.
#![allow(clippy::disallowed_methods)]

use keybroker_core::config::keystore::{EntryKind, Format, Keystore, KeystoreError};
use keybroker_core::secret::Secret;
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testvectors/keystores")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn der(name: &str) -> Vec<u8> {
    let pem = fixture(name);
    x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents
}

fn pw() -> Secret<String> {
    Secret::new("changeit".to_string())
}

/// The RSA modulus (uppercase hex, as openssl prints it) of a PKCS#8 RSA key.
fn modulus_hex(pkcs8: &[u8]) -> String {
    use x509_parser::der_parser::ber::BerObjectContent;
    let (_, pki) = x509_parser::der_parser::parse_der(pkcs8).unwrap();
    let seq = pki.as_sequence().unwrap();
    let BerObjectContent::OctetString(inner) = seq[2].content else {
        panic!()
    };
    let (_, rsa) = x509_parser::der_parser::parse_der(inner).unwrap();
    let n = rsa.as_sequence().unwrap()[1].as_slice().unwrap();
    n.iter()
        .skip_while(|&&b| b == 0)
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn check(name: &str, format: Format, with_device: bool) {
    let ks = Keystore::load(&fixture(name), &pw()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(ks.format, format, "{name}");
    assert_eq!(ks.entries.len(), if with_device { 2 } else { 1 }, "{name}");
    let EntryKind::PrivateKey { key_pkcs8, chain } = &ks.get("KMSSERVER").unwrap().kind else {
        panic!("{name}: kmsServer is not a key")
    };
    assert_eq!(chain, &vec![der("kmsServer.crt"), der("ca.crt")], "{name}");
    let want = String::from_utf8(fixture("kmsServer.modulus")).unwrap();
    assert_eq!(modulus_hex(key_pkcs8.expose()), want.trim(), "{name}");
    if with_device {
        let EntryKind::TrustedCert { cert } = &ks.get("cmxDevice").unwrap().kind else {
            panic!("{name}: cmxDevice is not a trusted cert")
        };
        assert_eq!(cert, &der("cmxDevice.crt"));
    }
}

#[test]
fn fixtures_load() {
    check("store.p12", Format::Pkcs12, true);
    check("store.jks", Format::Jks, true);
    check("store.pem", Format::Pem, true);
    check("legacy-openssl.p12", Format::Pkcs12, false);
}

#[test]
fn fixtures_refuse_wrong_password() {
    for name in ["store.p12", "store.jks", "legacy-openssl.p12"] {
        let err = Keystore::load(&fixture(name), &Secret::new("changeiT".into())).unwrap_err();
        assert_eq!(err, KeystoreError::WrongPassword, "{name}");
    }
}

#[test]
fn jceks_and_garbage_are_clear_errors() {
    let err = Keystore::load(&[0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2], &pw()).unwrap_err();
    assert!(err.to_string().contains("JCEKS"), "{err}");
    assert_eq!(
        Keystore::load(b"hello", &pw()).unwrap_err(),
        KeystoreError::UnknownFormat
    );
    assert_eq!(
        Keystore::load(b"", &pw()).unwrap_err(),
        KeystoreError::UnknownFormat
    );
}

#[test]
fn jks_key_password_must_equal_store_password() {
    // Re-seal store.jks with another store password: the digest passes, the key check fails.
    use sha1::{Digest, Sha1};
    let bytes = fixture("store.jks");
    let data = &bytes[..bytes.len() - 20];
    let other: Vec<u8> = "other"
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    let mut h = Sha1::new();
    h.update(&other);
    h.update(b"Mighty Aphrodite");
    h.update(data);
    let mut resealed = data.to_vec();
    resealed.extend_from_slice(&h.finalize());
    let err = Keystore::load(&resealed, &Secret::new("other".into())).unwrap_err();
    assert!(
        err.to_string()
            .contains("different from the store password"),
        "{err}"
    );
    assert!(!err.to_string().contains("changeit"));
}
