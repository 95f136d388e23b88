//! Who a client is and what it may do: client-certificate alias → role → allowed operations.
//!
//! The keystore's trusted-certificate entries are the identities. A client is recognised when
//! the SHA-256 fingerprint of its leaf certificate equals a trusted entry's (pinning). The
//! alias maps to a role by prefix, case-insensitively. The server's own aliases never
//! authorize a client, and certificates outside their validity are refused.
use crate::config::keystore::{EntryKind, Keystore};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// A client role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The application backend (cmxBackend*).
    Backend,
    /// End-user devices (cmxDevice*).
    Device,
    /// Key administrators (`keybroker.role.admin.prefixes`): rotate and describe keys only.
    Admin,
}

impl Role {
    /// Lower-case name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Role::Backend => "backend",
            Role::Device => "device",
            Role::Admin => "admin",
        }
    }
}

/// An API operation subject to authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// POST …/generate
    Generate,
    /// POST …/encrypt
    Encrypt,
    /// POST …/decrypt
    Decrypt,
    /// POST …/rewrap
    Rewrap,
    /// POST …/rotate
    Rotate,
    /// GET /v1/keys/{key}
    Describe,
}

impl Operation {
    /// Lower-case name as in the URL path.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Generate => "generate",
            Operation::Encrypt => "encrypt",
            Operation::Decrypt => "decrypt",
            Operation::Rewrap => "rewrap",
            Operation::Rotate => "rotate",
            Operation::Describe => "describe",
        }
    }
}

/// Whether `role` may perform `op` (the roles column of docs/api.md's table).
///
/// With an admin role configured (`admin_configured`), only admins rotate keys; admins may
/// rotate and describe, never touch data.
pub fn allowed(role: Role, op: Operation, admin_configured: bool) -> bool {
    match (role, op) {
        (Role::Admin, Operation::Rotate | Operation::Describe) => true,
        (Role::Admin, _) => false,
        (_, Operation::Generate | Operation::Encrypt | Operation::Decrypt) => true,
        (Role::Backend, Operation::Rotate) => !admin_configured,
        (Role::Backend, Operation::Rewrap | Operation::Describe) => true,
        (Role::Device, _) => false,
    }
}

/// Alias-prefix → role rules and the aliases that are the server's own.
#[derive(Clone, Debug)]
pub struct RoleRules {
    /// Lower-case prefixes, each with its role; the longest matching prefix wins.
    pub prefixes: Vec<(String, Role)>,
    /// Aliases (any case) that never identify a client.
    pub server_aliases: Vec<String>,
}

impl Default for RoleRules {
    fn default() -> Self {
        RoleRules {
            prefixes: vec![
                ("cmxbackend".into(), Role::Backend),
                ("cmxdevice".into(), Role::Device),
            ],
            server_aliases: vec![
                "kmsserver".into(),
                "kmsclient".into(),
                "kmipsigningca".into(),
            ],
        }
    }
}

impl RoleRules {
    /// Whether any alias prefix gives the admin role (then only admins rotate).
    pub fn admin_configured(&self) -> bool {
        self.prefixes.iter().any(|(_, r)| *r == Role::Admin)
    }

    /// The role an alias has, if any.
    pub fn role_of(&self, alias: &str) -> Option<Role> {
        let a = alias.to_ascii_lowercase();
        if self
            .server_aliases
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&a))
        {
            return None;
        }
        self.prefixes
            .iter()
            .filter(|(p, _)| a.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, r)| *r)
    }
}

/// A recognised client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// Keystore alias its certificate is pinned under.
    pub alias: String,
    /// Its role.
    pub role: Role,
    /// Certificate validity start (Unix seconds).
    pub not_before: i64,
    /// Certificate validity end (Unix seconds).
    pub not_after: i64,
}

