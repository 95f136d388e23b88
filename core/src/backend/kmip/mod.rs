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
const MODE_GCM: u8 = 1;
const MODE_CBC: u8 = 2;
const GCM_IV: usize = 12;
const GCM_TAG: usize = 16;
const CBC_IV: usize = 16;
const DIGEST: usize = 32;
const START_RETRY: Duration = Duration::from_secs(5);
const INTERNAL_RETRIES: u32 = 3;
/// How often a ready node re-Locates its keys to learn versions rotated by other nodes.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

// Result Reason values (KMIP 1.0–2.0).
const R_ITEM_NOT_FOUND: u32 = 0x01;
const R_AUTHENTICATION: u32 = 0x03;
const R_INVALID_MESSAGE: u32 = 0x04;
const R_MISSING_DATA: u32 = 0x06;
const R_INVALID_FIELD: u32 = 0x07;
const R_CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;
const R_PERMISSION_DENIED: u32 = 0x0C;
const R_WRONG_KEY_LIFECYCLE_STATE: u32 = 0x43;
const R_GENERAL_FAILURE: u32 = 0x100;

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

type JobId = u64;

#[derive(Debug)]
enum LinkState {
    Connecting { since: Instant },
    Idle,
    Busy { job: JobId, sent: Instant },
}

