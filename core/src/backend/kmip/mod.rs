//! The `kmip1` backend: master keys live in a KMIP HSM; keybroker asks it to Encrypt/Decrypt.
//!
//! # Start
//! [`KmipBackend::start`] opens one link per endpoint and runs, on the first link that comes
//! up: DiscoverVersions offering 1.4…1.0 (if the server does not know the operation: a Query
//! at 1.2, then at 1.0), then for every served key name a Locate by Name. Locate returns every
//! object with that name; **version numbers follow creation order**: the oldest object is
//! version 1 (PyKMIP, like most HSMs, lists matches newest first, so the list is reversed).
//! When no object has the name and `keybroker.hsm.key.auto-create=true`, an AES-256 key is
//! Created and Activated; otherwise the node is not ready (/readyz 503), logs why, and retries
//! every 5 s. The endpoints are assumed to be one HSM cluster (same objects, same versions).
//! A ready node re-Locates its keys every [`REFRESH_EVERY`] to learn rotations made elsewhere.
//!
//! # Ciphertexts
//! With protocol ≥ 1.4 keybroker sends AES-GCM with its own 12-byte IV (from the [`Drbg`]),
//! a 16-byte tag and AAD = [`Envelope::aad`]. Below 1.4, AES-CBC/PKCS5 with a fresh 16-byte
//! IV over `plaintext ‖ SHA-256(aad ‖ plaintext)`, checked after Decrypt: this binds context,
//! key name and version and detects tampering, but it is not an AEAD (the check runs on
//! keybroker after the HSM has decrypted; a padding error and a digest mismatch give the same
//! 400). The kb1 reference is
//! `u8 mode (1 GCM, 2 CBC) ‖ u8 len ‖ Unique Identifier ‖ IV ‖ [tag, GCM] ‖ ciphertext`,
//! so Decrypt never needs a Locate. A GCM ciphertext is refused (502) while the HSM speaks
//! < 1.4, because such servers drop the tag instead of checking it.
//!
//! # Links and failover
//! Up to `keybroker.hsm.pool-size` kept-alive links per endpoint, one request in flight per
//! link. A request goes to the first endpoint (in configured order) whose circuit breaker is
//! closed, that is not stalled (a request of it unanswered for `min(1 s, timeout/2)`), and that
//! has an idle link; otherwise a link is opened on the first such endpoint not already
//! connecting. A connect failure, a lost link with a request on it, or a request timeout opens
//! the endpoint's breaker for 1 s, doubling to 30 s while failures repeat; after the pause one
//! new connection probes it. Encrypt, Decrypt and Locate whose link drops are retried once on
//! another link; Create/Activate are not (they change state): 503 + Retry-After. A request
//! unanswered after `keybroker.hsm.request-timeout` fails 504 and its link is closed.
use super::pool::{Breaker, Pick, BREAKER_BASE};
#[cfg(test)]
use super::Op;
use super::{bad_ciphertext, no_entropy, wrapped, KeyBackend, Unwrap, Wrap};
use super::{BackendError, BackendOutput, NetEvent, OpId, Reply, ReplyQueue};
use super::{LinkId, LinkSecurity};
use crate::drbg::Drbg;
use crate::envelope::{BackendKind, Envelope};
use crate::kmip::messages::{self, BatchResult, CryptoParams, ProtocolVersion, Request};
use crate::kmip::ttlv::{self, Limits};
use crate::log::Level;
use crate::secret::Secret;
use crate::time::{Instant, Now};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;
use zeroize::Zeroize;

/// The KMIP port when neither the URL nor `kms.hsm.server.port` gives one.
pub const DEFAULT_PORT: u16 = crate::config::endpoint::KMIP_PORT;
/// Versions keybroker offers in DiscoverVersions, newest first.
pub const OFFERED: [ProtocolVersion; 5] = [
    ProtocolVersion::V1_4,
    ProtocolVersion::V1_3,
    ProtocolVersion::V1_2,
    ProtocolVersion::V1_1,
    ProtocolVersion::V1_0,
];
const DIGEST: usize = 32;
const START_RETRY: Duration = Duration::from_secs(5);
const INTERNAL_RETRIES: u32 = 3;
/// How often a ready node re-Locates its keys to learn versions rotated by other nodes.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

