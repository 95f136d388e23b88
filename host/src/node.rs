//! What every shell does the same way, with no runtime: load a node, carry out the outputs
//! that are not about sockets (soft-key file, audit, logs), reload, signals, the clock.
//!
//! Both `keybroker` (smol) and `keybroker-lite` (std threads) build on this module, so the
//! only code a shell owns is how it moves bytes and time.
use crate::files;
use crate::tls;
use keybroker_core::config::keystore::Keystore;
use keybroker_core::config::load::{self, NodeConfig};
use keybroker_core::endpoint::Endpoint;
use keybroker_core::Now;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// TLS client configurations for backend links, built once from the keystore.
pub struct LinkTls {
    /// For KMIP HSMs.
    pub kmip: Option<Arc<rustls::ClientConfig>>,
    /// For Vault.
    pub vault: Option<Arc<rustls::ClientConfig>>,
    /// For KMIP HSMs over OpenSSL (`keybroker.hsm.tls=legacy`).
    #[cfg(feature = "legacy-hsm-tls")]
    pub kmip_legacy: Option<Arc<crate::legacy_tls::Legacy>>,
}

impl LinkTls {
    /// The client configuration for a link secured as `security` (None for plain TCP).
    pub fn for_link(
        &self,
        security: keybroker_core::backend::LinkSecurity,
    ) -> Option<Arc<rustls::ClientConfig>> {
        use keybroker_core::backend::LinkSecurity;
        match security {
            LinkSecurity::KmipTls => self.kmip.clone(),
            LinkSecurity::VaultTls => self.vault.clone(),
            _ => None,
        }
    }

    /// The OpenSSL context for a link secured as `security`, under the legacy HSM profile.
    #[cfg(feature = "legacy-hsm-tls")]
    pub fn legacy_for(
        &self,
        security: keybroker_core::backend::LinkSecurity,
    ) -> Option<Arc<crate::legacy_tls::Legacy>> {
        match security {
            keybroker_core::backend::LinkSecurity::KmipTls => self.kmip_legacy.clone(),
            _ => None,
        }
    }
}

/// What tells a changed file apart: modification time and length.
type FileStamp = (SystemTime, u64);

fn stamp(path: &str) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The outputs a shell carries out the same way whatever its runtime.
pub struct Effects {
    soft_key_path: String,
    audit: Option<crate::audit::AuditLog>,
    expiry: crate::expiry::Expiry,
    properties_path: String,
    keystore_path: String,
    keystore_stamp: Mutex<Option<FileStamp>>,
}

impl Effects {
    /// Seals and writes a soft-key file durably; run it off the endpoint's lock, then feed the
    /// result back as `Input::Persisted`.
    pub fn persist(&self, p: &keybroker_core::backend::Persist) -> Result<(), String> {
        let bytes = p.job.seal();
        files::write_atomic(&self.soft_key_path, &bytes).map_err(|e| {
            let why = format!("keybroker.soft.key-file {}: {e}", self.soft_key_path);
            log_as("soft", "error", &why);
            why
        })
    }

    /// Appends one audit record to the audit log (chained, see [`crate::audit`]), or logs it
    /// when there is none.
    pub fn audit(&self, line: &str) {
        match &self.audit {
            Some(a) => a.write(line),
            None => log("audit", line),
        }
    }

    /// Re-reads the configuration and keystore and hands the keystore to `apply`; on any
    /// error the old one keeps serving. Returns the new TLS server configuration for the
    /// shell to use from the next handshake on (open connections keep theirs).
    pub fn reload(&self, apply: impl FnOnce(&Keystore)) -> Option<Arc<rustls::ServerConfig>> {
        if let Some(a) = &self.audit {
            a.reopen();
        }
        *self.keystore_stamp.lock().expect("stamp") = stamp(&self.keystore_path);
        let result = std::fs::read(&self.properties_path)
            .map_err(|e| format!("{}: {e}", self.properties_path))
            .and_then(|bytes| {
                load::load(&self.properties_path, &bytes, &mut files::read)
                    .map_err(|e| e.to_string())
            })
            .and_then(|cfg| {
                let tls =
                    tls::server_config(&cfg.server_chain, cfg.server_key.expose(), &cfg.settings)
                        .map_err(|e| {
                        format!("{}: {}: {e}", cfg.keystore_path, cfg.settings.server_alias)
                    })?;
                Ok((cfg, tls))
            });
        match result {
            Ok((cfg, tls_cfg)) => {
                let n = cfg.keystore.entries.len();
                apply(&cfg.keystore);
                self.expiry.update(&cfg);
                log_as(
                    "keystore",
                    "info",
                    &format!("reloaded {} ({n} entries)", cfg.keystore_path),
                );
                Some(tls_cfg)
            }
            Err(e) => {
                log_as(
                    "keystore",
                    "error",
                    &format!("reload failed, still serving the previous keystore: {e}"),
                );
                None
            }
        }
    }

