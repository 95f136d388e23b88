//! The broker: one sans-IO state machine serving every connection of a node.
//!
//! # Driving it
//! A shell calls [`Broker::handle_input`] for everything that happens (a connection accepted,
//! bytes received, a peer gone, time passing, fresh entropy) and then **drains
//! [`Broker::poll_output`] until it returns `None`**, carrying out each [`Output`] in order;
//! then it sleeps until [`Broker::poll_timeout`] (or the next event) and feeds
//! [`Input::Timeout`]. Time never goes backwards; feeding a timeout early is harmless.
//! Before reading more bytes from a connection a shell asks [`Broker::wants_read`], which
//! bounds what one client can make the server hold, and reads at most [`READ_CHUNK`] bytes.
//!
//! # Writing
//! Answers wait in the broker until the shell can write them: it hands out one
//! [`ConnOutput::Send`] per connection at a time, and the next only after the shell reported the
//! bytes written with [`Input::Written`]. So a shell's per-connection queue never holds more
//! than one `Send` and one `Close` (a `Close` may follow the last `Send` at once: the shell
//! writes that `Send` first, within `keybroker.http.write-timeout`), and every byte a client makes the node hold (parser buffer,
//! requests in flight, answers not yet written) is counted against
//! `keybroker.http.max-connection-bytes`. A write that the client does not read within
//! `keybroker.http.write-timeout` closes the connection.
use crate::api::{self, ApiError, Body, Item};
use crate::authz::{self, CertInfo, Client, Denied, Identities};
use crate::backend::{
    Backend, BackendError, BackendOutput, LinkId, LinkSecurity, NetEvent, Op, OpId, Persist,
    PersistId, Reply,
};
use crate::cache::{self, Cache, CacheConfig, CacheEvent, Lookup, RedisTarget};
use crate::config::keystore::{EntryKind, Keystore};
use crate::config::BrokerSettings;
use crate::config::CacheType;
use crate::drbg::Drbg;
use crate::http::{self, Limits, Parser, Request, Response};
use crate::log::Level;
use crate::metrics::Metrics;
use crate::time::{Instant, Now};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Identifies a connection; chosen by the shell, unique while open.
pub type ConnId = u64;

/// Most requests one connection may have in flight (pipelined) before the broker stops reading.
pub const MAX_PIPELINE: usize = 32;

/// Most bytes a shell passes in one [`Input::Received`]; [`Broker::wants_read`] keeps room for it.
pub const READ_CHUNK: usize = 16 * 1024;

/// A [`ConnOutput::Send`] carries whole answers up to about this many bytes (one larger answer whole).
pub const SEND_CHUNK: usize = 64 * 1024;

/// After [`Input::Shutdown`], how long an idle connection stays open for a request that had
/// already reached its socket to be read and answered.
pub const DRAIN_LINGER: std::time::Duration = std::time::Duration::from_millis(200);

/// Bytes reserved for an answer besides twice the request: headers, error sentences, a
/// describe's version list.
const ANSWER_BASE: usize = 64 * 1024;
/// Bytes reserved per batch item.
const ANSWER_PER_ITEM: usize = 512;
/// Room kept for a 100 Continue and similar small writes.
const SMALL_WRITE: usize = 256;

/// What a request of `len` bytes with `items` items may hold until answered: itself and an
/// upper bound of its answer.
fn request_charge(len: usize, items: usize) -> usize {
    len + 2 * len + items * ANSWER_PER_ITEM + ANSWER_BASE
}

/// The largest [`request_charge`] minus the request itself, for a body limit.
fn max_answer_reserve(max_request: usize) -> usize {
    request_charge(max_request, api::MAX_BATCH) - max_request
}

/// The smallest `keybroker.http.max-connection-bytes` that still lets one largest request
/// (`max_body` plus the header block) and its answer through.
pub fn min_connection_bytes(max_body: usize) -> usize {
    let max_request = Limits::default().max_header_bytes + max_body;
    max_request + READ_CHUNK + SMALL_WRITE + max_answer_reserve(max_request)
}

/// Which listener a connection came in on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The mTLS client listener; the client's leaf certificate (DER), if it sent one.
    Client {
        /// Leaf certificate presented in the TLS handshake.
        peer_cert: Option<Vec<u8>>,
    },
    /// The plain-HTTP admin listener.
    Admin,
}

/// Something that happened, fed in by the shell.
#[derive(Debug)]
pub enum Input<'a> {
    /// A connection finished its handshake.
    Accepted {
        /// Its id.
        conn: ConnId,
        /// Where it came in.
        listener: Listener,
    },
    /// Bytes arrived (after TLS).
    Received {
        /// From which connection.
        conn: ConnId,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// The peer closed or the connection failed.
    Closed {
        /// Which connection.
        conn: ConnId,
    },
    /// Time passed; deadlines up to `now` fire.
    Timeout,
    /// 32 fresh bytes from the shell's CSPRNG, now and then (the first seed goes to
    /// [`Broker::new`]).
    Entropy(&'a [u8; 32]),
    /// Stop taking new work; finish what is in flight, then close every connection.
    Shutdown,
    /// Something happened on a backend link.
    Net(NetEvent),
    /// The shell wrote `bytes` more of what [`ConnOutput::Send`] gave it for `conn`.
    Written {
        /// Which connection.
        conn: ConnId,
        /// How many bytes reached the socket since the last report.
        bytes: usize,
    },
    /// The shell finished an [`Effect::PersistSoftKeys`]: `Ok` once the file is written and
    /// synced, `Err` with the reason (no secret) otherwise.
    Persisted {
        /// The job's id.
        id: PersistId,
        /// Outcome.
        result: Result<(), String>,
    },
}

/// Something the shell must do, grouped by whom it concerns, so that a shell matches each
/// group exhaustively.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// For one client connection.
    Conn(ConnOutput),
    /// For one backend link (KMIP, Vault, Redis cache).
    Link(LinkOutput),
    /// For the node itself: files and logs.
    Local(Effect),
}

