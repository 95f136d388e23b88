//! The backends that hold master keys, driven by the broker with requests and replies as values.
//!
//! The broker [`Backend::submit`]s an [`Op`] under an [`OpId`] and later collects the
//! [`Reply`] from [`Backend::poll_reply`]. The soft backend answers at once; network backends
//! (KMIP, Vault) answer after the shell has carried their bytes. Every backend implements
//! `KeyBackend`, whose default `submit` lowers each [`Op`] onto four primitives, so Generate
//! and Rewrap are built the same way everywhere.
pub mod kmip;
pub(crate) mod pool;
pub mod soft;
pub mod vault;

use crate::drbg::Drbg;
use crate::envelope::{BackendKind, Envelope};
use crate::secret::Secret;
use crate::time::Now;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// Identifies one submitted operation.
pub type OpId = u64;

/// Largest data key `generate` makes, in bytes.
pub const MAX_GENERATE_BYTES: usize = 1024;

/// Refuses a data-key length outside 1..=[`MAX_GENERATE_BYTES`] (every backend's Generate).
pub fn check_generate_bytes(bytes: usize) -> Result<(), BackendError> {
    if bytes == 0 || bytes > MAX_GENERATE_BYTES {
        return Err(BackendError::BadRequest(format!(
            "bytes must be between 1 and {MAX_GENERATE_BYTES}"
        )));
    }
    Ok(())
}

/// One cryptographic operation on a master key.
#[derive(Debug)]
pub enum Op {
    /// Wrap `plaintext` under the key's latest version, bound to `context`.
    Encrypt {
        /// Backend key name.
        key: String,
        /// Data to wrap.
        plaintext: Secret<Vec<u8>>,
        /// Context the ciphertext is bound to.
        context: Vec<u8>,
    },
    /// Unwrap an envelope made under `key` with `context`.
    Decrypt {
        /// Backend key name.
        key: String,
        /// The parsed token.
        envelope: Envelope,
        /// Context presented.
        context: Vec<u8>,
    },
    /// Make `bytes` random bytes and wrap them.
    Generate {
        /// Backend key name.
        key: String,
        /// Length of the data key.
        bytes: usize,
        /// Context the ciphertext is bound to.
        context: Vec<u8>,
    },
    /// Unwrap, then wrap again under the latest key version.
    Rewrap {
        /// Backend key name.
        key: String,
        /// The parsed token.
        envelope: Envelope,
        /// Context presented (kept for the new ciphertext).
        context: Vec<u8>,
    },
    /// Make a new key version.
    Rotate {
        /// Backend key name.
        key: String,
    },
    /// Describe the key's versions.
    Describe {
        /// Backend key name.
        key: String,
    },
}

