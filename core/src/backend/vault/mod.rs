//! The `VAULT` backend: Vault / OpenBao transit, with token or Azure managed-identity auth.
//!
//! Operations become transit requests (built in [`crate::vault`]) carried by the shell over
//! keep-alive links; several items submitted in one broker step go as one `batch_input`.
//! Every ciphertext is bound with transit's `associated_data` to
//! [`Envelope::aad`]`(Vault, key, version, context)`; encrypt pins `key_version` to the version
//! in that AAD. `generate` is random bytes from the [`Drbg`] + encrypt and `rewrap` is decrypt +
//! encrypt inside keybroker (the Connected-KMS transit policy in docs/vault.md has neither
//! `datakey` nor `rewrap`, and transit's `rewrap` cannot carry associated data), the plaintext
//! zeroized after.
//!
//! Auth: a token is looked up, then renewed `renew-before-expiry` seconds before it ends; with
//! Azure, an IMDS token + instance metadata log in, renewal or re-login keep a token. No request
//! is ever sent without a token that is valid at that instant; work that arrives while there is
//! none waits (bounded by the request timeout).
use super::kmip::Endpoint;
use super::pool::{self, Breaker, Pick};
use super::{bad_ciphertext, unwrapped, wrapped, KeyBackend, Unwrap, Wrap};
use super::{
    BackendError, BackendOutput, LinkId, LinkSecurity, NetEvent, Op, OpId, Reply, ReplyQueue,
};
use crate::drbg::Drbg;
use crate::envelope::{BackendKind, Envelope};
use crate::log::Level;
use crate::secret::Secret;
use crate::time::{Instant, Now};
use crate::vault::http::{HttpResponse, ResponseParser};
use crate::vault::{self, Auth, DecryptItem, EncryptItem, Headers, VaultRequest};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

mod auth;
mod errors;
mod failover;
mod keys;
mod link;
mod transit;

use auth::*;
use errors::*;
use failover::*;
use link::*;
use transit::*;

/// Most items in one `batch_input`. Vault and OpenBao refuse a request body with more than 1,000
/// JSON strings by default (listener `max_request_json_strings`: "refused JSON input due to high
/// complexity"); an item is 4 strings (two keys, two values), so an API batch of 1,000 goes as
/// 5 requests of 200 (800 strings + the top level), with room to spare.
pub const MAX_BATCH: usize = 200;
/// Wait suggested to clients while Vault is sealed or unreachable.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Azure managed-identity login settings.
#[derive(Clone, Debug)]
pub struct AzureConfig {
    /// `kms.hsm.vault.auth.azure.role`
    pub role: String,
    /// `kms.hsm.vault.auth.azure.path`
    pub path: String,
    /// `kms.hsm.vault.auth.azure.resource`
    pub resource: String,
    /// IMDS host (from `keybroker.vault.azure.imds-url`).
    pub imds_host: String,
    /// IMDS port.
    pub imds_port: u16,
}

/// How the backend gets its Vault token.
#[derive(Clone, Debug)]
pub enum VaultAuthConfig {
    /// A token handed in by the shell (VAULT_TOKEN, BAO_TOKEN or the token file).
    Token(Secret<String>),
    /// Azure managed identity.
    Azure(AzureConfig),
}

/// Everything the Vault backend needs.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// Vault nodes in order of preference (every URL of `kms.hsm.server.url`).
    pub endpoints: Vec<Endpoint>,
    /// TLS (`https`) or plain (`http`), for every node.
    pub security: LinkSecurity,
    /// `X-Vault-Namespace`
    pub namespace: Option<String>,
    /// Transit mount path.
    pub mount: String,
    /// Keys served (checked at start).
    pub keys: Vec<String>,
    /// Create missing keys at start.
    pub auto_create: bool,
    /// Renew this long before the token expires.
    pub renew_before: Duration,
    /// Answer deadline for one request, and the longest wait for a token.
    pub request_timeout: Duration,
    /// Connect + handshake deadline.
    pub connect_timeout: Duration,
    /// Most concurrent links to one Vault node.
    pub max_links: usize,
    /// Auth method.
    pub auth: VaultAuthConfig,
    /// How often each served key's configuration is read again, so versions rotated and
    /// `min_decryption_version` set directly in Vault take effect (`keybroker.vault.key-refresh`).
    pub key_refresh: Duration,
}

type CallId = u64;