/// Why a client is refused (403).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The certificate is not in the keystore.
    UnknownCertificate,
    /// The alias is one of the server's own.
    ServerIdentity(String),
    /// The alias matches no role prefix.
    NoRole(String),
    /// Outside its validity period.
    Expired(String),
    /// Not yet valid.
    NotYetValid(String),
    /// The role may not do this.
    Forbidden {
        /// Client alias.
        alias: String,
        /// Its role.
        role: Role,
        /// What it asked for.
        op: Operation,
    },
    /// No client certificate was presented.
    NoCertificate,
    /// The certificate could not be parsed.
    BadCertificate,
}

impl Denied {
    /// snake_case code for the API error body.
    pub fn code(&self) -> &'static str {
        match self {
            Denied::UnknownCertificate => "unknown_client",
            Denied::ServerIdentity(_) => "server_identity",
            Denied::NoRole(_) => "no_role",
            Denied::Expired(_) => "certificate_expired",
            Denied::NotYetValid(_) => "certificate_not_yet_valid",
            Denied::Forbidden { .. } => "forbidden",
            Denied::NoCertificate => "no_client_certificate",
            Denied::BadCertificate => "bad_client_certificate",
        }
    }
    /// HTTP status: 401 without a usable certificate, else 403.
    pub fn status(&self) -> u16 {
        match self {
            Denied::NoCertificate | Denied::BadCertificate => 401,
            _ => 403,
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::UnknownCertificate => {
                f.write_str("client certificate is not a trusted entry of the keystore")
            }
            Denied::ServerIdentity(a) => {
                write!(
                    f,
                    "alias {a} is the server's own and cannot be used by clients"
                )
            }
            Denied::NoRole(a) => write!(f, "alias {a} matches no client role"),
            Denied::Expired(a) => write!(f, "client certificate {a} has expired"),
            Denied::NotYetValid(a) => write!(f, "client certificate {a} is not yet valid"),
            Denied::Forbidden { alias, role, op } => write!(
                f,
                "alias {alias} (role {}) may not {}",
                role.name(),
                op.name()
            ),
            Denied::NoCertificate => f.write_str("no client certificate presented"),
            Denied::BadCertificate => f.write_str("client certificate cannot be parsed"),
        }
    }
}

/// Facts read from one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// SHA-256 of the DER.
    pub fingerprint: [u8; 32],
    /// Subject DN, RFC 4514 style.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Validity start (Unix seconds).
    pub not_before: i64,
    /// Validity end (Unix seconds).
    pub not_after: i64,
    /// Whether basicConstraints says CA.
    pub is_ca: bool,
    /// The SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn parse(der: &[u8]) -> Option<CertInfo> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let v = cert.validity();
        Some(CertInfo {
            fingerprint: Sha256::digest(der).into(),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: v.not_before.timestamp(),
            not_after: v.not_after.timestamp(),
            is_ca: cert.is_ca(),
            spki: cert.public_key().raw.to_vec(),
        })
    }
    /// Fingerprint as colon-separated upper-case hex, as keytool prints it.
    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// What the keystore says about each trusted certificate, by fingerprint.
#[derive(Clone, Debug, Default)]
pub struct Identities {
    by_fingerprint: BTreeMap<[u8; 32], (String, Option<Role>)>,
}

impl Identities {
    /// Builds the identity table from a keystore's trusted-certificate entries.
    pub fn from_keystore(ks: &Keystore, rules: &RoleRules) -> Identities {
        let mut by_fingerprint = BTreeMap::new();
        for e in &ks.entries {
            if let EntryKind::TrustedCert { cert } = &e.kind {
                let fp: [u8; 32] = Sha256::digest(cert).into();
                by_fingerprint.insert(fp, (e.alias.clone(), rules.role_of(&e.alias)));
            }
        }
        // Server-own private-key entries: remember their leaves so they are named when refused.
        for e in &ks.entries {
            if let EntryKind::PrivateKey { chain, .. } = &e.kind {
                if let Some(leaf) = chain.first() {
                    let fp: [u8; 32] = Sha256::digest(leaf).into();
                    by_fingerprint.entry(fp).or_insert((e.alias.clone(), None));
                }
            }
        }
        Identities { by_fingerprint }
    }

