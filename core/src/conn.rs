//! One client or admin connection's own state machine: HTTP parsing, authorization, request
//! bodies, pipeline slots, answers and their audit lines, the bytes it makes the node hold,
//! and its deadlines. It needs nothing another connection touches, so a shell drives it on
//! the connection's own task or thread; only the backend work crosses to the shared
//! [`Endpoint`](crate::endpoint::Endpoint), as values ([`Work`] out, [`ToConn`] back).
//!
//! # Driving it
//! Feed what happened ([`Connection::received`], [`Connection::written`],
//! [`Connection::deliver`], [`Connection::handle_timeout`]), then drain
//! [`Connection::poll_output`] until `None`: write each [`ConnEvent::Send`] (then report it
//! with `written`), hand each [`ConnEvent::Submit`] to the endpoint, write the audit lines.
//! Read more bytes (at most [`READ_CHUNK`]) only while [`Connection::wants_read`]; feed
//! [`Connection::handle_timeout`] once [`Connection::poll_timeout`] has passed.
use crate::api::{self, ApiError, Body, Item};
use crate::authz::{self, Client, Denied, Operation};
use crate::backend::soft::SoftJob;
use crate::backend::{BackendError, Op, Reply};
use crate::config::BrokerSettings;
use crate::drbg::Drbg;
use crate::http::{self, Limits, Parser, Request, Response};
use crate::log::Level;
use crate::metrics::Metrics;
use crate::time::{Instant, Now};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Most requests one connection may have in flight (pipelined) before it stops reading.
pub const MAX_PIPELINE: usize = 32;

/// Most bytes a shell passes in one [`Connection::received`]; [`Connection::wants_read`]
/// keeps room for it.
pub const READ_CHUNK: usize = 16 * 1024;

/// A [`ConnEvent::Send`] carries whole answers up to about this many bytes (one larger answer
/// whole).
pub const SEND_CHUNK: usize = 64 * 1024;

/// After shutdown began, how long an idle connection stays open for a request that had
/// already reached its socket to be read and answered.
pub const DRAIN_LINGER: std::time::Duration = std::time::Duration::from_millis(200);

/// Bytes reserved for an answer besides twice the request: headers, error sentences, a
/// describe's version list.
const ANSWER_BASE: usize = 64 * 1024;
/// Bytes reserved per batch item.
const ANSWER_PER_ITEM: usize = 512;
/// Room kept for a 100 Continue and similar small writes.
const SMALL_WRITE: usize = 256;

/// The counters every connection and the endpoint add to (`/metrics`); a short lock of its
/// own, never held across anything else.
#[derive(Clone, Debug, Default)]
pub struct SharedMetrics(Arc<Mutex<Metrics>>);

impl SharedMetrics {
    /// The counters, locked (a panic elsewhere leaves them readable).
    pub fn lock(&self) -> MutexGuard<'_, Metrics> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

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

/// A request's backend work, for the endpoint: the operations of one request (one per batch
/// item that needs the backend), numbered by their place in the batch.
#[derive(Debug)]
pub struct Work {
    /// The request's place on its connection.
    pub seq: u64,
    /// What it asks.
    pub what: WorkKind,
}

/// What a [`Work`] asks of the endpoint.
#[derive(Debug)]
pub enum WorkKind {
    /// Backend operations, by batch index.
    Ops(Vec<(usize, Op)>),
    /// An admin-listener request (`/healthz`, `/readyz`, `/metrics`).
    Admin(Request),
}

/// What the endpoint sends a connection.
#[derive(Debug)]
pub enum ToConn {
    /// One operation of request `seq` finished.
    Done {
        /// The request.
        seq: u64,
        /// Its batch index.
        idx: usize,
        /// The outcome.
        result: Result<Reply, BackendError>,
    },
    /// One soft-backend operation of request `seq`, prepared by the endpoint for this
    /// connection to run (AES-256-GCM off the endpoint's lock).
    Run {
        /// The request.
        seq: u64,
        /// Its batch index.
        idx: usize,
        /// The prepared operation.
        job: SoftJob,
    },
    /// The answer to admin request `seq` (without request id and connection headers).
    Admin {
        /// The request.
        seq: u64,
        /// The answer.
        response: Response,
    },
    /// The keystore was reloaded: who the client is now.
    Client(Result<Client, Denied>),
    /// The node is shutting down since `since`: answer what has arrived, then close.
    Drain {
        /// When shutdown began.
        since: Instant,
    },
}

/// Something the shell must do for this connection.
#[derive(Debug)]
pub enum ConnEvent {
    /// Write these bytes, then report [`Connection::written`]; no other `Send` comes before.
    Send(Vec<u8>),
    /// Close once the `Send` before it is written (on a write deadline the rest is dropped).
    Close,
    /// Hand this work to the endpoint; its outcomes come back as [`ToConn`].
    Submit(Work),
    /// One audit record (a JSON line without the newline).
    Audit(String),
    /// A log line for operators.
    Log {
        /// Which part of the node speaks.
        component: &'static str,
        /// How much it matters.
        level: Level,
        /// The message (never a secret).
        message: String,
    },
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
    /// An admin request waiting for the endpoint's answer.
    Admin,
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

/// A new request id: 16 hex digits from `rng`, or from `counter` while `rng` is unseeded.
pub(crate) fn request_id(rng: &mut Drbg, counter: &mut u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut r = [0u8; 8];
    if !rng.fill(&mut r) {
        *counter += 1;
        r = counter.to_be_bytes();
    }
    let mut id = String::with_capacity(16);
    for b in r {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 15)]));
    }
    id
}

