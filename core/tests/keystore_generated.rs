//! Keystores made for real with the Connected-KMS installation guide's openssl + keytool commands,
//! in every vintage.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use keybroker_core::config::keystore::{EntryKind, Format, Keystore, KeystoreError};
use keybroker_core::secret::Secret;
use proptest::prelude::*;

fn pw(s: &str) -> Secret<String> {
    Secret::new(s.to_string())
}

/// Checks the site's six entries: two keys with leaf + intermediate, four trusted certs.
fn check_seed_store(ks: &Keystore) {
    assert_eq!(
        ks.entries.len(),
        6,
        "{:?}",
        ks.entries.iter().map(|e| &e.alias).collect::<Vec<_>>()
    );
    let inter = cert_der("interCA");
    for alias in KEY_ALIASES {
        let e = ks.get(alias).unwrap_or_else(|| panic!("{alias} missing"));
        assert!(e.alias.eq_ignore_ascii_case(alias));
        let EntryKind::PrivateKey { key_pkcs8, chain } = &e.kind else {
            panic!("{alias} is not a private key entry");
        };
        assert_eq!(
            chain,
            &vec![cert_der(alias), inter.clone()],
            "{alias} chain"
        );
        assert_eq!(
            pkcs8_rsa_modulus(key_pkcs8.expose()),
            cert_rsa_modulus(&chain[0])
        );
    }
    for alias in CERT_ALIASES {
        let e = ks
            .get(&alias.to_uppercase())
            .unwrap_or_else(|| panic!("{alias} missing"));
        let EntryKind::TrustedCert { cert } = &e.kind else {
            panic!("{alias} is not a trusted cert entry");
        };
        assert_eq!(cert, &cert_der(alias), "{alias}");
    }
    assert!(ks.get("rootCA").is_none());
}

#[test]
fn every_vintage_loads_with_all_entries() {
    for variant in VARIANTS {
        let bytes = std::fs::read(keystore(variant)).unwrap();
        let ks = Keystore::load(&bytes, &pw(STORE_PASSWORD))
            .unwrap_or_else(|e| panic!("{variant}: {e}"));
        let want = if variant == "jks" {
            Format::Jks
        } else {
            Format::Pkcs12
        };
        assert_eq!(ks.format, want, "{variant}");
        check_seed_store(&ks);
    }
}

#[test]
fn wrong_password_is_wrong_password() {
    for variant in VARIANTS {
        let bytes = std::fs::read(keystore(variant)).unwrap();
        let err = Keystore::load(&bytes, &pw("kmsKeystorePwX")).unwrap_err();
        assert_eq!(err, KeystoreError::WrongPassword, "{variant}");
        assert!(!err.to_string().contains("kmsKeystorePw"));
    }
}

#[test]
fn openssl_p12_files_load_directly() {
    for variant in ["pkcs12", "openssl-legacy"] {
        for alias in KEY_ALIASES {
            let bytes = read(&format!("{variant}/{alias}.p12"));
            let ks = Keystore::load(&bytes, &pw(&format!("{alias}Pwd")))
                .unwrap_or_else(|e| panic!("{variant}/{alias}: {e}"));
            assert_eq!(ks.format, Format::Pkcs12);
            assert_eq!(ks.entries.len(), 1);
            assert_eq!(ks.entries[0].alias, alias);
            let EntryKind::PrivateKey { key_pkcs8, chain } = &ks.entries[0].kind else {
                panic!()
            };
            assert_eq!(chain, &vec![cert_der(alias), cert_der("interCA")]);
            assert_eq!(
                pkcs8_rsa_modulus(key_pkcs8.expose()),
                cert_rsa_modulus(&chain[0])
            );
            assert_eq!(
                Keystore::load(&bytes, &pw("nope")).unwrap_err(),
                KeystoreError::WrongPassword
            );
        }
    }
}

#[test]
fn openssl_nodes_pem_loads_like_the_pkcs12() {
    let bytes = read("kmsKeystore.pem");
    let ks = Keystore::load(&bytes, &pw("")).unwrap();
    assert_eq!(ks.format, Format::Pem);
    check_seed_store(&ks);
}

#[test]
fn alias_comment_pem_with_pkcs8_and_pkcs1_keys() {
    let d = dir();
    run(
        d,
        "openssl rsa -in kmsClient.key -traditional -out kmsClient.rsa.key 2>/dev/null
         { echo '# alias: kmsServer'; cat kmsServer.key kmsServer.crt;
           echo '# alias: kmsClient'; cat kmsClient.rsa.key kmsClient.crt;
           echo '# a CA used only to complete chains needs no alias, but comes after one:';
           echo '# alias: kmipSigningCA'; cat kmipSigningCA.crt;
           for a in cmxBackend cmxDevice cmxDevice20190512; do echo \"# alias: $a\"; cat $a.crt; done; } > aliases.pem
         { cat aliases.pem; echo; cat interCA.crt; } > aliases-ca-last.pem",
    );
    // Without the intermediate the chains are the leaves alone.
    let ks = Keystore::load(&read("aliases.pem"), &pw("")).unwrap();
    assert_eq!(ks.format, Format::Pem);
    assert_eq!(ks.entries.len(), 6);
    assert!(std::str::from_utf8(&read("kmsClient.rsa.key"))
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));
    let EntryKind::PrivateKey { key_pkcs8, chain } = &ks.get("kmsclient").unwrap().kind else {
        panic!()
    };
    assert_eq!(chain.len(), 1);
    assert_eq!(
        pkcs8_rsa_modulus(key_pkcs8.expose()),
        cert_rsa_modulus(&chain[0])
    );
    // The PKCS#1 key became the same PKCS#8 openssl writes.
    let pkcs8_pem = read("kmsClient.key");
    let (_, p) = x509_parser::pem::parse_x509_pem(&pkcs8_pem).unwrap();
    assert_eq!(key_pkcs8.expose(), &p.contents);
}

#[test]
fn debug_output_has_no_key_material() {
    let bytes = std::fs::read(keystore("jks")).unwrap();
    let ks = Keystore::load(&bytes, &pw(STORE_PASSWORD)).unwrap();
    let dbg = format!("{ks:?}");
    assert!(dbg.contains("[redacted]"));
    assert!(!dbg.contains(STORE_PASSWORD));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn mutated_keystores_never_panic(
        variant in 0usize..VARIANTS.len(),
        muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = std::fs::read(keystore(VARIANTS[variant])).unwrap();
        for (i, b) in muts {
            let i = i.index(bytes.len());
            bytes[i] ^= b | 1;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let _ = Keystore::load(&bytes, &pw(STORE_PASSWORD));
    }
}

#[test]
fn truncations_of_jks_are_errors() {
    let bytes = std::fs::read(keystore("jks")).unwrap();
    for n in (0..bytes.len()).step_by(7) {
        assert!(
            Keystore::load(&bytes[..n], &pw(STORE_PASSWORD)).is_err(),
            "len {n}"
        );
    }
}