/// A successful answer.
#[derive(Debug)]
pub enum Reply {
    /// A new ciphertext.
    Ciphertext {
        /// The `kb1:` token.
        token: String,
        /// Key version used.
        key_version: u32,
    },
    /// Unwrapped data.
    Plaintext(Secret<Vec<u8>>),
    /// A new data key and its ciphertext.
    Generated {
        /// The data key.
        plaintext: Secret<Vec<u8>>,
        /// The `kb1:` token.
        token: String,
        /// Key version used.
        key_version: u32,
    },
    /// The key's new version.
    Rotated {
        /// New latest version.
        key_version: u32,
    },
    /// What is known of the key.
    Described {
        /// Backend kind.
        backend: BackendKind,
        /// Latest version.
        latest_version: u32,
        /// All versions that can still decrypt.
        versions: Vec<u32>,
    },
}

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The backend has no such key (404).
    UnknownKey(String),
    /// Ciphertext does not authenticate under this key and context (400).
    BadCiphertext(String),
    /// The request itself is invalid (400).
    BadRequest(String),
    /// The backend cannot take requests now (503 with Retry-After).
    Unavailable {
        /// What is wrong.
        reason: String,
        /// Suggested wait.
        retry_after: Duration,
    },
    /// The backend answered with an error (502).
    Failed(String),
    /// The backend did not answer in time (504).
    Timeout,
    /// A new key version could not be stored durably, so it was not made (500).
    NotPersisted(String),
    /// The ciphertext's key version is below the key's minimum decryption version (400).
    VersionRetired {
        /// Backend key name.
        key: String,
        /// The ciphertext's key version.
        version: u32,
        /// The oldest version that still decrypts, when known.
        min: Option<u32>,
    },
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::UnknownKey(k) => write!(f, "unknown key {k:?}"),
            BackendError::BadCiphertext(why) => f.write_str(why),
            BackendError::BadRequest(why) => f.write_str(why),
            BackendError::Unavailable { reason, .. } => write!(f, "backend unavailable: {reason}"),
            BackendError::Failed(why) => write!(f, "backend error: {why}"),
            BackendError::Timeout => f.write_str("backend did not answer in time"),
            BackendError::VersionRetired { key, version, min } => {
                write!(f, "key {key:?} version {version} is retired")?;
                match min {
                    Some(m) => write!(f, ": the oldest version that decrypts is {m}"),
                    None => f.write_str(": its minimum decryption version is higher"),
                }?;
                f.write_str("; rewrap data before retiring the version it is under")
            }
            BackendError::NotPersisted(why) => {
                write!(
                    f,
                    "the new key version could not be stored ({why}); nothing changed"
                )
            }
        }
    }
}

/// Identifies one network link a backend asked the shell to open.
pub type LinkId = u64;

/// How the shell secures a backend link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkSecurity {
    /// TLS to a KMIP HSM: client certificate `kms.keystore.alias`, roots = keystore trusted entries.
    KmipTls,
    /// TLS to Vault: system roots + keystore trusted entries + `keybroker.vault.ca-file`.
    VaultTls,
    /// Plain TCP (Vault over `http://`, tests only; warned about at start).
    Plain,
}

/// What a backend asks the shell to do.
#[derive(Debug, PartialEq, Eq)]
pub enum BackendOutput {
    /// Seal and store this soft-key file (atomically, synced) at `keybroker.soft.key-file`.
    PersistSoftKeys(Persist),
    /// Open a connection; answer with [`NetEvent::Connected`] or [`NetEvent::Closed`].
    Connect {
        /// The new link's id (chosen by the backend).
        link: LinkId,
        /// Host name or IP literal (also the TLS server name).
        host: String,
        /// TCP port.
        port: u16,
        /// TLS profile.
        security: LinkSecurity,
        /// Give up connecting after this long (report `Closed`).
        connect_timeout: std::time::Duration,
    },
    /// Write bytes on an open link.
    Send {
        /// Which link.
        link: LinkId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close a link (no event follows).
    Close {
        /// Which link.
        link: LinkId,
    },
    /// A line for the operator's log (never a secret).
    Log {
        /// Which part of the node speaks (`kmip`, `vault`).
        component: &'static str,
        /// How much it matters.
        level: crate::log::Level,
        /// The message.
        message: String,
    },
}

/// What happened on a backend link, fed back by the shell.
#[derive(Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// The connection (and TLS handshake) is up.
    Connected {
        /// Which link.
        link: LinkId,
    },
    /// Bytes arrived (any framing; the backend reassembles messages).
    Received {
        /// Which link.
        link: LinkId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The link failed to connect, was closed by the peer, or failed.
    Closed {
        /// Which link.
        link: LinkId,
        /// Why, for logs (never a secret).
        reason: String,
    },
}

/// Identifies one soft-key file write the shell reports back on.
pub type PersistId = u64;

/// A soft-key file to seal and write, then report with [`crate::Input::Persisted`].
#[derive(Debug, PartialEq, Eq)]
pub struct Persist {
    /// Report this id back.
    pub id: PersistId,
    /// What to seal (slow: run it off the endpoint's lock).
    pub job: soft::SealJob,
}

/// One remote endpoint's health, as `/metrics` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointStatus {
    /// `host:port`.
    pub name: String,
    /// Whether it answered the last time it was tried and nothing sent to it is overdue.
    pub up: bool,
    /// Whether its circuit breaker is open (requests go elsewhere until it closes).
    pub breaker_open: bool,
    /// How many times its breaker opened, moving requests to other endpoints.
    pub failovers: u64,
}

