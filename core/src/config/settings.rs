//! Typed settings built from `kms.properties`: every Connected-KMS key with its default, plus
//! `keybroker.*`.
use super::properties::Property;
use crate::authz::{Role, RoleRules};
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Where master keys live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// KMIP HSM (`kmip1`, Connected-KMS's default).
    Kmip,
    /// Vault / OpenBao transit (`VAULT`).
    Vault,
    /// Local sealed file (`soft`; dev and tests).
    Soft,
}

/// Distributed-cache mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheType {
    /// No caching.
    None,
    /// In-process.
    Local,
    /// Redis / Valkey.
    Distributed,
}

/// When the audit log is flushed to disk (`keybroker.audit.fsync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditFsync {
    /// Never: the OS writes it back when it likes.
    Never,
    /// At most one second after a line is written.
    Interval,
    /// After every line, before the next one is written.
    Always,
}

/// The least severe log level written (`keybroker.log.level`), most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error = 0,
    /// Errors and warnings.
    Warn = 1,
    /// And what happened (start, reloads, backend state changes).
    Info = 2,
    /// And detail for debugging.
    Debug = 3,
}

impl LogLevel {
    /// The level's name as written in log lines.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

/// How log lines are written (`keybroker.log.format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `TIME LEVEL COMPONENT MESSAGE`.
    Text,
    /// One JSON object a line: time, level, component, message.
    Json,
}

/// Which TLS parameters the client listener and backend links allow (`keybroker.tls.profile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsProfile {
    /// rustls's safe defaults: TLS 1.2 and 1.3, AES-GCM and ChaCha20 suites, X25519/P-256/P-384.
    Default,
    /// CNSA (Suite B): TLS 1.2+, ECDHE on P-384, AES-256-GCM with SHA-384 only.
    Cnsa,
}

/// A TLS protocol version keybroker can require as the minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

/// Cipher suites keybroker can offer, by IANA name (TLS 1.3 names as `TLS13_…`).
pub const TLS_CIPHER_SUITES: &[&str] = &[
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// The suites of the CNSA profile: AES-256-GCM with SHA-384.
pub const CNSA_CIPHER_SUITES: &[&str] = &[
    "TLS13_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];

/// Where the KMIP Credential's password comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password is sent.
    None,
    /// `keybroker.hsm.kmip.password`: in clear in the properties file.
    Clear(Secret<String>),
    /// `keybroker.hsm.kmip.password-file`: a file (relative to the properties file's folder).
    File(String),
    /// `keybroker.hsm.kmip.password-env`: the named environment variable.
    Env(String),
}

/// How keybroker logs in to Vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultAuth {
    /// A token from VAULT_TOKEN/BAO_TOKEN or a file.
    Token,
    /// Azure managed identity.
    Azure,
}