/// One connection. See the module docs for the drain rule.
pub struct Connection {
    id: u64,
    settings: Arc<BrokerSettings>,
    limits: Limits,
    metrics: SharedMetrics,
    rng: Drbg,
    request_counter: u64,
    admin: bool,
    client: Result<Client, Denied>,
    now: Now,
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
    /// `Close` was handed out: nothing more happens here.
    closed: bool,
    /// When shutdown began, once it has.
    draining: Option<Instant>,
    deadline: Option<Instant>,
    outputs: VecDeque<ConnEvent>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("admin", &self.admin)
            .field("in_flight", &self.slots.len())
            .field("held", &self.held_bytes())
            .field("closed", &self.closed)
            .finish()
    }
}

/// What [`Connection::new`] needs from the endpoint that accepted it.
pub struct ConnSetup {
    /// The connection's id, for log lines.
    pub id: u64,
    /// The read-only settings every connection shares.
    pub settings: Arc<BrokerSettings>,
    /// The shared counters.
    pub metrics: SharedMetrics,
    /// Whether it came in on the admin listener.
    pub admin: bool,
    /// Who the client is (ignored on the admin listener).
    pub client: Result<Client, Denied>,
    /// 32 bytes from the endpoint's DRBG, for request ids.
    pub seed: [u8; 32],
    /// When shutdown began, if it has: the connection is closed at once.
    pub draining: Option<Instant>,
}

impl Connection {
    /// A connection accepted at `now`.
    pub fn new(now: Now, setup: ConnSetup) -> Connection {
        let limits = Limits {
            max_body_bytes: setup.settings.max_body,
            ..Limits::default()
        };
        let mut rng = Drbg::new();
        rng.reseed(&setup.seed);
        let mut c = Connection {
            id: setup.id,
            settings: setup.settings,
            limits,
            metrics: setup.metrics,
            rng,
            request_counter: 0,
            admin: setup.admin,
            client: setup.client,
            now,
            slot_bytes: 0,
            out: VecDeque::new(),
            out_len: 0,
            in_shell: 0,
            write_since: None,
            queued_total: 0,
            written_total: 0,
            timing: VecDeque::new(),
            parser: Parser::new(limits),
            slots: VecDeque::new(),
            next_seq: 0,
            last_activity: now.mono,
            request_started: None,
            closing: false,
            closed: false,
            draining: None,
            deadline: None,
            outputs: VecDeque::new(),
        };
        if setup.draining.is_some() {
            c.close();
        } else {
            c.reschedule();
        }
        c
    }

    fn set_now(&mut self, now: Now) {
        self.now.advance(now);
    }

    /// The next thing to do for this connection, or `None`.
    pub fn poll_output(&mut self) -> Option<ConnEvent> {
        self.outputs.pop_front()
    }

    /// When [`Connection::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Requests read and not yet answered; while above zero an answer can come from the
    /// endpoint at any time.
    pub fn in_flight(&self) -> usize {
        self.slots.len()
    }

    /// Bytes this connection makes the node hold now: unparsed input, requests in flight
    /// with a bound of their answers, answers not yet written. Never above
    /// `max-connection-bytes`.
    pub fn held_bytes(&self) -> usize {
        self.parser.buffered_len() + self.slot_bytes + self.out_len + self.in_shell
    }

    /// Whether the shell should read more bytes (at most [`READ_CHUNK`]) now.
    pub fn wants_read(&self) -> bool {
        !self.closing
            && self.slots.len() < MAX_PIPELINE
            && self.parser.buffered_len() <= self.max_request()
            && self.held_bytes() + READ_CHUNK + SMALL_WRITE <= self.settings.max_connection_bytes
    }

