//! PEM keystores (keybroker extension), in the shape `openssl pkcs12 -nodes` prints them, or
//! with `# alias: NAME` comment lines. See docs/keystores.md.
use super::der;
use super::pkcs12::complete_chain;
use super::{Entry, EntryKind, KeystoreError};
use crate::secret::Secret;
use base64::Engine;

fn malformed(what: impl Into<String>) -> KeystoreError {
    KeystoreError::Malformed(what.into())
}

/// True when the text holds a PEM block.
pub(crate) fn looks_like(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// What a PEM block holds.
enum Body {
    Cert(Vec<u8>),
    Key(Secret<Vec<u8>>),
}

/// A decoded block with the alias and local key id that preceded it.
struct Block {
    alias: Option<String>,
    /// Named by `# alias:` or carrying keytool's trusted-key-usage attribute: always an entry.
    explicit: bool,
    key_id: Option<String>,
    body: Body,
    line: usize,
}

/// Loads a PEM keystore: keys join certificates by localKeyID, else by alias.
pub(crate) fn load(bytes: &[u8]) -> Result<Vec<Entry>, KeystoreError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        malformed(format!(
            "PEM keystore is not UTF-8 text (byte {})",
            e.valid_up_to()
        ))
    })?;
    let mut blocks: Vec<Block> = Vec::new();
    let mut comment_alias: Option<String> = None;
    let mut bag_alias: Option<String> = None;
    let mut bag_key_id: Option<String> = None;
    let mut bag_trusted = false;
    let mut in_bag = false;
    let mut lines = text.lines().enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix('#').map(str::trim).and_then(|l| {
            l.strip_prefix("alias:")
                .or_else(|| l.strip_prefix("alias :"))
        }) {
            comment_alias = Some(name.trim().to_string());
            continue;
        }
        if line.starts_with("Key Attributes") {
            // The PKCS#8 key's own attributes, after the bag's: nothing keybroker needs.
            continue;
        }
        if line.starts_with("Bag Attributes") {
            in_bag = true;
            bag_alias = None;
            bag_key_id = None;
            bag_trusted = false;
            continue;
        }
        if in_bag && !line.starts_with("-----") {
            if let Some(v) = line.strip_prefix("friendlyName:") {
                bag_alias = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("localKeyID:") {
                bag_key_id = Some(v.trim().to_ascii_uppercase());
            } else if line.starts_with("2.16.840.1.113894.746875.1.1") {
                bag_trusted = true;
            }
            continue;
        }
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let label = label.to_string();
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        let mut closed = false;
        for (_, l) in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            if l.contains(':') {
                // RFC 1421 headers (Proc-Type: 4,ENCRYPTED ...): an encrypted legacy key.
                return Err(malformed(format!(
                    "line {}: encrypted PEM key; keybroker reads unencrypted keys only \
                     (openssl pkcs12 -nodes, or openssl pkey -in KEY -out KEY.pem)",
                    n + 1
                )));
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(malformed(format!(
                "line {}: {label} block has no END line",
                n + 1
            )));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| malformed(format!("line {}: bad base64 in {label} block", n + 1)))?;
        let data = Secret::new(data);
        let body = match label.as_str() {
            "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => {
                // A TRUSTED CERTIFICATE has openssl's trust settings after the certificate.
                let (cert, _) = der::expect(data.expose(), der::SEQUENCE)
                    .map_err(|e| malformed(format!("line {}: {e}", n + 1)))?;
                Body::Cert(cert.full.to_vec())
            }
            "PRIVATE KEY" => {
                der::check_pkcs8(data.expose())
                    .map_err(|e| malformed(format!("line {}: {e}", n + 1)))?;
                Body::Key(data)
            }
            "RSA PRIVATE KEY" => Body::Key(Secret::new(
                der::pkcs1_to_pkcs8(data.expose())
                    .map_err(|e| malformed(format!("line {}: {e}", n + 1)))?,
            )),
            "EC PRIVATE KEY" => Body::Key(Secret::new(
                der::sec1_to_pkcs8(data.expose())
                    .map_err(|e| malformed(format!("line {}: {e}", n + 1)))?,
            )),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(malformed(format!(
                    "line {}: encrypted PEM key; keybroker reads unencrypted keys only \
                     (openssl pkcs12 -nodes, or openssl pkey -in KEY -out KEY.pem)",
                    n + 1
                )))
            }
            // Parameters and the like are not keystore material.
            _ => {
                in_bag = false;
                continue;
            }
        };
        blocks.push(Block {
            alias: if in_bag {
                bag_alias.take()
            } else {
                comment_alias.clone()
            },
            explicit: if in_bag {
                bag_trusted
            } else {
                comment_alias.is_some()
            },
            key_id: if in_bag { bag_key_id.take() } else { None },
            body,
            line: n + 1,
        });
        in_bag = false;
    }
    link(blocks)
}

/// Groups blocks into entries.
fn link(blocks: Vec<Block>) -> Result<Vec<Entry>, KeystoreError> {
    let certs: Vec<(usize, &Block, &Vec<u8>)> = blocks
        .iter()
        .enumerate()
        .filter_map(|(i, b)| match &b.body {
            Body::Cert(c) => Some((i, b, c)),
            Body::Key(_) => None,
        })
        .collect();
    let pool: Vec<(Vec<u8>, bool)> = certs
        .iter()
        .map(|(_, b, c)| ((*c).clone(), b.explicit))
        .collect();
    let mut used = vec![false; blocks.len()];
    let mut entries = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let Body::Key(key) = &b.body else { continue };
        // The key's own certificates: same localKeyID, else same alias, in file order.
        let mine: Vec<&(usize, &Block, &Vec<u8>)> = match &b.key_id {
            Some(id) => certs
                .iter()
                .filter(|(_, c, _)| c.key_id.as_ref() == Some(id))
                .collect(),
            None => certs
                .iter()
                .filter(|(_, c, _)| b.alias.is_some() && c.alias == b.alias && c.key_id.is_none())
                .collect(),
        };
        let Some(leaf) = mine.first() else {
            return Err(malformed(format!(
                "line {}: private key {} has no certificate with its localKeyID or alias",
                b.line,
                b.alias.as_deref().unwrap_or("(no alias)")
            )));
        };
        let alias = b
            .alias
            .clone()
            .or_else(|| leaf.1.alias.clone())
            .ok_or_else(|| malformed(format!("line {}: private key without an alias", b.line)))?;
        used[i] = true;
        let mut chain: Vec<Vec<u8>> = Vec::new();
        for (j, _, c) in &mine {
            used[*j] = true;
            chain.push((*c).clone());
        }
        // Complete the chain with unnamed CA certificates.
        let rest = complete_chain(chain.last().expect("non-empty").clone(), &pool);
        for c in rest.into_iter().skip(1) {
            if !chain.contains(&c) {
                chain.push(c);
            }
        }
        // Copies of chain certificates are chain material unless explicitly trusted.
        for (j, b, c) in &certs {
            if !b.explicit && chain.contains(c) {
                used[*j] = true;
            }
        }
        entries.push(Entry {
            alias,
            kind: EntryKind::PrivateKey {
                key_pkcs8: key.clone(),
                chain,
            },
        });
    }
    for (j, b, c) in &certs {
        if used[*j] {
            continue;
        }
        // Named certificates that belong to no key are trusted entries; unnamed ones are
        // only chain material.
        if let Some(alias) = &b.alias {
            entries.push(Entry {
                alias: alias.clone(),
                kind: EntryKind::TrustedCert { cert: (*c).clone() },
            });
        }
    }
    Ok(entries)
}