/// Every setting keybroker reads, with defaults applied.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `kms.keystore.file`
    pub keystore_file: String,
    /// `kms.keystore.password`
    pub keystore_password: Secret<String>,
    /// `kms.keystore.alias`: client certificate toward the HSM.
    pub client_alias: String,
    /// `keybroker.server.alias`: the TLS server certificate.
    pub server_alias: String,
    /// `keybroker.listen`
    pub listen: String,
    /// `keybroker.admin.listen`
    pub admin_listen: String,
    /// `kms.hsm.protocol`
    pub protocol: Protocol,
    /// `kms.hsm.server.url` (comma-separated endpoints).
    pub hsm_urls: Vec<String>,
    /// `kms.hsm.server.port`
    pub hsm_port: Option<u16>,
    /// `keybroker.hsm.key.name`
    pub hsm_key_name: String,
    /// `keybroker.hsm.key.auto-create`
    pub hsm_key_auto_create: bool,
    /// `keybroker.hsm.pool-size`: kept-alive links per HSM endpoint.
    pub hsm_pool_size: usize,
    /// `keybroker.hsm.request-timeout`: deadline of one KMIP request.
    pub hsm_request_timeout: Duration,
    /// `keybroker.hsm.connect-timeout`: deadline of connect + TLS handshake.
    pub hsm_connect_timeout: Duration,
    /// `keybroker.hsm.max-version`: highest KMIP version offered (1.0-1.4).
    pub hsm_max_version: crate::kmip::messages::ProtocolVersion,
    /// `keybroker.hsm.tls=legacy`: HSM links over OpenSSL with legacy versions and CBC suites
    /// (needs a build with the `legacy-hsm-tls` feature).
    pub hsm_tls_legacy: bool,
    /// `keybroker.hsm.kmip.username`: the KMIP Credential's username, if one is sent.
    pub hsm_kmip_username: Option<String>,
    /// `keybroker.hsm.kmip.password`, `-file` or `-env`: the Credential's password.
    pub hsm_kmip_password: PasswordSource,
    /// `keybroker.soft.key-file`
    pub soft_key_file: String,
    /// `keybroker.keys`: extra key names served besides `default`.
    pub extra_keys: Vec<String>,
    /// `keybroker.min-decryption-version`: backend key name → the oldest version that still
    /// decrypts (older tokens get 400 `key_version_retired`).
    pub min_decryption_version: BTreeMap<String, u32>,
    /// `kms.cache.type`
    pub cache_type: CacheType,
    /// `keybroker.cache.ttl`
    pub cache_ttl: Duration,
    /// `keybroker.cache.max-entries`
    pub cache_max_entries: usize,
    /// `keybroker.cache.redis.url`
    pub redis_url: Option<String>,
    /// `keybroker.cache.redis.timeout-ms`
    pub cache_redis_timeout: Duration,
    /// `keybroker.audit.file`
    pub audit_file: Option<String>,
    /// `keybroker.audit.fsync`
    pub audit_fsync: AuditFsync,
    /// `keybroker.log.level`
    pub log_level: LogLevel,
    /// `keybroker.log.format`
    pub log_format: LogFormat,
    /// `kms.hsm.vault.namespace`
    pub vault_namespace: Option<String>,
    /// `kms.hsm.vault.auth`
    pub vault_auth: VaultAuth,
    /// `kms.hsm.vault.auth.renew-before-expiry`
    pub vault_renew_before: Duration,
    /// `kms.hsm.vault.auth.azure.role`
    pub azure_role: Option<String>,
    /// `kms.hsm.vault.auth.azure.path`
    pub azure_path: String,
    /// `kms.hsm.vault.auth.azure.resource`
    pub azure_resource: String,
    /// `keybroker.vault.mount`
    pub vault_mount: String,
    /// `keybroker.vault.key`
    pub vault_key: String,
    /// `keybroker.vault.key.auto-create`
    pub vault_key_auto_create: bool,
    /// `keybroker.vault.timeout`: answer deadline for one Vault request.
    pub vault_timeout: Duration,
    /// `keybroker.vault.max-connections`: keep-alive links to Vault.
    pub vault_max_links: usize,
    /// `keybroker.vault.key-refresh`: how often the transit keys' configuration is re-read.
    pub vault_key_refresh: Duration,
    /// `keybroker.vault.ca-file`
    pub vault_ca_file: Option<String>,
    /// `keybroker.vault.token-file`
    pub vault_token_file: Option<String>,
    /// `keybroker.vault.azure.imds-url`
    pub azure_imds_url: String,
    /// `keybroker.role.*` prefixes and the server's own aliases.
    pub roles: RoleRules,
    /// `keybroker.http.header-timeout`
    pub header_timeout: Duration,
    /// `keybroker.http.idle-timeout`
    pub idle_timeout: Duration,
    /// `keybroker.http.max-body`
    pub max_body: usize,
    /// `keybroker.http.max-connections`: client-listener sockets, counted from accept.
    pub max_connections: usize,
    /// `keybroker.http.max-connection-bytes`: most bytes one connection may make the node hold.
    pub max_connection_bytes: usize,
    /// `keybroker.http.write-timeout`: longest one write to a client may wait for it to read.
    pub write_timeout: Duration,
    /// `keybroker.http.handshake-timeout`: longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// `keybroker.tls.session-resumption`: whether the client listener offers session
    /// resumption (TLS 1.3 tickets and the TLS 1.2 session cache).
    pub tls_session_resumption: bool,
    /// `keybroker.tls.profile`: default or cnsa, for the client listener and backend links.
    pub tls_profile: TlsProfile,
    /// `keybroker.tls.min-version`: the lowest TLS version allowed (default 1.2).
    pub tls_min_version: TlsVersion,
    /// `keybroker.tls.cipher-suites`: the suites allowed, by IANA name (default: the profile's).
    pub tls_cipher_suites: Vec<String>,
    /// `keybroker.http.overload-connections`: extra sockets that only get a 503 when full.
    pub overload_connections: usize,
    /// `keybroker.admin.max-connections`: admin-listener sockets, counted apart.
    pub admin_max_connections: usize,
    /// `keybroker.threads`: executor threads of the production server (0: one fewer than
    /// the cores, at least 1, at most 4).
    pub threads: usize,
}

/// A non-fatal remark about the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line, when it concerns a line.
    pub line: Option<usize>,
    /// What to tell the operator.
    pub message: String,
}

/// A setting that cannot be used; names the key and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    /// The key at fault.
    pub key: String,
    /// 1-based line, if the key was present.
    pub line: Option<usize>,
    /// What is wrong (never the value of a secret).
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

impl std::error::Error for SettingsError {}

/// Keys keybroker understands (Connected-KMS keys, legacy names and its own).
pub const KNOWN_KEYS: &[&str] = &[
    "kms.keystore.file",
    "kms.keystore.password",
    "kms.keystore.alias",
    "kms.hsm.server.url",
    "kms.hsm.server.port",
    "kmip.server.url",
    "kmip.server.port",
    "kms.hsm.protocol",
    "kms.hsm.vault.namespace",
    "kms.hsm.vault.auth",
    "kms.hsm.vault.auth.renew-before-expiry",
    "kms.hsm.vault.auth.azure.role",
    "kms.hsm.vault.auth.azure.path",
    "kms.hsm.vault.auth.azure.resource",
    "kms.cache.type",
    "kms.distributed.cache.config.file",
    "keybroker.listen",
    "keybroker.admin.listen",
    "keybroker.server.alias",
    "keybroker.hsm.key.name",
    "keybroker.hsm.key.auto-create",
    "keybroker.hsm.pool-size",
    "keybroker.hsm.request-timeout",
    "keybroker.hsm.connect-timeout",
    "keybroker.hsm.max-version",
    "keybroker.hsm.tls",
    "keybroker.hsm.kmip.username",
    "keybroker.hsm.kmip.password",
    "keybroker.hsm.kmip.password-file",
    "keybroker.hsm.kmip.password-env",
    "keybroker.soft.key-file",
    "keybroker.keys",
    "keybroker.min-decryption-version",
    "keybroker.cache.ttl",
    "keybroker.cache.max-entries",
    "keybroker.cache.redis.url",
    "keybroker.cache.redis.timeout-ms",
    "keybroker.audit.file",
    "keybroker.audit.fsync",
    "keybroker.log.level",
    "keybroker.log.format",
    "keybroker.vault.mount",
    "keybroker.vault.key",
    "keybroker.vault.key.auto-create",
    "keybroker.vault.timeout",
    "keybroker.vault.max-connections",
    "keybroker.vault.key-refresh",
    "keybroker.vault.ca-file",
    "keybroker.vault.token-file",
    "keybroker.vault.azure.imds-url",
    "keybroker.role.backend.prefixes",
    "keybroker.role.device.prefixes",
    "keybroker.role.admin.prefixes",
    "keybroker.http.header-timeout",
    "keybroker.http.idle-timeout",
    "keybroker.http.max-body",
    "keybroker.http.max-connections",
    "keybroker.http.max-connection-bytes",
    "keybroker.http.write-timeout",
    "keybroker.http.handshake-timeout",
    "keybroker.tls.session-resumption",
    "keybroker.tls.profile",
    "keybroker.tls.min-version",
    "keybroker.tls.cipher-suites",
    "keybroker.http.overload-connections",
    "keybroker.admin.max-connections",
    "keybroker.threads",
];

