//! Everything a node needs at start, assembled from `kms.properties` and the files it names.
//!
//! The shell supplies the bytes (a `read` callback); nothing here touches the filesystem.
use super::endpoint::{self, HsmLinks, UrlKind};
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
    refuse_ambiguous(&keystore, &settings)
        .map_err(|e| LoadError(format!("{keystore_path}: {e}")))?;
    Ok(NodeConfig {
        settings,
        keystore,
        warnings,
        server_chain,
        server_key,
        keystore_path,
    })
}

/// What an alias stands for when deciding whether a keystore is ambiguous.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// One of the server's own entries (TLS server, HSM client, CA).
    Server,
    /// A client alias with this role.
    Client(crate::authz::Role),
}

impl Standing {
    fn name(self) -> &'static str {
        match self {
            Standing::Server => "the server's own",
            Standing::Client(r) => r.name(),
        }
    }
}

/// Refuses a keystore in which one certificate sits under aliases of different roles, or where
/// the server's own certificate also sits under a client alias: which alias a client gets
/// would depend on entry order, and the server's certificate must never authorize a client.
pub fn refuse_ambiguous(keystore: &Keystore, settings: &Settings) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let mut seen: Vec<([u8; 32], &str, Standing)> = Vec::new();
    for e in &keystore.entries {
        let der = match &e.kind {
            EntryKind::TrustedCert { cert } => cert,
            EntryKind::PrivateKey { chain, .. } => match chain.first() {
                Some(c) => c,
                None => continue,
            },
        };
        let is_server = e.alias.eq_ignore_ascii_case(&settings.server_alias)
            || e.alias.eq_ignore_ascii_case(&settings.client_alias)
            || settings
                .roles
                .server_aliases
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&e.alias));
        let standing = if is_server {
            Standing::Server
        } else {
            match settings.roles.role_of(&e.alias) {
                Some(r) => Standing::Client(r),
                None => continue,
            }
        };
        let fp: [u8; 32] = Sha256::digest(der).into();
        for (other_fp, other, other_standing) in &seen {
            let clash = match (standing, *other_standing) {
                (Standing::Client(a), Standing::Client(b)) => a != b,
                (Standing::Server, Standing::Server) => false,
                _ => true,
            };
            if *other_fp == fp && clash {
                return Err(format!(
                    "one certificate is under alias {other} ({}) and alias {} ({}); \
                     a certificate may have only one role: delete one of the two entries",
                    other_standing.name(),
                    e.alias,
                    standing.name()
                ));
            }
        }
        seen.push((fp, &e.alias, standing));
    }
    Ok(())
}

/// A file the shell must write: path and bytes.
pub type NewFile = (String, Vec<u8>);

/// The backend for these settings; for `soft`, opens the key file or makes one.
///
/// Returns the backend and, when a new soft-key file was made, its bytes for the shell to write.
/// `env(name)` reads an environment variable (the Vault token: `VAULT_TOKEN`, `BAO_TOKEN`).
pub fn backend(
    cfg: &NodeConfig,
    config_dir: &str,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    env: &dyn Fn(&str) -> Option<String>,
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
                            keys.add_version(n, rng)
                                .map_err(|e| LoadError(e.to_string()))?;
                            added = true;
                        }
                    }
                    let write = if added {
                        Some((
                            path,
                            keys.seal(pass.expose(), rng)
                                .map_err(|e| LoadError(e.to_string()))?,
                        ))
                    } else {
                        None
                    };
                    Ok((Backend::Soft(Box::new(SoftBackend::new(keys, pass))), write))
                }
                Err(_) => {
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let keys =
                        SoftKeys::generate(&refs, rng).map_err(|e| LoadError(e.to_string()))?;
                    let file = keys
                        .seal(pass.expose(), rng)
                        .map_err(|e| LoadError(e.to_string()))?;
                    Ok((
                        Backend::Soft(Box::new(SoftBackend::new(keys, pass))),
                        Some((path, file)),
                    ))
                }
            }
        }
        Protocol::Kmip => {
            let endpoints = hsm_links(s)?.endpoints;
            let has_client_key = cfg.keystore.get(&s.client_alias).is_some_and(
                |e| matches!(&e.kind, EntryKind::PrivateKey { chain, .. } if !chain.is_empty()),
            );
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
                credential: kmip_credential(s, config_dir, read, env)?,
            });
            Ok((Backend::Kmip(Box::new(k)), None))
        }
        Protocol::Vault => vault_backend(s, config_dir, read, env).map(|b| (b, None)),
    }
}