mod errors;
mod jobs;
mod link;
mod reference;

use errors::*;
use jobs::*;
use link::*;
use reference::*;

pub use crate::config::endpoint::Endpoint;

/// What the KMIP backend needs from the configuration.
#[derive(Clone, Debug)]
pub struct KmipConfig {
    /// HSM endpoints, in order of preference.
    pub endpoints: Vec<Endpoint>,
    /// Key names served (the default first).
    pub keys: Vec<String>,
    /// Create a missing key (`keybroker.hsm.key.auto-create`).
    pub auto_create: bool,
    /// Links per endpoint (`keybroker.hsm.pool-size`).
    pub pool_size: usize,
    /// Per-request deadline (`keybroker.hsm.request-timeout`).
    pub request_timeout: Duration,
    /// Connect + TLS handshake deadline (`keybroker.hsm.connect-timeout`).
    pub connect_timeout: Duration,
    /// Highest protocol version offered (`keybroker.hsm.max-version`, default 1.4).
    pub max_version: ProtocolVersion,
    /// Username and password put in every request header (`keybroker.hsm.kmip.username`).
    pub credential: Option<messages::Credential>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Idle,
    Starting,
    Ready,
    NotReady { retry_at: Instant, reason: String },
}

/// The KMIP backend state machine (sans-IO): links, jobs, breakers, known key versions.
pub struct KmipBackend {
    cfg: KmipConfig,
    eps: Vec<Breaker>,
    links: BTreeMap<LinkId, Link>,
    next_link: LinkId,
    jobs: BTreeMap<JobId, Job>,
    next_job: JobId,
    control: VecDeque<JobId>,
    queue: VecDeque<JobId>,
    version: Option<ProtocolVersion>,
    /// Unique identifiers by key name, oldest first (version n at index n-1).
    keys: BTreeMap<String, Vec<String>>,
    lookups_pending: usize,
    missing: Vec<String>,
    phase: Phase,
    refresh_at: Option<Instant>,
    now: Instant,
    pub(crate) replies: ReplyQueue,
    pub(crate) outputs: VecDeque<BackendOutput>,
}

impl fmt::Debug for KmipBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmipBackend")
            .field("endpoints", &self.cfg.endpoints)
            .field("phase", &self.phase)
            .field("version", &self.version)
            .field("links", &self.links.len())
            .field("jobs", &self.jobs.len())
            .finish()
    }
}

impl KmipBackend {
    /// A backend for `cfg`; nothing happens until [`KmipBackend::start`].
    pub fn new(cfg: KmipConfig) -> KmipBackend {
        KmipBackend {
            eps: cfg.endpoints.iter().map(|_| Breaker::default()).collect(),
            cfg,
            links: BTreeMap::new(),
            next_link: 1,
            jobs: BTreeMap::new(),
            next_job: 1,
            control: VecDeque::new(),
            queue: VecDeque::new(),
            version: None,
            keys: BTreeMap::new(),
            lookups_pending: 0,
            missing: Vec::new(),
            phase: Phase::Idle,
            refresh_at: None,
            now: Instant::default(),
            replies: VecDeque::new(),
            outputs: VecDeque::new(),
        }
    }

    /// The versions offered in DiscoverVersions: [`OFFERED`] up to the configured maximum.
    fn offered(&self) -> Vec<ProtocolVersion> {
        OFFERED
            .into_iter()
            .filter(|v| *v <= self.cfg.max_version)
            .collect()
    }