const SECRET_KEYS: &[&str] = &["kms.keystore.password", "keybroker.hsm.kmip.password"];

struct Lookup<'a> {
    props: &'a [Property],
}

impl<'a> Lookup<'a> {
    /// The last occurrence wins, as in Java.
    fn get(&self, key: &str) -> Option<&'a Property> {
        self.props.iter().rev().find(|p| p.key == key)
    }
    fn string(&self, key: &str, default: &str) -> String {
        self.get(key)
            .map(|p| p.value.trim().to_owned())
            .unwrap_or_else(|| default.to_owned())
    }
    fn opt(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|p| p.value.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
    /// One of `choices` (case-insensitive), by name.
    fn choice<T: Copy>(
        &self,
        key: &str,
        default: &str,
        choices: &[(&str, T)],
    ) -> Result<T, SettingsError> {
        let v = self.string(key, default).to_ascii_lowercase();
        match choices.iter().find(|(n, _)| *n == v) {
            Some((_, t)) => Ok(*t),
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                Err(self.err(key, format!("{v:?} is not one of {}", names.join(", "))))
            }
        }
    }
    fn err(&self, key: &str, message: impl Into<String>) -> SettingsError {
        SettingsError {
            key: key.to_owned(),
            line: self.get(key).map(|p| p.line),
            message: message.into(),
        }
    }
    fn parse<T: std::str::FromStr>(
        &self,
        key: &str,
        default: T,
        what: &str,
    ) -> Result<T, SettingsError> {
        match self.get(key) {
            None => Ok(default),
            Some(p) => p.value.trim().parse().map_err(|_| {
                let shown = if SECRET_KEYS.contains(&key) {
                    "[redacted]"
                } else {
                    p.value.trim()
                };
                self.err(key, format!("{shown:?} is not {what}"))
            }),
        }
    }
    fn secs(&self, key: &str, default: u64) -> Result<Duration, SettingsError> {
        Ok(Duration::from_secs(self.parse(
            key,
            default,
            "a whole number of seconds",
        )?))
    }
    /// Seconds (`5`, `1.5`) or milliseconds with an `ms` suffix (`500ms`); must be > 0.
    fn duration(&self, key: &str, default_ms: u64) -> Result<Duration, SettingsError> {
        let Some(p) = self.get(key) else {
            return Ok(Duration::from_millis(default_ms));
        };
        let v = p.value.trim();
        let d = if let Some(ms) = v.strip_suffix("ms") {
            ms.trim().parse::<u64>().ok().map(Duration::from_millis)
        } else {
            v.strip_suffix('s')
                .unwrap_or(v)
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
        };
        d.filter(|d| !d.is_zero())
            .ok_or_else(|| self.err(key, format!("{v:?} is not a duration (seconds, or NNNms)")))
    }
    fn list(&self, key: &str, default: &[&str]) -> Vec<String> {
        match self.get(key) {
            None => default.iter().map(|s| s.to_string()).collect(),
            Some(p) => p
                .value
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }
}

/// Levenshtein distance, for did-you-mean suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest known key, if close enough to be a likely typo.
pub fn did_you_mean(key: &str) -> Option<&'static str> {
    KNOWN_KEYS
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 6))
        .min()
        .map(|(_, k)| k)
}

/// `keybroker.tls.cipher-suites`, checked against the known names and the profile; the
/// profile's suites when unset.
fn tls_cipher_suites(l: &Lookup<'_>) -> Result<Vec<String>, SettingsError> {
    let key = "keybroker.tls.cipher-suites";
    let cnsa = l
        .string("keybroker.tls.profile", "default")
        .eq_ignore_ascii_case("cnsa");
    let allowed = if cnsa {
        CNSA_CIPHER_SUITES
    } else {
        TLS_CIPHER_SUITES
    };
    let list = l.list(key, allowed);
    if list.is_empty() {
        return Err(l.err(key, "names no cipher suite"));
    }
    let mut out = Vec::new();
    for name in list {
        let upper = name.to_ascii_uppercase();
        if !TLS_CIPHER_SUITES.contains(&upper.as_str()) {
            return Err(l.err(
                key,
                format!(
                    "{name:?} is not a suite keybroker offers ({})",
                    TLS_CIPHER_SUITES.join(", ")
                ),
            ));
        }
        if !allowed.contains(&upper.as_str()) {
            return Err(l.err(
                key,
                format!(
                    "{name:?} does not fit keybroker.tls.profile=cnsa ({})",
                    CNSA_CIPHER_SUITES.join(", ")
                ),
            ));
        }
        if !out.contains(&upper) {
            out.push(upper);
        }
    }
    let tls13_only = l.string("keybroker.tls.min-version", "1.2") == "1.3";
    if tls13_only && !out.iter().any(|s| s.starts_with("TLS13_")) {
        return Err(l.err(
            key,
            "names no TLS 1.3 suite, but keybroker.tls.min-version=1.3",
        ));
    }
    Ok(out)
}