struct Link {
    ep: usize,
    state: LinkState,
    buf: Vec<u8>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

enum LookupStage {
    Locate,
    Create,
    Activate(String),
}

enum RotateStage {
    Create,
    Activate(String),
    Locate(String),
}

/// The work a job does; each stage is one KMIP request.
enum Task {
    Negotiate {
        stage: u8,
    },
    Lookup {
        name: String,
        stage: LookupStage,
    },
    Encrypt(Wrap),
    Decrypt(Unwrap),
    Rotate {
        key: String,
        stage: RotateStage,
    },
    Describe {
        key: String,
    },
    /// Periodic Locate while ready, to learn versions other nodes rotated in.
    Refresh {
        key: String,
    },
}

/// What an Encrypt request was built with, to make the token from the answer.
struct Sent {
    uid: String,
    version: u32,
    iv: Vec<u8>,
    gcm: bool,
}

struct Job {
    owner: Option<OpId>,
    task: Task,
    queued_at: Instant,
    retries: u32,
    sent: Option<Sent>,
}

impl Job {
    fn idempotent(&self) -> bool {
        // The simulator's test that it has teeth builds core with this planted bug.
        if cfg!(feature = "planted-bug-failover-retry-nonidempotent") {
            return true;
        }
        match &self.task {
            Task::Negotiate { .. } | Task::Encrypt(_) | Task::Decrypt(_) => true,
            Task::Describe { .. } | Task::Refresh { .. } => true,
            Task::Lookup { stage, .. } => matches!(stage, LookupStage::Locate),
            Task::Rotate { stage, .. } => matches!(stage, RotateStage::Locate(_)),
        }
    }
    fn op_name(&self) -> &'static str {
        match &self.task {
            Task::Negotiate { .. } => "DiscoverVersions",
            Task::Lookup { stage, .. } => match stage {
                LookupStage::Locate => "Locate",
                LookupStage::Create => "Create",
                LookupStage::Activate(_) => "Activate",
            },
            Task::Rotate { stage, .. } => match stage {
                RotateStage::Create => "Create",
                RotateStage::Activate(_) => "Activate",
                RotateStage::Locate(_) => "Locate",
            },
            Task::Encrypt(_) => "Encrypt",
            Task::Decrypt(_) => "Decrypt",
            Task::Describe { .. } | Task::Refresh { .. } => "Locate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Idle,
    Starting,
    Ready,
    NotReady { retry_at: Instant, reason: String },
}

enum Next {
    /// The job has another request to send (built at dispatch).
    Again,
    /// An internal job is done.
    Finished,
    Done(Result<Reply, BackendError>),
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

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The parts of a kb1 reference made by this backend.
struct Reference<'a> {
    gcm: bool,
    uid: &'a str,
    iv: &'a [u8],
    tag: &'a [u8],
    ct: &'a [u8],
}

fn encode_reference(gcm: bool, uid: &str, iv: &[u8], tag: &[u8], ct: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(2 + uid.len() + iv.len() + tag.len() + ct.len());
    r.push(if gcm { MODE_GCM } else { MODE_CBC });
    r.push(uid.len() as u8);
    r.extend_from_slice(uid.as_bytes());
    r.extend_from_slice(iv);
    r.extend_from_slice(tag);
    r.extend_from_slice(ct);
    r
}

fn decode_reference(r: &[u8]) -> Option<Reference<'_>> {
    let (&mode, rest) = r.split_first()?;
    let (&n, rest) = rest.split_first()?;
    if n == 0 || rest.len() < n as usize {
        return None;
    }
    let (uid, rest) = rest.split_at(n as usize);
    let uid = std::str::from_utf8(uid).ok()?;
    match mode {
        MODE_GCM if rest.len() >= GCM_IV + GCM_TAG => {
            let (iv, rest) = rest.split_at(GCM_IV);
            let (tag, ct) = rest.split_at(GCM_TAG);
            Some(Reference {
                gcm: true,
                uid,
                iv,
                tag,
                ct,
            })
        }
        MODE_CBC if rest.len() >= CBC_IV + 16 && (rest.len() - CBC_IV).is_multiple_of(16) => {
            let (iv, ct) = rest.split_at(CBC_IV);
            Some(Reference {
                gcm: false,
                uid,
                iv,
                tag: &[],
                ct,
            })
        }
        _ => None,
    }
}

/// Maps a failed batch item to a clear error; Decrypt failures about the data become 400.
fn hsm_error(op: &'static str, r: &BatchResult, credential: bool) -> BackendError {
    match r.reason {
        Some(R_AUTHENTICATION) => BackendError::Failed(format!(
            "the HSM refused keybroker's client certificate (kms.keystore.alias){} on {op}: {}",
            if credential {
                " or its credential (keybroker.hsm.kmip.username and password)"
            } else {
                ""
            },
            r.describe()
        )),
        Some(R_PERMISSION_DENIED) => {
            BackendError::Failed(format!("the HSM denied {op}: {}", r.describe()))
        }
        Some(
            R_ITEM_NOT_FOUND
            | R_CRYPTOGRAPHIC_FAILURE
            | R_GENERAL_FAILURE
            | R_INVALID_FIELD
            | R_INVALID_MESSAGE
            | R_MISSING_DATA,
        )
        | None
            if op == "Decrypt" =>
        {
            bad_ciphertext()
        }
        _ => BackendError::Failed(format!("the HSM answered {op} with {}", r.describe())),
    }
}

fn unavailable(reason: impl Into<String>, retry_after: Duration) -> BackendError {
    BackendError::Unavailable {
        reason: reason.into(),
        retry_after: retry_after.max(Duration::from_secs(1)),
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

    fn stall_after(&self) -> Duration {
        (self.cfg.request_timeout / 2).min(Duration::from_secs(1))
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

    fn add_job(&mut self, owner: Option<OpId>, task: Task, control: bool) -> JobId {
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.insert(
            id,
            Job {
                owner,
                task,
                queued_at: self.now,
                retries: 0,
                sent: None,
            },
        );
        if control {
            self.control.push_back(id);
        } else {
            self.queue.push_back(id);
        }
        id
    }

    fn connect(&mut self, ep: usize) -> LinkId {
        let link = self.next_link;
        self.next_link += 1;
        self.links.insert(
            link,
            Link {
                ep,
                state: LinkState::Connecting { since: self.now },
                buf: Vec::new(),
            },
        );
        let e = &self.cfg.endpoints[ep];
        self.outputs.push_back(BackendOutput::Connect {
            link,
            host: e.host.clone(),
            port: e.port,
            security: LinkSecurity::KmipTls,
            connect_timeout: self.cfg.connect_timeout,
        });
        link
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

    /// Feeds an event on one of the backend's links.
    pub fn handle_net(&mut self, now: Now, event: NetEvent, rng: &mut Drbg) {
        self.now = self.now.max(now.mono);
        match event {
            NetEvent::Connected { link } => {
                if let Some(l) = self.links.get_mut(&link) {
                    if matches!(l.state, LinkState::Connecting { .. }) {
                        l.state = LinkState::Idle;
                    }
                }
            }
            NetEvent::Closed { link, reason } => self.link_lost(link, &reason),
            NetEvent::Received { link, bytes } => self.received(link, bytes, rng),
        }
        self.pump(rng);
    }

    fn endpoint_failed(&mut self, ep: usize, why: &str) {
        let super::pool::Trip {
            pause,
            was_open,
            failures,
        } = self.eps[ep].trip(self.now);
        // Idle links of a failing endpoint are not trusted either: a new connection probes it.
        let idle: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.ep == ep && matches!(l.state, LinkState::Idle))
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.links.remove(&id);
            self.outputs.push_back(BackendOutput::Close { link: id });
        }
        if !was_open {
            let ep_name = self.cfg.endpoints[ep].to_string();
            self.log(
                Level::Warn,
                format!(
                    "kmip: HSM {ep_name} failed ({why}); circuit open for {} ms (failure {failures})",
                    pause.as_millis()
                ),
            );
        }
    }

    fn link_lost(&mut self, link: LinkId, reason: &str) {
        let Some(l) = self.links.remove(&link) else {
            return;
        };
        let ep = l.ep;
        match l.state {
            LinkState::Idle => {}
            LinkState::Connecting { .. } => {
                self.endpoint_failed(ep, &format!("connect: {reason}"));
            }
            LinkState::Busy { job, .. } => {
                self.endpoint_failed(ep, &format!("link lost: {reason}"));
                self.job_link_failed(job, &format!("connection to HSM lost ({reason})"));
            }
        }
    }

    /// A job's request was lost with its link: retry idempotent work once, else fail it.
    fn job_link_failed(&mut self, id: JobId, why: &str) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let limit = if job.owner.is_some() {
            1
        } else {
            INTERNAL_RETRIES
        };
        if job.idempotent() && job.retries < limit {
            job.retries += 1;
            job.sent = None;
            if job.owner.is_some() {
                self.queue.push_front(id);
            } else {
                self.control.push_front(id);
            }
            return;
        }
        self.fail_job(id, unavailable(why.to_owned(), BREAKER_BASE));
    }

    fn fail_job(&mut self, id: JobId, e: BackendError) {
        let Some(job) = self.jobs.remove(&id) else {
            return;
        };
        match job.owner {
            Some(op) => self.replies.push_back((op, Err(e))),
            None => self.start_failed(e.to_string()),
        }
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

    fn received(&mut self, link: LinkId, bytes: Vec<u8>, rng: &mut Drbg) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.buf.extend_from_slice(&bytes);
        let mut bytes = bytes;
        bytes.zeroize();
        loop {
            let l = self.links.get_mut(&link).expect("link");
            let n = match ttlv::frame_len(&l.buf, &Limits::DEFAULT) {
                Ok(Some(n)) if l.buf.len() >= n => n,
                Ok(_) => return,
                Err(e) => {
                    self.protocol_error(link, &format!("malformed TTLV from the HSM: {e}"));
                    return;
                }
            };
            let mut frame: Vec<u8> = l.buf.drain(..n).collect();
            let parsed = ttlv::decode_with(&frame, &Limits::DEFAULT);
            frame.zeroize();
            let item = match parsed {
                Ok(i) => i,
                Err(e) => {
                    self.protocol_error(link, &format!("malformed TTLV from the HSM: {e}"));
                    return;
                }
            };
            let LinkState::Busy { job, .. } = l.state else {
                self.protocol_error(link, "the HSM sent a message nobody asked for");
                return;
            };
            let resp = match messages::parse_response(&item) {
                Ok(r) => r,
                Err(e) => {
                    self.protocol_error(link, &e.to_string());
                    return;
                }
            };
            l.state = LinkState::Idle;
            let ep = l.ep;
            let Some(first) = resp.items.into_iter().next() else {
                self.fail_job(
                    job,
                    BackendError::Failed("the HSM answered with no batch item".into()),
                );
                continue;
            };
            if first.is_success() {
                self.eps[ep].reset();
            }
            self.advance(job, first, rng);
        }
    }

    fn protocol_error(&mut self, link: LinkId, why: &str) {
        if let Some(l) = self.links.remove(&link) {
            self.outputs.push_back(BackendOutput::Close { link });
            self.endpoint_failed(l.ep, why);
            if let LinkState::Busy { job, .. } = l.state {
                self.fail_job(job, BackendError::Failed(why.to_owned()));
            }
        }
    }

    /// Lets deadlines up to `now` fire.
    pub fn handle_timeout(&mut self, now: Now, rng: &mut Drbg) {
        self.now = self.now.max(now.mono);
        let t = self.now;
        let rt = self.cfg.request_timeout;
        let ct = self.cfg.connect_timeout + Duration::from_secs(1);
        let expired: Vec<(LinkId, Option<JobId>)> = self
            .links
            .iter()
            .filter_map(|(id, l)| match l.state {
                LinkState::Busy { job, sent } if sent + rt <= t => Some((*id, Some(job))),
                LinkState::Connecting { since } if since + ct <= t => Some((*id, None)),
                _ => None,
            })
            .collect();
        for (id, job) in expired {
            let l = self.links.remove(&id).expect("link");
            self.outputs.push_back(BackendOutput::Close { link: id });
            match job {
                Some(job) => {
                    self.endpoint_failed(l.ep, "request timed out");
                    if self.jobs.get(&job).is_some_and(|j| j.owner.is_none()) {
                        self.job_link_failed(job, "HSM request timed out");
                    } else {
                        self.fail_job(job, BackendError::Timeout);
                    }
                }
                None => self.endpoint_failed(l.ep, "connect timed out"),
            }
        }
        let late: Vec<JobId> = self
            .queue
            .iter()
            .copied()
            .filter(|id| self.jobs.get(id).is_some_and(|j| j.queued_at + rt <= t))
            .collect();
        for id in late {
            self.queue.retain(|j| *j != id);
            self.fail_job(
                id,
                unavailable(
                    "no HSM link became free within the request timeout",
                    BREAKER_BASE,
                ),
            );
        }
        if let Phase::NotReady { retry_at, .. } = self.phase {
            if retry_at <= t {
                self.begin_start();
            }
        }
        if self.phase == Phase::Ready && self.refresh_at.is_some_and(|r| r <= t) {
            self.refresh_at = Some(t + REFRESH_EVERY);
            for key in self.cfg.keys.clone() {
                self.add_job(None, Task::Refresh { key }, true);
            }
        }
        self.pump(rng);
    }

    /// When the backend next needs [`KmipBackend::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let now = self.now;
        let stall = self.stall_after();
        let mut times: Vec<Instant> = Vec::new();
        for l in self.links.values() {
            match l.state {
                LinkState::Busy { sent, .. } => {
                    times.push(sent + stall);
                    times.push(sent + self.cfg.request_timeout);
                }
                LinkState::Connecting { since } => {
                    times.push(since + self.cfg.connect_timeout + Duration::from_secs(1))
                }
                LinkState::Idle => {}
            }
        }
        times.extend(self.eps.iter().filter_map(|e| e.open_until()));
        times.extend(
            self.queue
                .iter()
                .filter_map(|id| self.jobs.get(id))
                .map(|j| j.queued_at + self.cfg.request_timeout),
        );
        if let Phase::NotReady { retry_at, .. } = self.phase {
            times.push(retry_at);
        }
        if self.phase == Phase::Ready {
            times.extend(self.refresh_at);
        }
        times.into_iter().filter(|t| *t > now).min()
    }