/// The KMIP Credential for these settings: the username, and the password from where
/// `keybroker.hsm.kmip.password*` says (a file loses its trailing line break).
fn kmip_credential(
    s: &super::settings::Settings,
    config_dir: &str,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<crate::kmip::messages::Credential>, LoadError> {
    use super::settings::PasswordSource;
    let Some(username) = s.hsm_kmip_username.clone() else {
        return Ok(None);
    };
    let password = match &s.hsm_kmip_password {
        PasswordSource::None => None,
        PasswordSource::Clear(p) => Some(p.clone()),
        PasswordSource::File(f) => {
            let path = resolve(config_dir, f);
            let bytes =
                Secret::new(read(&path).map_err(|e| {
                    LoadError(format!("keybroker.hsm.kmip.password-file {path}: {e}"))
                })?);
            let text = std::str::from_utf8(bytes.expose()).map_err(|_| {
                LoadError(format!(
                    "keybroker.hsm.kmip.password-file {path}: not UTF-8"
                ))
            })?;
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                return Err(LoadError(format!(
                    "keybroker.hsm.kmip.password-file {path}: the file is empty"
                )));
            }
            Some(Secret::new(text.to_owned()))
        }
        PasswordSource::Env(name) => {
            let value = Secret::new(env(name).unwrap_or_default());
            if value.expose().is_empty() {
                return Err(LoadError(format!(
                    "keybroker.hsm.kmip.password-env: the environment variable {name} is not set or empty"
                )));
            }
            Some(value)
        }
    };
    Ok(Some(crate::kmip::messages::Credential {
        username,
        password,
    }))
}

/// The HSM or Vault links `kms.hsm.server.url` (and `kms.hsm.server.port`) name: what the
/// backend dials and what `check-config --probe` dials.
pub fn hsm_links(s: &super::settings::Settings) -> Result<HsmLinks, LoadError> {
    let kind = match s.protocol {
        Protocol::Vault => UrlKind::Vault,
        _ => UrlKind::Kmip,
    };
    if s.hsm_urls.is_empty() && s.protocol == Protocol::Vault {
        return Err(LoadError(
            "kms.hsm.server.url: is required for kms.hsm.protocol=VAULT".into(),
        ));
    }
    endpoint::hsm_links(kind, &s.hsm_urls, s.hsm_port)
        .map_err(|e| LoadError(format!("kms.hsm.server.url: {e}")))
}

fn vault_backend(
    s: &super::settings::Settings,
    config_dir: &str,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Backend, LoadError> {
    use super::settings::VaultAuth;
    use crate::backend::vault::{AzureConfig, VaultAuthConfig, VaultBackend, VaultConfig};
    use crate::backend::LinkSecurity;
    let HsmLinks { tls, endpoints } = hsm_links(s)?;
    let auth = match s.vault_auth {
        VaultAuth::Token => {
            let token = match &s.vault_token_file {
                Some(f) => {
                    let path = resolve(config_dir, f);
                    let bytes = Secret::new(read(&path).map_err(|e| LoadError(format!("keybroker.vault.token-file {path}: {e}")))?);
                    let t = std::str::from_utf8(bytes.expose()).map_err(|_| LoadError(format!("keybroker.vault.token-file {path}: not UTF-8")))?.trim().to_owned();
                    if t.is_empty() {
                        return Err(LoadError(format!("keybroker.vault.token-file {path}: the file is empty")));
                    }
                    t
                }
                None => env("VAULT_TOKEN").or_else(|| env("BAO_TOKEN")).filter(|t| !t.trim().is_empty()).map(|t| t.trim().to_owned()).ok_or_else(|| LoadError("kms.hsm.vault.auth=token: no token; set VAULT_TOKEN (or BAO_TOKEN) or keybroker.vault.token-file".into()))?,
            };
            VaultAuthConfig::Token(Secret::new(token))
        }
        VaultAuth::Azure => {
            let role = s.azure_role.clone().ok_or_else(|| {
                LoadError(
                    "kms.hsm.vault.auth.azure.role: is required when kms.hsm.vault.auth=azure"
                        .into(),
                )
            })?;
            let imds = endpoint::parse(UrlKind::Imds, &s.azure_imds_url, None)
                .map_err(|e| LoadError(format!("keybroker.vault.azure.imds-url: {e}")))?;
            let path = if s.azure_path.starts_with('/') {
                s.azure_path.clone()
            } else {
                format!("/{}", s.azure_path)
            };
            VaultAuthConfig::Azure(AzureConfig {
                role,
                path,
                resource: s.azure_resource.clone(),
                imds_host: imds.endpoint.host,
                imds_port: imds.endpoint.port,
            })
        }
    };
    Ok(Backend::Vault(Box::new(VaultBackend::new(VaultConfig {
        endpoints,
        security: if tls {
            LinkSecurity::VaultTls
        } else {
            LinkSecurity::Plain
        },
        namespace: s.vault_namespace.clone().filter(|n| !n.is_empty()),
        mount: s.vault_mount.trim_matches('/').to_owned(),
        keys: s.served_keys(),
        auto_create: s.vault_key_auto_create,
        renew_before: s.vault_renew_before,
        request_timeout: s.vault_timeout,
        connect_timeout: s.vault_timeout,
        max_links: s.vault_max_links,
        auth,
        key_refresh: s.vault_key_refresh,
    }))))
}