    /// Number of known certificates.
    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    /// Whether no certificate is known.
    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// Recognises the client presenting `leaf` (DER) at wall time `unix_now`.
    pub fn recognise(
        &self,
        leaf: Option<&[u8]>,
        rules: &RoleRules,
        unix_now: i64,
    ) -> Result<Client, Denied> {
        let leaf = leaf.ok_or(Denied::NoCertificate)?;
        let info = CertInfo::parse(leaf).ok_or(Denied::BadCertificate)?;
        let (alias, role) = self
            .by_fingerprint
            .get(&info.fingerprint)
            .ok_or(Denied::UnknownCertificate)?;
        if rules
            .server_aliases
            .iter()
            .any(|s| s.eq_ignore_ascii_case(alias))
        {
            return Err(Denied::ServerIdentity(alias.clone()));
        }
        let role = role.ok_or_else(|| Denied::NoRole(alias.clone()))?;
        let client = Client {
            alias: alias.clone(),
            role,
            not_before: info.not_before,
            not_after: info.not_after,
        };
        check_validity(&client, unix_now)?;
        Ok(client)
    }
}

/// Refuses a client whose certificate is outside its validity at `unix_now`.
pub fn check_validity(c: &Client, unix_now: i64) -> Result<(), Denied> {
    if unix_now < c.not_before {
        return Err(Denied::NotYetValid(c.alias.clone()));
    }
    if unix_now > c.not_after {
        return Err(Denied::Expired(c.alias.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_prefix_case_insensitive_and_server_aliases_refused() {
        let r = RoleRules::default();
        assert_eq!(r.role_of("cmxBackend"), Some(Role::Backend));
        assert_eq!(r.role_of("cmxdevice20190512"), Some(Role::Device));
        assert_eq!(r.role_of("CMXDEVICE"), Some(Role::Device));
        assert_eq!(r.role_of("kmsServer"), None);
        assert_eq!(r.role_of("kmipsigningca"), None);
        assert_eq!(r.role_of("stranger"), None);
    }

    #[test]
    fn permission_table() {
        use Operation::*;
        let data = [Generate, Encrypt, Decrypt];
        for admin in [false, true] {
            for op in data {
                assert!(allowed(Role::Device, op, admin) && allowed(Role::Backend, op, admin));
                assert!(!allowed(Role::Admin, op, admin), "admins never touch data");
            }
            for op in [Rewrap, Rotate, Describe] {
                assert!(!allowed(Role::Device, op, admin));
            }
            assert!(
                allowed(Role::Backend, Rewrap, admin) && allowed(Role::Backend, Describe, admin)
            );
            assert!(!allowed(Role::Admin, Rewrap, admin));
            assert!(allowed(Role::Admin, Rotate, admin) && allowed(Role::Admin, Describe, admin));
        }
        // Rotation moves to the admins once an admin role exists.
        assert!(allowed(Role::Backend, Rotate, false));
        assert!(!allowed(Role::Backend, Rotate, true));
    }

    #[test]
    fn admin_prefix_is_a_role_and_switches_rotation_to_admins() {
        let mut r = RoleRules::default();
        assert!(!r.admin_configured());
        r.prefixes.push(("kmsadmin".into(), Role::Admin));
        assert!(r.admin_configured());
        assert_eq!(r.role_of("kmsAdmin01"), Some(Role::Admin));
        assert_eq!(r.role_of("cmxBackend"), Some(Role::Backend));
    }

    #[test]
    fn validity_window() {
        let c = Client {
            alias: "cmxdevice".into(),
            role: Role::Device,
            not_before: 100,
            not_after: 200,
        };
        assert_eq!(
            check_validity(&c, 99),
            Err(Denied::NotYetValid("cmxdevice".into()))
        );
        assert_eq!(check_validity(&c, 150), Ok(()));
        assert_eq!(
            check_validity(&c, 201),
            Err(Denied::Expired("cmxdevice".into()))
        );
    }
}