    /// The negotiated protocol version, once known.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    fn log(&mut self, level: Level, message: String) {
        self.outputs.push_back(BackendOutput::Log {
            component: "kmip",
            level,
            message,
        });
    }

    /// Whether the backend can serve requests (for /readyz).
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready && self.eps.iter().any(|e| e.closed(self.now))
    }

    /// Each HSM endpoint's breaker and health, in configured order.
    pub fn endpoints(&self) -> Vec<super::EndpointStatus> {
        let links = self.phases();
        self.view(&links)
            .statuses(self.cfg.endpoints.iter().map(|e| e.to_string()))
    }

    /// Opens links and starts version negotiation and key lookup.
    pub fn start(&mut self, now: Now, rng: &mut Drbg) {
        self.now = now.mono;
        for ep in 0..self.cfg.endpoints.len() {
            self.connect(ep);
        }
        self.begin_start();
        self.pump(rng);
    }

    fn begin_start(&mut self) {
        self.phase = Phase::Starting;
        self.missing.clear();
        let stage = if self.cfg.max_version >= ProtocolVersion::V1_1 {
            0
        } else {
            2
        };
        self.add_job(None, Task::Negotiate { stage }, true);
    }

    /// Queues an operation's job unless the backend cannot take work.
    fn enqueue(&mut self, id: OpId, task: Task, rng: &mut Drbg) {
        match &self.phase {
            Phase::NotReady { retry_at, reason } => {
                let e = unavailable(
                    format!("KMIP backend not ready: {reason}"),
                    retry_at.saturating_since(self.now),
                );
                self.replies.push_back((id, Err(e)));
                return;
            }
            Phase::Idle => {
                self.replies.push_back((
                    id,
                    Err(unavailable("KMIP backend not started", BREAKER_BASE)),
                ));
                return;
            }
            _ => {}
        }
        self.add_job(Some(id), task, false);
        self.pump(rng);
    }

    fn start_failed(&mut self, reason: String) {
        if self.phase == Phase::Ready {
            return;
        }
        let retry_at = self.now + START_RETRY;
        self.log(
            Level::Error,
            format!("kmip: not ready: {reason}; /readyz answers 503; retrying in 5 s"),
        );
        // Drop the rest of the start sequence; it is redone on retry.
        let ctl: Vec<JobId> = self.control.drain(..).collect();
        for id in ctl {
            self.jobs.remove(&id);
        }
        self.lookups_pending = 0;
        self.phase = Phase::NotReady { retry_at, reason };
        let waiting: Vec<JobId> = self.queue.drain(..).collect();
        for id in waiting {
            self.fail_job(id, unavailable("KMIP backend not ready", START_RETRY));
        }
    }

    fn version(&self) -> ProtocolVersion {
        self.version.unwrap_or(ProtocolVersion::V1_2)
    }
}

impl KeyBackend for KmipBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Kmip
    }
    fn clock(&mut self, now: Now) {
        self.now = self.now.max(now.mono);
    }
    fn replies(&mut self) -> &mut ReplyQueue {
        &mut self.replies
    }
    fn encrypt(&mut self, id: OpId, wrap: Wrap, rng: &mut Drbg) {
        self.enqueue(id, Task::Encrypt(wrap), rng)
    }
    fn decrypt(&mut self, id: OpId, unwrap: Unwrap, rng: &mut Drbg) {
        self.enqueue(id, Task::Decrypt(unwrap), rng)
    }
    fn rotate(&mut self, id: OpId, key: String, rng: &mut Drbg) {
        let stage = RotateStage::Create;
        self.enqueue(id, Task::Rotate { key, stage }, rng)
    }
    fn describe(&mut self, id: OpId, key: String, rng: &mut Drbg) {
        self.enqueue(id, Task::Describe { key }, rng)
    }
    fn poll_output(&mut self) -> Option<BackendOutput> {
        self.outputs.pop_front()
    }
    fn start(&mut self, now: Now, rng: &mut Drbg) {
        KmipBackend::start(self, now, rng)
    }
    fn handle_net(&mut self, now: Now, event: NetEvent, rng: &mut Drbg) {
        KmipBackend::handle_net(self, now, event, rng)
    }
    fn handle_timeout(&mut self, now: Now, rng: &mut Drbg) {
        KmipBackend::handle_timeout(self, now, rng)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        KmipBackend::poll_timeout(self)
    }
    fn endpoints(&self) -> Vec<super::EndpointStatus> {
        KmipBackend::endpoints(self)
    }
    fn is_ready(&self) -> bool {
        KmipBackend::is_ready(self)
    }
}

#[cfg(test)]
mod tests;