/// The Vault transit backend state machine.
pub struct VaultBackend {
    cfg: VaultConfig,
    now: Now,
    links: BTreeMap<LinkId, Link>,
    next_link: LinkId,
    calls: BTreeMap<CallId, Call>,
    queue: VecDeque<CallId>,
    next_call: CallId,
    fresh: VecDeque<(Instant, Work)>,
    versions: BTreeMap<String, u32>,
    /// `min_decryption_version` by key, as last read.
    min_versions: BTreeMap<String, u32>,
    /// When the served keys are next read again.
    refresh_at: Option<Instant>,
    reading: Vec<String>,
    token: Option<Token>,
    /// A lookup/login/renew is in flight.
    auth_busy: bool,
    auth_retry_at: Option<Instant>,
    healthy: bool,
    probe_at: Option<Instant>,
    warned_expiry: bool,
    /// One breaker per Vault node.
    breakers: Vec<Breaker>,
    /// Why the last Vault node failed, for the answer when none is left.
    last_failure: String,
    pub(crate) replies: ReplyQueue,
    pub(crate) outputs: VecDeque<BackendOutput>,
    /// When the auth call (lookup, renewal, login) being answered was sent.
    auth_sent: Option<Instant>,
}

impl fmt::Debug for VaultBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultBackend")
            .field("endpoints", &self.cfg.endpoints)
            .field("links", &self.links.len())
            .field("calls", &self.calls.len())
            .field("has_token", &self.token.is_some())
            .finish()
    }
}

impl VaultBackend {
    /// A backend that does nothing until [`VaultBackend::start`].
    pub fn new(cfg: VaultConfig) -> Self {
        VaultBackend {
            breakers: cfg.endpoints.iter().map(|_| Breaker::default()).collect(),
            last_failure: String::new(),
            cfg,
            now: Now::default(),
            links: BTreeMap::new(),
            next_link: 1,
            calls: BTreeMap::new(),
            queue: VecDeque::new(),
            next_call: 1,
            fresh: VecDeque::new(),
            versions: BTreeMap::new(),
            min_versions: BTreeMap::new(),
            refresh_at: None,
            reading: Vec::new(),
            token: None,
            auth_busy: false,
            auth_retry_at: None,
            healthy: false,
            probe_at: None,
            warned_expiry: false,
            replies: VecDeque::new(),
            outputs: VecDeque::new(),
            auth_sent: None,
        }
    }

    fn log(&mut self, level: Level, message: String) {
        self.outputs.push_back(BackendOutput::Log {
            component: "vault",
            level,
            message,
        });
    }

    /// Each Vault node's breaker and health, in configured order.
    pub fn endpoints(&self) -> Vec<super::EndpointStatus> {
        let links = self.phases();
        self.view(&links)
            .statuses(self.cfg.endpoints.iter().map(|e| e.to_string()))
    }

    /// Whether a valid token is held, Vault answered last time, and expiry is not near.
    pub fn is_ready(&self) -> bool {
        self.healthy
            && self.token.as_ref().is_some_and(|t| match t.expires {
                None => true,
                Some(e) if t.can_renew => self.now.mono < e,
                Some(e) => self.now.mono + self.cfg.renew_before < e,
            })
    }

    /// Starts auth (token lookup or Azure login) and the key check.
    pub fn start(&mut self, now: Now) {
        self.now = now;
        if self.cfg.security == LinkSecurity::Plain {
            let at: Vec<String> = self
                .cfg
                .endpoints
                .iter()
                .map(|e| format!("http://{e}"))
                .collect();
            self.log(
                Level::Warn,
                format!(
                    "Vault at {} is plain HTTP: tokens and data keys cross the network unencrypted; use https outside tests",
                    at.join(", ")
                ),
            );
        }
        self.begin_auth();
        for key in self.cfg.keys.clone() {
            self.read_key(key, None, false);
        }
        self.refresh_at = Some(now.mono + self.cfg.key_refresh);
        self.dispatch();
    }

    /// Takes an operation; replies come later via the reply queue.
    pub fn submit(&mut self, now: Now, id: OpId, op: Op, rng: &mut Drbg) {
        KeyBackend::submit(self, now, id, op, rng)
    }

