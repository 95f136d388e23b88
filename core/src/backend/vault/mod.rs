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
type PendingEnc = (Instant, EncItem, Secret<Vec<u8>>);
type PendingDec = (Instant, DecItem, String, Vec<u8>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Vault,
    Imds,
}

enum Work {
    Encrypt(OpId, Wrap),
    Decrypt(OpId, Unwrap),
    Rotate { op: OpId, key: String },
    Describe { op: OpId, key: String },
}

struct EncItem {
    op: OpId,
    key: String,
    version: u32,
    context: Vec<u8>,
    generated: Option<Secret<Vec<u8>>>,
}

struct DecItem {
    op: OpId,
    key: String,
    version: u32,
    context: Vec<u8>,
    rewrap: bool,
}

enum CallKind {
    Encrypt(Vec<EncItem>),
    Decrypt(Vec<DecItem>),
    ReadKey {
        key: String,
        op: Option<OpId>,
        rotated: bool,
    },
    CreateKey {
        key: String,
    },
    Rotate {
        key: String,
        op: OpId,
    },
    Lookup,
    Renew,
    ImdsToken,
    ImdsInstance {
        jwt: Secret<String>,
    },
    Login,
}

impl CallKind {
    fn ops(&self) -> Vec<OpId> {
        match self {
            CallKind::Encrypt(i) => i.iter().map(|i| i.op).collect(),
            CallKind::Decrypt(i) => i.iter().map(|i| i.op).collect(),
            CallKind::ReadKey { op, .. } => op.iter().copied().collect(),
            CallKind::Rotate { op, .. } => vec![*op],
            _ => Vec::new(),
        }
    }
}

struct Call {
    req: VaultRequest,
    kind: CallKind,
    target: Target,
    /// Give up waiting in the queue at this instant.
    wait_until: Instant,
    /// Answer deadline once sent.
    answer_by: Option<Instant>,
    retried: bool,
    /// The Vault node (index) it was last sent to.
    ep: Option<usize>,
    /// Vault nodes that failed it so far.
    tries: usize,
}

/// Why a call got no usable answer.
enum Failure {
    /// No answer within the deadline.
    Timeout,
    /// The request could not be sent, or its answer was lost or unreadable.
    Lost(String),
}

struct Link {
    target: Target,
    /// Index of the Vault node (0 for the IMDS).
    ep: usize,
    connected: bool,
    busy: Option<CallId>,
    /// When the request on it was sent.
    sent: Instant,
    parser: ResponseParser,
    served: u32,
}

struct Token {
    token: Secret<String>,
    /// lookup-self or a login confirmed it.
    verified: bool,
    /// `None`: never expires.
    expires: Option<Instant>,
    renew_at: Option<Instant>,
    can_renew: bool,
}

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

/// Why a Vault answer means its node cannot serve now (sealed, standby, 5xx), and whether
/// Vault certainly did nothing with the request.
fn node_failure(resp: &HttpResponse) -> Option<(String, bool)> {
    let msg = vault::errors(&resp.body);
    let lower = msg.to_ascii_lowercase();
    let s = resp.status;
    match s {
        _ if s >= 500 && lower.contains("sealed") => Some(("Vault is sealed".into(), true)),
        429 | 473 | 503 => Some((
            format!("Vault node is a standby or unavailable ({s} {msg})"),
            true,
        )),
        307 | 308 => Some((
            format!("Vault node is a standby: it redirects ({s}) to the active node"),
            true,
        )),
        500..=599 => Some((format!("Vault answered {s}: {msg}"), false)),
        _ => None,
    }
}

/// A decrypt refused because its key version is below `min_decryption_version`.
fn retired(item: &DecItem, min: Option<u32>) -> BackendError {
    BackendError::VersionRetired {
        key: item.key.clone(),
        version: item.version,
        min,
    }
}

fn status_ok(s: u16) -> bool {
    (200..300).contains(&s)
}

