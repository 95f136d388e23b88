//! Keystores as sites have them: JKS, PKCS12 (any keytool/openssl vintage) and PEM, detected by content.
use crate::secret::Secret;
use std::fmt;

mod der;
mod jks;
mod pem;
mod pkcs12;

/// A DER-encoded X.509 certificate.
pub type CertDer = Vec<u8>;

/// One keystore entry, under its alias.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The alias as stored (keytool lower-cases; compare case-insensitively).
    pub alias: String,
    /// What the entry holds.
    pub kind: EntryKind,
}

/// What a keystore entry holds.
#[derive(Clone, Debug)]
pub enum EntryKind {
    /// A private key (PKCS#8 DER) with its certificate chain, leaf first.
    PrivateKey {
        /// The private key as unencrypted PKCS#8 DER.
        key_pkcs8: Secret<Vec<u8>>,
        /// Leaf first, then issuers, as stored.
        chain: Vec<CertDer>,
    },
    /// A trusted certificate (keytool `-import`).
    TrustedCert {
        /// The certificate.
        cert: CertDer,
    },
}

/// The container format a keystore was found to be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Java KeyStore (magic 0xFEEDFEED).
    Jks,
    /// PKCS#12 / PFX.
    Pkcs12,
    /// PEM text (keybroker extension).
    Pem,
}

/// A loaded keystore.
#[derive(Clone, Debug)]
pub struct Keystore {
    /// The format it was read from.
    pub format: Format,
    /// Every entry, in file order.
    pub entries: Vec<Entry>,
}

/// Why a keystore could not be loaded. Never carries the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeystoreError {
    /// The bytes are none of JKS, PKCS12 or PEM.
    UnknownFormat,
    /// The store's integrity check failed: almost always a wrong `kms.keystore.password`.
    WrongPassword,
    /// The file is damaged or uses something unsupported; the text says what and where.
    Malformed(String),
}

impl fmt::Display for KeystoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeystoreError::UnknownFormat => f.write_str("not a JKS, PKCS12 or PEM keystore"),
            KeystoreError::WrongPassword => f.write_str(
                "keystore password is wrong (integrity check failed); check kms.keystore.password",
            ),
            KeystoreError::Malformed(why) => write!(f, "keystore is malformed: {why}"),
        }
    }
}

impl std::error::Error for KeystoreError {}

impl Keystore {
    /// Loads a keystore from its bytes, detecting the format by content.
    ///
    /// JKS (magic 0xFEEDFEED), PKCS12 (DER SEQUENCE starting with version 3) or PEM text. The
    /// password opens the store and, for JKS, every private key (Connected-KMS's rule: key
    /// password = store password). PEM files carry no password. Aliases must be unique
    /// case-insensitively.
    pub fn load(bytes: &[u8], password: &Secret<String>) -> Result<Keystore, KeystoreError> {
        let (format, entries) = if bytes.starts_with(&jks::MAGIC) {
            (Format::Jks, jks::load(bytes, password)?)
        } else if bytes.starts_with(&jks::JCEKS_MAGIC) {
            return Err(KeystoreError::Malformed(
                "JCEKS keystores are not supported; convert with keytool -importkeystore \
                 -deststoretype PKCS12"
                    .into(),
            ));
        } else if pkcs12::looks_like(bytes) {
            (Format::Pkcs12, pkcs12::load(bytes, password)?)
        } else if pem::looks_like(bytes) {
            (Format::Pem, pem::load(bytes)?)
        } else {
            return Err(KeystoreError::UnknownFormat);
        };
        for (i, e) in entries.iter().enumerate() {
            if entries[..i]
                .iter()
                .any(|o| o.alias.eq_ignore_ascii_case(&e.alias))
            {
                return Err(KeystoreError::Malformed(format!(
                    "two entries are named {:?} (aliases are case-insensitive)",
                    e.alias
                )));
            }
        }
        Ok(Keystore { format, entries })
    }

    /// The entry with this alias, compared case-insensitively.
    pub fn get(&self, alias: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.alias.eq_ignore_ascii_case(alias))
    }
}
