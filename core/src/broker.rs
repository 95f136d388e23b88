//! The broker: one sans-IO state machine serving every connection of a node.
//!
//! # Driving it
//! A shell calls [`Broker::handle_input`] for everything that happens (a connection accepted,
//! bytes received, a peer gone, time passing, fresh entropy) and then **drains
//! [`Broker::poll_output`] until it returns `None`**, carrying out each [`Output`] in order;
//! then it sleeps until [`Broker::poll_timeout`] (or the next event) and feeds
//! [`Input::Timeout`]. Time never goes backwards; feeding a timeout early is harmless.
//! Before reading more bytes from a connection a shell asks [`Broker::wants_read`], which
//! bounds what one client can make the server hold.
use crate::api::{self, ApiError, Body, Item};
use crate::authz::{self, CertInfo, Client, Denied, Identities};
use crate::backend::{Backend, BackendOutput, LinkId, LinkSecurity, NetEvent, OpId};
use crate::config::keystore::{EntryKind, Keystore};
use crate::config::Settings;
use crate::drbg::Drbg;
use crate::http::{self, Limits, Parser, Request, Response};
use crate::metrics::Metrics;
use crate::time::{Instant, Now};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Identifies a connection; chosen by the shell, unique while open.
pub type ConnId = u64;

/// Most requests one connection may have in flight (pipelined) before the broker stops reading.
pub const MAX_PIPELINE: usize = 32;

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
    /// 32 bytes from the shell's CSPRNG (at start, then now and then).
    Entropy(&'a [u8; 32]),
    /// Stop taking new work; finish what is in flight, then close every connection.
    Shutdown,
    /// Something happened on a backend link.
    Net(NetEvent),
}