/// The KMIP password source: at most one of the three keys, and only with a username.
fn kmip_password(
    l: &Lookup<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<PasswordSource, SettingsError> {
    let clear = l.get("keybroker.hsm.kmip.password");
    let file = l.opt("keybroker.hsm.kmip.password-file");
    let env = l.opt("keybroker.hsm.kmip.password-env");
    let set = [clear.is_some(), file.is_some(), env.is_some()];
    if set.iter().filter(|s| **s).count() > 1 {
        return Err(l.err(
            "keybroker.hsm.kmip.password",
            "set only one of keybroker.hsm.kmip.password, keybroker.hsm.kmip.password-file and keybroker.hsm.kmip.password-env",
        ));
    }
    let source = match (clear, file, env) {
        (Some(p), _, _) => {
            warnings.push(Warning {
                line: Some(p.line),
                message: "keybroker.hsm.kmip.password holds the HSM password in clear in this file; keybroker.hsm.kmip.password-file or keybroker.hsm.kmip.password-env keep it out".into(),
            });
            PasswordSource::Clear(Secret::new(p.value.clone()))
        }
        (_, Some(f), _) => PasswordSource::File(f),
        (_, _, Some(e)) => PasswordSource::Env(e),
        _ => PasswordSource::None,
    };
    if source != PasswordSource::None && l.opt("keybroker.hsm.kmip.username").is_none() {
        return Err(l.err(
            "keybroker.hsm.kmip.username",
            "is required when a KMIP password is set (the Credential carries both)",
        ));
    }
    Ok(source)
}

impl Settings {
    /// Builds settings from parsed properties; warnings for unknown or superseded keys.
    pub fn from_properties(props: &[Property]) -> Result<(Settings, Vec<Warning>), SettingsError> {
        let l = Lookup { props };
        let mut warnings = Vec::new();
        for p in props {
            if !KNOWN_KEYS.contains(&p.key.as_str()) {
                let hint = did_you_mean(&p.key)
                    .map(|k| format!("; did you mean {k}?"))
                    .unwrap_or_default();
                warnings.push(Warning {
                    line: Some(p.line),
                    message: format!("unknown key {}{hint}", p.key),
                });
            }
        }
        if let Some(p) = l.get("kms.distributed.cache.config.file") {
            warnings.push(Warning {
                line: Some(p.line),
                message: "kms.distributed.cache.config.file is accepted but not needed: keybroker's distributed cache is Redis (keybroker.cache.redis.url); JGroups/Infinispan settings are ignored".into(),
            });
        }
        let keystore_file = l
            .opt("kms.keystore.file")
            .ok_or_else(|| l.err("kms.keystore.file", "is required (path to kmsKeystore.jks)"))?;
        let keystore_password = Secret::new(
            l.get("kms.keystore.password")
                .map(|p| p.value.clone())
                .ok_or_else(|| l.err("kms.keystore.password", "is required"))?,
        );
        let protocol = match l
            .string("kms.hsm.protocol", "kmip1")
            .to_ascii_lowercase()
            .as_str()
        {
            "kmip1" | "kmip" => Protocol::Kmip,
            "vault" => Protocol::Vault,
            "soft" => Protocol::Soft,
            other => {
                return Err(l.err(
                    "kms.hsm.protocol",
                    format!("{other:?} is not one of kmip1, VAULT, soft"),
                ))
            }
        };
        let url_key = if l.get("kms.hsm.server.url").is_some() {
            "kms.hsm.server.url"
        } else {
            "kmip.server.url"
        };
        let port_key = if l.get("kms.hsm.server.port").is_some() {
            "kms.hsm.server.port"
        } else {
            "kmip.server.port"
        };
        let hsm_urls = l.list(url_key, &[]);
        let hsm_port = match l.get(port_key) {
            None => None,
            Some(_) => Some(l.parse::<u16>(port_key, 0, "a port number")?),
        };
        if protocol != Protocol::Soft && hsm_urls.is_empty() {
            return Err(l.err(
                "kms.hsm.server.url",
                "is required unless kms.hsm.protocol=soft",
            ));
        }
        let cache_type = match l
            .string("kms.cache.type", "none")
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => CacheType::None,
            "local" => CacheType::Local,
            "distributed" => CacheType::Distributed,
            other => {
                return Err(l.err(
                    "kms.cache.type",
                    format!("{other:?} is not one of none, local, distributed"),
                ))
            }
        };
        let vault_auth = match l
            .string("kms.hsm.vault.auth", "token")
            .to_ascii_lowercase()
            .as_str()
        {
            "token" => VaultAuth::Token,
            "azure" => VaultAuth::Azure,
            other => {
                return Err(l.err(
                    "kms.hsm.vault.auth",
                    format!("{other:?} is not one of token, azure"),
                ))
            }
        };
        let mut roles = RoleRules::default();
        let mut prefixes = Vec::new();
        for (key, role, default) in [
            (
                "keybroker.role.backend.prefixes",
                Role::Backend,
                "cmxbackend",
            ),
            ("keybroker.role.device.prefixes", Role::Device, "cmxdevice"),
            ("keybroker.role.admin.prefixes", Role::Admin, ""),
        ] {
            let defaults: &[&str] = if default.is_empty() { &[] } else { &[default] };
            for p in l.list(key, defaults) {
                prefixes.push((p.to_ascii_lowercase(), role));
            }
        }
        roles.prefixes = prefixes;
        let server_alias = l.string("keybroker.server.alias", "kmsServer");
        let client_alias = l.string("kms.keystore.alias", "kmsClient");
        for a in [&server_alias, &client_alias] {
            if !roles
                .server_aliases
                .iter()
                .any(|s| s.eq_ignore_ascii_case(a))
            {
                roles.server_aliases.push(a.to_ascii_lowercase());
            }
        }
        let hsm_key_name = l.string("keybroker.hsm.key.name", "keybroker-master");
        let vault_key = l.string("keybroker.vault.key", "kms");
        let extra_keys = l.list("keybroker.keys", &[]);
        for k in [&hsm_key_name, &vault_key].into_iter().chain(&extra_keys) {
            if k.is_empty()
                || k.len() > 128
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(l.err(
                    "keybroker.keys",
                    format!("key name {k:?} must be 1-128 of A-Z a-z 0-9 - _ ."),
                ));
            }
        }
        let default_key = match protocol {
            Protocol::Vault => &vault_key,
            _ => &hsm_key_name,
        };
        let mut min_decryption_version = BTreeMap::new();
        for item in l.list("keybroker.min-decryption-version", &[]) {
            let key = "keybroker.min-decryption-version";
            let (name, v) = item
                .rsplit_once(':')
                .ok_or_else(|| l.err(key, format!("{item:?} is not NAME:VERSION")))?;
            let name = if name == "default" {
                default_key.as_str()
            } else {
                name
            };
            if name != default_key && !extra_keys.iter().any(|k| k == name) {
                return Err(l.err(
                    key,
                    format!("{name:?} is not a key served (default or one of keybroker.keys)"),
                ));
            }
            let v: u32 =
                v.parse().ok().filter(|v| *v >= 1).ok_or_else(|| {
                    l.err(key, format!("{item:?}: the version must be 1 or more"))
                })?;
            min_decryption_version.insert(name.to_owned(), v);
        }
        let settings = Settings {
            keystore_file,
            keystore_password,
            client_alias,
            server_alias,
            listen: l.string("keybroker.listen", "0.0.0.0:8443"),
            admin_listen: l.string("keybroker.admin.listen", "127.0.0.1:9443"),
            protocol,
            hsm_urls,
            hsm_port,
            hsm_key_name,
            hsm_key_auto_create: l.parse(
                "keybroker.hsm.key.auto-create",
                false,
                "true or false",
            )?,
            hsm_pool_size: match l.parse("keybroker.hsm.pool-size", 4usize, "a whole number")? {
                0 => return Err(l.err("keybroker.hsm.pool-size", "must be at least 1")),
                n => n,
            },
            hsm_request_timeout: l.duration("keybroker.hsm.request-timeout", 5_000)?,
            hsm_connect_timeout: l.duration("keybroker.hsm.connect-timeout", 2_000)?,
            hsm_max_version: {
                use crate::kmip::messages::ProtocolVersion as V;
                match l.string("keybroker.hsm.max-version", "1.4").as_str() {
                    "1.0" => V::V1_0,
                    "1.1" => V::V1_1,
                    "1.2" => V::V1_2,
                    "1.3" => V::V1_3,
                    "1.4" => V::V1_4,
                    other => {
                        return Err(l.err(
                            "keybroker.hsm.max-version",
                            format!("{other:?} is not one of 1.0, 1.1, 1.2, 1.3, 1.4"),
                        ))
                    }
                }
            },
            hsm_tls_legacy: l.choice(
                "keybroker.hsm.tls",
                "default",
                &[("default", false), ("legacy", true)],
            )?,
            hsm_kmip_username: l.opt("keybroker.hsm.kmip.username"),
            hsm_kmip_password: kmip_password(&l, &mut warnings)?,
            soft_key_file: l.string("keybroker.soft.key-file", "soft-keys.json"),
            extra_keys,
            min_decryption_version,
            cache_type,
            cache_ttl: l.secs("keybroker.cache.ttl", 300)?,
            cache_max_entries: l.parse("keybroker.cache.max-entries", 10_000, "a whole number")?,
            redis_url: l.opt("keybroker.cache.redis.url"),
            cache_redis_timeout: Duration::from_millis(l.parse(
                "keybroker.cache.redis.timeout-ms",
                100,
                "a whole number of milliseconds",
            )?),
            audit_file: l.opt("keybroker.audit.file"),
            audit_fsync: l.choice(
                "keybroker.audit.fsync",
                "interval",
                &[
                    ("never", AuditFsync::Never),
                    ("interval", AuditFsync::Interval),
                    ("always", AuditFsync::Always),
                ],
            )?,
            log_level: l.choice(
                "keybroker.log.level",
                "info",
                &[
                    ("error", LogLevel::Error),
                    ("warn", LogLevel::Warn),
                    ("info", LogLevel::Info),
                    ("debug", LogLevel::Debug),
                ],
            )?,
            log_format: l.choice(
                "keybroker.log.format",
                "text",
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            )?,
            vault_namespace: l.opt("kms.hsm.vault.namespace"),
            vault_auth,
            vault_renew_before: l.secs("kms.hsm.vault.auth.renew-before-expiry", 30)?,
            azure_role: l.opt("kms.hsm.vault.auth.azure.role"),
            azure_path: l.string("kms.hsm.vault.auth.azure.path", "/v1/auth/azure/login"),
            azure_resource: l.string(
                "kms.hsm.vault.auth.azure.resource",
                "https://vault.hashicorp.com/",
            ),
            vault_mount: l.string("keybroker.vault.mount", "transit"),
            vault_key,
            vault_key_auto_create: l.parse(
                "keybroker.vault.key.auto-create",
                false,
                "true or false",
            )?,
            vault_timeout: l.secs("keybroker.vault.timeout", 10)?,
            vault_max_links: l.parse("keybroker.vault.max-connections", 8, "a whole number")?,
            vault_key_refresh: l.duration("keybroker.vault.key-refresh", 60_000)?,
            vault_ca_file: l.opt("keybroker.vault.ca-file"),
            vault_token_file: l.opt("keybroker.vault.token-file"),
            azure_imds_url: l.string("keybroker.vault.azure.imds-url", "http://169.254.169.254"),
            roles,
            header_timeout: l.secs("keybroker.http.header-timeout", 10)?,
            idle_timeout: l.secs("keybroker.http.idle-timeout", 60)?,
            max_body: l.parse("keybroker.http.max-body", 1024 * 1024, "a size in bytes")?,
            max_connections: l.parse("keybroker.http.max-connections", 10_000, "a whole number")?,
            max_connection_bytes: 0,
            write_timeout: l.duration("keybroker.http.write-timeout", 30_000)?,
            handshake_timeout: l.duration("keybroker.http.handshake-timeout", 10_000)?,
            tls_session_resumption: l.parse(
                "keybroker.tls.session-resumption",
                true,
                "true or false",
            )?,
            tls_profile: l.choice(
                "keybroker.tls.profile",
                "default",
                &[("default", TlsProfile::Default), ("cnsa", TlsProfile::Cnsa)],
            )?,
            tls_min_version: l.choice(
                "keybroker.tls.min-version",
                "1.2",
                &[("1.2", TlsVersion::V1_2), ("1.3", TlsVersion::V1_3)],
            )?,
            tls_cipher_suites: tls_cipher_suites(&l)?,
            overload_connections: l.parse(
                "keybroker.http.overload-connections",
                16,
                "a whole number",
            )?,
            threads: l.parse("keybroker.threads", 0, "a whole number (0: automatic)")?,
            admin_max_connections: match l.parse(
                "keybroker.admin.max-connections",
                16usize,
                "a whole number",
            )? {
                0 => return Err(l.err("keybroker.admin.max-connections", "must be at least 1")),
                n => n,
            },
        };
        let mut settings = settings;
        let floor = crate::broker::min_connection_bytes(settings.max_body);
        settings.max_connection_bytes = match l.opt("keybroker.http.max-connection-bytes") {
            None => floor.max(8 * 1024 * 1024),
            Some(_) => {
                let n: usize = l.parse(
                    "keybroker.http.max-connection-bytes",
                    0usize,
                    "a size in bytes",
                )?;
                if n < floor {
                    return Err(l.err(
                        "keybroker.http.max-connection-bytes",
                        format!(
                            "{n} is below {floor}, what one largest request (keybroker.http.max-body) and its answer need"
                        ),
                    ));
                }
                n
            }
        };
        if settings.cache_type == CacheType::Distributed {
            match &settings.redis_url {
                None => {
                    // A Connected-KMS multi-node file names JGroups, not Redis: serve it
                    // unchanged with the in-process cache, and say what to add.
                    settings.cache_type = CacheType::Local;
                    warnings.push(Warning {
                        line: l.get("kms.cache.type").map(|p| p.line),
                        message: "kms.cache.type=distributed without keybroker.cache.redis.url: serving with the local (per-node) cache; add keybroker.cache.redis.url (e.g. redis://:password@redis.example:6379/0) to share the cache between nodes".into(),
                    });
                }
                Some(u) => {
                    if let Err(e) = crate::cache::RedisTarget::parse(u) {
                        return Err(l.err("keybroker.cache.redis.url", e));
                    }
                }
            }
        }
        if settings.protocol == Protocol::Soft {
            warnings.push(Warning {
                line: None,
                message: "kms.hsm.protocol=soft keeps master keys in a local file: for demos and tests, not for production".into(),
            });
        }
        Ok((settings, warnings))
    }

    /// The backend key name that `{key}` in a URL path stands for, if served.
    pub fn resolve_key(&self, path_key: &str) -> Option<String> {
        let default = match self.protocol {
            Protocol::Vault => &self.vault_key,
            _ => &self.hsm_key_name,
        };
        if path_key == "default" || path_key == default {
            Some(default.clone())
        } else if self.extra_keys.iter().any(|k| k == path_key) {
            Some(path_key.to_owned())
        } else {
            None
        }
    }

    /// Every backend key name served.
    pub fn served_keys(&self) -> Vec<String> {
        let default = self.resolve_key("default").expect("default key");
        let extra = self.extra_keys.iter().filter(|k| **k != default).cloned();
        std::iter::once(default.clone()).chain(extra).collect()
    }
}

