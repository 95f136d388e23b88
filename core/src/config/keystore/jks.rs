//! Java KeyStore (JKS, magic 0xFEEDFEED), versions 1 and 2, as `sun.security.provider.JavaKeyStore`
//! writes them: private-key entries protected with Sun's `KeyProtector` and trusted certificates,
//! the whole store sealed with SHA-1(password as UTF-16BE || "Mighty Aphrodite" || data).
use super::der;
use super::{Entry, EntryKind, KeystoreError};
use crate::secret::Secret;
use sha1::{Digest, Sha1};

/// JKS magic number.
pub(crate) const MAGIC: [u8; 4] = [0xfe, 0xed, 0xfe, 0xed];
/// JCEKS magic number (not supported).
pub(crate) const JCEKS_MAGIC: [u8; 4] = [0xce, 0xce, 0xce, 0xce];
/// DER of OID 1.3.6.1.4.1.42.2.17.1.1, Sun's proprietary key protection algorithm.
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];

fn malformed(what: impl Into<String>) -> KeystoreError {
    KeystoreError::Malformed(what.into())
}

/// A cursor over the JKS bytes, reading Java `DataInputStream` primitives.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], KeystoreError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| malformed(format!("JKS truncated in {what} at byte {}", self.pos)))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u16(&mut self, what: &str) -> Result<u16, KeystoreError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, KeystoreError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A `DataInput.readUTF` string (modified UTF-8 with a 2-byte length).
    fn utf(&mut self, what: &str) -> Result<String, KeystoreError> {
        let len = self.u16(what)? as usize;
        let raw = self.take(len, what)?;
        decode_modified_utf8(raw).ok_or_else(|| malformed(format!("JKS {what} is not valid UTF")))
    }
    /// A length-prefixed byte array (`int` length).
    fn blob(&mut self, what: &str) -> Result<&'a [u8], KeystoreError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }
}

/// Decodes Java's modified UTF-8 (as `DataInputStream.readUTF`) into a `String`.
fn decode_modified_utf8(raw: &[u8]) -> Option<String> {
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let a = raw[i] as u16;
        if a < 0x80 {
            units.push(a);
            i += 1;
        } else if a & 0xe0 == 0xc0 {
            let b = *raw.get(i + 1)? as u16;
            if b & 0xc0 != 0x80 {
                return None;
            }
            units.push(((a & 0x1f) << 6) | (b & 0x3f));
            i += 2;
        } else if a & 0xf0 == 0xe0 {
            let b = *raw.get(i + 1)? as u16;
            let c = *raw.get(i + 2)? as u16;
            if b & 0xc0 != 0x80 || c & 0xc0 != 0x80 {
                return None;
            }
            units.push(((a & 0x0f) << 12) | ((b & 0x3f) << 6) | (c & 0x3f));
            i += 3;
        } else {
            return None;
        }
    }
    Some(String::from_utf16_lossy(&units))
}

/// The password as Java hands it to JKS: each UTF-16 unit big-endian.
fn password_bytes(password: &Secret<String>) -> Secret<Vec<u8>> {
    Secret::new(
        password
            .expose()
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect(),
    )
}

/// A parsed entry before its key is decrypted.
enum Raw<'a> {
    Key {
        alias: String,
        protected: &'a [u8],
        chain: Vec<Vec<u8>>,
    },
    Cert {
        alias: String,
        cert: Vec<u8>,
    },
}

/// Reads a certificate (with its type name in version 2).
fn read_cert(r: &mut Reader<'_>, version: u32) -> Result<Vec<u8>, KeystoreError> {
    if version == 2 {
        let kind = r.utf("certificate type")?;
        if kind != "X.509" {
            return Err(malformed(format!(
                "JKS certificate of type {kind:?}; only X.509 is supported"
            )));
        }
    }
    Ok(r.blob("certificate")?.to_vec())
}