/// The configured backend.
#[derive(Debug)]
pub enum Backend {
    /// Software keys (dev/test).
    Soft(Box<soft::SoftBackend>),
    /// A KMIP HSM (`kmip1`).
    Kmip(Box<kmip::KmipBackend>),
    /// Vault / OpenBao transit.
    Vault(Box<vault::VaultBackend>),
}

impl Backend {
    fn inner(&mut self) -> &mut dyn KeyBackend {
        match self {
            Backend::Soft(s) => s.as_mut(),
            Backend::Kmip(k) => k.as_mut(),
            Backend::Vault(v) => v.as_mut(),
        }
    }
    fn inner_ref(&self) -> &dyn KeyBackend {
        match self {
            Backend::Soft(s) => s.as_ref(),
            Backend::Kmip(k) => k.as_ref(),
            Backend::Vault(v) => v.as_ref(),
        }
    }
    /// Which kind of backend this is.
    pub fn kind(&self) -> BackendKind {
        self.inner_ref().kind()
    }
    /// Starts an operation; its reply comes from [`Backend::poll_reply`].
    pub fn submit(&mut self, now: Now, id: OpId, op: Op, rng: &mut Drbg) {
        self.inner().submit(now, id, op, rng)
    }
    /// The next finished operation.
    pub fn poll_reply(&mut self) -> Option<(OpId, Result<Reply, BackendError>)> {
        self.inner().poll_reply()
    }
    /// The next soft-backend encrypt or decrypt to run, by whoever asked for it.
    pub fn poll_job(&mut self) -> Option<(OpId, soft::SoftJob)> {
        match self {
            Backend::Soft(s) => s.jobs.pop_front(),
            _ => None,
        }
    }
    /// The next thing the shell must do for the backend.
    pub fn poll_output(&mut self) -> Option<BackendOutput> {
        self.inner().poll_output()
    }
    /// The shell finished (or failed) the soft-key file write `id`.
    pub fn persisted(&mut self, id: PersistId, result: Result<(), String>, rng: &mut Drbg) {
        self.inner().persisted(id, result, rng)
    }
    /// Each remote endpoint's health, for `/metrics` (empty for the soft backend).
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        self.inner_ref().endpoints()
    }
    /// Time left on the Vault token (`None`: no token, a token that never expires, or not Vault).
    pub fn token_expires_in(&self) -> Option<Duration> {
        self.inner_ref().token_expires_in()
    }
    /// Whether the backend can serve requests (for /readyz).
    pub fn is_ready(&self) -> bool {
        self.inner_ref().is_ready()
    }
    /// Starts background work (connections, key lookup); called once when the broker starts.
    pub fn start(&mut self, now: Now, rng: &mut Drbg) {
        self.inner().start(now, rng)
    }
    /// Feeds an event on one of the backend's links.
    pub fn handle_net(&mut self, now: Now, event: NetEvent, rng: &mut Drbg) {
        self.inner().handle_net(now, event, rng)
    }
    /// Lets deadlines up to `now` fire (request timeouts, reconnects, token renewal).
    pub fn handle_timeout(&mut self, now: Now, rng: &mut Drbg) {
        self.inner().handle_timeout(now, rng)
    }
    /// When the backend next needs [`Backend::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<crate::time::Instant> {
        self.inner_ref().poll_timeout()
    }
}