    /// Lets deadlines fire.
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        let mut expired_sent = Vec::new();
        for (link, l) in &self.links {
            if let Some(c) = l.busy {
                if self
                    .calls
                    .get(&c)
                    .and_then(|c| c.answer_by)
                    .is_some_and(|t| t <= now.mono)
                {
                    expired_sent.push((*link, c));
                }
            }
        }
        for (link, c) in expired_sent {
            if let Some(l) = self.links.remove(&link) {
                if l.target == Target::Vault {
                    self.node_failed(l.ep, "no answer within keybroker.vault.timeout");
                }
            }
            self.outputs.push_back(BackendOutput::Close { link });
            self.complete(c, Err(Failure::Timeout));
        }
        let stale: Vec<CallId> = self
            .queue
            .iter()
            .copied()
            .filter(|c| self.calls.get(c).is_some_and(|c| c.wait_until <= now.mono))
            .collect();
        for c in stale {
            self.queue.retain(|q| *q != c);
            let f = if self.token_valid() {
                Failure::Timeout
            } else {
                Failure::Lost(
                    "no valid Vault token (login or renewal did not finish in time)".into(),
                )
            };
            self.complete(c, Err(f));
        }
        self.expire_held(now);
        self.token_due(now);
        if self.refresh_at.is_some_and(|r| r <= now.mono) {
            self.refresh_at = Some(now.mono + self.cfg.key_refresh);
            for key in self.cfg.keys.clone() {
                self.read_key(key, None, false);
            }
        }
        if self.probe_at.is_some_and(|p| p <= now.mono) {
            self.probe_at = None;
            if !self.healthy && !self.auth_busy && self.token_valid() {
                self.auth_busy = true;
                self.push_call(vault::lookup_self(), CallKind::Lookup, Target::Vault, true);
            }
        }
        self.dispatch();
    }

    /// When [`VaultBackend::handle_timeout`] is next needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |i: Option<Instant>| {
            if let Some(i) = i {
                t = Some(t.map_or(i, |t| t.min(i)));
            }
        };
        for c in self.calls.values() {
            // A sent call waits for its answer, not for a link: its queue deadline no longer
            // fires, and a deadline that never fires makes the shell's timer spin.
            at(c.answer_by.or(Some(c.wait_until)));
        }
        let stall = self.stall_after();
        for l in self.links.values() {
            if l.busy.is_some() && l.sent + stall > self.now.mono {
                at(Some(l.sent + stall));
            }
        }
        for b in &self.breakers {
            at(b.open_until().filter(|t| *t > self.now.mono));
        }
        for (u, _) in &self.fresh {
            at(Some(*u));
        }
        if let Some(tok) = &self.token {
            // While a lookup or login is in flight the renewal waits for it (which sets a new
            // renewal time), so it is not a deadline; nor once the token cannot be renewed.
            at(tok.renew_at.filter(|_| !self.auth_busy && tok.can_renew));
            if let Some(e) = tok.expires.filter(|e| *e > self.now.mono) {
                at(Some(e));
                let warn =
                    Instant::from_epoch(e.since_epoch().saturating_sub(self.cfg.renew_before));
                if !tok.can_renew && !self.warned_expiry && warn > self.now.mono {
                    at(Some(warn));
                }
            }
        }
        at(self.auth_retry_at);
        at(self.probe_at);
        at(self.refresh_at);
        t
    }

    /// The next finished operation.
    pub fn poll_reply(&mut self) -> Option<(OpId, Result<Reply, BackendError>)> {
        self.replies.pop_front()
    }

    /// Drains one output (flushing batched work first).
    pub fn poll_output(&mut self) -> Option<BackendOutput> {
        if !self.fresh.is_empty() {
            self.dispatch();
        }
        self.outputs.pop_front()
    }
}

impl KeyBackend for VaultBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Vault
    }
    fn clock(&mut self, now: Now) {
        self.now = now;
    }
    fn replies(&mut self) -> &mut ReplyQueue {
        &mut self.replies
    }
    fn encrypt(&mut self, id: OpId, wrap: Wrap, _rng: &mut Drbg) {
        self.hold(Work::Encrypt(id, wrap))
    }
    fn decrypt(&mut self, id: OpId, unwrap: Unwrap, _rng: &mut Drbg) {
        self.hold(Work::Decrypt(id, unwrap))
    }
    fn rotate(&mut self, id: OpId, key: String, _rng: &mut Drbg) {
        self.hold(Work::Rotate { op: id, key })
    }
    fn describe(&mut self, id: OpId, key: String, _rng: &mut Drbg) {
        self.hold(Work::Describe { op: id, key })
    }
    fn poll_output(&mut self) -> Option<BackendOutput> {
        VaultBackend::poll_output(self)
    }
    fn start(&mut self, now: Now, _rng: &mut Drbg) {
        VaultBackend::start(self, now)
    }
    fn handle_net(&mut self, now: Now, event: NetEvent, _rng: &mut Drbg) {
        VaultBackend::handle_net(self, now, event)
    }
    fn handle_timeout(&mut self, now: Now, _rng: &mut Drbg) {
        VaultBackend::handle_timeout(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        VaultBackend::poll_timeout(self)
    }
    fn endpoints(&self) -> Vec<super::EndpointStatus> {
        VaultBackend::endpoints(self)
    }
    fn token_expires_in(&self) -> Option<Duration> {
        VaultBackend::token_expires_in(self)
    }
    fn is_ready(&self) -> bool {
        VaultBackend::is_ready(self)
    }
}
