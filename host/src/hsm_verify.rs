//! Server-certificate verification for HSM links: webpki's, plus the subject CN for
//! certificates that carry no subjectAltName at all.
//!
//! Sites make HSM certificates from CSRs with a CN only (`openssl req -new`, signed by their
//! CA without a subjectAltName). Java clients (`HostnameChecker`) match such a certificate's
//! last subject CN against a DNS host name; rustls refuses it. [`HsmServerVerifier`] runs
//! webpki's verifier first; only when that refuses the *name* and the certificate has no
//! subjectAltName extension does it check the chain again on its own (signatures, validity,
//! key usage, against the same roots) and compare the CN with the host, as Java does: DNS
//! names only (an IP address needs an IP subjectAltName), case-insensitive, a leading `*.`
//! standing for exactly one label. Each certificate so accepted is logged once.
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// webpki's server verifier, falling back to the subject CN for certificates without any
/// subjectAltName.
#[derive(Debug)]
pub struct HsmServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    /// SHA-256 fingerprints of the CN-matched certificates already logged.
    logged: Mutex<BTreeSet<Vec<u8>>>,
}

/// What the name check needs from a certificate: whether it has a subjectAltName extension,
/// and its subject CNs in order.
#[derive(Debug, PartialEq, Eq)]
pub struct CertNames {
    /// The certificate has a subjectAltName extension (even an empty one).
    pub has_san: bool,
    /// Subject commonName values, in the order they appear.
    pub common_names: Vec<String>,
}

/// The names of a DER certificate, or `None` if it does not parse.
pub fn cert_names(der: &[u8]) -> Option<CertNames> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let has_san = cert
        .extensions()
        .iter()
        .any(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_SUBJECT_ALT_NAME);
    let common_names = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    Some(CertNames {
        has_san,
        common_names,
    })
}

/// Whether a CN matches a DNS host name as Java's `HostnameChecker` does.
pub fn cn_matches_dns(cn: &str, host: &str) -> bool {
    let cn = cn.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if cn.is_empty() || host.is_empty() {
        return false;
    }
    match cn.strip_prefix("*.") {
        Some(suffix) if !suffix.contains('*') && suffix.contains('.') => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        Some(_) => false,
        None => !cn.contains('*') && cn == host,
    }
}

/// Why a certificate without subjectAltName was refused (rustls prints it with Debug).
struct NoSanMismatch(String);

impl std::fmt::Debug for NoSanMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for NoSanMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoSanMismatch {}

impl HsmServerVerifier {
    /// A verifier trusting `roots`, with `provider`'s signature algorithms.
    pub fn new(roots: RootCertStore, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let roots = Arc::new(roots);
        let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("HSM trust anchors: {e}"))?;
        Ok(HsmServerVerifier {
            inner,
            roots,
            provider,
            logged: Mutex::new(BTreeSet::new()),
        })
    }

    fn by_common_name(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
        refusal: Error,
    ) -> Result<ServerCertVerified, Error> {
        let Some(names) = cert_names(end_entity) else {
            return Err(refusal);
        };
        if names.has_san {
            return Err(refusal);
        }
        // Java takes the most specific (last) CN.
        let cn = names.common_names.last().cloned().unwrap_or_default();
        let host = match server_name {
            ServerName::DnsName(host) if cn_matches_dns(&cn, host.as_ref()) => host,
            _ => {
                return Err(Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(NoSanMismatch(format!(
                        "the certificate has no subjectAltName and its subject CN {cn:?} does not name {} (a CN is matched against a DNS host name only, as Java clients do)",
                        server_name.to_str()
                    )))),
                )))
            }
        };
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let fingerprint = {
            use std::hash::{DefaultHasher, Hasher};
            // Only to log once per certificate; a collision merely skips a repeated line.
            let mut h = DefaultHasher::new();
            h.write(end_entity.as_ref());
            h.finish().to_be_bytes().to_vec()
        };
        if self
            .logged
            .lock()
            .map(|mut l| l.insert(fingerprint))
            .unwrap_or(false)
        {
            crate::logging::emit(
                "warn",
                "kmip",
                &format!(
                    "the HSM certificate for {} has no subjectAltName; matched on its subject CN {cn:?}, as Java clients do (a certificate naming the host in a subjectAltName is better)",
                    host.as_ref()
                ),
            );
        }
        Ok(ServerCertVerified::assertion())
    }
}