    /// Whether the keystore file changed on disk since it was last loaded (then reload).
    pub fn keystore_changed(&self) -> bool {
        let now = stamp(&self.keystore_path);
        let changed = now.is_some() && *self.keystore_stamp.lock().expect("stamp") != now;
        if changed {
            log_as(
                "keystore",
                "info",
                &format!("{} changed on disk", self.keystore_path),
            );
        }
        changed
    }
}

/// A loaded node, ready for a shell to bind its listeners and serve.
pub struct Prepared {
    /// The node's shared half, seeded and started (its first outputs wait to be drained).
    pub endpoint: Endpoint,
    /// TLS server configuration for the client listener.
    pub server_tls: Arc<rustls::ServerConfig>,
    /// TLS client configurations for backend links.
    pub link_tls: LinkTls,
    /// File and log outputs.
    pub effects: Effects,
    /// The monotonic zero of the broker's clock.
    pub epoch: std::time::Instant,
    /// `keybroker.listen`.
    pub listen: String,
    /// `keybroker.admin.listen`.
    pub admin_listen: String,
    /// What the listeners allow.
    pub limits: ListenerLimits,
}

/// What the listeners allow, for admission and the shells' handshakes and writes.
#[derive(Clone, Copy, Debug)]
pub struct ListenerLimits {
    /// `keybroker.http.max-connections`, fitted to the open-file limit.
    pub max_connections: usize,
    /// `keybroker.http.overload-connections`.
    pub overload_connections: usize,
    /// `keybroker.admin.max-connections`.
    pub admin_max_connections: usize,
    /// `keybroker.http.handshake-timeout`.
    pub handshake_timeout: std::time::Duration,
    /// `keybroker.http.write-timeout`.
    pub write_timeout: std::time::Duration,
    /// Executor threads for a runtime that has them: `keybroker.threads`, or when it is 0,
    /// one fewer than the cores (at least 1, at most 4).
    pub threads: usize,
}

/// Loads `properties_path` and everything it names; errors are one line for the operator.
pub fn prepare(properties_path: &str) -> Result<Prepared, String> {
    prepare_with(properties_path, |_| {})
}

/// [`prepare`], with `tweak` applied to the loaded configuration first (an in-process tool
/// writing its own audit file, say).
pub fn prepare_with(
    properties_path: &str,
    tweak: impl FnOnce(&mut NodeConfig),
) -> Result<Prepared, String> {
    let bytes = std::fs::read(properties_path).map_err(|e| format!("{properties_path}: {e}"))?;
    let mut cfg: NodeConfig =
        load::load(properties_path, &bytes, &mut files::read).map_err(|e| e.to_string())?;
    tweak(&mut cfg);
    crate::logging::configure(cfg.settings.log_level, cfg.settings.log_format);
    for w in &cfg.warnings {
        match w.line {
            Some(l) => log_as(
                "config",
                "warn",
                &format!("{properties_path}:{l}: {}", w.message),
            ),
            None => log_as("config", "warn", &w.message),
        }
    }
    let config_dir = properties_path
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or(".");
    let mut seed = [0u8; 32];
    tls::random(&mut seed);
    let mut rng = keybroker_core::drbg::Drbg::new();
    rng.reseed(&seed);
    let (backend, new_file) = load::backend(
        &cfg,
        config_dir,
        &mut files::read,
        &|k: &str| std::env::var(k).ok(),
        &mut rng,
    )
    .map_err(|e| e.to_string())?;
    if let Some((path, file)) = new_file {
        files::write_atomic(&path, &file)
            .map_err(|e| format!("keybroker.soft.key-file {path}: {e}"))?;
        log_as("soft", "info", &format!("wrote soft master keys to {path}"));
    }
    let soft_key_path = load::resolve(config_dir, &cfg.settings.soft_key_file);
    let server_tls = tls::server_config(&cfg.server_chain, cfg.server_key.expose(), &cfg.settings)
        .map_err(|e| format!("{}: {}: {e}", cfg.keystore_path, cfg.settings.server_alias))?;
    for m in tls::misfits_note(&cfg) {
        log_as("tls", "warn", &m);
    }
    if cfg.settings.hsm_tls_legacy {
        #[cfg(feature = "legacy-hsm-tls")]
        {
            crate::legacy_tls::connector(&cfg)
                .map_err(|e| format!("keybroker.hsm.tls=legacy: {e}"))?;
            log_as("kmip", "warn", &crate::legacy_tls::warning());
        }
        #[cfg(not(feature = "legacy-hsm-tls"))]
        return Err("keybroker.hsm.tls=legacy: this build has no OpenSSL link support (cargo feature legacy-hsm-tls)".into());
    }
    let audit = match &cfg.settings.audit_file {
        Some(p) => {
            let p = load::resolve(config_dir, p);
            let key = keybroker_core::audit::key_from_keystore(
                &cfg.keystore,
                &cfg.settings.server_alias,
            )
            .ok_or_else(|| {
                format!(
                    "keybroker.audit.file: the audit key comes from the private key of {}, which {} does not hold",
                    cfg.settings.server_alias, cfg.keystore_path
                )
            })?;
            Some(
                crate::audit::AuditLog::open(&p, key, cfg.settings.audit_fsync)
                    .map_err(|e| format!("keybroker.audit.file {e}"))?,
            )
        }
        None => None,
    };
    let expiry = crate::expiry::Expiry::start(&cfg);
    let listen = cfg.settings.listen.clone();
    let admin_listen = cfg.settings.admin_listen.clone();
    let link_tls = tls::link_configs(&cfg);
    let cfg_keystore_path = cfg.keystore_path.clone();
    let epoch = std::time::Instant::now();
    let mut seed2 = [0u8; 32];
    tls::random(&mut seed2);
    let st = &cfg.settings;
    let limits = ListenerLimits {
        max_connections: connection_budget(st),
        overload_connections: st.overload_connections,
        admin_max_connections: st.admin_max_connections,
        handshake_timeout: st.handshake_timeout,
        write_timeout: st.write_timeout,
        threads: match st.threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .saturating_sub(1)
                .clamp(1, 4),
            n => n.min(64),
        },
    };
    let mut endpoint = Endpoint::new(
        now_since(epoch),
        cfg.settings.broker(),
        &cfg.keystore,
        backend,
        &seed2,
    );
    endpoint.set_tls_provider(crate::tls::PROVIDER);
    if cfg!(feature = "fips") && !tls::fips() {
        return Err(format!(
            "this build's TLS provider ({}) is not in FIPS mode; refusing to serve",
            crate::tls::PROVIDER
        ));
    }
    log_as(
        "tls",
        "info",
        &format!(
            "provider {}{}",
            crate::tls::PROVIDER,
            if tls::fips() { " (FIPS mode)" } else { "" }
        ),
    );
    Ok(Prepared {
        endpoint,
        server_tls,
        link_tls,
        effects: Effects {
            soft_key_path,
            audit,
            expiry,
            properties_path: properties_path.to_owned(),
            keystore_stamp: Mutex::new(stamp(&cfg_keystore_path)),
            keystore_path: cfg_keystore_path,
        },
        epoch,
        listen,
        admin_listen,
        limits,
    })
}