/// A 400 to a batch that still carries per-item `batch_results` (some items failed).
fn partial_batch_failure(resp: &HttpResponse, items: usize) -> bool {
    resp.status == 400 && items > 1 && resp.body.windows(13).any(|w| w == b"batch_results")
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

    fn token_valid(&self) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| t.verified && t.expires.is_none_or(|e| self.now.mono < e))
    }

    fn may_send(&self, call: &Call) -> bool {
        match call.req.auth {
            Auth::Token if matches!(call.kind, CallKind::Lookup) => self
                .token
                .as_ref()
                .is_some_and(|t| !t.verified || t.expires.is_none_or(|e| self.now.mono < e)),
            // The simulator's test that it has teeth builds core with this planted bug.
            Auth::Token
                if cfg!(feature = "planted-bug-renew-after-expiry")
                    && matches!(call.kind, CallKind::Renew) =>
            {
                true
            }
            Auth::Token => self.token_valid(),
            _ => true,
        }
    }

    /// Each Vault node's breaker and health, in configured order.
    pub fn endpoints(&self) -> Vec<super::EndpointStatus> {
        let links = self.phases();
        self.view(&links)
            .statuses(self.cfg.endpoints.iter().map(|e| e.to_string()))
    }

    /// Time left on the token held (`None`: no token, or one that never expires).
    pub fn token_expires_in(&self) -> Option<Duration> {
        let expires = self.token.as_ref()?.expires?;
        Some(expires.saturating_since(self.now.mono))
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

    fn begin_auth(&mut self) {
        if self.auth_busy {
            return;
        }
        self.auth_busy = true;
        match &self.cfg.auth {
            VaultAuthConfig::Token(t) => {
                if self.token.is_none() {
                    self.token = Some(Token {
                        token: t.clone(),
                        verified: false,
                        expires: None,
                        renew_at: None,
                        can_renew: false,
                    });
                }
                self.push_call(vault::lookup_self(), CallKind::Lookup, Target::Vault, true);
            }
            VaultAuthConfig::Azure(a) => {
                let req = vault::imds_token(&a.resource);
                self.push_call(req, CallKind::ImdsToken, Target::Imds, false);
            }
        }
    }

    fn push_call(
        &mut self,
        req: VaultRequest,
        kind: CallKind,
        target: Target,
        front: bool,
    ) -> CallId {
        let id = self.next_call;
        self.next_call += 1;
        self.calls.insert(
            id,
            Call {
                req,
                kind,
                target,
                wait_until: self.now.mono + self.cfg.request_timeout,
                answer_by: None,
                retried: false,
                ep: None,
                tries: 0,
            },
        );
        if front {
            self.queue.push_front(id);
        } else {
            self.queue.push_back(id);
        }
        id
    }

    fn read_key(&mut self, key: String, op: Option<OpId>, rotated: bool) {
        if op.is_none() {
            if self.reading.contains(&key) {
                return;
            }
            self.reading.push(key.clone());
        }
        let req = vault::read_key(&self.cfg.mount, &key);
        self.push_call(
            req,
            CallKind::ReadKey { key, op, rotated },
            Target::Vault,
            false,
        );
    }

    /// Takes an operation; replies come later via the reply queue.
    pub fn submit(&mut self, now: Now, id: OpId, op: Op, rng: &mut Drbg) {
        KeyBackend::submit(self, now, id, op, rng)
    }

    /// Holds submitted work until the next flush, at most the request timeout.
    fn hold(&mut self, work: Work) {
        let until = self.now.mono + self.cfg.request_timeout;
        self.fresh.push_back((until, work));
    }

    /// Turns submitted work into (batched) calls; called before outputs are drained.
    fn flush(&mut self) {
        let mut enc: BTreeMap<(String, u32), Vec<PendingEnc>> = BTreeMap::new();
        let mut dec: BTreeMap<String, Vec<PendingDec>> = BTreeMap::new();
        let mut keep = VecDeque::new();
        let fresh = std::mem::take(&mut self.fresh);
        for (until, w) in fresh {
            match w {
                Work::Encrypt(
                    op,
                    Wrap {
                        key,
                        plaintext,
                        context,
                        generated,
                    },
                ) => {
                    let Some(&version) = self.versions.get(&key) else {
                        if until <= self.now.mono {
                            self.replies.push_back((op, Err(BackendError::Timeout)));
                        } else {
                            if !self.reading.contains(&key) {
                                self.read_key(key.clone(), None, false);
                            }
                            keep.push_back((
                                until,
                                Work::Encrypt(
                                    op,
                                    Wrap {
                                        key,
                                        plaintext,
                                        context,
                                        generated,
                                    },
                                ),
                            ));
                        }
                        continue;
                    };
                    let item = EncItem {
                        op,
                        key: key.clone(),
                        version,
                        context,
                        generated: generated.then(|| plaintext.clone()),
                    };
                    enc.entry((key, version))
                        .or_default()
                        .push((until, item, plaintext));
                }
                Work::Decrypt(
                    op,
                    Unwrap {
                        key,
                        envelope,
                        context,
                        rewrap,
                    },
                ) => {
                    if let Some(&min) = self
                        .min_versions
                        .get(&key)
                        .filter(|m| envelope.key_version < **m)
                    {
                        self.replies.push_back((
                            op,
                            Err(BackendError::VersionRetired {
                                key,
                                version: envelope.key_version,
                                min: Some(min),
                            }),
                        ));
                        continue;
                    }
                    let ct = match std::str::from_utf8(&envelope.reference) {
                        Ok(ct) if vault::ciphertext_version(ct) == Some(envelope.key_version) => {
                            ct.to_owned()
                        }
                        _ => {
                            self.replies.push_back((op, Err(bad_ciphertext())));
                            continue;
                        }
                    };
                    let aad =
                        Envelope::aad(BackendKind::Vault, &key, envelope.key_version, &context);
                    dec.entry(key.clone()).or_default().push((
                        until,
                        DecItem {
                            op,
                            key,
                            version: envelope.key_version,
                            context,
                            rewrap,
                        },
                        ct,
                        aad,
                    ));
                }
                Work::Rotate { op, key } => {
                    let req = vault::rotate_key(&self.cfg.mount, &key);
                    self.push_call(req, CallKind::Rotate { key, op }, Target::Vault, false);
                }
                Work::Describe { op, key } => self.read_key(key, Some(op), false),
            }
        }
        self.fresh = keep;
        for ((key, version), items) in enc {
            for chunk in items.chunks(MAX_BATCH) {
                let aads: Vec<Vec<u8>> = chunk
                    .iter()
                    .map(|(_, i, _)| Envelope::aad(BackendKind::Vault, &key, version, &i.context))
                    .collect();
                let reqs: Vec<EncryptItem<'_>> = chunk
                    .iter()
                    .zip(&aads)
                    .map(|((_, _, pt), aad)| EncryptItem {
                        plaintext: pt.expose(),
                        aad,
                    })
                    .collect();
                let req = vault::encrypt(&self.cfg.mount, &key, version, &reqs);
                let until = chunk.iter().map(|c| c.0).min().unwrap_or(self.now.mono);
                let _ = until;
                let kind = CallKind::Encrypt(
                    chunk
                        .iter()
                        .map(|(_, i, _)| EncItem {
                            op: i.op,
                            key: i.key.clone(),
                            version: i.version,
                            context: i.context.clone(),
                            generated: i.generated.clone(),
                        })
                        .collect(),
                );
                self.push_call(req, kind, Target::Vault, false);
            }
        }
        for (key, items) in dec {
            for chunk in items.chunks(MAX_BATCH) {
                let reqs: Vec<DecryptItem<'_>> = chunk
                    .iter()
                    .map(|(_, _, ct, aad)| DecryptItem {
                        ciphertext: ct,
                        aad,
                    })
                    .collect();
                let req = vault::decrypt(&self.cfg.mount, &key, &reqs);
                let kind = CallKind::Decrypt(
                    chunk
                        .iter()
                        .map(|(_, i, _, _)| DecItem {
                            op: i.op,
                            key: i.key.clone(),
                            version: i.version,
                            context: i.context.clone(),
                            rewrap: i.rewrap,
                        })
                        .collect(),
                );
                self.push_call(req, kind, Target::Vault, false);
            }
        }
    }

    fn headers(&self, target: Target, ep: usize) -> (String, Option<String>) {
        match (target, &self.cfg.auth) {
            (Target::Imds, VaultAuthConfig::Azure(a)) => {
                (format!("{}:{}", a.imds_host, a.imds_port), None)
            }
            _ => (
                self.cfg.endpoints[ep].to_string(),
                self.cfg.namespace.clone(),
            ),
        }
    }

    /// A request unanswered this long makes its node stalled: new requests go elsewhere.
    fn stall_after(&self) -> Duration {
        (self.cfg.request_timeout / 2).min(Duration::from_secs(1))
    }

    /// Every link to a Vault node as [`pool`] sees it.
    fn phases(&self) -> Vec<(LinkId, usize, pool::Phase)> {
        self.links
            .iter()
            .filter(|(_, l)| l.target == Target::Vault)
            .map(|(id, l)| {
                let phase = match (l.connected, l.busy) {
                    (false, _) => pool::Phase::Connecting,
                    (true, None) => pool::Phase::Idle,
                    (true, Some(_)) => pool::Phase::Busy { sent: l.sent },
                };
                (*id, l.ep, phase)
            })
            .collect()
    }

    fn view<'a>(&'a self, links: &'a [(LinkId, usize, pool::Phase)]) -> pool::View<'a> {
        pool::View {
            breakers: &self.breakers,
            links,
            now: self.now.mono,
            stall_after: self.stall_after(),
            pool_size: self.cfg.max_links,
        }
    }

    /// Where the next Vault request goes ([`pool`] chooses among the nodes).
    fn pick(&self) -> Pick {
        let links = self.phases();
        self.view(&links).pick()
    }

    /// Sends queued calls on idle links, opening links as needed.
    fn dispatch(&mut self) {
        self.flush();
        let mut imds_waiting = false;
        let mut vault_waits = false;
        let queue: Vec<CallId> = self.queue.iter().copied().collect();
        for id in queue {
            let Some(call) = self.calls.get(&id) else {
                continue;
            };
            if !self.may_send(call) {
                continue;
            }
            match call.target {
                Target::Imds => {
                    let idle = self
                        .links
                        .iter()
                        .find(|(_, l)| l.target == Target::Imds && l.connected && l.busy.is_none())
                        .map(|(id, _)| *id);
                    match idle {
                        Some(link) => self.send(link, id),
                        None => imds_waiting = true,
                    }
                }
                Target::Vault if vault_waits => {}
                Target::Vault => match self.pick() {
                    Pick::Send(link) => self.send(link, id),
                    Pick::Connect(ep) => {
                        self.open(Target::Vault, ep);
                        vault_waits = true;
                    }
                    Pick::Wait => vault_waits = true,
                    Pick::Nowhere => self.no_node_left(id),
                },
            }
        }
        if imds_waiting && !self.links.values().any(|l| l.target == Target::Imds) {
            self.open(Target::Imds, 0);
        }
    }

    /// Every Vault node's breaker is open: the call fails now, saying why the last one failed.
    fn no_node_left(&mut self, id: CallId) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.queue.retain(|c| *c != id);
        let retry = self
            .breakers
            .iter()
            .filter_map(|b| b.open_until())
            .min()
            .map_or(RETRY_AFTER, |t| t.saturating_since(self.now.mono))
            .max(Duration::from_secs(1));
        let reason = if self.last_failure.is_empty() {
            "no Vault node can take requests".to_owned()
        } else {
            self.last_failure.clone()
        };
        self.all_down();
        let e = BackendError::Unavailable {
            reason,
            retry_after: retry,
        };
        self.call_failed(call, e);
    }

    /// No Vault node answers: readiness fails and a probe is planned.
    fn all_down(&mut self) {
        if self.healthy {
            let why = self.last_failure.clone();
            self.log(Level::Warn, format!("Vault is unavailable: {why}"));
        }
        self.healthy = false;
        if self.probe_at.is_none() {
            self.probe_at = Some(self.now.mono + RETRY_AFTER);
        }
    }

    /// Vault node `ep` failed: its breaker opens, its idle links are dropped, and when no node
    /// is left readiness fails.
    fn node_failed(&mut self, ep: usize, why: &str) {
        let pool::Trip {
            pause,
            was_open,
            failures,
        } = self.breakers[ep].trip(self.now.mono);
        let name = self.cfg.endpoints[ep].to_string();
        self.last_failure = format!("{why} (Vault at {name})");
        let idle: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| {
                l.target == Target::Vault && l.ep == ep && l.connected && l.busy.is_none()
            })
            .map(|(id, _)| *id)
            .collect();
        for link in idle {
            self.links.remove(&link);
            self.outputs.push_back(BackendOutput::Close { link });
        }
        if !was_open {
            let others = if self.cfg.endpoints.len() > 1 {
                "; requests go to the next node"
            } else {
                ""
            };
            self.log(
                Level::Warn,
                format!(
                    "Vault at {name} failed ({why}); circuit open for {} ms (failure {failures}){others}",
                    pause.as_millis()
                ),
            );
        }
        if !self.breakers.iter().any(|b| b.closed(self.now.mono)) {
            self.all_down();
        }
    }

    fn open(&mut self, target: Target, ep: usize) {
        let link = self.next_link;
        self.next_link += 1;
        let (host, port, security) = match (target, &self.cfg.auth) {
            (Target::Imds, VaultAuthConfig::Azure(a)) => {
                (a.imds_host.clone(), a.imds_port, LinkSecurity::Plain)
            }
            _ => {
                let e = &self.cfg.endpoints[ep];
                (e.host.clone(), e.port, self.cfg.security)
            }
        };
        self.links.insert(
            link,
            Link {
                target,
                ep,
                connected: false,
                busy: None,
                sent: self.now.mono,
                parser: ResponseParser::new(),
                served: 0,
            },
        );
        self.outputs.push_back(BackendOutput::Connect {
            link,
            host,
            port,
            security,
            connect_timeout: self.cfg.connect_timeout,
        });
    }

    fn send(&mut self, link: LinkId, id: CallId) {
        let ep = self.links[&link].ep;
        let (host, ns) = self.headers(self.calls[&id].target, ep);
        let h = Headers {
            host: &host,
            namespace: ns.as_deref(),
        };
        let call = self.calls.get_mut(&id).expect("queued call exists");
        let bytes = if call.req.auth == Auth::Token {
            let t = self.token.as_ref().expect("checked valid");
            call.req.render(&h, Some(t.token.expose()))
        } else {
            call.req.render(&h, None)
        };
        call.answer_by = Some(self.now.mono + self.cfg.request_timeout);
        call.ep = Some(ep);
        self.queue.retain(|c| *c != id);
        let l = self.links.get_mut(&link).expect("idle link exists");
        l.busy = Some(id);
        l.sent = self.now.mono;
        l.parser.head_request = false;
        self.outputs.push_back(BackendOutput::Send { link, bytes });
    }

    /// Feeds a link event.
    pub fn handle_net(&mut self, now: Now, ev: NetEvent) {
        self.now = now;
        match ev {
            NetEvent::Connected { link } => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.connected = true;
                }
            }
            NetEvent::Received { link, bytes } => {
                let Some(l) = self.links.get_mut(&link) else {
                    return;
                };
                l.parser.push(&bytes);
                while let Some(l) = self.links.get_mut(&link) {
                    match l.parser.next(false) {
                        Ok(Some(resp)) => {
                            l.served += 1;
                            let call = l.busy.take();
                            if resp.closes() || l.target == Target::Imds {
                                self.links.remove(&link);
                                self.outputs.push_back(BackendOutput::Close { link });
                            }
                            if let Some(c) = call {
                                self.complete(c, Ok(resp));
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let call = l.busy.take();
                            let (target, ep) = (l.target, l.ep);
                            self.links.remove(&link);
                            self.outputs.push_back(BackendOutput::Close { link });
                            if target == Target::Vault {
                                self.node_failed(ep, &format!("unreadable answer: {e}"));
                            }
                            if let Some(c) = call {
                                self.complete(c, Err(Failure::Lost(e.to_string())));
                            }
                            break;
                        }
                    }
                }
            }
            NetEvent::Closed { link, reason } => {
                let Some(mut l) = self.links.remove(&link) else {
                    return;
                };
                if let Some(c) = l.busy.take() {
                    match l.parser.next(true) {
                        Ok(Some(resp)) => self.complete(c, Ok(resp)),
                        _ => {
                            // A reused keep-alive link may have been closed by Vault while idle:
                            // send once more on a fresh link.
                            // Vault may have carried the request out before the link broke:
                            // never send a state-changing one twice (a rotation would make
                            // two versions).
                            let retry = l.served > 0
                                && self.calls.get(&c).is_some_and(|c| {
                                    !c.retried
                                        && !matches!(
                                            c.kind,
                                            CallKind::Rotate { .. } | CallKind::CreateKey { .. }
                                        )
                                });
                            if retry {
                                if let Some(call) = self.calls.get_mut(&c) {
                                    call.retried = true;
                                    call.answer_by = None;
                                }
                                self.queue.push_front(c);
                            } else {
                                if l.target == Target::Vault {
                                    self.node_failed(l.ep, &format!("connection lost: {reason}"));
                                }
                                self.complete(
                                    c,
                                    Err(Failure::Lost(format!("connection closed: {reason}"))),
                                );
                            }
                        }
                    }
                } else if !l.connected {
                    self.connect_failed(l.target, l.ep, &reason);
                }
            }
        }
        self.dispatch();
    }

    fn connect_failed(&mut self, target: Target, ep: usize, reason: &str) {
        if target == Target::Vault {
            // Queued calls stay queued: the next node takes them, or none is left.
            self.node_failed(ep, &format!("cannot connect: {reason}"));
            return;
        }
        if self
            .links
            .values()
            .any(|l| l.target == target && l.connected)
        {
            return;
        }
        let where_ = "the Azure IMDS";
        self.log(Level::Warn, format!("cannot reach {where_}: {reason}"));
        let ids: Vec<CallId> = self
            .queue
            .iter()
            .copied()
            .filter(|c| self.calls.get(c).is_some_and(|c| c.target == target))
            .collect();
        for c in ids {
            self.queue.retain(|q| *q != c);
            self.complete(
                c,
                Err(Failure::Lost(format!("cannot reach {where_}: {reason}"))),
            );
        }
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

    /// Encrypts held for `key`'s version cannot proceed: they fail with `e`.
    fn fail_held_encrypts(&mut self, key: &str, e: &BackendError) {
        let fresh = std::mem::take(&mut self.fresh);
        for (u, w) in fresh {
            match w {
                Work::Encrypt(op, w) if w.key == key => {
                    self.replies.push_back((op, Err(e.clone())))
                }
                w => self.fresh.push_back((u, w)),
            }
        }
    }

    /// Work held for a key version or a flush past its deadline answers 504.
    fn expire_held(&mut self, now: Now) {
        let fresh = std::mem::take(&mut self.fresh);
        for (until, w) in fresh {
            if until <= now.mono {
                let op = match &w {
                    Work::Encrypt(op, _) | Work::Decrypt(op, _) => *op,
                    Work::Rotate { op, .. } | Work::Describe { op, .. } => *op,
                };
                self.replies.push_back((op, Err(BackendError::Timeout)));
            } else {
                self.fresh.push_back((until, w));
            }
        }
    }

    /// The token life cycle: a new login, a renewal or the expiry warning, when due.
    fn token_due(&mut self, now: Now) {
        if let Some(t) = &self.token {
            if !self.auth_busy {
                if let Some(e) = t.expires {
                    if now.mono >= e
                        && t.renew_at.is_none()
                        && !matches!(self.cfg.auth, VaultAuthConfig::Token(_))
                    {
                        // Azure token ran out: log in again.
                        self.token = None;
                        self.begin_auth();
                    }
                }
            }
        }
        if let Some(t) = &self.token {
            if t.renew_at.is_some_and(|r| r <= now.mono) && !self.auth_busy && t.can_renew {
                if let Some(t) = self.token.as_mut() {
                    t.renew_at = None;
                }
                self.auth_busy = true;
                self.push_call(vault::renew_self(), CallKind::Renew, Target::Vault, true);
            }
        }
        if let Some(t) = &self.token {
            if let Some(e) = t.expires {
                if !t.can_renew
                    && now.mono + self.cfg.renew_before >= e
                    && !self.warned_expiry
                    && self.healthy
                {
                    self.warned_expiry = true;
                    let left = e.saturating_since(now.mono).as_secs();
                    self.log(Level::Error, format!("VAULT TOKEN EXPIRES IN {left}s AND CANNOT BE RENEWED: readiness now fails; give keybroker a new token (VAULT_TOKEN/BAO_TOKEN or keybroker.vault.token-file) and restart"));
                }
            }
        }
        if self.auth_retry_at.is_some_and(|r| r <= now.mono) {
            self.auth_retry_at = None;
            if matches!(self.cfg.auth, VaultAuthConfig::Azure(_)) && self.token.is_none() {
                self.begin_auth();
            } else if !self.auth_busy {
                self.auth_busy = true;
                self.push_call(vault::lookup_self(), CallKind::Lookup, Target::Vault, true);
            }
        }
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

    fn set_token(&mut self, token: Secret<String>, lease_secs: u64, renewable: bool) {
        // The lease runs from when Vault answered, which is no later than when the request
        // went out: counting from the answer's arrival would stretch the token past its
        // real expiry by the round trip (seconds, with a slow Vault).
        let now = self.auth_sent.take().unwrap_or(self.now.mono);
        let expires = (lease_secs > 0).then(|| now + Duration::from_secs(lease_secs));
        let renew_at = match (expires, renewable) {
            (Some(_), true) => {
                let lease = Duration::from_secs(lease_secs);
                let before = self.cfg.renew_before;
                Some(if cfg!(feature = "planted-bug-renew-after-expiry") {
                    now + lease
                } else if before < lease {
                    now + (lease - before)
                } else {
                    now + lease / 2
                })
            }
            _ => None,
        };
        self.token = Some(Token {
            token,
            verified: true,
            expires,
            renew_at,
            can_renew: renewable && expires.is_some(),
        });
    }

    fn no_longer_renewable(&mut self, why: &str) {
        match &self.cfg.auth {
            VaultAuthConfig::Azure(_) => {
                self.log(
                    Level::Warn,
                    format!("Vault token cannot be renewed ({why}): logging in again"),
                );
                self.begin_auth();
            }
            VaultAuthConfig::Token(_) => {
                let left = self
                    .token
                    .as_ref()
                    .and_then(|t| t.expires)
                    .map(|e| e.saturating_since(self.now.mono).as_secs())
                    .unwrap_or(0);
                self.log(Level::Error, format!("VAULT TOKEN CANNOT BE RENEWED ({why}); it expires in {left}s, and readiness fails {}s before that", self.cfg.renew_before.as_secs()));
                if let Some(t) = self.token.as_mut() {
                    t.can_renew = false;
                    t.renew_at = None;
                }
            }
        }
    }

    fn map_error(
        &self,
        req: &VaultRequest,
        resp: &HttpResponse,
        decrypting: bool,
        key: &str,
    ) -> BackendError {
        let msg = vault::errors(&resp.body);
        let path = req
            .path
            .trim_start_matches("/v1/")
            .split('?')
            .next()
            .unwrap_or("")
            .to_owned();
        let lower = msg.to_ascii_lowercase();
        match resp.status {
            403 if lower.contains("permission denied") => {
                let cap = if req.method == "GET" {
                    "read"
                } else {
                    "update"
                };
                let ns = self
                    .cfg
                    .namespace
                    .as_deref()
                    .map(|n| format!(" in namespace {n:?}"))
                    .unwrap_or_default();
                BackendError::Failed(format!(
                    "Vault denied {} {}: permission denied; the token's policy needs {cap:?} on path \"{path}\"{ns}",
                    req.method, req.path
                ))
            }
            503 | 429 | 473 | 307 | 308 | 500
                if resp.status != 500 || lower.contains("sealed") || lower.contains("standby") =>
            {
                let ra = resp
                    .header("retry-after")
                    .and_then(|s| s.parse().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(RETRY_AFTER);
                let reason = if lower.contains("sealed") {
                    "Vault is sealed".to_owned()
                } else if lower.contains("standby") || matches!(resp.status, 307 | 308 | 429 | 473)
                {
                    "Vault node is a standby".to_owned()
                } else {
                    format!("Vault answered {}: {msg}", resp.status)
                };
                BackendError::Unavailable {
                    reason,
                    retry_after: ra,
                }
            }
            404 => BackendError::UnknownKey(key.to_owned()),
            400 if decrypting => bad_ciphertext(),
            400 if lower.contains("not found") || lower.contains("no existing key") => {
                BackendError::UnknownKey(key.to_owned())
            }
            400 => BackendError::BadRequest(format!(
                "Vault refused {} {}: {msg}",
                req.method, req.path
            )),
            s => BackendError::Failed(format!(
                "Vault answered {s} to {} {}: {msg}",
                req.method, req.path
            )),
        }
    }

    /// Takes in what Vault says of `key`; returns the latest version now used for encrypt.
    ///
    /// Versions only grow: an answer from a standby that has not yet seen a rotation (raft
    /// followers lag the leader) does not take the latest version back.
    fn learn_key(&mut self, key: &str, info: &vault::KeyInfo) -> u32 {
        let before = self.versions.get(key).copied();
        let latest = before.map_or(info.latest, |b| b.max(info.latest));
        self.versions.insert(key.to_owned(), latest);
        if before.is_some_and(|b| b != latest) {
            self.log(
                Level::Info,
                format!(
                    "Vault transit key {key:?}: latest version is now {latest} (was {}); new ciphertexts use it",
                    before.unwrap_or(0)
                ),
            );
        }
        let min_before = self
            .min_versions
            .insert(key.to_owned(), info.min_decryption);
        if min_before.unwrap_or(1) != info.min_decryption {
            self.log(
                Level::Info,
                format!(
                    "Vault transit key {key:?}: min_decryption_version is {}; older ciphertexts answer 400 key_version_retired",
                    info.min_decryption
                ),
            );
        }
        latest
    }

    fn fail_ops(&mut self, ops: Vec<OpId>, e: BackendError) {
        for op in ops {
            self.replies.push_back((op, Err(e.clone())));
        }
    }

    /// Sends `call` again, to the next Vault node, if it may go there; gives it back otherwise.
    fn retry_elsewhere(&mut self, id: CallId, mut call: Call, not_done: bool) -> Option<Call> {
        call.tries += 1;
        let may = match call.kind {
            // Not sent twice unless Vault said it did nothing.
            CallKind::Rotate { .. } | CallKind::CreateKey { .. } => not_done,
            _ => true,
        };
        if call.target != Target::Vault || !may || call.tries >= self.cfg.endpoints.len() {
            return Some(call);
        }
        call.answer_by = None;
        self.calls.insert(id, call);
        self.queue.push_front(id);
        None
    }

    fn complete(&mut self, id: CallId, result: Result<HttpResponse, Failure>) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.queue.retain(|c| *c != id);
        let resp = match result {
            Ok(r) => r,
            Err(f) => {
                // A request lost in flight is sent again to the next node (its node already
                // failed); one that timed out is not (the client's deadline has passed).
                let call = match f {
                    Failure::Lost(_) if call.answer_by.is_some() => {
                        match self.retry_elsewhere(id, call, false) {
                            Some(c) => c,
                            None => return,
                        }
                    }
                    _ => call,
                };
                let e = match f {
                    Failure::Timeout => BackendError::Timeout,
                    Failure::Lost(reason) => BackendError::Unavailable {
                        reason,
                        retry_after: RETRY_AFTER,
                    },
                };
                self.call_failed(call, e);
                return;
            }
        };
        // A standby that has not yet seen the latest rotation refuses the new version; another
        // node has it. Only versions keybroker knows exist are sent on, so a forged token with
        // a version from the future is still a plain 400.
        let lagging = resp.status == 400
            && self.cfg.endpoints.len() > 1
            && match &call.kind {
                CallKind::Encrypt(_) => vault::errors(&resp.body)
                    .to_ascii_lowercase()
                    .contains("higher than the latest key version"),
                CallKind::Decrypt(items) => {
                    resp.body.windows(18).any(|w| w == b"version is too new")
                        && items
                            .iter()
                            .all(|i| self.versions.get(&i.key).is_some_and(|v| i.version <= *v))
                }
                _ => false,
            };
        let call = if lagging {
            if let Some(ep) = call.ep {
                self.node_failed(ep, "it has not yet seen the key's latest version");
            }
            match self.retry_elsewhere(id, call, true) {
                Some(c) => c,
                None => return,
            }
        } else {
            call
        };
        let call = match (call.target, call.ep) {
            (Target::Vault, Some(ep)) => match node_failure(&resp) {
                Some((why, not_done)) => {
                    self.node_failed(ep, &why);
                    match self.retry_elsewhere(id, call, not_done) {
                        Some(c) => c,
                        None => return,
                    }
                }
                None => {
                    self.breakers[ep].reset();
                    if !self.healthy && self.token.is_some() {
                        self.log(Level::Info, "Vault answers again".into());
                    }
                    self.healthy = true;
                    call
                }
            },
            _ => call,
        };
        let ok = status_ok(resp.status);
        self.auth_sent = call
            .answer_by
            .map(|a| Instant::from_epoch(a.since_epoch().saturating_sub(self.cfg.request_timeout)));
        match call.kind {
            CallKind::Encrypt(items) => self.encrypted(&call.req, &resp, ok, items),
            CallKind::Decrypt(items) => self.decrypted(&call.req, &resp, ok, items),
            CallKind::ReadKey { key, op, rotated } => {
                self.key_read(&call.req, &resp, ok, key, op, rotated)
            }
            CallKind::CreateKey { key } => self.key_created(&call.req, &resp, ok, key),
            CallKind::Rotate { key, op } => self.rotated(&call.req, &resp, ok, key, op),
            CallKind::Lookup => self.looked_up(&resp, ok),
            CallKind::Renew => self.renewed(&resp, ok),
            CallKind::ImdsToken => self.imds_token_answered(&resp, ok),
            CallKind::ImdsInstance { jwt } => self.imds_instance_answered(&resp, ok, jwt),
            CallKind::Login => self.logged_in(&resp, ok),
        }
    }

    /// Vault answered a batch of encrypts: each item's token, or why not.
    fn encrypted(
        &mut self,
        req: &VaultRequest,
        resp: &HttpResponse,
        ok: bool,
        items: Vec<EncItem>,
    ) {
        let key = items.first().map(|i| i.key.clone()).unwrap_or_default();
        if !(ok || partial_batch_failure(resp, items.len())) {
            let e = self.map_error(req, resp, false, &key);
            return self.fail_ops(items.iter().map(|i| i.op).collect(), e);
        }
        match vault::parse_encrypt(&resp.body, items.len()) {
            Err(why) => self.fail_ops(
                items.iter().map(|i| i.op).collect(),
                BackendError::Failed(why),
            ),
            Ok(results) => {
                for (item, r) in items.into_iter().zip(results) {
                    let reply = match r {
                        Ok((ct, v)) if v == item.version => {
                            let token = Envelope {
                                backend: BackendKind::Vault,
                                key_name: item.key.clone(),
                                key_version: v,
                                reference: ct.into_bytes(),
                            }
                            .encode();
                            Ok(wrapped(item.generated, token, v))
                        }
                        Ok((_, v)) => Err(BackendError::Failed(format!(
                            "Vault encrypted with key version {v}, not the requested {}",
                            item.version
                        ))),
                        Err(e) => Err(BackendError::BadRequest(format!(
                            "Vault refused the item: {e}"
                        ))),
                    };
                    self.replies.push_back((item.op, reply));
                }
            }
        }
    }

    /// Vault answered a batch of decrypts: each item's plaintext (or its rewrap), or why not.
    fn decrypted(
        &mut self,
        req: &VaultRequest,
        resp: &HttpResponse,
        ok: bool,
        items: Vec<DecItem>,
    ) {
        let key = items.first().map(|i| i.key.clone()).unwrap_or_default();
        if !(ok || partial_batch_failure(resp, items.len())) {
            if resp.status == 400 && vault::is_version_too_old(&vault::errors(&resp.body)) {
                // Vault's min_decryption_version was raised since the key was last read.
                self.read_key(key, None, false);
                for i in items {
                    let e = retired(&i, None);
                    self.replies.push_back((i.op, Err(e)));
                }
                return;
            }
            let e = self.map_error(req, resp, true, &key);
            return self.fail_ops(items.iter().map(|i| i.op).collect(), e);
        }
        match vault::parse_decrypt(&resp.body, items.len()) {
            Err(why) => self.fail_ops(
                items.iter().map(|i| i.op).collect(),
                BackendError::Failed(why),
            ),
            Ok(results) => {
                for (item, r) in items.into_iter().zip(results) {
                    match r {
                        Ok(pt) => match unwrapped(item.key, item.context, item.rewrap, pt) {
                            Ok(reply) => self.replies.push_back((item.op, Ok(reply))),
                            Err(wrap) => self.hold(Work::Encrypt(item.op, wrap)),
                        },
                        Err(e) if vault::is_version_too_old(&e) => {
                            let e = retired(&item, None);
                            self.replies.push_back((item.op, Err(e)));
                        }
                        Err(_) => self.replies.push_back((item.op, Err(bad_ciphertext()))),
                    }
                }
            }
        }
    }

    /// Vault answered a read of `key`'s configuration (start, refresh, describe, or after a rotation).
    fn key_read(
        &mut self,
        req: &VaultRequest,
        resp: &HttpResponse,
        ok: bool,
        key: String,
        op: Option<OpId>,
        rotated: bool,
    ) {
        if op.is_none() {
            self.reading.retain(|k| *k != key);
        }
        if ok {
            match vault::parse_key(&resp.body) {
                Ok(info) => {
                    if !info.aead && op.is_none() {
                        self.log(Level::Error, format!("Vault transit key {key:?} is not an AES-GCM/ChaCha20 key: associated data (context binding) needs one"));
                    }
                    let latest = self.learn_key(&key, &info);
                    if let Some(op) = op {
                        let reply = if rotated {
                            Reply::Rotated {
                                key_version: latest,
                            }
                        } else {
                            Reply::Described {
                                backend: BackendKind::Vault,
                                latest_version: latest,
                                versions: info.versions,
                            }
                        };
                        self.replies.push_back((op, Ok(reply)));
                    }
                }
                Err(why) => self.fail_ops(op.into_iter().collect(), BackendError::Failed(why)),
            }
        } else if resp.status == 404 && op.is_none() && self.cfg.auto_create {
            self.log(
                Level::Info,
                format!(
                    "creating Vault transit key {key:?} (keybroker.vault.key.auto-create=true)"
                ),
            );
            let req = vault::create_key(&self.cfg.mount, &key);
            self.push_call(req, CallKind::CreateKey { key }, Target::Vault, true);
        } else {
            let e = self.map_error(req, resp, false, &key);
            if op.is_none() {
                self.log(Level::Error, format!("Vault transit key {key:?}: {e}"));
                self.fail_held_encrypts(&key, &e);
            }
            self.fail_ops(op.into_iter().collect(), e);
        }
    }

    /// Vault answered the creation of a missing `key`.
    fn key_created(&mut self, req: &VaultRequest, resp: &HttpResponse, ok: bool, key: String) {
        if ok {
            self.read_key(key, None, false);
        } else {
            let e = self.map_error(req, resp, false, &key);
            self.log(
                Level::Error,
                format!("cannot create Vault transit key {key:?}: {e}"),
            );
        }
    }

    /// Vault answered a rotation of `key`.
    fn rotated(
        &mut self,
        req: &VaultRequest,
        resp: &HttpResponse,
        ok: bool,
        key: String,
        op: OpId,
    ) {
        if ok {
            // Vault answers a rotate with the key's configuration; an older one answers
            // 204, and the key is read.
            match vault::parse_key(&resp.body) {
                Ok(info) => {
                    let key_version = self.learn_key(&key, &info);
                    self.replies
                        .push_back((op, Ok(Reply::Rotated { key_version })));
                }
                Err(_) => self.read_key(key, Some(op), true),
            }
        } else {
            let e = self.map_error(req, resp, false, &key);
            self.fail_ops(vec![op], e);
        }
    }

    /// Vault answered the token's lookup-self.
    fn looked_up(&mut self, resp: &HttpResponse, ok: bool) {
        self.auth_busy = false;
        if ok {
            match vault::parse_lookup(&resp.body) {
                Ok((ttl, renewable)) => {
                    let tok = self.token.as_ref().map(|t| t.token.clone());
                    if let Some(tok) = tok {
                        let first = self.token.as_ref().is_some_and(|t| !t.verified);
                        self.set_token(tok, ttl, renewable);
                        if first {
                            self.log(
                                Level::Info,
                                format!(
                                    "Vault token accepted: ttl {}, renewable {renewable}",
                                    if ttl == 0 {
                                        "none".to_string()
                                    } else {
                                        format!("{ttl}s")
                                    }
                                ),
                            );
                        }
                        if ttl > 0 && !renewable && first {
                            self.no_longer_renewable("it is not renewable");
                        }
                    }
                }
                Err(why) => self.log(Level::Error, format!("Vault token lookup: {why}")),
            }
        } else if resp.status == 403 {
            self.log(Level::Error, "VAULT TOKEN REJECTED: auth/token/lookup-self answered permission denied (token invalid, expired or revoked); readiness fails".into());
            self.token = None;
        } else {
            self.auth_retry_at = Some(self.now.mono + RETRY_AFTER);
        }
    }

    /// Vault answered the token's renewal.
    fn renewed(&mut self, resp: &HttpResponse, ok: bool) {
        self.auth_busy = false;
        if ok {
            match vault::parse_auth(&resp.body) {
                Ok(g)
                    if g.lease_secs == 0
                        && self.token.as_ref().is_some_and(|t| t.expires.is_some()) =>
                {
                    // A renewal that grants no time (the max TTL is used up) is not a
                    // token that never expires: it still ends when it did.
                    self.no_longer_renewable("its max TTL is reached");
                }
                Ok(g) => {
                    let prev = self.token.as_ref().and_then(|t| t.expires);
                    self.set_token(g.token, g.lease_secs, g.renewable);
                    let new = self.token.as_ref().and_then(|t| t.expires);
                    if g.lease_secs > 0
                        && (g.lease_secs <= self.cfg.renew_before.as_secs() || new <= prev)
                    {
                        self.no_longer_renewable("its max TTL is reached");
                    }
                }
                Err(why) => self.no_longer_renewable(&why),
            }
        } else if resp.status == 503 || resp.status == 429 {
            if let Some(t) = self.token.as_mut() {
                t.renew_at = Some(self.now.mono + RETRY_AFTER);
            }
        } else {
            let why = vault::errors(&resp.body);
            self.no_longer_renewable(&why);
        }
    }

    /// The Azure IMDS answered the managed-identity token request.
    fn imds_token_answered(&mut self, resp: &HttpResponse, ok: bool) {
        if ok {
            match vault::parse_imds_token(&resp.body) {
                Ok((jwt, _)) => {
                    self.push_call(
                        vault::imds_instance(),
                        CallKind::ImdsInstance { jwt },
                        Target::Imds,
                        true,
                    );
                }
                Err(why) => self.auth_failed(&why),
            }
        } else {
            let why = format!("IMDS token request answered {}", resp.status);
            self.auth_failed(&why);
        }
    }

    /// The Azure IMDS answered the instance metadata request.
    fn imds_instance_answered(&mut self, resp: &HttpResponse, ok: bool, jwt: Secret<String>) {
        let meta = if ok {
            vault::parse_imds_instance(&resp.body)
        } else {
            Err(format!("IMDS instance request answered {}", resp.status))
        };
        match (meta, &self.cfg.auth) {
            (Ok(meta), VaultAuthConfig::Azure(a)) => {
                let req = vault::azure_login(&a.path, &a.role, jwt.expose(), &meta);
                self.push_call(req, CallKind::Login, Target::Vault, true);
            }
            (Err(why), _) => self.auth_failed(&why),
            _ => {}
        }
    }

    /// Vault answered the Azure login.
    fn logged_in(&mut self, resp: &HttpResponse, ok: bool) {
        self.auth_busy = false;
        let grant = if ok {
            vault::parse_auth(&resp.body)
        } else {
            Err(format!("{} {}", resp.status, vault::errors(&resp.body)))
        };
        match grant {
            Ok(g) => {
                let lease = g.lease_secs;
                self.set_token(g.token, lease, g.renewable);
                self.log(
                    Level::Info,
                    format!("logged in to Vault with Azure managed identity: lease {lease}s"),
                );
            }
            Err(why) => {
                self.auth_busy = true;
                self.auth_failed(&format!("Vault login refused: {why}"));
            }
        }
    }

    fn auth_failed(&mut self, why: &str) {
        self.auth_busy = false;
        self.log(
            Level::Error,
            format!(
                "Azure login to Vault failed: {why}; retrying in {}s",
                RETRY_AFTER.as_secs()
            ),
        );
        self.auth_retry_at = Some(self.now.mono + RETRY_AFTER);
        if !self.token_valid() {
            self.token = None;
        }
    }

    fn call_failed(&mut self, call: Call, e: BackendError) {
        match call.kind {
            CallKind::Lookup | CallKind::Renew => {
                self.auth_busy = false;
                if !matches!(call.kind, CallKind::Renew) {
                    self.auth_retry_at = Some(self.now.mono + RETRY_AFTER);
                }
                // A renewal due while this call was out (it waited for it) is tried again
                // later too: left in the past, no timeout would act on it and the shell's
                // timer would spin.
                let now = self.now.mono;
                if let Some(t) = self.token.as_mut() {
                    if matches!(call.kind, CallKind::Renew) || t.renew_at.is_some_and(|r| r <= now)
                    {
                        t.renew_at = Some(now + RETRY_AFTER);
                    }
                }
            }
            CallKind::ImdsToken | CallKind::ImdsInstance { .. } | CallKind::Login => {
                let why = match &e {
                    BackendError::Unavailable { reason, .. } => reason.clone(),
                    e => e.to_string(),
                };
                self.auth_failed(&why)
            }
            CallKind::ReadKey { key, op: None, .. } => {
                self.reading.retain(|k| *k != key);
                self.fail_held_encrypts(&key, &e);
            }
            CallKind::CreateKey { .. } => {}
            kind => self.fail_ops(kind.ops(), e),
        }
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