impl ServerCertVerifier for HsmServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(
                e @ Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ),
            ) => self.by_common_name(end_entity, intermediates, server_name, now, e),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cn_matching_follows_java() {
        assert!(cn_matches_dns("hsm.example.com", "HSM.Example.com"));
        assert!(cn_matches_dns("hsm.example.com.", "hsm.example.com"));
        assert!(cn_matches_dns("*.example.com", "hsm.example.com"));
        assert!(!cn_matches_dns("*.example.com", "a.hsm.example.com"));
        assert!(!cn_matches_dns("*.example.com", "example.com"));
        assert!(!cn_matches_dns("*.com", "example.com"));
        assert!(!cn_matches_dns("h*.example.com", "hsm.example.com"));
        assert!(!cn_matches_dns("hsm.example.com", "hsm.example.org"));
        assert!(!cn_matches_dns("", "hsm"));
    }

    fn ca(cn: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let k = rcgen::KeyPair::generate().unwrap();
        (p.self_signed(&k).unwrap(), k)
    }

    fn leaf(
        cn: &str,
        sans: &[&str],
        by: &(rcgen::Certificate, rcgen::KeyPair),
    ) -> CertificateDer<'static> {
        let mut p =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let k = rcgen::KeyPair::generate().unwrap();
        p.signed_by(&k, &by.0, &by.1).unwrap().der().clone()
    }

    fn verify(v: &HsmServerVerifier, cert: &CertificateDer<'_>, host: &str) -> Result<(), Error> {
        v.verify_server_cert(
            cert,
            &[],
            &ServerName::try_from(host.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
    }

    #[test]
    fn cn_only_certificate_is_matched_on_its_cn_and_chain() {
        let site = ca("KMIP Signing CA");
        let other = ca("Another CA");
        let mut roots = RootCertStore::empty();
        roots.add(site.0.der().clone()).unwrap();
        let v = HsmServerVerifier::new(roots, crate::tls::provider()).unwrap();
        let cn_only = leaf("hsm.example.com", &[], &site);
        assert_eq!(
            cert_names(&cn_only).unwrap(),
            CertNames {
                has_san: false,
                common_names: vec!["hsm.example.com".into()]
            }
        );
        verify(&v, &cn_only, "hsm.example.com").unwrap();
        verify(&v, &cn_only, "HSM.example.com").unwrap();
        // Another name, an IP address (Java needs an IP SAN), another CA: refused.
        assert!(verify(&v, &cn_only, "other.example.com").is_err());
        assert!(verify(&v, &leaf("127.0.0.1", &[], &site), "127.0.0.1").is_err());
        let foreign = leaf("hsm.example.com", &[], &other);
        assert!(matches!(
            verify(&v, &foreign, "hsm.example.com"),
            Err(Error::InvalidCertificate(CertificateError::UnknownIssuer))
        ));
        // A certificate with a subjectAltName is judged on it alone, as before.
        let with_san = leaf("hsm.example.com", &["other.example.com"], &site);
        assert!(verify(&v, &with_san, "hsm.example.com").is_err());
        verify(&v, &with_san, "other.example.com").unwrap();
    }

    proptest! {
        #[test]
        fn cn_matching_never_panics_and_is_reflexive(cn in "[a-z0-9*.-]{0,20}", host in "[a-z0-9.-]{0,20}") {
            let _ = cn_matches_dns(&cn, &host);
            if !host.trim_end_matches('.').is_empty() && !host.contains('*') {
                prop_assert!(cn_matches_dns(&host, &host));
            }
        }

        #[test]
        fn cert_names_never_panics(der in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = cert_names(&der);
        }
    }
}