    fn max_request(&self) -> usize {
        self.limits.max_header_bytes + self.limits.max_body_bytes
    }

    /// Bytes arrived (after TLS).
    pub fn received(&mut self, now: Now, bytes: &[u8]) {
        self.set_now(now);
        if self.closing || self.closed {
            return;
        }
        let now = self.now.mono;
        self.parser.push(bytes);
        self.last_activity = now;
        if self.request_started.is_none() && self.parser.is_mid_request() {
            self.request_started = Some(now);
        }
        self.settle();
    }

    /// The shell wrote `bytes` more of the last `Send`.
    pub fn written(&mut self, now: Now, bytes: usize) {
        self.set_now(now);
        if self.closed {
            return;
        }
        let now = self.now.mono;
        let bytes = bytes.min(self.in_shell);
        self.in_shell -= bytes;
        self.written_total += bytes as u64;
        self.last_activity = now;
        // The answers whose last byte is now written are timed (one lock for all of them).
        let mut tally = None;
        while let Some(&(end, op, started)) = self.timing.front() {
            if end > self.written_total {
                break;
            }
            self.timing.pop_front();
            tally
                .get_or_insert_with(|| self.metrics.lock())
                .observe(op, now.saturating_since(started).as_secs_f64());
        }
        drop(tally);
        if self.in_shell == 0 {
            self.write_since = None;
            self.pump_send();
        }
        self.settle();
    }

    /// Something the endpoint sent this connection.
    pub fn deliver(&mut self, now: Now, msg: ToConn) {
        self.set_now(now);
        if self.closed {
            return;
        }
        match msg {
            ToConn::Done { seq, idx, result } => self.complete(seq, idx, result),
            ToConn::Run { seq, idx, job } => self.complete(seq, idx, job.run()),
            ToConn::Admin { seq, mut response } => {
                let Some(slot) = self.slot_mut(seq) else {
                    return;
                };
                if !matches!(slot.state, SlotState::Admin) {
                    return;
                }
                response
                    .headers
                    .push(("x-request-id".into(), slot.request_id.clone()));
                if !slot.keep_alive {
                    response.headers.push(("connection".into(), "close".into()));
                }
                let mut out = Vec::new();
                http::write_response(&response, &mut out);
                self.metrics.lock().record("admin", response.status);
                self.set_ready(seq, out);
            }
            ToConn::Client(client) => {
                if !self.admin {
                    self.client = client;
                }
            }
            ToConn::Drain { since } => {
                self.draining = Some(since);
            }
        }
        self.settle();
    }

    /// Deadlines up to `now` fire: a client that does not read its answers, a request not
    /// received in time (408), an idle or lingering connection.
    pub fn handle_timeout(&mut self, now: Now) {
        self.set_now(now);
        if self.closed {
            return;
        }
        let now = self.now.mono;
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        self.deadline = None;
        self.metrics.lock().timeouts += 1;
        if self.write_since.is_some() {
            self.log(
                "http",
                Level::Info,
                "client did not read its answers in time, closed".into(),
            );
            self.close();
        } else if self.request_started.is_some() {
            self.closing = true;
            // The partial request is dropped before its 408 is queued.
            self.parser = Parser::new(self.limits);
            self.request_started = None;
            let rid = self.new_request_id(None);
            let e = ApiError::new(
                408,
                "request_timeout",
                "the request was not received in time",
            );
            self.push_ready(rid, false, "http", None, Err(e));
        } else {
            self.close();
        }
        self.settle();
    }

    /// After every event: take the requests the parser holds while the bounds allow, then
    /// set the deadline.
    fn settle(&mut self) {
        if !self.closed {
            self.parse_requests();
        }
        self.reschedule();
    }

    /// Hands the shell the next answers when it has no write outstanding; closes once
    /// everything is handed out and no more will be read (the shell writes its last `Send`
    /// before it carries out the `Close`).
    fn pump_send(&mut self) {
        if self.closed {
            return;
        }
        if self.in_shell == 0 && self.out_len > 0 {
            let mut bytes = self.out.pop_front().expect("out_len > 0");
            while bytes.len() < SEND_CHUNK {
                match self.out.pop_front() {
                    Some(more) => bytes.extend_from_slice(&more),
                    None => break,
                }
            }
            self.out_len -= bytes.len();
            self.in_shell = bytes.len();
            self.write_since = Some(self.now.mono);
            self.outputs.push_back(ConnEvent::Send(bytes));
        }
        if self.out_len == 0 && self.closing && self.slots.is_empty() {
            self.close();
        }
    }

