//! rustls configuration: the server certificate from the keystore, client certificates required.
//!
//! Which client certificates are *trusted* is decided in the core by fingerprint pinning
//! against the keystore ("Trust" in docs/ARCHITECTURE.md), so the TLS layer only insists that a
//! certificate is presented and that the client proves possession of its key. Clients without one
//! fail the handshake (the 401 row of docs/api.md).
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use std::sync::Arc;

/// The TLS implementation both shells use, as `/metrics` and `--version` name it.
#[cfg(not(any(feature = "aws-lc-rs", feature = "fips")))]
pub const PROVIDER: &str = "rustls-ring";
/// The TLS implementation both shells use, as `/metrics` and `--version` name it.
#[cfg(all(feature = "aws-lc-rs", not(feature = "fips")))]
pub const PROVIDER: &str = "rustls-aws-lc-rs";
/// The TLS implementation both shells use, as `/metrics` and `--version` name it.
#[cfg(feature = "fips")]
pub const PROVIDER: &str = "rustls-aws-lc-rs-fips";

/// `VERSION (TLS: PROVIDER)`, for `--version`.
#[cfg(not(any(feature = "aws-lc-rs", feature = "fips")))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (TLS: rustls-ring)");
/// `VERSION (TLS: PROVIDER)`, for `--version`.
#[cfg(all(feature = "aws-lc-rs", not(feature = "fips")))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (TLS: rustls-aws-lc-rs)");
/// `VERSION (TLS: PROVIDER)`, for `--version`.
#[cfg(feature = "fips")]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (TLS: rustls-aws-lc-rs-fips, FIPS 140-3 module)"
);

/// The crypto provider used everywhere: ring, or aws-lc-rs (`aws-lc-rs` feature), or the
/// aws-lc-rs FIPS module (`fips` feature).
pub fn provider() -> Arc<CryptoProvider> {
    #[cfg(not(any(feature = "aws-lc-rs", feature = "fips")))]
    return Arc::new(rustls::crypto::ring::default_provider());
    #[cfg(all(feature = "aws-lc-rs", not(feature = "fips")))]
    return Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(feature = "fips")]
    return Arc::new(rustls::crypto::default_fips_provider());
}

/// Whether the provider runs in FIPS mode (its module is FIPS-validated and self-tested).
pub fn fips() -> bool {
    provider().fips()
}

/// Fills `buf` from the provider's CSPRNG.
pub fn random(buf: &mut [u8]) {
    provider()
        .secure_random
        .fill(buf)
        .expect("the OS random source works");
}