/// Loads a JKS keystore; the key password must be the store password (as Connected-KMS requires).
pub(crate) fn load(bytes: &[u8], password: &Secret<String>) -> Result<Vec<Entry>, KeystoreError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(4, "magic")? != MAGIC {
        return Err(malformed("not a JKS keystore"));
    }
    let version = r.u32("version")?;
    if version != 1 && version != 2 {
        return Err(malformed(format!("JKS version {version} is not supported")));
    }
    let count = r.u32("entry count")?;
    let mut raws = Vec::new();
    for _ in 0..count {
        let tag = r.u32("entry tag")?;
        let alias = r.utf("alias")?;
        r.take(8, "timestamp")?;
        match tag {
            1 => {
                let protected = r.blob("private key")?;
                let n = r.u32("chain length")?;
                let mut chain = Vec::new();
                for _ in 0..n {
                    chain.push(read_cert(&mut r, version)?);
                }
                raws.push(Raw::Key {
                    alias,
                    protected,
                    chain,
                });
            }
            2 => {
                let cert = read_cert(&mut r, version)?;
                raws.push(Raw::Cert { alias, cert });
            }
            3 => {
                return Err(malformed(format!(
                    "entry {alias:?} is a secret-key entry, which JKS cannot hold"
                )))
            }
            other => {
                return Err(malformed(format!(
                    "JKS entry {alias:?} has unknown tag {other}"
                )))
            }
        }
    }
    let data_len = r.pos;
    let digest = r.take(20, "integrity digest")?;
    if r.pos != bytes.len() {
        return Err(malformed("trailing bytes after the JKS integrity digest"));
    }
    let pw = password_bytes(password);
    let mut h = Sha1::new();
    h.update(pw.expose());
    h.update(b"Mighty Aphrodite");
    h.update(&bytes[..data_len]);
    if h.finalize().as_slice() != digest {
        return Err(KeystoreError::WrongPassword);
    }
    raws.into_iter()
        .map(|raw| match raw {
            Raw::Cert { alias, cert } => Ok(Entry {
                alias,
                kind: EntryKind::TrustedCert { cert },
            }),
            Raw::Key {
                alias,
                protected,
                chain,
            } => {
                let key = recover_key(protected, &pw).map_err(|e| match e {
                    KeyError::Malformed(why) => malformed(format!("private key {alias:?}: {why}")),
                    KeyError::Check => malformed(format!(
                        "private key {alias:?} has a key password different from the store \
                         password; keybroker (like Connected-KMS) needs them equal: change it with \
                         keytool -keypasswd -alias {alias}"
                    )),
                })?;
                if chain.is_empty() {
                    return Err(malformed(format!(
                        "private key {alias:?} has no certificate chain"
                    )));
                }
                Ok(Entry {
                    alias,
                    kind: EntryKind::PrivateKey {
                        key_pkcs8: key,
                        chain,
                    },
                })
            }
        })
        .collect()
}

enum KeyError {
    Malformed(String),
    Check,
}

/// Undoes `sun.security.provider.KeyProtector.protect`: an EncryptedPrivateKeyInfo whose data is
/// salt(20) || plaintext XOR SHA-1 keystream || SHA-1(password || plaintext).
fn recover_key(protected: &[u8], pw: &Secret<Vec<u8>>) -> Result<Secret<Vec<u8>>, KeyError> {
    let m = |e: KeystoreError| KeyError::Malformed(e.to_string());
    let (epki, _) = der::expect(protected, der::SEQUENCE).map_err(m)?;
    let (alg, rest) = der::expect(epki.body, der::SEQUENCE).map_err(m)?;
    let (oid, _) = der::expect(alg.body, der::OID).map_err(m)?;
    if oid.body != KEY_PROTECTOR_OID {
        return Err(KeyError::Malformed(
            "protected with an algorithm other than Sun's JKS key protector".into(),
        ));
    }
    let (data, _) = der::expect(rest, der::OCTET_STRING).map_err(m)?;
    let data = data.body;
    if data.len() < 40 {
        return Err(KeyError::Malformed("protected key too short".into()));
    }
    let (salt, rest) = data.split_at(20);
    let (encrypted, check) = rest.split_at(rest.len() - 20);
    let mut plain = Secret::new(encrypted.to_vec());
    let mut digest = salt.to_vec();
    for chunk in plain.expose_mut().chunks_mut(20) {
        let mut h = Sha1::new();
        h.update(pw.expose());
        h.update(&digest);
        digest = h.finalize().to_vec();
        for (p, k) in chunk.iter_mut().zip(&digest) {
            *p ^= k;
        }
    }
    let mut h = Sha1::new();
    h.update(pw.expose());
    h.update(plain.expose());
    if h.finalize().as_slice() != check {
        return Err(KeyError::Check);
    }
    der::check_pkcs8(plain.expose()).map_err(m)?;
    Ok(plain)
}