/// The part of [`Settings`] the broker itself uses: no listen addresses, no keystore
/// password, no backend endpoints (the backend is built from those before the broker).
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// `kms.server.alias`: whose private key seals the cache's entries.
    pub server_alias: String,
    /// The name `default` stands for (`keybroker.hsm.key.name` or `keybroker.vault.key`).
    pub default_key: String,
    /// `keybroker.keys`.
    pub extra_keys: Vec<String>,
    /// `keybroker.min-decryption-version`, by backend key name.
    pub min_decryption_version: BTreeMap<String, u32>,
    /// `kms.cache.type`.
    pub cache_type: CacheType,
    /// `kms.cache.ttl`.
    pub cache_ttl: Duration,
    /// `keybroker.cache.max-entries`.
    pub cache_max_entries: usize,
    /// `keybroker.cache.redis.url`.
    pub redis_url: Option<String>,
    /// `keybroker.cache.redis.timeout`.
    pub cache_redis_timeout: Duration,
    /// Role by alias prefix.
    pub roles: RoleRules,
    /// `keybroker.http.header-timeout`.
    pub header_timeout: Duration,
    /// `keybroker.http.idle-timeout`.
    pub idle_timeout: Duration,
    /// `keybroker.http.max-body`.
    pub max_body: usize,
    /// `keybroker.http.max-connection-bytes`.
    pub max_connection_bytes: usize,
    /// `keybroker.http.write-timeout`.
    pub write_timeout: Duration,
}

