//! TLS profiles (`keybroker.tls.profile`, `keybroker.tls.min-version`,
//! `keybroker.tls.cipher-suites`): the crypto provider and protocol versions every TLS
//! configuration (client listener, KMIP and Vault links) is built from, and which keystore
//! certificates do not fit the profile.
//!
//! CNSA (Suite B) allows TLS 1.2 and 1.3 with ECDHE on P-384 only, AES-256-GCM with SHA-384
//! only, and certificates with ECDSA P-384 or RSA keys of at least 3072 bits, signed with
//! SHA-384 or SHA-512.
use keybroker_core::config::keystore::EntryKind;
use keybroker_core::config::load::NodeConfig;
use keybroker_core::config::settings::{TlsProfile, TlsVersion};
use keybroker_core::config::Settings;
use rustls::crypto::CryptoProvider;
use rustls::SupportedProtocolVersion;
use std::sync::Arc;

/// The provider for `s`: the base provider's suites narrowed to `keybroker.tls.cipher-suites`
/// (in that order), and under CNSA only the P-384 key exchange.
pub fn provider(s: &Settings) -> Arc<CryptoProvider> {
    let base = crate::tls::provider();
    let mut p = (*base).clone();
    p.cipher_suites = s
        .tls_cipher_suites
        .iter()
        .filter_map(|name| {
            base.cipher_suites
                .iter()
                .find(|cs| format!("{:?}", cs.suite()) == *name)
                .copied()
        })
        .collect();
    if s.tls_profile == TlsProfile::Cnsa {
        p.kx_groups = base
            .kx_groups
            .iter()
            .filter(|g| g.name() == rustls::NamedGroup::secp384r1)
            .copied()
            .collect();
    }
    Arc::new(p)
}

/// The protocol versions allowed by `keybroker.tls.min-version`.
pub fn versions(s: &Settings) -> &'static [&'static SupportedProtocolVersion] {
    static BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match s.tls_min_version {
        TlsVersion::V1_2 => BOTH,
        TlsVersion::V1_3 => TLS13,
    }
}

/// Why a certificate does not fit `profile`, or `None` if it does (or cannot be parsed: that
/// is reported elsewhere).
pub fn cert_misfit(der: &[u8], profile: TlsProfile) -> Option<String> {
    use x509_parser::oid_registry::{
        OID_PKCS1_RSASSAPSS, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
        OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512,
    };
    use x509_parser::public_key::PublicKey;
    if profile == TlsProfile::Default {
        return None;
    }
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut why = Vec::new();
    match cert.public_key().parsed() {
        Ok(PublicKey::EC(ec)) if ec.key_size() == 384 => {}
        Ok(PublicKey::EC(ec)) => why.push(format!("an EC {}-bit key", ec.key_size())),
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() >= 3072 => {}
        Ok(PublicKey::RSA(rsa)) => why.push(format!("an RSA {}-bit key", rsa.key_size())),
        _ => why.push(format!(
            "a {} key",
            name_of(&cert.public_key().algorithm.algorithm)
        )),
    }
    // A self-signed certificate's own signature plays no part in TLS (a trust anchor).
    let sig = &cert.signature_algorithm.algorithm;
    let strong = [
        OID_SIG_ECDSA_WITH_SHA384,
        OID_SIG_ECDSA_WITH_SHA512,
        OID_PKCS1_SHA384WITHRSA,
        OID_PKCS1_SHA512WITHRSA,
        OID_PKCS1_RSASSAPSS,
    ];
    if cert.subject() != cert.issuer() && !strong.contains(sig) {
        why.push(format!("a {} signature", name_of(sig)));
    }
    (!why.is_empty()).then(|| why.join(" and "))
}

fn name_of(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_owned)
        .unwrap_or_else(|_| oid.to_id_string())
}