/// Something the shell must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes to the connection.
    Send {
        /// Which connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Flush and close the connection (after any earlier `Send`).
    Close {
        /// Which connection.
        conn: ConnId,
    },
    /// Atomically replace the soft-key file with these bytes.
    PersistSoftKeys(Vec<u8>),
    /// One audit record (a JSON line without the newline).
    Audit(String),
    /// Open a backend link (TCP + TLS as `security` says); report with [`Input::Net`].
    Connect {
        /// Link id.
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
    /// Write bytes on a backend link.
    NetSend {
        /// Link id.
        link: LinkId,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// Close a backend link.
    NetClose {
        /// Link id.
        link: LinkId,
    },
    /// A log line for operators.
    Log {
        /// `warn`, `info`, …
        level: &'static str,
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
    settings: Settings,
    limits: Limits,
    identities: Identities,
    cert_expiry: Vec<(String, i64)>,
    backend: Backend,
    rng: Drbg,
    conns: HashMap<ConnId, Conn>,
    deadlines: BTreeSet<(Instant, ConnId)>,
    ops: HashMap<OpId, (ConnId, u64, usize)>,
    next_op: OpId,
    outputs: VecDeque<Output>,
    metrics: Metrics,
    draining: bool,
    now: Now,
    request_counter: u64,
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
    /// A broker serving `keystore`'s identities with `backend`.
    pub fn new(settings: Settings, keystore: &Keystore, backend: Backend) -> Broker {
        let limits = Limits {
            max_body_bytes: settings.max_body,
            ..Limits::default()
        };
        let mut b = Broker {
            limits,
            identities: Identities::default(),
            cert_expiry: Vec::new(),
            settings,
            backend,
            rng: Drbg::new(),
            conns: HashMap::new(),
            deadlines: BTreeSet::new(),
            ops: HashMap::new(),
            next_op: 1,
            outputs: VecDeque::new(),
            metrics: Metrics::default(),
            draining: false,
            now: Now::default(),
            request_counter: 0,
        };
        b.set_keystore(keystore);
        b
    }

    /// Replaces the identities (live reload); open connections keep the identity they had.
    pub fn set_keystore(&mut self, keystore: &Keystore) {
        self.identities = Identities::from_keystore(keystore, &self.settings.roles);
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
    pub fn settings(&self) -> &Settings {
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

    /// Whether the shell should read more bytes from `conn` now.
    pub fn wants_read(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            !c.closing
                && c.slots.len() < MAX_PIPELINE
                && c.parser.buffered_len()
                    <= self.limits.max_header_bytes + self.limits.max_body_bytes
        })
    }

    /// The next thing to do, or `None` when drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the broker next needs [`Input::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.deadlines.iter().next().map(|(t, _)| *t);
        match (conns, self.backend.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Starts the backend's background work; call once, after the first [`Input::Entropy`].
    pub fn start(&mut self, now: Now) {
        self.now = now;
        self.backend.start(now, &mut self.rng);
        self.pump_backend();
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
            Input::Closed { conn } => self.remove(conn),
            Input::Timeout => {
                self.fire_timeouts();
                self.backend.handle_timeout(self.now, &mut self.rng);
            }
            Input::Entropy(e) => self.rng.reseed(e),
            Input::Shutdown => self.shutdown(),
            Input::Net(ev) => self.backend.handle_net(self.now, ev, &mut self.rng),
        }
        self.pump_backend();
    }

    fn accept(&mut self, conn: ConnId, listener: Listener) {
        let now = self.now;
        self.metrics.connections_accepted += 1;
        let (admin, client) = match listener {
            Listener::Admin => (true, Err(Denied::NoCertificate)),
            Listener::Client { peer_cert } => (
                false,
                self.identities.recognise(
                    peer_cert.as_deref(),
                    &self.settings.roles,
                    now.unix_secs,
                ),
            ),
        };
        if let Err(d) = &client {
            if !admin {
                self.log("info", format!("connection {conn}: client refused: {d}"));
            }
        }
        self.conns.insert(
            conn,
            Conn {
                admin,
                client,
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

    fn parse_requests(&mut self, id: ConnId) {
        loop {
            let now = self.now.mono;
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if c.closing || c.slots.len() >= MAX_PIPELINE {
                return;
            }
            match c.parser.next_request() {
                Ok(Some(req)) => {
                    c.request_started = c.parser.is_mid_request().then_some(now);
                    self.handle_request(id, req);
                }
                Ok(None) => {
                    if c.parser.take_continue() && c.slots.is_empty() {
                        self.outputs.push_back(Output::Send {
                            conn: id,
                            bytes: http::CONTINUE_100.to_vec(),
                        });
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
        r.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn handle_request(&mut self, id: ConnId, req: Request) {
        let rid = self.new_request_id(req.header("x-request-id"));
        let keep_alive = req.keep_alive() && !self.draining;
        let c = self.conns.get_mut(&id).expect("live conn");
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
            self.metrics.record("admin", resp.status, 0.0);
            self.push_slot(id, rid, keep_alive, "admin", None, SlotState::Ready(out));
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
                return self.push_ready(id, rid, keep_alive, "refused", None, Err(e));
            }
        };
        let route = match api::route(&req.method, &req.target) {
            Ok(r) => r,
            Err(e) => {
                return self.push_ready(id, rid, keep_alive, "unrouted", Some(client), Err(e))
            }
        };
        let op = route.op;
        if !authz::allowed(client.role, op) {
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
        let seq = self.push_slot(
            id,
            rid,
            keep_alive,
            op.name(),
            Some(client),
            SlotState::Waiting(Box::new(Job {
                key_name: key_name.clone(),
                batch,
                items: Vec::new(),
                remaining: 0,
            })),
        );
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
            self.backend.submit(self.now, op_id, bop, &mut self.rng);
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
                let mut r = text(
                    200,
                    self.metrics.render(
                        self.backend.is_ready(),
                        &self.cert_expiry,
                        self.now.unix_secs,
                    ),
                );
                r.headers[0].1 = "text/plain; version=0.0.4".into();
                r
            }
            _ => text(404, "not found\n".into()),
        }
    }

    fn push_slot(
        &mut self,
        id: ConnId,
        request_id: String,
        keep_alive: bool,
        op_name: &'static str,
        who: Option<Client>,
        state: SlotState,
    ) -> u64 {
        let started = self.now.mono;
        let c = self.conns.get_mut(&id).expect("live conn");
        let seq = c.next_seq;
        c.next_seq += 1;
        c.slots.push_back(Slot {
            seq,
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
        };
        let bytes = self.render(&meta, result, 0.0);
        self.push_slot(id, rid, keep_alive, op_name, who, SlotState::Ready(bytes));
    }

    fn render(
        &mut self,
        m: &AnswerMeta<'_>,
        result: Result<Value, ApiError>,
        secs: f64,
    ) -> Vec<u8> {
        let AnswerMeta {
            rid,
            keep_alive,
            op_name,
            who,
            key,
        } = *m;
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
            ("x-request-id".to_string(), rid.to_string()),
        ];
        let (status, body) = match result {
            Ok(v) => (200, v),
            Err(e) => {
                if let Some(ra) = e.retry_after {
                    headers.push(("retry-after".into(), ra.as_secs().max(1).to_string()));
                }
                if let Some(allow) = e.allow {
                    headers.push(("allow".into(), allow.into()));
                }
                (e.status, e.to_json(Some(rid)))
            }
        };
        if !keep_alive {
            headers.push(("connection".into(), "close".into()));
        }
        let mut audit = json!({
            "ts": self.now.unix_secs,
            "request_id": rid,
            "op": op_name,
            "status": status,
        });
        if let Some(c) = who {
            audit["alias"] = json!(c.alias);
            audit["role"] = json!(c.role.name());
        }
        if !key.is_empty() {
            audit["key"] = json!(key);
        }
        if status != 200 {
            audit["error"] = body["error"]["code"].clone();
        }
        self.metrics.record(op_name, status, secs);
        self.outputs.push_back(Output::Audit(audit.to_string()));
        let mut out = Vec::with_capacity(256);
        http::write_response(
            &Response {
                status,
                headers,
                body: serde_json::to_vec(&body).expect("json"),
            },
            &mut out,
        );
        out
    }

    fn slot_mut(&mut self, id: ConnId, seq: u64) -> Option<&mut Slot> {
        let c = self.conns.get_mut(&id)?;
        let front = c.slots.front()?.seq;
        c.slots
            .get_mut(usize::try_from(seq.checked_sub(front)?).ok()?)
    }

    fn pump_backend(&mut self) {
        while let Some(out) = self.backend.poll_output() {
            self.outputs.push_back(match out {
                BackendOutput::PersistSoftKeys(b) => Output::PersistSoftKeys(b),
                BackendOutput::Connect {
                    link,
                    host,
                    port,
                    security,
                    connect_timeout,
                } => Output::Connect {
                    link,
                    host,
                    port,
                    security,
                    connect_timeout,
                },
                BackendOutput::Send { link, bytes } => Output::NetSend { link, bytes },
                BackendOutput::Close { link } => Output::NetClose { link },
                BackendOutput::Log { level, message } => Output::Log { level, message },
            });
        }
        while let Some((op_id, result)) = self.backend.poll_reply() {
            let Some((conn, seq, idx)) = self.ops.remove(&op_id) else {
                continue;
            };
            let Some(slot) = self.slot_mut(conn, seq) else {
                continue;
            };
            let SlotState::Waiting(job) = &mut slot.state else {
                continue;
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
        let secs = self.now.mono.saturating_since(started).as_secs_f64();
        let meta = AnswerMeta {
            rid: &rid,
            keep_alive,
            op_name,
            who: who.as_ref(),
            key: &job.key_name,
        };
        let bytes = self.render(&meta, result, secs);
        if let Some(slot) = self.slot_mut(id, seq) {
            slot.state = SlotState::Ready(bytes);
        }
        self.flush(id);
    }

    fn flush(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut wrote = false;
        while let Some(front) = c.slots.front() {
            if !matches!(front.state, SlotState::Ready(_)) {
                break;
            }
            let slot = c.slots.pop_front().expect("front");
            if let SlotState::Ready(bytes) = slot.state {
                self.outputs.push_back(Output::Send { conn: id, bytes });
                wrote = true;
            }
            if !slot.keep_alive {
                c.closing = true;
            }
        }
        let done = c.closing && c.slots.is_empty();
        if wrote {
            c.last_activity = self.now.mono;
        }
        if done {
            self.close(id);
        } else {
            // Requests held back by the pipeline bound can go on now.
            if wrote && !c.closing && c.slots.len() < MAX_PIPELINE {
                self.parse_requests(id);
            }
            self.reschedule(id);
        }
    }

    fn reschedule(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if let Some(d) = c.deadline.take() {
            self.deadlines.remove(&(d, id));
        }
        let new = if !c.slots.is_empty() {
            None // waiting on the backend; its own timeouts apply
        } else if let Some(start) = c.request_started {
            Some(start + self.settings.header_timeout)
        } else {
            Some(c.last_activity + self.settings.idle_timeout)
        };
        if let Some(d) = new {
            c.deadline = Some(d);
            self.deadlines.insert((d, id));
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
            if c.request_started.is_some() {
                c.closing = true;
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
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            let c = self.conns.get_mut(&id).expect("listed");
            if c.slots.is_empty() && !c.parser.is_mid_request() {
                self.close(id);
            } else if !c.slots.is_empty() {
                // Answer what was asked; pipelined requests not yet read are not taken.
                c.closing = true;
                if let Some(last) = c.slots.back_mut() {
                    last.keep_alive = false;
                }
            }
            // A request still arriving is read to its end (or its header timeout), answered
            // with `Connection: close`, and the connection closed.
        }
    }

    fn close(&mut self, id: ConnId) {
        if self.conns.contains_key(&id) {
            self.outputs.push_back(Output::Close { conn: id });
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

    fn log(&mut self, level: &'static str, message: String) {
        self.outputs.push_back(Output::Log { level, message });
    }
}