/// What to do with a client connection.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnOutput {
    /// Write these bytes to the connection, then report [`Input::Written`].
    Send {
        /// Which connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close the connection once the `Send` before it is written (the shell's own write
    /// timeout, `keybroker.http.write-timeout`, bounds that wait); on a write deadline the
    /// unwritten rest is dropped.
    Close {
        /// Which connection.
        conn: ConnId,
    },
}

/// What to do with a backend link; what happens on it comes back as [`Input::Net`].
#[derive(Debug, PartialEq, Eq)]
pub enum LinkOutput {
    /// Open a link (TCP + TLS as `security` says).
    Connect {
        /// Link id, chosen by the broker.
        link: LinkId,
        /// Host name or IP literal.
        host: String,
        /// Port.
        port: u16,
        /// TLS profile.
        security: LinkSecurity,
        /// Connect + handshake deadline.
        connect_timeout: std::time::Duration,
    },
    /// Write bytes on a link.
    Send {
        /// Link id.
        link: LinkId,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// Close a link (no event follows).
    Close {
        /// Link id.
        link: LinkId,
    },
}

/// A local effect: a file to write or a line to log.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Seal (off the request path), write atomically and sync the soft-key file, then report
    /// [`Input::Persisted`].
    PersistSoftKeys(Persist),
    /// One audit record (a JSON line without the newline).
    Audit(String),
    /// A log line for operators.
    Log {
        /// Which part of the node speaks (`broker`, `kmip`, `vault`, `cache`, …).
        component: &'static str,
        /// How much it matters.
        level: Level,
        /// The message (never a secret).
        message: String,
    },
}

/// Which state machine a link belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LinkOwner {
    /// The KMIP or Vault backend.
    Backend,
    /// The Redis cache.
    Cache,
}

/// The one allocator of link ids: the backend and the cache number their links their own way;
/// the shell sees only the ids given here, and events come back to the owner under its own.
#[derive(Debug, Default)]
struct Links {
    last: LinkId,
    by_id: BTreeMap<LinkId, (LinkOwner, LinkId)>,
    by_owner: BTreeMap<(LinkOwner, LinkId), LinkId>,
}

impl Links {
    /// A new link of `owner`, known to it as `local`.
    fn open(&mut self, owner: LinkOwner, local: LinkId) -> LinkId {
        self.last += 1;
        self.by_id.insert(self.last, (owner, local));
        self.by_owner.insert((owner, local), self.last);
        self.last
    }

    /// The shell's id of an open link.
    fn outward(&self, owner: LinkOwner, local: LinkId) -> Option<LinkId> {
        self.by_owner.get(&(owner, local)).copied()
    }

    /// The owner closes a link: its id is forgotten.
    fn close(&mut self, owner: LinkOwner, local: LinkId) -> Option<LinkId> {
        let id = self.by_owner.remove(&(owner, local))?;
        self.by_id.remove(&id);
        Some(id)
    }

    /// An event from the shell, readdressed to its owner (a `Closed` link is forgotten).
    fn inward(&mut self, ev: NetEvent) -> Option<(LinkOwner, NetEvent)> {
        let id = match &ev {
            NetEvent::Connected { link }
            | NetEvent::Received { link, .. }
            | NetEvent::Closed { link, .. } => *link,
        };
        let (owner, local) = *self.by_id.get(&id)?;
        let ev = match ev {
            NetEvent::Connected { .. } => NetEvent::Connected { link: local },
            NetEvent::Received { bytes, .. } => NetEvent::Received { link: local, bytes },
            NetEvent::Closed { reason, .. } => {
                self.by_id.remove(&id);
                self.by_owner.remove(&(owner, local));
                NetEvent::Closed {
                    link: local,
                    reason,
                }
            }
        };
        Some((owner, ev))
    }
}

/// What an answer is about: for its headers, the audit line and metrics.
#[derive(Clone, Copy)]
struct AnswerMeta<'a> {
    rid: &'a str,
    keep_alive: bool,
    op_name: &'static str,
    who: Option<&'a Client>,
    key: &'a str,
    /// When the request started, for the audit line's latency.
    started: Instant,
}

/// The fields of one answer's audit record.
struct AuditLine<'a> {
    ts: i64,
    request_id: &'a str,
    op: &'a str,
    status: u16,
    latency_ms: f64,
    who: Option<&'a Client>,
    key: &'a str,
    key_version: Option<&'a Value>,
    error: Option<&'a Value>,
}

impl AuditLine<'_> {
    /// The record as one JSON object, its keys in alphabetical order (as a `serde_json` map
    /// writes them), written straight into one string.
    fn to_json(&self) -> String {
        fn field(out: &mut Vec<u8>, name: &str, value: &impl serde::Serialize) {
            out.push(if out.is_empty() { b'{' } else { b',' });
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            // Serializing a string, number or JSON value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, value);
        }
        let mut out = Vec::with_capacity(192);
        if let Some(c) = self.who {
            field(&mut out, "alias", &c.alias);
        }
        if let Some(e) = self.error {
            field(&mut out, "error", e);
        }
        if !self.key.is_empty() {
            field(&mut out, "key", &self.key);
        }
        if let Some(v) = self.key_version {
            field(&mut out, "key_version", v);
        }
        field(&mut out, "latency_ms", &self.latency_ms);
        field(&mut out, "op", &self.op);
        field(&mut out, "request_id", &self.request_id);
        if let Some(c) = self.who {
            field(&mut out, "role", &c.role.name());
        }
        field(&mut out, "status", &self.status);
        field(&mut out, "ts", &self.ts);
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }
}

struct Job {
    key_name: String,
    batch: bool,
    items: Vec<Option<Result<Value, ApiError>>>,
    remaining: usize,
}

enum SlotState {
    Waiting(Box<Job>),
    Ready(Vec<u8>),
}

struct Slot {
    seq: u64,
    /// Bytes this slot is counted for: request and answer bound while waiting, answer when ready.
    charge: usize,
    request_id: String,
    keep_alive: bool,
    started: Instant,
    op_name: &'static str,
    who: Option<Client>,
    state: SlotState,
}