/// The core's view of the time, with `epoch` as its monotonic zero.
pub fn now_since(epoch: std::time::Instant) -> Now {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Now {
        mono: keybroker_core::Instant::from_epoch(epoch.elapsed()),
        unix_secs: unix,
    }
}

/// `keybroker.http.max-connections`, lowered if the process's open-file limit cannot hold it
/// with the overload allowance, the admin listener, backend links and files (so accept never
/// runs into EMFILE while serving).
pub fn connection_budget(settings: &keybroker_core::Settings) -> usize {
    let reserve = settings.overload_connections + settings.admin_max_connections + 64;
    let Some(nofile) = open_file_limit() else {
        return settings.max_connections;
    };
    let fit = nofile.saturating_sub(reserve).max(1);
    if fit < settings.max_connections {
        log(
            "warn",
            &format!(
                "keybroker.http.max-connections {} lowered to {fit}: the open-file limit is {nofile} (raise LimitNOFILE)",
                settings.max_connections
            ),
        );
        fit
    } else {
        settings.max_connections
    }
}

/// The soft open-file limit, from /proc/self/limits (Linux).
fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Writes one log line to stderr from the node itself (component `node`; audit lines
/// without an audit file: component `audit`). See [`crate::logging`].
pub fn log(level: &str, message: &str) {
    match level {
        "audit" => crate::logging::emit("info", "audit", message),
        _ => crate::logging::emit(level, "node", message),
    }
}

/// Logs where the node serves: `listening client=ADDR admin=ADDR`, whatever
/// `keybroker.log.level` says (operators and the test harness read this line).
pub fn log_listening(client: std::net::SocketAddr, admin: std::net::SocketAddr) {
    log_as(
        "serve",
        "notice",
        &format!("listening client={client} admin={admin}"),
    );
}

/// Writes one log line to stderr from `component`.
pub fn log_as(component: &str, level: &str, message: &str) {
    crate::logging::emit(level, component, message);
}

/// SIGTERM/SIGINT call `stop`; SIGHUP calls `reload` (on a signal thread).
pub fn install_signals(stop: impl Fn() + Send + 'static, reload: impl Fn() + Send + 'static) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            log("warn", &format!("cannot install signal handlers: {e}"));
            return;
        }
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig == SIGHUP {
                reload();
            } else {
                stop();
            }
        }
    });
}