    fn queue_bytes(&mut self, bytes: Vec<u8>) {
        self.out_len += bytes.len();
        self.queued_total += bytes.len() as u64;
        self.out.push_back(bytes);
    }

    fn parse_requests(&mut self) {
        let reserve = max_answer_reserve(self.max_request());
        let limit = self.settings.max_connection_bytes;
        loop {
            let now = self.now.mono;
            if self.closed
                || self.closing
                || self.slots.len() >= MAX_PIPELINE
                || self.held_bytes() + reserve > limit
            {
                return;
            }
            let before = self.parser.buffered_len();
            match self.parser.next_request() {
                Ok(Some(req)) => {
                    let len = before.saturating_sub(self.parser.buffered_len());
                    let started = self.request_started.unwrap_or(now);
                    self.request_started = self.parser.is_mid_request().then_some(now);
                    // Shutting down: answer every request that has arrived, the last one
                    // with `Connection: close`.
                    let last = self.draining.is_some() && self.parser.buffered_len() == 0;
                    self.handle_request(req, len, started, last);
                }
                Ok(None) => {
                    if self.parser.take_continue() && self.slots.is_empty() {
                        self.queue_bytes(http::CONTINUE_100.to_vec());
                        self.pump_send();
                    }
                    return;
                }
                Err(e) => {
                    self.closing = true;
                    let err = ApiError::new(e.status, e.code, e.message);
                    let rid = self.new_request_id(None);
                    self.push_ready(rid, false, "http", None, Err(err));
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
        request_id(&mut self.rng, &mut self.request_counter)
    }

    fn handle_request(&mut self, req: Request, len: usize, started: Instant, last: bool) {
        let rid = self.new_request_id(req.header("x-request-id"));
        // A refused client gets one answer saying why, then the connection closes.
        let refused = !self.admin && self.client.is_err();
        let keep_alive = req.keep_alive() && !last && !refused;
        if !keep_alive {
            self.closing = true;
        }
        if self.admin {
            let seq = self.push_slot(rid, keep_alive, "admin", None, started, SlotState::Admin);
            self.outputs.push_back(ConnEvent::Submit(Work {
                seq,
                what: WorkKind::Admin(req),
            }));
            return;
        }
        let unix = self.now.unix_secs;
        let client = match &self.client {
            Ok(cl) => authz::check_validity(cl, unix).map(|_| cl.clone()),
            Err(d) => Err(d.clone()),
        };
        let client = match client {
            Ok(cl) => cl,
            Err(d) => {
                let e = ApiError::new(d.status(), d.code(), d.to_string());
                return self.push_ready(rid, false, "refused", None, Err(e));
            }
        };
        let route = match api::route(&req.method, &req.target) {
            Ok(r) => r,
            Err(e) => return self.push_ready(rid, keep_alive, "unrouted", Some(client), Err(e)),
        };
        let op = route.op;
        if !authz::allowed(client.role, op, self.settings.roles.admin_configured()) {
            let d = Denied::Forbidden {
                alias: client.alias.clone(),
                role: client.role,
                op,
            };
            let e = ApiError::new(403, d.code(), d.to_string());
            return self.push_ready(rid, keep_alive, op.name(), Some(client), Err(e));
        }
        let Some(key_name) = self.settings.resolve_key(&route.key) else {
            let e = ApiError::new(
                404,
                "unknown_key",
                format!("no key named {:?} is served", route.key),
            );
            return self.push_ready(rid, keep_alive, op.name(), Some(client), Err(e));
        };
        let body = match api::parse_body(op, req.header("content-type"), &req.body) {
            Ok(b) => b,
            Err(e) => return self.push_ready(rid, keep_alive, op.name(), Some(client), Err(e)),
        };
        self.submit(
            rid,
            keep_alive,
            op,
            Some(client),
            started,
            key_name,
            body,
            len,
        );
    }

    /// Takes a slot for an authorized request and hands its backend work to the endpoint.
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        rid: String,
        keep_alive: bool,
        op: Operation,
        client: Option<Client>,
        started: Instant,
        key_name: String,
        body: Body,
        len: usize,
    ) {
        let (batch, items) = match body {
            Body::Single(i) => (false, vec![Ok(i)]),
            Body::Batch(v) => (true, v),
        };
        let charge = request_charge(len, items.len());
        let mut results = Vec::with_capacity(items.len());
        let mut ops = Vec::new();
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
                    ops.push((idx, item.into_op(op, key_name.clone())));
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let remaining = ops.len();
        let seq = self.push_slot(
            rid,
            keep_alive,
            op.name(),
            client,
            started,
            SlotState::Waiting(Box::new(Job {
                key_name,
                batch,
                items: results,
                remaining,
            })),
        );
        if let Some(slot) = self.slot_mut(seq) {
            slot.charge = charge;
        }
        self.slot_bytes += charge;
        if remaining > 0 {
            self.outputs.push_back(ConnEvent::Submit(Work {
                seq,
                what: WorkKind::Ops(ops),
            }));
        } else {
            self.try_complete(seq);
        }
    }

    fn push_slot(
        &mut self,
        request_id: String,
        keep_alive: bool,
        op_name: &'static str,
        who: Option<Client>,
        started: Instant,
        state: SlotState,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let charge = match &state {
            SlotState::Ready(b) => b.len(),
            SlotState::Waiting(_) | SlotState::Admin => 0,
        };
        self.slot_bytes += charge;
        let ready = matches!(state, SlotState::Ready(_));
        self.slots.push_back(Slot {
            seq,
            charge,
            request_id,
            keep_alive,
            started,
            op_name,
            who,
            state,
        });
        if ready {
            self.flush();
        }
        seq
    }

    fn push_ready(
        &mut self,
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
        // Built from borrowed parts: this runs once per answer.
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
        self.metrics.lock().record(op_name, status);
        self.outputs.push_back(ConnEvent::Audit(line.to_json()));
        let body = serde_json::to_vec(&body).expect("json");
        let mut out = Vec::with_capacity(192 + body.len());
        http::write_parts(status, &headers, &body, &mut out);
        out
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        let front = self.slots.front()?.seq;
        self.slots
            .get_mut(usize::try_from(seq.checked_sub(front)?).ok()?)
    }

    fn complete(&mut self, seq: u64, idx: usize, result: Result<Reply, BackendError>) {
        let Some(slot) = self.slot_mut(seq) else {
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
        self.try_complete(seq);
    }

    fn try_complete(&mut self, seq: u64) {
        let Some(slot) = self.slot_mut(seq) else {
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
            std::mem::take(&mut slot.request_id),
            slot.keep_alive,
            slot.op_name,
            slot.who.take(),
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
        self.set_ready(seq, bytes);
    }

    /// Request `seq`'s answer is `bytes`: it is counted as such and leaves in order.
    fn set_ready(&mut self, seq: u64, bytes: Vec<u8>) {
        let len = bytes.len();
        let Some(slot) = self.slot_mut(seq) else {
            return;
        };
        slot.state = SlotState::Ready(bytes);
        let old = std::mem::replace(&mut slot.charge, len);
        self.slot_bytes = self.slot_bytes + len - old;
        self.flush();
    }

    /// Moves the answers that are ready, in request order, to the write queue.
    fn flush(&mut self) {
        let mut wrote = false;
        while let Some(front) = self.slots.front() {
            if !matches!(front.state, SlotState::Ready(_)) {
                break;
            }
            let slot = self.slots.pop_front().expect("front");
            self.slot_bytes -= slot.charge;
            if let SlotState::Ready(bytes) = slot.state {
                self.queue_bytes(bytes);
                self.timing
                    .push_back((self.queued_total, slot.op_name, slot.started));
                wrote = true;
            }
            if !slot.keep_alive {
                self.closing = true;
            }
        }
        if wrote {
            self.last_activity = self.now.mono;
        }
        self.pump_send();
    }

    fn reschedule(&mut self) {
        if self.closed {
            self.deadline = None;
            return;
        }
        let s = &self.settings;
        self.deadline = if let Some(since) = self.write_since {
            Some(since + s.write_timeout)
        } else if !self.slots.is_empty() {
            None // waiting on the backend; its own timeouts apply
        } else if let Some(start) = self.request_started {
            Some(start + s.header_timeout)
        } else if let Some(since) = self.draining {
            Some(self.last_activity.max(since) + DRAIN_LINGER)
        } else if !self.admin && self.client.is_err() {
            // Refused: no reason to keep its socket for a whole idle timeout.
            Some(self.last_activity + s.idle_timeout.min(s.header_timeout))
        } else {
            Some(self.last_activity + s.idle_timeout)
        };
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.closing = true;
            self.deadline = None;
            self.outputs.push_back(ConnEvent::Close);
        }
    }

    fn log(&mut self, component: &'static str, level: Level, message: String) {
        self.outputs.push_back(ConnEvent::Log {
            component,
            level,
            message: format!("connection {}: {message}", self.id),
        });
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
