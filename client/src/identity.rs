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
