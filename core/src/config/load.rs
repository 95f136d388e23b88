//! Everything a node needs at start, assembled from `kms.properties` and the files it names.
//!
//! The shell supplies the bytes (a `read` callback); nothing here touches the filesystem.
use super::keystore::{EntryKind, Keystore};
use super::properties;
use super::settings::{Protocol, Settings, Warning};
use crate::backend::soft::{SoftBackend, SoftKeys};
use crate::backend::{kmip, Backend};
use crate::drbg::Drbg;
use crate::secret::Secret;
use std::fmt;

/// A loaded node configuration.
#[derive(Debug)]
pub struct NodeConfig {
    /// Typed settings.
    pub settings: Settings,
    /// The keystore.
    pub keystore: Keystore,
    /// Remarks for the operator.
    pub warnings: Vec<Warning>,
    /// The TLS server chain (leaf first) of `keybroker.server.alias`.
    pub server_chain: Vec<Vec<u8>>,
    /// The TLS server private key (PKCS#8 DER).
    pub server_key: Secret<Vec<u8>>,
    /// Absolute or config-relative path of the keystore, as resolved.
    pub keystore_path: String,
}

/// Why a node cannot start; one line naming the file, key or alias at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// Resolves `path` against the directory of the properties file.
pub fn resolve(config_dir: &str, path: &str) -> String {
    if path.starts_with('/') || config_dir.is_empty() {
        path.to_owned()
    } else {
        format!("{}/{}", config_dir.trim_end_matches('/'), path)
    }
}

/// Loads settings and keystore; `read(path)` returns a file's bytes or an error sentence.
pub fn load(
    properties_path: &str,
    properties_bytes: &[u8],
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
) -> Result<NodeConfig, LoadError> {
    let config_dir = properties_path
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or(".");
    let props = properties::parse(properties_bytes)
        .map_err(|e| LoadError(format!("{properties_path}: {e}")))?;
    let (settings, warnings) = Settings::from_properties(&props)
        .map_err(|e| LoadError(format!("{properties_path}: {e}")))?;
    let keystore_path = resolve(config_dir, &settings.keystore_file);
    let ks_bytes = read(&keystore_path)
        .map_err(|e| LoadError(format!("kms.keystore.file {keystore_path}: {e}")))?;
    let keystore = Keystore::load(&ks_bytes, &settings.keystore_password)
        .map_err(|e| LoadError(format!("{keystore_path}: {e}")))?;
    let alias = &settings.server_alias;
    let entry = keystore.get(alias).ok_or_else(|| {
        LoadError(format!(
            "{keystore_path}: keybroker.server.alias {alias}: no such entry (aliases: {})",
            keystore
                .entries
                .iter()
                .map(|e| e.alias.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let (server_chain, server_key) = match &entry.kind {
        EntryKind::PrivateKey { key_pkcs8, chain } if !chain.is_empty() => {
            (chain.clone(), key_pkcs8.clone())
        }
        _ => {
            return Err(LoadError(format!(
                "{keystore_path}: keybroker.server.alias {alias} is not a private-key entry with a certificate"
            )))
        }
    };
    Ok(NodeConfig {
        settings,
        keystore,
        warnings,
        server_chain,
        server_key,
        keystore_path,
    })
}

/// A file the shell must write: path and bytes.
pub type NewFile = (String, Vec<u8>);

/// The backend for these settings; for `soft`, opens the key file or makes one.
///
/// Returns the backend and, when a new soft-key file was made, its bytes for the shell to write.
pub fn backend(
    cfg: &NodeConfig,
    config_dir: &str,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    rng: &mut Drbg,
) -> Result<(Backend, Option<NewFile>), LoadError> {
    let s = &cfg.settings;
    match s.protocol {
        Protocol::Soft => {
            let path = resolve(config_dir, &s.soft_key_file);
            let pass = Secret::new(s.keystore_password.expose().as_bytes().to_vec());
            let names = s.served_keys();
            match read(&path) {
                Ok(bytes) => {
                    let mut keys = SoftKeys::open(&bytes, pass.expose())
                        .map_err(|e| LoadError(format!("keybroker.soft.key-file {path}: {e}")))?;
                    let mut added = false;
                    for n in &names {
                        if keys.latest(n).is_none() {
                            keys.add_version(n, rng).map_err(|e| LoadError(e.to_string()))?;
                            added = true;
                        }
                    }
                    let write = if added {
                        Some((path, keys.seal(pass.expose(), rng).map_err(|e| LoadError(e.to_string()))?))
                    } else {
                        None
                    };
                    Ok((Backend::Soft(SoftBackend::new(keys, pass)), write))
                }
                Err(_) => {
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let keys = SoftKeys::generate(&refs, rng).map_err(|e| LoadError(e.to_string()))?;
                    let file = keys.seal(pass.expose(), rng).map_err(|e| LoadError(e.to_string()))?;
                    Ok((Backend::Soft(SoftBackend::new(keys, pass)), Some((path, file))))
                }
            }
        }
        Protocol::Kmip => {
            let endpoints = kmip::parse_endpoints(&s.hsm_urls, s.hsm_port)
                .map_err(|e| LoadError(format!("kms.hsm.server.url: {e}")))?;
            let has_client_key = cfg.keystore.get(&s.client_alias).is_some_and(|e| {
                matches!(&e.kind, EntryKind::PrivateKey { chain, .. } if !chain.is_empty())
            });
            if !has_client_key {
                return Err(LoadError(format!(
                    "{}: kms.keystore.alias {}: no private-key entry to present to the HSM",
                    cfg.keystore_path, s.client_alias
                )));
            }
            let k = kmip::KmipBackend::new(kmip::KmipConfig {
                endpoints,
                keys: s.served_keys(),
                auto_create: s.hsm_key_auto_create,
                pool_size: s.hsm_pool_size,
                request_timeout: s.hsm_request_timeout,
                connect_timeout: s.hsm_connect_timeout,
                max_version: s.hsm_max_version,
            });
            Ok((Backend::Kmip(Box::new(k)), None))
        }
        Protocol::Vault => Err(LoadError(
            "kms.hsm.protocol=VAULT: the Vault backend is not built yet (issue 6); use soft for now".into(),
        )),
    }
}