/// Requires a client certificate and checks its handshake signature; trust is the core's call.
#[derive(Debug)]
pub struct DangerCoreDecidesTrust {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for DangerCoreDecidesTrust {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// The server config for the client listener, with the TLS profile of `settings`;
/// `keybroker.tls.session-resumption=false` sends no TLS 1.3 session tickets and keeps no
/// session cache, so every connection does a full handshake.
pub fn server_config(
    chain: &[Vec<u8>],
    key_pkcs8: &[u8],
    settings: &keybroker_core::config::Settings,
) -> Result<Arc<ServerConfig>, String> {
    let resumption = settings.tls_session_resumption;
    let provider = crate::tls_profile::provider(settings);
    let verifier = Arc::new(DangerCoreDecidesTrust {
        provider: provider.clone(),
    });
    let certs: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()));
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(crate::tls_profile::versions(settings))
        .map_err(|e| format!("keybroker.tls.*: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("server certificate/key unusable: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resumption {
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
    }
    Ok(Arc::new(cfg))
}

/// TLS client configurations for backend links (KMIP with the HSM client certificate, Vault).
pub fn link_configs(cfg: &keybroker_core::config::load::NodeConfig) -> crate::node::LinkTls {
    use keybroker_core::config::keystore::EntryKind;
    let mut roots = rustls::RootCertStore::empty();
    for e in &cfg.keystore.entries {
        if let EntryKind::TrustedCert { cert } = &e.kind {
            let _ = roots.add(CertificateDer::from(cert.clone()));
        }
    }
    // The settings were checked at load, so the profile always has a suite for its versions.
    let profile = crate::tls_profile::provider(&cfg.settings);
    let versions = crate::tls_profile::versions(&cfg.settings);
    let builder = || {
        rustls::ClientConfig::builder_with_provider(profile.clone())
            .with_protocol_versions(versions)
            .expect("the TLS profile has suites for its versions")
    };
    let kmip = cfg
        .keystore
        .get(&cfg.settings.client_alias)
        .and_then(|e| match &e.kind {
            EntryKind::PrivateKey { key_pkcs8, chain } => {
                let chain: Vec<CertificateDer<'static>> = chain
                    .iter()
                    .map(|c| CertificateDer::from(c.clone()))
                    .collect();
                let key =
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.expose().clone()));
                // Without any trusted CA entry webpki has nothing to build on: every
                // handshake fails, as check-config says.
                let verified =
                    match crate::hsm_verify::HsmServerVerifier::new(roots.clone(), profile.clone())
                    {
                        Ok(v) => builder()
                            .dangerous()
                            .with_custom_certificate_verifier(Arc::new(v)),
                        Err(_) => builder().with_root_certificates(roots.clone()),
                    };
                verified
                    .with_client_auth_cert(chain, key)
                    .ok()
                    .map(Arc::new)
            }
            _ => None,
        });
    let mut vault_roots = roots.clone();
    // The system roots too (docs/vault.md): a Vault with a publicly or corporately
    // issued certificate must work without copying its CA into the keystore. rustls-native-certs
    // reads the OS trust store (and SSL_CERT_FILE), so operators' own CAs installed there count,
    // which an embedded list (webpki-roots) would miss.
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = vault_roots.add(c);
    }
    if let Some(path) = &cfg.settings.vault_ca_file {
        if let Ok(pem) = std::fs::read(path) {
            for c in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem).flatten() {
                let _ = vault_roots.add(c);
            }
        }
    }
    let vault = Some(Arc::new(
        builder()
            .with_root_certificates(vault_roots)
            .with_no_client_auth(),
    ));
    crate::node::LinkTls {
        kmip,
        vault,
        #[cfg(feature = "legacy-hsm-tls")]
        kmip_legacy: cfg
            .settings
            .hsm_tls_legacy
            .then(|| crate::legacy_tls::connector(cfg).ok().map(Arc::new))
            .flatten(),
    }
}

/// The start-up warnings for keystore certificates that do not fit the TLS profile.
pub fn misfits_note(cfg: &keybroker_core::config::load::NodeConfig) -> Vec<String> {
    crate::tls_profile::misfits(cfg)
        .into_iter()
        .map(|m| format!("{m}; keybroker check-config lists them all"))
        .collect()
}

/// Whether a PKCS#8 private key belongs to the certificate (same public key).
pub fn key_matches_cert(key_pkcs8: &[u8], cert_der: &[u8]) -> Result<bool, String> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()));
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("private key unusable: {e}"))?;
    let spki = signing
        .public_key()
        .ok_or_else(|| "cannot derive the public key".to_string())?;
    let cert = keybroker_core::authz::CertInfo::parse(cert_der)
        .ok_or_else(|| "certificate cannot be parsed".to_string())?;
    Ok(spki.as_ref() == cert.spki.as_slice())
}

#[cfg(test)]
mod tests {
    use super::server_config;

    fn settings(extra: &str) -> keybroker_core::config::Settings {
        let text = format!(
            "kms.keystore.file=ks\nkms.keystore.password=pw\nkms.hsm.protocol=soft\n{extra}"
        );
        let props = keybroker_core::config::properties::parse(text.as_bytes()).unwrap();
        keybroker_core::config::Settings::from_properties(&props)
            .unwrap()
            .0
    }

    #[test]
    fn session_resumption_can_be_turned_off() {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let chain = vec![ck.cert.der().to_vec()];
        let key = ck.key_pair.serialize_der();
        let on = server_config(&chain, &key, &settings("")).unwrap();
        assert!(on.send_tls13_tickets > 0);
        assert!(on.session_storage.can_cache());
        let off = server_config(
            &chain,
            &key,
            &settings("keybroker.tls.session-resumption=false\n"),
        )
        .unwrap();
        assert_eq!(off.send_tls13_tickets, 0);
        assert!(!off.session_storage.can_cache());
        assert!(!off.ticketer.enabled());
    }
}