/// An encrypt as a backend carries it out: an [`Op::Encrypt`], a [`Op::Generate`] once its data
/// key is drawn, or the second half of a [`Op::Rewrap`].
#[derive(Debug)]
pub(crate) struct Wrap {
    /// Backend key name.
    pub key: String,
    /// Data to wrap.
    pub plaintext: Secret<Vec<u8>>,
    /// Context the ciphertext is bound to.
    pub context: Vec<u8>,
    /// A Generate: the answer carries the plaintext too.
    pub generated: bool,
}

/// The answer to a finished [`Wrap`]: the token, with the data key when it was a Generate.
pub(crate) fn wrapped(
    generated: Option<Secret<Vec<u8>>>,
    token: String,
    key_version: u32,
) -> Reply {
    match generated {
        Some(plaintext) => Reply::Generated {
            plaintext,
            token,
            key_version,
        },
        None => Reply::Ciphertext { token, key_version },
    }
}

/// A decrypt as a backend carries it out: an [`Op::Decrypt`], or the first half of an
/// [`Op::Rewrap`].
#[derive(Debug)]
pub(crate) struct Unwrap {
    /// Backend key name.
    pub key: String,
    /// The parsed token.
    pub envelope: Envelope,
    /// Context presented.
    pub context: Vec<u8>,
    /// A Rewrap: the plaintext is wrapped again under the latest version.
    pub rewrap: bool,
}

impl Unwrap {
    /// Refuses a token made by another backend kind or under another key.
    pub fn check_envelope(&self, kind: BackendKind) -> Result<(), BackendError> {
        if self.envelope.backend != kind || self.envelope.key_name != self.key {
            return Err(bad_ciphertext());
        }
        Ok(())
    }

    /// What the decrypted `plaintext` leads to (see [`unwrapped`]); takes the key and context.
    pub fn then(&mut self, plaintext: Secret<Vec<u8>>) -> Result<Reply, Wrap> {
        let (key, context) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.context),
        );
        unwrapped(key, context, self.rewrap, plaintext)
    }
}

/// What a finished decrypt leads to: the answer, or (a Rewrap) the encrypt of `plaintext` under
/// `key`'s latest version with the same `context`.
pub(crate) fn unwrapped(
    key: String,
    context: Vec<u8>,
    rewrap: bool,
    plaintext: Secret<Vec<u8>>,
) -> Result<Reply, Wrap> {
    if rewrap {
        Err(Wrap {
            key,
            plaintext,
            context,
            generated: false,
        })
    } else {
        Ok(Reply::Plaintext(plaintext))
    }
}

/// Refusal of a ciphertext that does not decrypt (400); the same words whatever the cause.
pub(crate) fn bad_ciphertext() -> BackendError {
    BackendError::BadCiphertext(
        "ciphertext does not authenticate under this key and context".into(),
    )
}

/// The shell has not seeded the DRBG yet (503).
pub(crate) fn no_entropy() -> BackendError {
    BackendError::Unavailable {
        reason: "no entropy supplied by the shell".into(),
        retry_after: Duration::from_secs(1),
    }
}

/// What each backend implements: four primitives and its queues. The default [`KeyBackend::submit`]
/// lowers every [`Op`] onto them, so a Generate is a drawn data key + [`KeyBackend::encrypt`] and a
/// Rewrap is [`KeyBackend::decrypt`] whose [`Unwrap::then`] is an encrypt, in every backend; the
/// driving methods default to a backend with nothing in the background (soft).
pub(crate) trait KeyBackend: fmt::Debug {
    /// Which kind of backend this is.
    fn kind(&self) -> BackendKind;
    /// Takes the time of a submitted operation.
    fn clock(&mut self, now: Now);
    /// Finished operations, oldest first.
    fn replies(&mut self) -> &mut ReplyQueue;
    /// Wraps `wrap.plaintext` under the key's latest version; the reply comes later.
    fn encrypt(&mut self, id: OpId, wrap: Wrap, rng: &mut Drbg);
    /// Unwraps a token (then wraps again, for a Rewrap); the reply comes later.
    fn decrypt(&mut self, id: OpId, unwrap: Unwrap, rng: &mut Drbg);
    /// Makes a new version of `key`.
    fn rotate(&mut self, id: OpId, key: String, rng: &mut Drbg);
    /// Describes `key`'s versions.
    fn describe(&mut self, id: OpId, key: String, rng: &mut Drbg);
    /// The next thing the shell must do for the backend.
    fn poll_output(&mut self) -> Option<BackendOutput>;