struct Conn {
    admin: bool,
    client: Result<Client, Denied>,
    /// The client's leaf certificate, to re-check it when the keystore is reloaded.
    peer_cert: Option<Vec<u8>>,
    /// Sum of the slots' charges.
    slot_bytes: usize,
    /// Answers in order, not yet handed to the shell.
    out: VecDeque<Vec<u8>>,
    /// Bytes in `out`.
    out_len: usize,
    /// Bytes of the `Send` the shell is writing, not yet reported written.
    in_shell: usize,
    /// When that `Send` was handed out.
    write_since: Option<Instant>,
    /// Bytes ever queued and ever written: answers are timed when written.
    queued_total: u64,
    written_total: u64,
    /// (stream offset where an answer ends, its operation, when its request started).
    timing: VecDeque<(u64, &'static str, Instant)>,
    parser: Parser,
    slots: VecDeque<Slot>,
    next_seq: u64,
    last_activity: Instant,
    request_started: Option<Instant>,
    /// No more requests will be read (error, `Connection: close`, shutdown).
    closing: bool,
    deadline: Option<Instant>,
}

/// The per-node state machine. See the module docs for the drain rule.
pub struct Broker {
    settings: BrokerSettings,
    limits: Limits,
    identities: Identities,
    cert_expiry: Vec<(String, i64)>,
    backend: Backend,
    rng: Drbg,
    conns: BTreeMap<ConnId, Conn>,
    deadlines: BTreeSet<(Instant, ConnId)>,
    ops: BTreeMap<OpId, (ConnId, u64, usize)>,
    next_op: OpId,
    outputs: VecDeque<Output>,
    metrics: Metrics,
    cache: Cache,
    /// Every backend link, by the id the broker gave it.
    links: Links,
    /// Decrypts waiting for a Redis lookup.
    deferred: BTreeMap<OpId, Op>,
    /// Cache keys of decrypts that went to the backend, to store their answers.
    cache_keys: BTreeMap<OpId, cache::CacheKey>,
    /// Answers known without the backend (cache hits).
    immediate: VecDeque<(OpId, Result<Reply, BackendError>)>,
    draining: bool,
    drain_started: Instant,
    now: Now,
    request_counter: u64,
    /// Connections whose parser may hold requests it can now take.
    to_parse: Vec<ConnId>,
}

impl Conn {
    fn held(&self) -> usize {
        self.parser.buffered_len() + self.slot_bytes + self.out_len + self.in_shell
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("conns", &self.conns.len())
            .field("ops_in_flight", &self.ops.len())
            .field("draining", &self.draining)
            .finish()
    }
}

impl Broker {
    /// Names the shell's TLS implementation for `/metrics` (`keybroker_build_info`).
    pub fn set_tls_provider(&mut self, provider: &'static str) {
        self.metrics.tls_provider = provider;
    }

    /// A broker serving `keystore`'s identities with `backend`, its DRBG seeded with 32 bytes
    /// from the shell's CSPRNG, started at `now`: the backend's and the cache's first
    /// outputs (links to open) are waiting in [`Broker::poll_output`].
    pub fn new(
        now: Now,
        settings: BrokerSettings,
        keystore: &Keystore,
        backend: Backend,
        seed: &[u8; 32],
    ) -> Broker {
        let limits = Limits {
            max_body_bytes: settings.max_body,
            ..Limits::default()
        };
        let seal_ikm = keystore
            .get(&settings.server_alias)
            .and_then(|e| match &e.kind {
                EntryKind::PrivateKey { key_pkcs8, .. } => Some(key_pkcs8.expose().clone()),
                _ => None,
            })
            .unwrap_or_default();
        let cache = Cache::new(
            CacheConfig {
                ttl: settings.cache_ttl,
                max_entries: if settings.cache_type == CacheType::Local {
                    settings.cache_max_entries
                } else {
                    0
                },
                redis: settings
                    .redis_url
                    .as_deref()
                    .and_then(|u| RedisTarget::parse(u).ok()),
                redis_timeout: settings.cache_redis_timeout,
            },
            settings.cache_type == CacheType::Distributed,
            &seal_ikm,
        );
        let mut b = Broker {
            cache,
            links: Links::default(),
            deferred: BTreeMap::new(),
            cache_keys: BTreeMap::new(),
            immediate: VecDeque::new(),
            limits,
            identities: Identities::default(),
            cert_expiry: Vec::new(),
            settings,
            backend,
            rng: Drbg::new(),
            conns: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            ops: BTreeMap::new(),
            next_op: 1,
            outputs: VecDeque::new(),
            metrics: Metrics::default(),
            draining: false,
            drain_started: Instant::default(),
            now,
            request_counter: 0,
            to_parse: Vec::new(),
        };
        b.rng.reseed(seed);
        b.set_keystore(keystore);
        b.backend.start(now, &mut b.rng);
        b.cache.start(now);
        b.pump_backend();
        b
    }

    /// Replaces the identities (live reload) and re-checks every open client connection: one
    /// whose certificate no longer authorizes gets a 403 on its next request and is closed.
    pub fn set_keystore(&mut self, keystore: &Keystore) {
        self.identities = Identities::from_keystore(keystore, &self.settings.roles);
        let unix = self.now.unix_secs;
        let mut revoked = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            if c.admin {
                continue;
            }
            let now_is =
                self.identities
                    .recognise(c.peer_cert.as_deref(), &self.settings.roles, unix);
            if c.client.is_ok() && now_is.is_err() {
                revoked.push(*id);
            }
            c.client = now_is;
        }
        for id in revoked {
            self.log(
                "authz",
                Level::Info,
                format!("connection {id}: client no longer authorized after a keystore reload"),
            );
        }
        self.cert_expiry = keystore
            .entries
            .iter()
            .filter_map(|e| {
                let der = match &e.kind {
                    EntryKind::TrustedCert { cert } => cert,
                    EntryKind::PrivateKey { chain, .. } => chain.first()?,
                };
                Some((e.alias.clone(), CertInfo::parse(der)?.not_after))
            })
            .collect();
    }

