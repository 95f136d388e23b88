//! The `kb1:` ciphertext token clients hold: versioned, self-describing, bound to its context.
//!
//! Layout of the bytes behind `kb1:` (base64url, no padding):
//!
//! ```text
//! u8  format version (1)
//! u8  backend (1 soft, 2 kmip, 3 vault)
//! u8  key-name length, then the UTF-8 key name
//! u32 key version, big-endian
//! u16 backend-reference length, then the reference (opaque to all but its backend)
//! ```
//!
//! The envelope itself carries no MAC: every backend encrypts with an AEAD whose associated
//! data is [`Envelope::aad`] — the header above plus SHA-256 of the context — so changing any
//! byte of the token, or presenting another context, fails authentication (400), never
//! yields other plaintext.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;

/// The textual prefix of every token.
pub const PREFIX: &str = "kb1:";
const FORMAT_VERSION: u8 = 1;
/// Longest backend reference accepted (bytes).
pub const MAX_REFERENCE: usize = 16 * 1024;

/// Which backend produced a ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// Software keys in a local sealed file.
    Soft,
    /// A KMIP HSM.
    Kmip,
    /// Vault / OpenBao transit.
    Vault,
}

impl BackendKind {
    fn code(self) -> u8 {
        match self {
            BackendKind::Soft => 1,
            BackendKind::Kmip => 2,
            BackendKind::Vault => 3,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(BackendKind::Soft),
            2 => Some(BackendKind::Kmip),
            3 => Some(BackendKind::Vault),
            _ => None,
        }
    }
    /// The name used in the API (`"soft"`, `"kmip"`, `"vault"`).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Soft => "soft",
            BackendKind::Kmip => "kmip",
            BackendKind::Vault => "vault",
        }
    }
}

/// A decoded `kb1:` token.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Backend that made it.
    pub backend: BackendKind,
    /// Backend key name.
    pub key_name: String,
    /// Key version used.
    pub key_version: u32,
    /// Backend reference: IV, tag and ciphertext, or Vault's `vault:vN:` string.
    pub reference: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("backend", &self.backend)
            .field("key_name", &self.key_name)
            .field("key_version", &self.key_version)
            .field("reference_len", &self.reference.len())
            .finish()
    }
}

/// Why a token is not a valid `kb1:` ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeError(pub &'static str);

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ciphertext is not a valid kb1 token: {}", self.0)
    }
}

impl std::error::Error for EnvelopeError {}

impl Envelope {
    /// The header bytes (everything before the reference).
    fn header(&self) -> Vec<u8> {
        let name = self.key_name.as_bytes();
        let mut h = Vec::with_capacity(8 + name.len());
        h.push(FORMAT_VERSION);
        h.push(self.backend.code());
        h.push(name.len() as u8);
        h.extend_from_slice(name);
        h.extend_from_slice(&self.key_version.to_be_bytes());
        h
    }

    /// Associated data the backend authenticates: `kb1` ‖ header ‖ SHA-256(context).
    pub fn aad(backend: BackendKind, key_name: &str, key_version: u32, context: &[u8]) -> Vec<u8> {
        let probe = Envelope {
            backend,
            key_name: key_name.to_owned(),
            key_version,
            reference: Vec::new(),
        };
        let mut aad = b"kb1".to_vec();
        aad.extend_from_slice(&probe.header());
        aad.extend_from_slice(&Sha256::digest(context));
        aad
    }

    /// The token as clients see it: `kb1:` + base64url.
    pub fn encode(&self) -> String {
        let mut bytes = self.header();
        bytes.extend_from_slice(&(self.reference.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&self.reference);
        let mut s = String::with_capacity(PREFIX.len() + bytes.len() * 4 / 3 + 4);
        s.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&bytes, &mut s);
        s
    }

    /// Parses a token; any malformation is an error, never a panic.
    pub fn decode(token: &str) -> Result<Envelope, EnvelopeError> {
        let b64 = token
            .strip_prefix(PREFIX)
            .ok_or(EnvelopeError("it does not start with kb1:"))?;
        if b64.len() > (MAX_REFERENCE + 300) * 4 / 3 + 4 {
            return Err(EnvelopeError("it is too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| EnvelopeError("it is not base64url"))?;
        let mut r = Reader(&bytes);
        if r.u8()? != FORMAT_VERSION {
            return Err(EnvelopeError("unknown format version"));
        }
        let backend = BackendKind::from_code(r.u8()?).ok_or(EnvelopeError("unknown backend"))?;
        let name_len = r.u8()? as usize;
        let key_name = std::str::from_utf8(r.take(name_len)?)
            .map_err(|_| EnvelopeError("key name is not UTF-8"))?
            .to_owned();
        if key_name.is_empty() {
            return Err(EnvelopeError("empty key name"));
        }
        let v = r.take(4)?;
        let key_version = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        let l = r.take(2)?;
        let ref_len = u16::from_be_bytes([l[0], l[1]]) as usize;
        if ref_len > MAX_REFERENCE {
            return Err(EnvelopeError("backend reference too long"));
        }
        let reference = r.take(ref_len)?.to_vec();
        if !r.0.is_empty() {
            return Err(EnvelopeError("trailing bytes"));
        }
        Ok(Envelope {
            backend,
            key_name,
            key_version,
            reference,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if self.0.len() < n {
            return Err(EnvelopeError("it is truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.take(1)?[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Envelope {
        Envelope {
            backend: BackendKind::Soft,
            key_name: "keybroker-master".into(),
            key_version: 3,
            reference: (0u8..40).collect(),
        }
    }

    #[test]
    fn round_trips() {
        let e = sample();
        let t = e.encode();
        assert!(t.starts_with("kb1:"));
        assert_eq!(Envelope::decode(&t).unwrap(), e);
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "kb1:", "kb2:AAAA", "kb1:!!!!", "kb1:AQEA"] {
            assert!(Envelope::decode(bad).is_err(), "{bad}");
        }
        let mut t = sample().encode();
        t.push('A');
        assert!(Envelope::decode(&t).is_err());
    }

    #[test]
    fn aad_binds_header_and_context() {
        let a = Envelope::aad(BackendKind::Soft, "k", 1, b"ctx");
        assert_ne!(a, Envelope::aad(BackendKind::Soft, "k", 2, b"ctx"));
        assert_ne!(a, Envelope::aad(BackendKind::Soft, "k", 1, b"ctx2"));
        assert_ne!(a, Envelope::aad(BackendKind::Kmip, "k", 1, b"ctx"));
        assert_ne!(a, Envelope::aad(BackendKind::Soft, "j", 1, b"ctx"));
    }

    #[test]
    fn debug_hides_reference() {
        assert!(!format!("{:?}", sample()).contains("[0, 1"));
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,200}") {
            let _ = Envelope::decode(&s);
        }

        #[test]
        fn encode_decode(name in "[a-z0-9-]{1,40}", v in any::<u32>(), r in proptest::collection::vec(any::<u8>(), 0..300)) {
            let e = Envelope { backend: BackendKind::Vault, key_name: name, key_version: v, reference: r };
            prop_assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        }
    }
}