    /// Starts an operation: lowers `op` onto the primitives.
    fn submit(&mut self, now: Now, id: OpId, op: Op, rng: &mut Drbg) {
        self.clock(now);
        let rewrap = matches!(op, Op::Rewrap { .. });
        match op {
            Op::Encrypt {
                key,
                plaintext,
                context,
            } => self.encrypt(
                id,
                Wrap {
                    key,
                    plaintext,
                    context,
                    generated: false,
                },
                rng,
            ),
            Op::Generate {
                key,
                bytes,
                context,
            } => match data_key(bytes, rng) {
                Ok(plaintext) => self.encrypt(
                    id,
                    Wrap {
                        key,
                        plaintext,
                        context,
                        generated: true,
                    },
                    rng,
                ),
                Err(e) => self.replies().push_back((id, Err(e))),
            },
            Op::Decrypt {
                key,
                envelope,
                context,
            }
            | Op::Rewrap {
                key,
                envelope,
                context,
            } => {
                let unwrap = Unwrap {
                    key,
                    envelope,
                    context,
                    rewrap,
                };
                self.decrypt(id, unwrap, rng)
            }
            Op::Rotate { key } => self.rotate(id, key, rng),
            Op::Describe { key } => self.describe(id, key, rng),
        }
    }
    /// The next finished operation.
    fn poll_reply(&mut self) -> Option<(OpId, Result<Reply, BackendError>)> {
        self.replies().pop_front()
    }
    /// Starts background work (connections, key lookup).
    fn start(&mut self, now: Now, rng: &mut Drbg) {
        let _ = (now, rng);
    }
    /// Feeds an event on one of the backend's links.
    fn handle_net(&mut self, now: Now, event: NetEvent, rng: &mut Drbg) {
        let _ = (now, event, rng);
    }
    /// Lets deadlines up to `now` fire.
    fn handle_timeout(&mut self, now: Now, rng: &mut Drbg) {
        let _ = (now, rng);
    }
    /// When the backend next needs [`KeyBackend::handle_timeout`].
    fn poll_timeout(&self) -> Option<crate::time::Instant> {
        None
    }
    /// The shell finished (or failed) the soft-key file write `id`.
    fn persisted(&mut self, id: PersistId, result: Result<(), String>, rng: &mut Drbg) {
        let _ = (id, result, rng);
    }
    /// Each remote endpoint's health.
    fn endpoints(&self) -> Vec<EndpointStatus> {
        Vec::new()
    }
    /// Time left on the backend's credential, when it expires.
    fn token_expires_in(&self) -> Option<Duration> {
        None
    }
    /// Whether the backend can serve requests.
    fn is_ready(&self) -> bool {
        true
    }
}

/// A Generate's data key: `bytes` random bytes, drawn before the encrypt is started.
fn data_key(bytes: usize, rng: &mut Drbg) -> Result<Secret<Vec<u8>>, BackendError> {
    check_generate_bytes(bytes)?;
    let mut dk = Secret::new(vec![0u8; bytes]);
    if !rng.fill(dk.expose_mut()) {
        return Err(no_entropy());
    }
    Ok(dk)
}

/// Queue type shared by backends.
pub(crate) type ReplyQueue = VecDeque<(OpId, Result<Reply, BackendError>)>;
