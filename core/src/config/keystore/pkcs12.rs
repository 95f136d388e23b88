//! PKCS#12 through the `p12-keystore` crate's bag-level archive, with keybroker's own linking:
//! keys get their complete chain (leaf first), keytool's trusted certificates (bags carrying
//! Oracle's trusted-key-usage attribute 2.16.840.1.113894.746875.1.1) become trusted entries.
use super::der;
use super::{Entry, EntryKind, KeystoreError};
use crate::secret::Secret;
use p12_keystore::error::Error as P12Error;
use p12_keystore::{CertificateBag, Pkcs12Archive};

/// True when the bytes start like a PFX: a SEQUENCE whose first element is INTEGER 3.
pub(crate) fn looks_like(bytes: &[u8]) -> bool {
    let Ok((seq, _)) = der::expect(bytes, der::SEQUENCE) else {
        return false;
    };
    matches!(der::expect(seq.body, der::INTEGER), Ok((v, _)) if v.body == [3])
}

/// True when the PFX carries a MAC (version, authSafe, macData).
fn has_mac(bytes: &[u8]) -> bool {
    let Ok((seq, _)) = der::expect(bytes, der::SEQUENCE) else {
        return false;
    };
    let Ok((_, rest)) = der::read(seq.body) else {
        return false;
    };
    let Ok((_, rest)) = der::read(rest) else {
        return false;
    };
    !rest.is_empty()
}

/// Subject and issuer (raw DER names) of a certificate.
fn names(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some((
        cert.subject().as_raw().to_vec(),
        cert.issuer().as_raw().to_vec(),
    ))
}

/// A pool certificate with its trusted flag and its (subject, issuer).
type Named<'a> = (&'a Vec<u8>, bool, Option<(Vec<u8>, Vec<u8>)>);

/// Builds the chain from `leaf` by issuer name, preferring untrusted (chain) bags.
pub(crate) fn complete_chain(leaf: Vec<u8>, pool: &[(Vec<u8>, bool)]) -> Vec<Vec<u8>> {
    let named: Vec<Named<'_>> = pool.iter().map(|(c, t)| (c, *t, names(c))).collect();
    let mut chain = vec![leaf];
    while chain.len() < 16 {
        let Some((subject, issuer)) = names(chain.last().expect("chain is never empty")) else {
            break;
        };
        if subject == issuer {
            break;
        }
        let candidates = named.iter().filter(|(c, _, n)| {
            n.as_ref().is_some_and(|(s, _)| *s == issuer) && !chain.contains(c)
        });
        let pick = candidates
            .clone()
            .find(|(_, trusted, _)| !trusted)
            .or_else(|| candidates.clone().next());
        match pick {
            Some((c, _, _)) => chain.push((*c).clone()),
            None => break,
        }
    }
    chain
}

/// Loads a PKCS#12 keystore.
pub(crate) fn load(bytes: &[u8], password: &Secret<String>) -> Result<Vec<Entry>, KeystoreError> {
    let archive = match Pkcs12Archive::from_pkcs12(bytes, password.expose()) {
        Ok(a) => a,
        Err(P12Error::MacError(_)) => return Err(KeystoreError::WrongPassword),
        // Without a MAC, a wrong password shows up as a failed decryption.
        Err(P12Error::UnpadError | P12Error::Pkcs5Error(_) | P12Error::InvalidPrivateKey)
            if !has_mac(bytes) =>
        {
            return Err(KeystoreError::WrongPassword)
        }
        Err(e) => return Err(KeystoreError::Malformed(format!("PKCS12: {e}"))),
    };
    let pool: Vec<(Vec<u8>, bool)> = archive
        .certs
        .iter()
        .map(|c| (c.cert.as_der().to_vec(), c.trusted))
        .collect();
    let mut used: Vec<bool> = vec![false; archive.certs.len()];
    let mut entries = Vec::new();
    for (n, key) in archive.keys.iter().enumerate() {
        let by_id = |c: &CertificateBag| matches!((&c.local_key_id, &key.local_key_id), (Some(a), Some(b)) if a.as_slice() == b.as_ref());
        let by_name = |c: &CertificateBag| {
            key.local_key_id.is_none()
                && c.friendly_name.is_some()
                && c.friendly_name == key.friendly_name
        };
        let leaf = archive
            .certs
            .iter()
            .position(by_id)
            .or_else(|| archive.certs.iter().position(by_name));
        let alias = key
            .friendly_name
            .clone()
            .or_else(|| leaf.and_then(|i| archive.certs[i].friendly_name.clone()))
            .unwrap_or_else(|| format!("key{}", n + 1));
        let Some(leaf) = leaf else {
            return Err(KeystoreError::Malformed(format!(
                "PKCS12 private key {alias:?} has no certificate"
            )));
        };
        used[leaf] = true;
        let chain = complete_chain(archive.certs[leaf].cert.as_der().to_vec(), &pool);
        // Every untrusted copy of a chain certificate is chain material (keytool writes the
        // intermediate once per key, named by its subject DN).
        for (i, (p, t)) in pool.iter().enumerate() {
            if !t && chain.contains(p) {
                used[i] = true;
            }
        }
        der::check_pkcs8(key.key.as_der())?;
        entries.push(Entry {
            alias,
            kind: EntryKind::PrivateKey {
                key_pkcs8: Secret::new(key.key.as_der().to_vec()),
                chain,
            },
        });
    }
    for (i, c) in archive.certs.iter().enumerate() {
        // keytool's trusted entries; and, as an extension, named certificates that belong to
        // no key (openssl pkcs12 -export -nokeys -name ... truststores).
        let named_loner = !used[i] && c.local_key_id.is_none() && c.friendly_name.is_some();
        if c.trusted || named_loner {
            let alias = c
                .friendly_name
                .clone()
                .unwrap_or_else(|| c.cert.subject().to_string());
            entries.push(Entry {
                alias,
                kind: EntryKind::TrustedCert {
                    cert: c.cert.as_der().to_vec(),
                },
            });
        }
    }
    Ok(entries)
}