    /// Every link as [`super::pool`] sees it.
    fn phases(&self) -> Vec<(LinkId, usize, super::pool::Phase)> {
        self.links
            .iter()
            .map(|(id, l)| {
                let phase = match l.state {
                    LinkState::Connecting { .. } => super::pool::Phase::Connecting,
                    LinkState::Idle => super::pool::Phase::Idle,
                    LinkState::Busy { sent, .. } => super::pool::Phase::Busy { sent },
                };
                (*id, l.ep, phase)
            })
            .collect()
    }

    fn view<'a>(
        &'a self,
        links: &'a [(LinkId, usize, super::pool::Phase)],
    ) -> super::pool::View<'a> {
        super::pool::View {
            breakers: &self.eps,
            links,
            now: self.now,
            stall_after: self.stall_after(),
            pool_size: self.cfg.pool_size,
        }
    }

    /// An idle link to send on; `Err(true)` to wait (a link is coming), `Err(false)` if none can
    /// ([`super::pool`] chooses).
    fn pick_link(&mut self) -> Result<LinkId, bool> {
        let links = self.phases();
        let pick = self.view(&links).pick();
        match pick {
            Pick::Send(id) => Ok(id),
            Pick::Connect(ep) => {
                self.connect(ep);
                Err(true)
            }
            Pick::Wait => Err(true),
            Pick::Nowhere => Err(false),
        }
    }

    fn pump(&mut self, rng: &mut Drbg) {
        loop {
            let from_control = !self.control.is_empty();
            if !from_control && (self.phase != Phase::Ready || self.queue.is_empty()) {
                return;
            }
            match self.pick_link() {
                Ok(link) => {
                    let id = if from_control {
                        self.control.pop_front()
                    } else {
                        self.queue.pop_front()
                    }
                    .expect("non-empty");
                    self.dispatch(id, link, rng);
                }
                Err(true) => return,
                Err(false) => {
                    let retry = self
                        .eps
                        .iter()
                        .filter_map(|e| e.open_until())
                        .min()
                        .map_or(BREAKER_BASE, |t| t.saturating_since(self.now));
                    if from_control && self.phase == Phase::Ready {
                        // A refresh with nowhere to go: skip it, the next one will run.
                        for id in self.control.drain(..).collect::<Vec<_>>() {
                            self.jobs.remove(&id);
                        }
                    } else if from_control {
                        self.start_failed("no HSM endpoint reachable".into());
                    }
                    let waiting: Vec<JobId> = self.queue.drain(..).collect();
                    for id in waiting {
                        self.fail_job(id, unavailable("no HSM endpoint reachable", retry));
                    }
                    return;
                }
            }
        }
    }

    fn dispatch(&mut self, id: JobId, link: LinkId, rng: &mut Drbg) {
        let mut req = match self.build(id, rng) {
            Ok(r) => r,
            Err(e) => {
                self.fail_job(id, e);
                return;
            }
        };
        let l = self.links.get_mut(&link).expect("idle link");
        l.state = LinkState::Busy {
            job: id,
            sent: self.now,
        };
        req.credential = self.cfg.credential.clone();
        self.outputs.push_back(BackendOutput::Send {
            link,
            bytes: req.encode(),
        });
    }

    fn version(&self) -> ProtocolVersion {
        self.version.unwrap_or(ProtocolVersion::V1_2)
    }

    fn build(&mut self, id: JobId, rng: &mut Drbg) -> Result<Request, BackendError> {
        let v = self.version();
        let gcm_ok = v >= ProtocolVersion::V1_4;
        let latest = |keys: &BTreeMap<String, Vec<String>>, k: &str| {
            keys.get(k)
                .and_then(|u| u.last().map(|uid| (uid.clone(), u.len() as u32)))
        };
        let latest_of = match &self.jobs[&id].task {
            Task::Encrypt(Wrap { key, .. }) => {
                Some(latest(&self.keys, key).ok_or_else(|| BackendError::UnknownKey(key.clone()))?)
            }
            _ => None,
        };
        let job = self.jobs.get_mut(&id).expect("job");
        let item = match &job.task {
            Task::Negotiate { stage: 0 } => {
                return Ok(Request::single(
                    ProtocolVersion::V1_1,
                    messages::discover_versions(&self.offered()),
                ))
            }
            Task::Negotiate { stage } => {
                let pv = if *stage == 1 {
                    ProtocolVersion::V1_2
                } else {
                    ProtocolVersion::V1_0
                };
                return Ok(Request::single(
                    pv,
                    messages::query(&[messages::query_fn::OPERATIONS]),
                ));
            }
            Task::Lookup { name, stage } => match stage {
                LookupStage::Locate => messages::locate_by_name(v, name),
                LookupStage::Create => messages::create_aes256(v, Some(name)),
                LookupStage::Activate(uid) => messages::activate(uid),
            },
            Task::Rotate { key, stage } => match stage {
                RotateStage::Create => messages::create_aes256(v, Some(key)),
                RotateStage::Activate(uid) => messages::activate(uid),
                RotateStage::Locate(_) => messages::locate_by_name(v, key),
            },
            Task::Describe { key } | Task::Refresh { key } => messages::locate_by_name(v, key),
            Task::Encrypt(Wrap {
                key,
                plaintext,
                context,
                ..
            }) => {
                let (uid, version) = latest_of.expect("encrypt has a key");
                let aad = Envelope::aad(BackendKind::Kmip, key, version, context);
                let mut iv = vec![0u8; if gcm_ok { GCM_IV } else { CBC_IV }];
                if !rng.fill(&mut iv) {
                    return Err(no_entropy());
                }
                let item = if gcm_ok {
                    messages::encrypt(&uid, CryptoParams::GCM, plaintext.expose(), &iv, Some(&aad))
                } else {
                    let mut data = Secret::new(plaintext.expose().clone());
                    let mut h = Sha256::new();
                    h.update(&aad);
                    h.update(plaintext.expose());
                    data.expose_mut().extend_from_slice(&h.finalize());
                    messages::encrypt(&uid, CryptoParams::CBC_PKCS5, data.expose(), &iv, None)
                };
                job.sent = Some(Sent {
                    uid,
                    version,
                    iv,
                    gcm: gcm_ok,
                });
                item
            }
            Task::Decrypt(u) => {
                u.check_envelope(BackendKind::Kmip)?;
                let Unwrap {
                    key,
                    envelope,
                    context,
                    ..
                } = u;
                let r = decode_reference(&envelope.reference).ok_or_else(bad_ciphertext)?;
                let aad = Envelope::aad(BackendKind::Kmip, key, envelope.key_version, context);
                if r.gcm {
                    if !gcm_ok {
                        return Err(BackendError::Failed(format!(
                            "this ciphertext uses AES-GCM but the HSM now speaks KMIP {v} (< 1.4), which cannot check GCM tags"
                        )));
                    }
                    messages::decrypt(
                        r.uid,
                        CryptoParams::GCM,
                        r.ct,
                        r.iv,
                        Some(&aad),
                        Some(r.tag),
                    )
                } else {
                    messages::decrypt(r.uid, CryptoParams::CBC_PKCS5, r.ct, r.iv, None, None)
                }
            }
        };
        Ok(Request::single(v, item))
    }

    fn advance(&mut self, id: JobId, r: BatchResult, rng: &mut Drbg) {
        let Some(mut job) = self.jobs.remove(&id) else {
            return;
        };
        let op = job.op_name();
        match self.step(&mut job, r, op) {
            Next::Again => {
                let owner = job.owner;
                self.jobs.insert(id, job);
                if owner.is_some() {
                    self.queue.push_front(id);
                } else {
                    self.control.push_front(id);
                }
            }
            Next::Finished => {}
            Next::Done(result) => {
                if let Some(owner) = job.owner {
                    self.replies.push_back((owner, result));
                }
            }
        }
        let _ = rng;
    }

    /// Applies one answer to a job: the next request, the final reply, or internal progress.
    fn step(&mut self, job: &mut Job, r: BatchResult, op: &'static str) -> Next {
        let v = self.version();
        match &mut job.task {
            Task::Negotiate { stage } => {
                if r.reason == Some(R_AUTHENTICATION) {
                    self.start_failed(hsm_error(op, &r, self.cfg.credential.is_some()).to_string());
                    return Next::Finished;
                }
                let chosen = if !r.is_success() {
                    None
                } else if *stage == 0 {
                    r.protocol_versions()
                        .into_iter()
                        .find(|p| self.offered().contains(p))
                } else if *stage == 1 {
                    Some(ProtocolVersion::V1_2)
                } else {
                    Some(ProtocolVersion::V1_0)
                };
                match chosen {
                    Some(pv) => {
                        self.version = Some(pv);
                        let mode = if pv >= ProtocolVersion::V1_4 {
                            "AES-GCM"
                        } else {
                            "AES-CBC/PKCS5 + SHA-256 check"
                        };
                        self.log(Level::Info, format!("kmip: negotiated KMIP {pv} ({mode})"));
                        let names = self.cfg.keys.clone();
                        self.lookups_pending = names.len();
                        for name in names {
                            self.add_job(
                                None,
                                Task::Lookup {
                                    name,
                                    stage: LookupStage::Locate,
                                },
                                true,
                            );
                        }
                        Next::Finished
                    }
                    None if *stage < 2 => {
                        *stage += 1;
                        if self.cfg.max_version < ProtocolVersion::V1_2 {
                            *stage = 2;
                        }
                        Next::Again
                    }
                    None => {
                        self.start_failed(format!(
                            "the HSM speaks none of KMIP 1.0-1.4 ({})",
                            r.describe()
                        ));
                        Next::Finished
                    }
                }
            }
            Task::Lookup { name, stage } => {
                if !r.is_success() {
                    self.start_failed(format!(
                        "key {name:?}: {}",
                        hsm_error(op, &r, self.cfg.credential.is_some())
                    ));
                    return Next::Finished;
                }
                match stage {
                    LookupStage::Locate => {
                        let mut uids: Vec<String> = r
                            .unique_identifiers()
                            .into_iter()
                            .map(str::to_owned)
                            .collect();
                        if uids.is_empty() {
                            if self.cfg.auto_create {
                                *stage = LookupStage::Create;
                                return Next::Again;
                            }
                            self.missing.push(name.clone());
                        } else {
                            uids.reverse();
                            self.keys.insert(name.clone(), uids);
                        }
                    }
                    LookupStage::Create => match r.unique_identifier() {
                        Some(uid) => {
                            *stage = LookupStage::Activate(uid.to_owned());
                            return Next::Again;
                        }
                        None => {
                            self.start_failed(format!("key {name:?}: Create answered no id"));
                            return Next::Finished;
                        }
                    },
                    LookupStage::Activate(uid) => {
                        self.log(
                            Level::Warn,
                            format!("kmip: created and activated AES-256 key {name:?} (id {uid}) because keybroker.hsm.key.auto-create=true"),
                        );
                        self.keys.insert(name.clone(), vec![uid.clone()]);
                    }
                }
                self.lookups_pending = self.lookups_pending.saturating_sub(1);
                if self.lookups_pending == 0 && self.phase == Phase::Starting {
                    if self.missing.is_empty() {
                        self.phase = Phase::Ready;
                        self.refresh_at = Some(self.now + REFRESH_EVERY);
                        let summary: Vec<String> = self
                            .keys
                            .iter()
                            .map(|(k, u)| format!("{k} ({} versions)", u.len()))
                            .collect();
                        let eps: Vec<String> =
                            self.cfg.endpoints.iter().map(|e| e.to_string()).collect();
                        self.log(
                            Level::Info,
                            format!(
                                "kmip: ready: KMIP {v}, keys {}, endpoints {}",
                                summary.join(", "),
                                eps.join(", ")
                            ),
                        );
                    } else {
                        let m = self.missing.join(", ");
                        self.start_failed(format!(
                            "master key {m} not found on the HSM (Locate by Name) and keybroker.hsm.key.auto-create=false: create it on the HSM or set keybroker.hsm.key.auto-create=true"
                        ));
                    }
                }
                Next::Finished
            }
            Task::Refresh { key } => {
                let mut uids: Vec<String> = r
                    .unique_identifiers()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                uids.reverse();
                let known = self.keys.get(key.as_str()).map_or(0, Vec::len);
                // Only ever learn more versions: a failed or partial answer changes nothing.
                if r.is_success() && uids.len() > known {
                    let (name, n) = (key.clone(), uids.len());
                    self.keys.insert(name.clone(), uids);
                    self.log(
                        Level::Info,
                        format!("kmip: key {name:?} now has {n} versions (rotated elsewhere)"),
                    );
                }
                Next::Finished
            }
            Task::Encrypt(Wrap { key, .. })
                if matches!(
                    r.reason,
                    Some(R_ITEM_NOT_FOUND | R_PERMISSION_DENIED | R_WRONG_KEY_LIFECYCLE_STATE)
                ) =>
            {
                // The latest version may be a key a rotation created but never activated (its
                // Activate, or Create's answer, was lost; Locate lists it anyway): encrypt under
                // the version before it. A later Locate lists it again, costing one round trip.
                let uid = job.sent.take().map(|s| s.uid);
                match (uid, self.keys.get_mut(key.as_str())) {
                    (Some(uid), Some(uids)) if uids.len() > 1 && uids.last() == Some(&uid) => {
                        uids.pop();
                        let name = key.clone();
                        self.log(
                            Level::Warn,
                            format!("kmip: key {name:?}: the newest object (id {uid}) is not usable ({}); encrypting under the version before it", r.describe()),
                        );
                        Next::Again
                    }
                    // A rotation finished meanwhile: its new version is the latest now.
                    (Some(uid), Some(uids)) if uids.last().is_some_and(|l| *l != uid) => {
                        Next::Again
                    }
                    _ => Next::Done(Err(hsm_error(op, &r, self.cfg.credential.is_some()))),
                }
            }
            _ if !r.is_success() => {
                Next::Done(Err(hsm_error(op, &r, self.cfg.credential.is_some())))
            }
            Task::Describe { key } => {
                let mut uids: Vec<String> = r
                    .unique_identifiers()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if uids.is_empty() {
                    return Next::Done(Err(BackendError::UnknownKey(key.clone())));
                }
                uids.reverse();
                let n = uids.len() as u32;
                self.keys.insert(key.clone(), uids);
                Next::Done(Ok(Reply::Described {
                    backend: BackendKind::Kmip,
                    latest_version: n,
                    versions: (1..=n).collect(),
                }))
            }
            Task::Rotate { key, stage } => match stage {
                RotateStage::Create => match r.unique_identifier() {
                    Some(uid) => {
                        *stage = RotateStage::Activate(uid.to_owned());
                        Next::Again
                    }
                    None => Next::Done(Err(BackendError::Failed("Create answered no id".into()))),
                },
                RotateStage::Activate(uid) => {
                    *stage = RotateStage::Locate(uid.clone());
                    Next::Again
                }
                RotateStage::Locate(new) => {
                    let mut uids: Vec<String> = r
                        .unique_identifiers()
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                    uids.reverse();
                    if !uids.contains(new) {
                        uids.push(new.clone());
                    }
                    let pos = uids.iter().position(|u| u == new).expect("present") as u32 + 1;
                    // The new key must be the latest: keep the HSM's order but put it last.
                    let n = uids.len() as u32;
                    let key_version = if pos == n {
                        n
                    } else {
                        let u = uids.remove(pos as usize - 1);
                        uids.push(u);
                        n
                    };
                    let name = key.clone();
                    self.log(
                        Level::Info,
                        format!("kmip: rotated key {name:?}: version {key_version} (id {new})"),
                    );
                    self.keys.insert(name, uids);
                    Next::Done(Ok(Reply::Rotated { key_version }))
                }
            },
            Task::Encrypt(Wrap {
                key,
                plaintext,
                generated,
                ..
            }) => {
                let Some(sent) = job.sent.take() else {
                    return Next::Done(Err(BackendError::Failed("internal: no request".into())));
                };
                let Some(ct) = r.bytes(crate::kmip::tags::tag::DATA) else {
                    return Next::Done(Err(BackendError::Failed(
                        "the HSM's Encrypt answer has no Data".into(),
                    )));
                };
                let iv = r
                    .bytes(crate::kmip::tags::tag::IV_COUNTER_NONCE)
                    .unwrap_or(&sent.iv);
                let tag: &[u8] = if sent.gcm {
                    match r.bytes(crate::kmip::tags::tag::AUTHENTICATED_ENCRYPTION_TAG) {
                        Some(t) if t.len() == GCM_TAG => t,
                        _ => {
                            return Next::Done(Err(BackendError::Failed(
                                "the HSM's GCM Encrypt answer has no 16-byte tag".into(),
                            )))
                        }
                    }
                } else {
                    &[]
                };
                if iv.len() != if sent.gcm { GCM_IV } else { CBC_IV } {
                    return Next::Done(Err(BackendError::Failed(
                        "the HSM's Encrypt answer has an IV of an unexpected length".into(),
                    )));
                }
                let env = Envelope {
                    backend: BackendKind::Kmip,
                    key_name: key.clone(),
                    key_version: sent.version,
                    reference: encode_reference(sent.gcm, &sent.uid, iv, tag, ct),
                };
                let generated =
                    generated.then(|| std::mem::replace(plaintext, Secret::new(Vec::new())));
                Next::Done(Ok(wrapped(generated, env.encode(), sent.version)))
            }
            Task::Decrypt(u) => {
                let Unwrap {
                    key,
                    envelope,
                    context,
                    ..
                } = &*u;
                let Some(data) = r.bytes(crate::kmip::tags::tag::DATA) else {
                    return Next::Done(Err(bad_ciphertext()));
                };
                let gcm = envelope.reference.first() == Some(&MODE_GCM);
                let plain = if gcm {
                    Secret::new(data.to_vec())
                } else {
                    if data.len() < DIGEST {
                        return Next::Done(Err(bad_ciphertext()));
                    }
                    let (p, d) = data.split_at(data.len() - DIGEST);
                    let aad = Envelope::aad(BackendKind::Kmip, key, envelope.key_version, context);
                    let mut h = Sha256::new();
                    h.update(&aad);
                    h.update(p);
                    if !ct_eq(&h.finalize(), d) {
                        return Next::Done(Err(bad_ciphertext()));
                    }
                    Secret::new(p.to_vec())
                };
                match u.then(plain) {
                    Ok(reply) => Next::Done(Ok(reply)),
                    Err(wrap) => {
                        job.task = Task::Encrypt(wrap);
                        job.retries = 0;
                        Next::Again
                    }
                }
            }
        }
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