    /// The settings in force.
    pub fn settings(&self) -> &BrokerSettings {
        &self.settings
    }

    /// Whether every connection is gone after [`Input::Shutdown`].
    pub fn is_drained(&self) -> bool {
        self.draining && self.conns.is_empty()
    }

    /// Number of open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Requests read from `conn` and not yet answered; while this is above zero an answer can
    /// come from another event (a backend reply), so a blocking shell must watch for it.
    pub fn in_flight(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.slots.len())
    }

    /// Whether the shell should read more bytes (at most [`READ_CHUNK`]) from `conn` now.
    pub fn wants_read(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            !c.closing
                && c.slots.len() < MAX_PIPELINE
                && c.parser.buffered_len() <= self.max_request()
                && c.held() + READ_CHUNK + SMALL_WRITE <= self.settings.max_connection_bytes
        })
    }

    /// Bytes `conn` makes the node hold now: unparsed input, requests in flight with a bound
    /// of their answers, answers not yet written. Never above `max-connection-bytes`.
    pub fn held_bytes(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, Conn::held)
    }

    /// A complete `503 overloaded` answer with `Retry-After` and `Connection: close`, for a
    /// shell to write on a connection it cannot take (over `keybroker.http.max-connections`).
    pub fn overload_answer(&mut self) -> Vec<u8> {
        let rid = self.new_request_id(None);
        let e = ApiError {
            retry_after: Some(std::time::Duration::from_secs(1)),
            ..ApiError::new(
                503,
                "overloaded",
                "too many connections; retry after the delay in Retry-After",
            )
        };
        self.metrics.record("overload", 503);
        let mut out = Vec::with_capacity(320);
        http::write_response(
            &Response {
                status: 503,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("cache-control".into(), "no-store".into()),
                    ("x-request-id".into(), rid.clone()),
                    ("retry-after".into(), "1".into()),
                    ("connection".into(), "close".into()),
                ],
                body: serde_json::to_vec(&e.to_json(Some(&rid))).expect("json"),
            },
            &mut out,
        );
        out
    }

    fn max_request(&self) -> usize {
        self.limits.max_header_bytes + self.limits.max_body_bytes
    }

    /// The next thing to do, or `None` when drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the broker next needs [`Input::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.deadlines.iter().next().map(|(t, _)| *t);
        [
            conns,
            self.backend.poll_timeout(),
            self.cache.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Feeds one event in; then drain [`Broker::poll_output`].
    pub fn handle_input(&mut self, now: Now, input: Input<'_>) {
        if now.mono > self.now.mono || self.now == Now::default() {
            self.now = now;
        } else {
            self.now.unix_secs = now.unix_secs;
        }
        match input {
            Input::Accepted { conn, listener } => self.accept(conn, listener),
            Input::Received { conn, bytes } => self.receive(conn, bytes),
            Input::Written { conn, bytes } => self.written(conn, bytes),
            Input::Persisted { id, result } => self.backend.persisted(id, result, &mut self.rng),
            Input::Closed { conn } => self.remove(conn),
            Input::Timeout => {
                self.fire_timeouts();
                self.backend.handle_timeout(self.now, &mut self.rng);
                self.cache.handle_timeout(self.now);
            }
            Input::Entropy(e) => self.rng.reseed(e),
            Input::Shutdown => self.shutdown(),
            Input::Net(ev) => {
                // A late event on a link already closed has no owner: dropped.
                if let Some((owner, ev)) = self.links.inward(ev) {
                    match owner {
                        LinkOwner::Cache => self.cache.handle_net(self.now, ev),
                        LinkOwner::Backend => self.backend.handle_net(self.now, ev, &mut self.rng),
                    }
                }
            }
        }
        loop {
            self.pump_backend();
            if self.to_parse.is_empty() {
                break;
            }
            let mut ids = std::mem::take(&mut self.to_parse);
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                self.parse_requests(id);
                self.reschedule(id);
            }
        }
    }

    fn accept(&mut self, conn: ConnId, listener: Listener) {
        let now = self.now;
        self.metrics.connections_accepted += 1;
        let (admin, client, peer_cert) = match listener {
            Listener::Admin => (true, Err(Denied::NoCertificate), None),
            Listener::Client { peer_cert } => (
                false,
                self.identities.recognise(
                    peer_cert.as_deref(),
                    &self.settings.roles,
                    now.unix_secs,
                ),
                peer_cert,
            ),
        };
        if let Err(d) = &client {
            if !admin {
                self.log(
                    "authz",
                    Level::Info,
                    format!("connection {conn}: client refused: {d}"),
                );
            }
        }
        self.conns.insert(
            conn,
            Conn {
                admin,
                client,
                peer_cert,
                slot_bytes: 0,
                out: VecDeque::new(),
                out_len: 0,
                in_shell: 0,
                write_since: None,
                queued_total: 0,
                written_total: 0,
                timing: VecDeque::new(),
                parser: Parser::new(self.limits),
                slots: VecDeque::new(),
                next_seq: 0,
                last_activity: now.mono,
                request_started: None,
                closing: false,
                deadline: None,
            },
        );
        self.metrics.connections_open = self.conns.len() as u64;
        if self.draining {
            self.close(conn);
        } else {
            self.reschedule(conn);
        }
    }

    fn receive(&mut self, id: ConnId, bytes: &[u8]) {
        let now = self.now.mono;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.closing {
            return;
        }
        c.parser.push(bytes);
        c.last_activity = now;
        if c.request_started.is_none() && c.parser.is_mid_request() {
            c.request_started = Some(now);
        }
        self.parse_requests(id);
        self.reschedule(id);
    }

    fn written(&mut self, id: ConnId, bytes: usize) {
        let now = self.now.mono;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let bytes = bytes.min(c.in_shell);
        c.in_shell -= bytes;
        c.written_total += bytes as u64;
        c.last_activity = now;
        while let Some(&(end, op, started)) = c.timing.front() {
            if end > c.written_total {
                break;
            }
            c.timing.pop_front();
            self.metrics
                .observe(op, now.saturating_since(started).as_secs_f64());
        }
        if c.in_shell == 0 {
            c.write_since = None;
            self.pump_send(id);
        }
        self.to_parse.push(id);
        self.reschedule(id);
    }

    /// Hands the shell the next answers when it has no write outstanding; closes a
    /// connection once everything is handed out and it will read no more (the shell writes
    /// its last `Send` before it carries out the `Close`).
    fn pump_send(&mut self, id: ConnId) {
        let now = self.now.mono;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.in_shell == 0 && c.out_len > 0 {
            let mut bytes = c.out.pop_front().expect("out_len > 0");
            while bytes.len() < SEND_CHUNK {
                match c.out.pop_front() {
                    Some(more) => bytes.extend_from_slice(&more),
                    None => break,
                }
            }
            c.out_len -= bytes.len();
            c.in_shell = bytes.len();
            c.write_since = Some(now);
            self.outputs
                .push_back(Output::Conn(ConnOutput::Send { conn: id, bytes }));
        }
        if c.out_len == 0 && c.closing && c.slots.is_empty() {
            self.close(id);
        }
    }

    fn queue_bytes(c: &mut Conn, bytes: Vec<u8>) {
        c.out_len += bytes.len();
        c.queued_total += bytes.len() as u64;
        c.out.push_back(bytes);
    }

    fn parse_requests(&mut self, id: ConnId) {
        let reserve = max_answer_reserve(self.max_request());
        let limit = self.settings.max_connection_bytes;
        loop {
            let now = self.now.mono;
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if c.closing || c.slots.len() >= MAX_PIPELINE || c.held() + reserve > limit {
                return;
            }
            let before = c.parser.buffered_len();
            match c.parser.next_request() {
                Ok(Some(req)) => {
                    let len = before.saturating_sub(c.parser.buffered_len());
                    let started = c.request_started.unwrap_or(now);
                    c.request_started = c.parser.is_mid_request().then_some(now);
                    // Shutting down: answer every request that has arrived, the last one
                    // with `Connection: close`.
                    let last = self.draining && c.parser.buffered_len() == 0;
                    self.handle_request(id, req, len, started, last);
                }
                Ok(None) => {
                    if c.parser.take_continue() && c.slots.is_empty() {
                        Self::queue_bytes(c, http::CONTINUE_100.to_vec());
                        self.pump_send(id);
                    }
                    return;
                }
                Err(e) => {
                    c.closing = true;
                    let err = ApiError::new(e.status, e.code, e.message);
                    let rid = self.new_request_id(None);
                    self.push_ready(id, rid, false, "http", None, Err(err));
                    return;
                }
            }
        }
    }

    fn new_request_id(&mut self, given: Option<&[u8]>) -> String {
        if let Some(g) = given {
            if !g.is_empty()
                && g.len() <= 64
                && g.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
            {
                return String::from_utf8_lossy(g).into_owned();
            }
        }
        let mut r = [0u8; 8];
        if !self.rng.fill(&mut r) {
            self.request_counter += 1;
            r = self.request_counter.to_be_bytes();
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = String::with_capacity(16);
        for b in r {
            id.push(char::from(HEX[usize::from(b >> 4)]));
            id.push(char::from(HEX[usize::from(b & 15)]));
        }
        id
    }

    fn handle_request(
        &mut self,
        id: ConnId,
        req: Request,
        len: usize,
        started: Instant,
        last: bool,
    ) {
        let rid = self.new_request_id(req.header("x-request-id"));
        let c = self.conns.get_mut(&id).expect("live conn");
        // A refused client gets one answer saying why, then the connection closes.
        let refused = !c.admin && c.client.is_err();
        let keep_alive = req.keep_alive() && !last && !refused;
        if !keep_alive {
            c.closing = true;
        }
        if c.admin {
            let resp = self.admin(&req);
            let mut out = Vec::new();
            let mut resp = resp;
            resp.headers.push(("x-request-id".into(), rid.clone()));
            if !keep_alive {
                resp.headers.push(("connection".into(), "close".into()));
            }
            http::write_response(&resp, &mut out);
            self.metrics.record("admin", resp.status);
            self.push_slot(
                id,
                rid,
                keep_alive,
                "admin",
                None,
                started,
                SlotState::Ready(out),
            );
            return;
        }
        let unix = self.now.unix_secs;
        let client = match &c.client {
            Ok(cl) => authz::check_validity(cl, unix).map(|_| cl.clone()),
            Err(d) => Err(d.clone()),
        };
        let client = match client {
            Ok(cl) => cl,
            Err(d) => {
                let e = ApiError::new(d.status(), d.code(), d.to_string());
                return self.push_ready(id, rid, false, "refused", None, Err(e));
            }
        };
        let route = match api::route(&req.method, &req.target) {
            Ok(r) => r,
            Err(e) => {
                return self.push_ready(id, rid, keep_alive, "unrouted", Some(client), Err(e))
            }
        };
        let op = route.op;
        if !authz::allowed(client.role, op, self.settings.roles.admin_configured()) {
            let d = Denied::Forbidden {
                alias: client.alias.clone(),
                role: client.role,
                op,
            };
            let e = ApiError::new(403, d.code(), d.to_string());
            return self.push_ready(id, rid, keep_alive, op.name(), Some(client), Err(e));
        }
        let Some(key_name) = self.settings.resolve_key(&route.key) else {
            let e = ApiError::new(
                404,
                "unknown_key",
                format!("no key named {:?} is served", route.key),
            );
            return self.push_ready(id, rid, keep_alive, op.name(), Some(client), Err(e));
        };
        let body = match api::parse_body(op, req.header("content-type"), &req.body) {
            Ok(b) => b,
            Err(e) => return self.push_ready(id, rid, keep_alive, op.name(), Some(client), Err(e)),
        };
        let (batch, items) = match body {
            Body::Single(i) => (false, vec![Ok(i)]),
            Body::Batch(v) => (true, v),
        };
        let charge = request_charge(len, items.len());
        let seq = self.push_slot(
            id,
            rid,
            keep_alive,
            op.name(),
            Some(client),
            started,
            SlotState::Waiting(Box::new(Job {
                key_name: key_name.clone(),
                batch,
                items: Vec::new(),
                remaining: 0,
            })),
        );
        if let Some(slot) = self.slot_mut(id, seq) {
            slot.charge = charge;
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.slot_bytes += charge;
        }
        let mut results = Vec::with_capacity(items.len());
        let mut to_submit = Vec::new();
        for (idx, item) in items.into_iter().enumerate() {
            match item {
                Ok(item) => {
                    if let Item::Unwrap { envelope, .. } = &item {
                        if envelope.key_name != key_name {
                            results.push(Some(Err(ApiError::bad(
                                "key_mismatch",
                                format!(
                                    "ciphertext was made under key {:?}, not {key_name:?}",
                                    envelope.key_name
                                ),
                            ))));
                            continue;
                        }
                    }
                    results.push(None);
                    to_submit.push((idx, item));
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let remaining = to_submit.len();
        if let Some(slot) = self.slot_mut(id, seq) {
            if let SlotState::Waiting(job) = &mut slot.state {
                job.items = results;
                job.remaining = remaining;
            }
        }
        for (idx, item) in to_submit {
            let op_id = self.next_op;
            self.next_op += 1;
            self.ops.insert(op_id, (id, seq, idx));
            let bop = item.into_op(op, key_name.clone());
            self.dispatch(op_id, bop);
        }
        self.try_complete(id, seq);
    }

    fn admin(&self, req: &Request) -> Response {
        let path = req.target.split('?').next().unwrap_or("");
        let text = |status: u16, body: String| Response {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.into_bytes(),
        };
        if req.method != "GET" && req.method != "HEAD" {
            let mut r = text(405, "use GET\n".into());
            r.headers.push(("allow".into(), "GET, HEAD".into()));
            return r;
        }
        match path {
            "/healthz" => text(200, "ok\n".into()),
            "/readyz" => {
                if self.draining {
                    text(503, "shutting down\n".into())
                } else if !self.backend.is_ready() {
                    text(503, "backend not reachable\n".into())
                } else {
                    text(200, "ready\n".into())
                }
            }
            "/metrics" => {
                let endpoints = self.backend.endpoints();
                let mut r = text(
                    200,
                    self.metrics.render(&crate::metrics::Snapshot {
                        backend: self.backend.kind().name(),
                        backend_ready: self.backend.is_ready(),
                        endpoints: &endpoints,
                        token_expires_in: self.backend.token_expires_in(),
                        cert_expiry: &self.cert_expiry,
                        cache: &self.cache.stats,
                    }),
                );
                r.headers[0].1 = "text/plain; version=0.0.4".into();
                r
            }
            _ => text(404, "not found\n".into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_slot(
        &mut self,
        id: ConnId,
        request_id: String,
        keep_alive: bool,
        op_name: &'static str,
        who: Option<Client>,
        started: Instant,
        state: SlotState,
    ) -> u64 {
        let c = self.conns.get_mut(&id).expect("live conn");
        let seq = c.next_seq;
        c.next_seq += 1;
        let charge = match &state {
            SlotState::Ready(b) => b.len(),
            SlotState::Waiting(_) => 0,
        };
        c.slot_bytes += charge;
        c.slots.push_back(Slot {
            seq,
            charge,
            request_id,
            keep_alive,
            started,
            op_name,
            who,
            state,
        });
        if let SlotState::Ready(_) = c.slots.back().expect("just pushed").state {
            self.flush(id);
        }
        seq
    }

    fn push_ready(
        &mut self,
        id: ConnId,
        rid: String,
        keep_alive: bool,
        op_name: &'static str,
        who: Option<Client>,
        result: Result<Value, ApiError>,
    ) {
        let meta = AnswerMeta {
            rid: &rid,
            keep_alive,
            op_name,
            who: who.as_ref(),
            key: "",
            started: self.now.mono,
        };
        let bytes = self.render(&meta, result);
        let started = self.now.mono;
        self.push_slot(
            id,
            rid,
            keep_alive,
            op_name,
            who,
            started,
            SlotState::Ready(bytes),
        );
    }

    fn render(&mut self, m: &AnswerMeta<'_>, result: Result<Value, ApiError>) -> Vec<u8> {
        let AnswerMeta {
            rid,
            keep_alive,
            op_name,
            who,
            key,
            started,
        } = *m;
        // Built from borrowed parts: this runs under the broker lock once per answer.
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(6);
        headers.extend([
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("x-request-id", rid),
        ]);
        let retry_after;
        let (status, body) = match result {
            Ok(v) => (200, v),
            Err(e) => {
                if let Some(ra) = e.retry_after {
                    retry_after = ra.as_secs().max(1).to_string();
                    headers.push(("retry-after", &retry_after));
                }
                if let Some(allow) = e.allow {
                    headers.push(("allow", allow));
                }
                (e.status, e.to_json(Some(rid)))
            }
        };
        if !keep_alive {
            headers.push(("connection", "close"));
        }
        let latency = self.now.mono.saturating_since(started);
        let line = AuditLine {
            ts: self.now.unix_secs,
            request_id: rid,
            op: op_name,
            status,
            latency_ms: (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            who,
            key,
            key_version: body.get("key_version"),
            error: (status != 200).then(|| &body["error"]["code"]),
        };
        self.metrics.record(op_name, status);
        self.outputs
            .push_back(Output::Local(Effect::Audit(line.to_json())));
        let body = serde_json::to_vec(&body).expect("json");
        let mut out = Vec::with_capacity(192 + body.len());
        http::write_parts(status, &headers, &body, &mut out);
        out
    }

    fn slot_mut(&mut self, id: ConnId, seq: u64) -> Option<&mut Slot> {
        let c = self.conns.get_mut(&id)?;
        let front = c.slots.front()?.seq;
        c.slots
            .get_mut(usize::try_from(seq.checked_sub(front)?).ok()?)
    }

    fn pump_backend(&mut self) {
        loop {
            let mut progressed = false;
            while let Some((owner, out)) = self
                .backend
                .poll_output()
                .map(|o| (LinkOwner::Backend, o))
                .or_else(|| self.cache.poll_output().map(|o| (LinkOwner::Cache, o)))
            {
                self.outputs.push_back(match out {
                    BackendOutput::PersistSoftKeys(p) => Output::Local(Effect::PersistSoftKeys(p)),
                    BackendOutput::Connect {
                        link,
                        host,
                        port,
                        security,
                        connect_timeout,
                    } => Output::Link(LinkOutput::Connect {
                        link: self.links.open(owner, link),
                        host,
                        port,
                        security,
                        connect_timeout,
                    }),
                    BackendOutput::Send { link, bytes } => {
                        let Some(link) = self.links.outward(owner, link) else {
                            continue;
                        };
                        Output::Link(LinkOutput::Send { link, bytes })
                    }
                    BackendOutput::Close { link } => {
                        let Some(link) = self.links.close(owner, link) else {
                            continue;
                        };
                        Output::Link(LinkOutput::Close { link })
                    }
                    BackendOutput::Log {
                        component,
                        level,
                        message,
                    } => Output::Local(Effect::Log {
                        component,
                        level,
                        message,
                    }),
                });
            }
            while let Some(w) = self.cache.poll_warning() {
                self.log("cache", Level::Warn, w);
            }
            while let Some(CacheEvent::Looked(id, found)) = self.cache.poll_event() {
                progressed = true;
                match (found, self.deferred.remove(&id)) {
                    (Some(p), Some(_)) => {
                        self.cache_keys.remove(&id);
                        self.immediate.push_back((id, Ok(Reply::Plaintext(p))));
                    }
                    (None, Some(op)) => self.backend.submit(self.now, id, op, &mut self.rng),
                    _ => {}
                }
            }
            while let Some((op_id, result)) = self
                .immediate
                .pop_front()
                .or_else(|| self.backend.poll_reply())
            {
                progressed = true;
                if let (Some(ck), Ok(Reply::Plaintext(p))) =
                    (self.cache_keys.remove(&op_id), &result)
                {
                    self.cache.store(self.now, ck, p);
                }
                self.complete_op(op_id, result);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Starts one backend operation, answering decrypts from the cache when it can.
    ///
    /// A token below the key's `keybroker.min-decryption-version` is refused first, so
    /// neither the cache nor the backend answers for a retired version.
    fn dispatch(&mut self, op_id: OpId, op: Op) {
        if let Op::Decrypt { key, envelope, .. } | Op::Rewrap { key, envelope, .. } = &op {
            if let Some(&min) = self.settings.min_decryption_version.get(key) {
                if envelope.key_version < min {
                    let retired = BackendError::VersionRetired {
                        key: key.clone(),
                        version: envelope.key_version,
                        min: Some(min),
                    };
                    self.immediate.push_back((op_id, Err(retired)));
                    return;
                }
            }
        }
        if let Op::Decrypt {
            key,
            envelope,
            context,
        } = &op
        {
            let ck = cache::cache_key(key, &envelope.encode(), context);
            match self.cache.lookup(self.now, op_id, ck) {
                Lookup::Hit(p) => {
                    self.immediate.push_back((op_id, Ok(Reply::Plaintext(p))));
                    return;
                }
                Lookup::Miss => {
                    self.cache_keys.insert(op_id, ck);
                }
                Lookup::Pending => {
                    self.cache_keys.insert(op_id, ck);
                    self.deferred.insert(op_id, op);
                    return;
                }
            }
        }
        self.backend.submit(self.now, op_id, op, &mut self.rng);
    }

    fn complete_op(&mut self, op_id: OpId, result: Result<Reply, BackendError>) {
        let Some((conn, seq, idx)) = self.ops.remove(&op_id) else {
            return;
        };
        let Some(slot) = self.slot_mut(conn, seq) else {
            return;
        };
        let SlotState::Waiting(job) = &mut slot.state else {
            return;
        };
        let value = result
            .map(|r| api::reply_json(&r, &job.key_name))
            .map_err(ApiError::from);
        if let Some(cell) = job.items.get_mut(idx) {
            if cell.is_none() {
                *cell = Some(value);
                job.remaining -= 1;
            }
        }
        self.try_complete(conn, seq);
    }

    fn try_complete(&mut self, id: ConnId, seq: u64) {
        let Some(slot) = self.slot_mut(id, seq) else {
            return;
        };
        let SlotState::Waiting(job) = &mut slot.state else {
            return;
        };
        if job.remaining > 0 {
            return;
        }
        let job = std::mem::replace(
            job,
            Box::new(Job {
                key_name: String::new(),
                batch: false,
                items: Vec::new(),
                remaining: 0,
            }),
        );
        let (rid, keep_alive, op_name, who, started) = (
            slot.request_id.clone(),
            slot.keep_alive,
            slot.op_name,
            slot.who.clone(),
            slot.started,
        );
        let result = if job.batch {
            let items: Vec<Value> = job
                .items
                .into_iter()
                .map(|r| match r.expect("all done") {
                    Ok(v) => v,
                    Err(e) => e.to_json(None),
                })
                .collect();
            Ok(json!({ "batch": items }))
        } else {
            job.items.into_iter().next().flatten().expect("one item")
        };
        let meta = AnswerMeta {
            rid: &rid,
            keep_alive,
            op_name,
            who: who.as_ref(),
            key: &job.key_name,
            started,
        };
        let bytes = self.render(&meta, result);
        let len = bytes.len();
        let mut old = 0;
        if let Some(slot) = self.slot_mut(id, seq) {
            slot.state = SlotState::Ready(bytes);
            old = std::mem::replace(&mut slot.charge, len);
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.slot_bytes = c.slot_bytes + len - old;
        }
        self.flush(id);
    }

    /// Moves the answers that are ready, in request order, to the write queue.
    fn flush(&mut self, id: ConnId) {
        let now = self.now.mono;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut wrote = false;
        while let Some(front) = c.slots.front() {
            if !matches!(front.state, SlotState::Ready(_)) {
                break;
            }
            let slot = c.slots.pop_front().expect("front");
            c.slot_bytes -= slot.charge;
            if let SlotState::Ready(bytes) = slot.state {
                Self::queue_bytes(c, bytes);
                c.timing
                    .push_back((c.queued_total, slot.op_name, slot.started));
                wrote = true;
            }
            if !slot.keep_alive {
                c.closing = true;
            }
        }
        if wrote {
            c.last_activity = now;
            // Requests held back by the pipeline bound can go on now (from the top level:
            // answering here must not recurse into parsing).
            self.to_parse.push(id);
        }
        self.pump_send(id);
        self.reschedule(id);
    }

    fn reschedule(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let new = if let Some(since) = c.write_since {
            Some(since + self.settings.write_timeout)
        } else if !c.slots.is_empty() {
            None // waiting on the backend; its own timeouts apply
        } else if let Some(start) = c.request_started {
            Some(start + self.settings.header_timeout)
        } else if self.draining {
            Some(c.last_activity.max(self.drain_started) + DRAIN_LINGER)
        } else if !c.admin && c.client.is_err() {
            // Refused: no reason to keep its socket for a whole idle timeout.
            Some(c.last_activity + self.settings.idle_timeout.min(self.settings.header_timeout))
        } else {
            Some(c.last_activity + self.settings.idle_timeout)
        };
        // Most events leave the deadline where it was: the set is touched only on a change.
        if new != c.deadline {
            if let Some(d) = c.deadline {
                self.deadlines.remove(&(d, id));
            }
            if let Some(d) = new {
                self.deadlines.insert((d, id));
            }
            c.deadline = new;
        }
    }

    fn fire_timeouts(&mut self) {
        let now = self.now.mono;
        while let Some(&(t, id)) = self.deadlines.iter().next() {
            if t > now {
                break;
            }
            self.deadlines.remove(&(t, id));
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.deadline = None;
            self.metrics.timeouts += 1;
            if c.write_since.is_some() {
                self.log(
                    "http",
                    Level::Info,
                    format!("connection {id}: client did not read its answers in time, closed"),
                );
                self.close(id);
            } else if c.request_started.is_some() {
                c.closing = true;
                // The partial request is dropped before its 408 is queued.
                c.parser = Parser::new(self.limits);
                c.request_started = None;
                let rid = self.new_request_id(None);
                let e = ApiError::new(
                    408,
                    "request_timeout",
                    "the request was not received in time",
                );
                self.push_ready(id, rid, false, "http", None, Err(e));
            } else {
                self.close(id);
            }
        }
    }

    fn shutdown(&mut self) {
        self.draining = true;
        self.drain_started = self.now.mono;
        // Nothing closes at once: requests already in a socket are read, answered (the last
        // with `Connection: close`), then each connection closes after `DRAIN_LINGER` idle.
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.to_parse.push(id);
            self.reschedule(id);
        }
    }

    fn close(&mut self, id: ConnId) {
        if self.conns.contains_key(&id) {
            self.outputs
                .push_back(Output::Conn(ConnOutput::Close { conn: id }));
            self.remove(id);
        }
    }

    fn remove(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(&id) {
            if let Some(d) = c.deadline {
                self.deadlines.remove(&(d, id));
            }
        }
        self.metrics.connections_open = self.conns.len() as u64;
    }

    fn log(&mut self, component: &'static str, level: Level, message: String) {
        self.outputs.push_back(Output::Local(Effect::Log {
            component,
            level,
            message,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Role;
    use proptest::prelude::*;

    /// The audit record as a `serde_json` map writes it: what [`AuditLine::to_json`] must
    /// match byte for byte.
    fn oracle(l: &AuditLine<'_>) -> String {
        let mut a = json!({
            "ts": l.ts,
            "request_id": l.request_id,
            "op": l.op,
            "status": l.status,
            "latency_ms": l.latency_ms,
        });
        if let Some(c) = l.who {
            a["alias"] = json!(c.alias);
            a["role"] = json!(c.role.name());
        }
        if !l.key.is_empty() {
            a["key"] = json!(l.key);
        }
        if let Some(v) = l.key_version {
            a["key_version"] = v.clone();
        }
        if let Some(e) = l.error {
            a["error"] = e.clone();
        }
        a.to_string()
    }

    proptest! {
        #[test]
        fn the_audit_line_is_what_a_json_map_writes(
            ts in any::<i64>(),
            rid in ".{0,20}",
            op in "[a-z_]{1,10}",
            status in 100u16..600,
            micros in any::<u32>(),
            alias in proptest::option::of(".{0,20}"),
            role in 0..3u8,
            key in ".{0,12}",
            version in proptest::option::of(any::<u32>()),
            error in proptest::option::of(proptest::option::of("[a-z_\"\\\\\u{1}]{0,12}")),
        ) {
            let who = alias.map(|alias| Client {
                alias,
                role: [Role::Backend, Role::Device, Role::Admin][role as usize],
                not_before: 0,
                not_after: 0,
            });
            let version = version.map(|v| json!(v));
            let error = error.map(|e| e.map_or(Value::Null, Value::String));
            let line = AuditLine {
                ts,
                request_id: &rid,
                op: &op,
                status,
                latency_ms: f64::from(micros) / 1000.0,
                who: who.as_ref(),
                key: &key,
                key_version: version.as_ref(),
                error: error.as_ref(),
            };
            prop_assert_eq!(line.to_json(), oracle(&line));
        }
    }
}