impl BrokerSettings {
    /// The backend key a request's `{key}` names, if it is served.
    pub fn resolve_key(&self, path_key: &str) -> Option<String> {
        if path_key == "default" || path_key == self.default_key {
            Some(self.default_key.clone())
        } else if self.extra_keys.iter().any(|k| k == path_key) {
            Some(path_key.to_owned())
        } else {
            None
        }
    }
}

impl Settings {
    /// What the broker needs of these settings.
    pub fn broker(&self) -> BrokerSettings {
        BrokerSettings {
            server_alias: self.server_alias.clone(),
            default_key: self.resolve_key("default").expect("default key"),
            extra_keys: self.extra_keys.clone(),
            min_decryption_version: self.min_decryption_version.clone(),
            cache_type: self.cache_type,
            cache_ttl: self.cache_ttl,
            cache_max_entries: self.cache_max_entries,
            redis_url: self.redis_url.clone(),
            cache_redis_timeout: self.cache_redis_timeout,
            roles: self.roles.clone(),
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_body: self.max_body,
            max_connection_bytes: self.max_connection_bytes,
            write_timeout: self.write_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<Property> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Property {
                key: k.to_string(),
                value: v.to_string(),
                line: i + 1,
            })
            .collect()
    }

    #[test]
    fn seed_defaults() {
        let (s, w) = Settings::from_properties(&props(&[
            ("kms.keystore.file", "/usr/share/kms/conf/kmsKeystore.jks"),
            ("kms.keystore.password", "kmsKeystorePwd"),
            ("kms.hsm.server.url", "https://kmshsm.myCorp.com"),
            ("kms.hsm.server.port", "5696"),
        ]))
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.protocol, Protocol::Kmip);
        assert_eq!(s.client_alias, "kmsClient");
        assert_eq!(s.server_alias, "kmsServer");
        assert_eq!(s.listen, "0.0.0.0:8443");
        assert_eq!(s.hsm_port, Some(5696));
        assert_eq!(s.cache_type, CacheType::None);
        assert_eq!(s.vault_renew_before, Duration::from_secs(30));
        assert_eq!(
            s.resolve_key("default").as_deref(),
            Some("keybroker-master")
        );
        assert_eq!(s.resolve_key("other"), None);
        assert_eq!(s.threads, 0, "automatic");
    }

    #[test]
    fn threads_are_a_whole_number() {
        let base = [
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
            ("kms.hsm.protocol", "soft"),
        ];
        let with = |v: &'static str| {
            let mut p = base.to_vec();
            p.push(("keybroker.threads", v));
            Settings::from_properties(&props(&p))
        };
        assert_eq!(with("3").unwrap().0.threads, 3);
        let e = with("two").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("keybroker.threads", Some(4)));
    }

    #[test]
    fn unknown_key_warns_with_suggestion_and_bad_value_names_line() {
        let (_, w) = Settings::from_properties(&props(&[
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
            ("kms.hsm.protocol", "soft"),
            ("kms.keystore.alais", "x"),
        ]))
        .unwrap();
        assert!(w.iter().any(|w| w.line == Some(4) && w.message.contains("did you mean kms.keystore.alias")), "{w:?}");
        let e = Settings::from_properties(&props(&[
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
            ("kms.hsm.protocol", "soft"),
            ("keybroker.cache.ttl", "five"),
        ]))
        .unwrap_err();
        assert_eq!(e.key, "keybroker.cache.ttl");
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().starts_with("line 4: keybroker.cache.ttl"));
    }

    #[test]
    fn legacy_kmip_names_and_missing_url() {
        let (s, _) = Settings::from_properties(&props(&[
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
            ("kmip.server.url", "a.example, b.example"),
            ("kmip.server.port", "5696"),
        ]))
        .unwrap();
        assert_eq!(s.hsm_urls, vec!["a.example", "b.example"]);
        let e = Settings::from_properties(&props(&[
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
        ]))
        .unwrap_err();
        assert_eq!(e.key, "kms.hsm.server.url");
    }

    #[test]
    fn min_decryption_version_names_served_keys_only() {
        let base = [
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
            ("kms.hsm.protocol", "soft"),
            ("keybroker.keys", "payroll"),
        ];
        let with = |v: &str| {
            let mut p = base.to_vec();
            p.push(("keybroker.min-decryption-version", v));
            Settings::from_properties(&props(&p))
        };
        let (s, _) = with("default:3, payroll:2").unwrap();
        let want: BTreeMap<String, u32> =
            [("keybroker-master".into(), 3), ("payroll".into(), 2)].into();
        assert_eq!(
            s.min_decryption_version, want,
            "default means the master key"
        );
        for bad in ["nope:2", "default", "default:0", "default:x"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("keybroker.min-decryption-version"), "{bad}: {e}");
        }
    }

    #[test]
    fn distributed_without_redis_serves_local_and_names_the_key() {
        let (s, w) = Settings::from_properties(&props(&[
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
            ("kms.hsm.protocol", "soft"),
            ("kms.cache.type", "distributed"),
        ]))
        .unwrap();
        assert_eq!(s.cache_type, CacheType::Local);
        let named: Vec<_> = w
            .iter()
            .filter(|w| w.message.contains("keybroker.cache.redis.url"))
            .collect();
        assert_eq!(named.len(), 1, "{w:?}");
        assert_eq!(named[0].line, Some(4));
        let (s, w) = Settings::from_properties(&props(&[
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
            ("kms.hsm.protocol", "soft"),
            ("kms.cache.type", "distributed"),
            ("keybroker.cache.redis.url", "redis://127.0.0.1:6379/0"),
        ]))
        .unwrap();
        assert_eq!(s.cache_type, CacheType::Distributed);
        assert!(!w.iter().any(|w| w.message.contains("redis")), "{w:?}");
    }

    #[test]
    fn password_never_in_errors_or_debug() {
        let (s, _) = Settings::from_properties(&props(&[
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "S3cretPw!"),
            ("kms.hsm.protocol", "soft"),
        ]))
        .unwrap();
        assert!(!format!("{s:?}").contains("S3cretPw!"));
    }

    #[test]
    fn tls_profile_settings() {
        let with = |extra: &[(&str, &str)]| {
            let mut p = vec![
                ("kms.keystore.file", "ks"),
                ("kms.keystore.password", "pw"),
                ("kms.hsm.protocol", "soft"),
            ];
            p.extend_from_slice(extra);
            Settings::from_properties(&props(&p))
        };
        let (s, _) = with(&[]).unwrap();
        assert_eq!(
            (s.tls_profile, s.tls_min_version, s.tls_cipher_suites.len()),
            (
                TlsProfile::Default,
                TlsVersion::V1_2,
                TLS_CIPHER_SUITES.len()
            )
        );
        let (s, _) = with(&[("keybroker.tls.profile", "CNSA")]).unwrap();
        assert_eq!(s.tls_profile, TlsProfile::Cnsa);
        assert_eq!(s.tls_cipher_suites, CNSA_CIPHER_SUITES);
        let (s, _) = with(&[
            ("keybroker.tls.min-version", "1.3"),
            (
                "keybroker.tls.cipher-suites",
                "tls13_aes_256_gcm_sha384, TLS13_AES_128_GCM_SHA256",
            ),
        ])
        .unwrap();
        assert_eq!(s.tls_min_version, TlsVersion::V1_3);
        assert_eq!(
            s.tls_cipher_suites,
            ["TLS13_AES_256_GCM_SHA384", "TLS13_AES_128_GCM_SHA256"]
        );
        for (extra, needle) in [
            (vec![("keybroker.tls.profile", "suiteb")], "not one of"),
            (vec![("keybroker.tls.min-version", "1.0")], "not one of"),
            (
                vec![(
                    "keybroker.tls.cipher-suites",
                    "TLS_RSA_WITH_AES_128_CBC_SHA",
                )],
                "not a suite keybroker offers",
            ),
            (
                vec![
                    ("keybroker.tls.profile", "cnsa"),
                    ("keybroker.tls.cipher-suites", "TLS13_AES_128_GCM_SHA256"),
                ],
                "does not fit keybroker.tls.profile=cnsa",
            ),
            (
                vec![
                    ("keybroker.tls.min-version", "1.3"),
                    (
                        "keybroker.tls.cipher-suites",
                        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                    ),
                ],
                "no TLS 1.3 suite",
            ),
            (
                vec![("keybroker.tls.cipher-suites", " , ")],
                "no cipher suite",
            ),
        ] {
            let e = with(&extra).unwrap_err();
            assert!(e.to_string().contains(needle), "{extra:?}: {e}");
        }
    }

    #[test]
    fn kmip_credential_sources() {
        let base = [
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
            ("kms.hsm.server.url", "https://hsm"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut p: Vec<(&str, &str)> = base.to_vec();
            p.extend_from_slice(extra);
            Settings::from_properties(&props(&p))
        };
        let (s, w) = with(&[]).unwrap();
        assert_eq!(s.hsm_kmip_username, None);
        assert_eq!(s.hsm_kmip_password, PasswordSource::None);
        assert!(w.is_empty(), "{w:?}");
        let (s, w) = with(&[
            ("keybroker.hsm.kmip.username", "kbuser"),
            ("keybroker.hsm.kmip.password-file", "hsm.pw"),
        ])
        .unwrap();
        assert_eq!(s.hsm_kmip_username.as_deref(), Some("kbuser"));
        assert_eq!(s.hsm_kmip_password, PasswordSource::File("hsm.pw".into()));
        assert!(w.is_empty(), "{w:?}");
        let (s, _) = with(&[
            ("keybroker.hsm.kmip.username", "kbuser"),
            ("keybroker.hsm.kmip.password-env", "HSM_PW"),
        ])
        .unwrap();
        assert_eq!(s.hsm_kmip_password, PasswordSource::Env("HSM_PW".into()));
        let (s, w) = with(&[
            ("keybroker.hsm.kmip.username", "kbuser"),
            ("keybroker.hsm.kmip.password", "Cl3arPw!"),
        ])
        .unwrap();
        assert!(!format!("{s:?}").contains("Cl3arPw!"));
        assert!(w.iter().any(|w| w.message.contains("in clear")), "{w:?}");
        let e = with(&[
            ("keybroker.hsm.kmip.username", "kbuser"),
            ("keybroker.hsm.kmip.password", "Cl3arPw!"),
            ("keybroker.hsm.kmip.password-env", "HSM_PW"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("only one"), "{e}");
        assert!(!e.to_string().contains("Cl3arPw!"), "{e}");
        let e = with(&[("keybroker.hsm.kmip.password-env", "HSM_PW")]).unwrap_err();
        assert_eq!(e.key, "keybroker.hsm.kmip.username");
    }
}