/// One line per keystore certificate that does not fit the configured profile, naming the
/// alias, the certificate and why.
pub fn misfits(cfg: &NodeConfig) -> Vec<String> {
    let profile = cfg.settings.tls_profile;
    if profile == TlsProfile::Default {
        return Vec::new();
    }
    let mut out = Vec::new();
    for e in &cfg.keystore.entries {
        let certs: Vec<&Vec<u8>> = match &e.kind {
            EntryKind::PrivateKey { chain, .. } => chain.iter().collect(),
            EntryKind::TrustedCert { cert } => vec![cert],
        };
        for (i, der) in certs.iter().enumerate() {
            if let Some(why) = cert_misfit(der, profile) {
                let subject = keybroker_core::authz::CertInfo::parse(der)
                    .map(|c| c.subject)
                    .unwrap_or_default();
                let which = if certs.len() > 1 {
                    format!(" (chain certificate {} of {})", i + 1, certs.len())
                } else {
                    String::new()
                };
                out.push(format!(
                    "alias {}{which}: {subject}: {why} does not fit keybroker.tls.profile=cnsa (ECDSA P-384 or RSA >= 3072-bit keys, SHA-384 signatures)",
                    e.alias
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(alg: &'static rcgen::SignatureAlgorithm, issuer: Option<&rcgen::KeyPair>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["hsm.test".to_string()]).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "hsm.test");
        match issuer {
            None => p.self_signed(&key).unwrap().der().to_vec(),
            Some(ca_key) => {
                let mut cp = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
                cp.distinguished_name.push(rcgen::DnType::CommonName, "ca");
                let ca = cp.self_signed(ca_key).unwrap();
                p.signed_by(&key, &ca, ca_key).unwrap().der().to_vec()
            }
        }
    }

    #[test]
    fn cnsa_wants_p384_keys_and_sha384_signatures() {
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let good = cert(&rcgen::PKCS_ECDSA_P384_SHA384, Some(&p384));
        assert_eq!(cert_misfit(&good, TlsProfile::Cnsa), None);
        let weak_key = cert(&rcgen::PKCS_ECDSA_P256_SHA256, Some(&p384));
        assert_eq!(
            cert_misfit(&weak_key, TlsProfile::Cnsa).as_deref(),
            Some("an EC 256-bit key")
        );
        let weak_sig = cert(&rcgen::PKCS_ECDSA_P384_SHA384, Some(&p256));
        assert_eq!(
            cert_misfit(&weak_sig, TlsProfile::Cnsa).as_deref(),
            Some("a ecdsa-with-SHA256 signature")
        );
        // Self-signed: its own signature does not count.
        let root = cert(&rcgen::PKCS_ECDSA_P384_SHA384, None);
        assert_eq!(cert_misfit(&root, TlsProfile::Cnsa), None);
        assert_eq!(cert_misfit(&weak_key, TlsProfile::Default), None);
        assert_eq!(cert_misfit(b"not a certificate", TlsProfile::Cnsa), None);
    }

    #[test]
    fn cnsa_provider_has_only_aes256_sha384_and_p384() {
        let props = keybroker_core::config::properties::parse(
            b"kms.keystore.file=ks\nkms.keystore.password=pw\nkms.hsm.protocol=soft\nkeybroker.tls.profile=cnsa\n",
        )
        .unwrap();
        let (s, _) = Settings::from_properties(&props).unwrap();
        let p = provider(&s);
        let names: Vec<String> = p
            .cipher_suites
            .iter()
            .map(|c| format!("{:?}", c.suite()))
            .collect();
        assert_eq!(
            names,
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
            ]
        );
        let groups: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(groups, [rustls::NamedGroup::secp384r1]);
        assert_eq!(versions(&s).len(), 2);
        // Every name keybroker accepts is a suite of the base provider.
        let all = crate::tls::provider();
        for n in keybroker_core::config::settings::TLS_CIPHER_SUITES {
            assert!(
                all.cipher_suites
                    .iter()
                    .any(|c| format!("{:?}", c.suite()) == *n),
                "{n}"
            );
        }
    }
}
