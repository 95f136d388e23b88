//! The client certificate and private key the client presents in the TLS handshake.
use crate::Error;
use base64::Engine;
use keybroker_core::config::keystore::{EntryKind, Keystore, KeystoreError};
use keybroker_core::Secret;
use std::fmt;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey};

/// A certificate chain (leaf first) and its private key. `Debug` never shows the key.
pub struct Identity {
    chain: Vec<Vec<u8>>,
    key: PrivateKey<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.to_owned(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Identity {
    /// From PEM text: the certificate (then its issuers, if any) and the private key
    /// (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Identity, Error> {
        let mut chain = Vec::new();
        for item in ureq::tls::parse_pem(cert_pem) {
            match item {
                Ok(PemItem::Certificate(c)) => chain.push(c.der().to_vec()),
                Ok(_) => {}
                Err(e) => return Err(Error::Config(format!("certificate PEM: {e}"))),
            }
        }
        if chain.is_empty() {
            return Err(Error::Config("certificate PEM holds no certificate".into()));
        }
        let mut key = None;
        for item in ureq::tls::parse_pem(key_pem) {
            match item {
                Ok(PemItem::PrivateKey(k)) if key.is_none() => key = Some(k),
                Ok(_) => {}
                // The parser's message names the PEM section, never the key bytes.
                Err(e) => return Err(Error::Config(format!("private key PEM: {e}"))),
            }
        }
        let key = key.ok_or_else(|| Error::Config("key PEM holds no private key".into()))?;
        Ok(Identity { chain, key })
    }

    /// From a keystore file's bytes — PKCS12, JKS or PEM, recognised by content, as the server
    /// reads its own — and the private-key entry `alias` (case-insensitive). Without an alias
    /// the keystore must hold exactly one private-key entry.
    pub fn from_keystore(
        bytes: &[u8],
        password: &str,
        alias: Option<&str>,
    ) -> Result<Identity, Error> {
        let ks = Keystore::load(bytes, &Secret::new(password.to_owned())).map_err(|e| {
            Error::Config(match e {
                KeystoreError::WrongPassword => {
                    "keystore password is wrong (integrity check failed)".to_owned()
                }
                other => format!("keystore: {other}"),
            })
        })?;
        let keys: Vec<_> = ks
            .entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::PrivateKey { .. }))
            .collect();
        let entry = match alias {
            Some(a) => ks.get(a).ok_or_else(|| {
                Error::Config(format!(
                    "keystore has no entry {a:?} (private-key entries: {})",
                    names(&keys)
                ))
            })?,
            None if keys.len() == 1 => keys[0],
            None => {
                return Err(Error::Config(format!(
                    "keystore has {} private-key entries ({}); name one with an alias",
                    keys.len(),
                    names(&keys)
                )))
            }
        };
        match &entry.kind {
            EntryKind::PrivateKey { key_pkcs8, chain } if !chain.is_empty() => {
                // The TLS layer takes a key only from PEM or with a kind it does not export:
                // wrap the PKCS#8 DER in PEM (kept in a Secret, wiped on drop).
                let pem = Secret::new(format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                    base64::engine::general_purpose::STANDARD.encode(key_pkcs8.expose())
                ));
                let key = PrivateKey::from_pem(pem.expose().as_bytes()).map_err(|_| {
                    Error::Config(format!("keystore entry {:?}: unusable key", entry.alias))
                })?;
                Ok(Identity {
                    chain: chain.clone(),
                    key,
                })
            }
            EntryKind::PrivateKey { .. } => Err(Error::Config(format!(
                "keystore entry {:?} has no certificate",
                entry.alias
            ))),
            EntryKind::TrustedCert { .. } => Err(Error::Config(format!(
                "keystore entry {:?} is a trusted certificate, not a private key",
                entry.alias
            ))),
        }
    }

    /// The leaf certificate, DER.
    pub fn certificate(&self) -> &[u8] {
        &self.chain[0]
    }

    pub(crate) fn to_client_cert(&self) -> ClientCert {
        let chain: Vec<Certificate<'static>> = self
            .chain
            .iter()
            .map(|c| Certificate::from_der(c).to_owned())
            .collect();
        ClientCert::new_with_certs(&chain, self.key.to_owned())
    }
}

fn names(keys: &[&keybroker_core::config::keystore::Entry]) -> String {
    if keys.is_empty() {
        return "none".into();
    }
    keys.iter()
        .map(|e| e.alias.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn pem_identity_loads_and_debug_hides_the_key() {
        let (cert, key) = pem_pair();
        let id = Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert!(!id.certificate().is_empty());
        let shown = format!("{id:?} {:?}", id.clone());
        assert!(
            !shown.contains("PRIVATE") && shown.contains("[redacted]"),
            "{shown}"
        );
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!shown.contains(&body[..20]));
    }

    #[test]
    fn unusable_pem_is_a_config_error_naming_the_part() {
        let (cert, key) = pem_pair();
        for (c, k, what) in [
            (key.as_str(), key.as_str(), "no certificate"),
            (cert.as_str(), cert.as_str(), "no private key"),
            ("", key.as_str(), "no certificate"),
        ] {
            match Identity::from_pem(c.as_bytes(), k.as_bytes()) {
                Err(Error::Config(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_keystore_that_is_not_one_says_so_without_the_password() {
        match Identity::from_keystore(b"\x30\x03\x02\x01\x03", "hunter2pw", None) {
            Err(Error::Config(m)) => {
                assert!(m.contains("keystore") && !m.contains("hunter2pw"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        match Identity::from_keystore(b"plain text", "", Some("x")) {
            Err(Error::Config(m)) => assert!(m.contains("not a JKS, PKCS12 or PEM"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
