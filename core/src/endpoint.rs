//! The shared half of a node: what every connection's requests reach — identities, the
//! backend and its links, the cache, the DRBG that draws data keys and IVs, shutdown — as one
//! sans-IO state machine. Each connection's own work (HTTP, authorization, bodies, answers,
//! audit lines, its limits and deadlines) is a [`Connection`]; requests cross to the endpoint
//! as [`Work`] values and outcomes come back as [`ToConn`] values, so a shell drives each
//! connection on its own task and takes the endpoint's lock once per request.
//!
//! # Driving it
//! After every call that feeds it ([`Endpoint::accept`], [`Endpoint::submit`],
//! [`Endpoint::handle_net`], [`Endpoint::handle_timeout`], …) drain
//! [`Endpoint::poll_output`] until `None`: hand each [`Output::Conn`] to its connection,
//! carry out each link output and local effect. Feed [`Endpoint::handle_timeout`] once
//! [`Endpoint::poll_timeout`] has passed.
use crate::api::ApiError;
use crate::authz::{CertInfo, Denied, Identities};
use crate::backend::{
    Backend, BackendError, BackendOutput, LinkId, LinkSecurity, NetEvent, Op, OpId, Persist,
    PersistId, Reply,
};
use crate::cache::{self, Cache, CacheConfig, CacheEvent, Lookup, RedisTarget};
use crate::config::keystore::{EntryKind, Keystore};
use crate::config::BrokerSettings;
use crate::config::CacheType;
use crate::conn::{ConnSetup, Connection, SharedMetrics, ToConn, Work, WorkKind};
use crate::drbg::Drbg;
use crate::http::{self, Request, Response};
use crate::log::Level;
use crate::time::{Instant, Now};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Identifies a connection; chosen by the shell, unique while open.
pub type ConnId = u64;

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

/// Something the shell must do for the endpoint, grouped by whom it concerns.
#[derive(Debug)]
pub enum Output {
    /// For one connection's state machine.
    Conn(ConnId, ToConn),
    /// For one backend link (KMIP, Vault, Redis cache).
    Link(LinkOutput),
    /// For the node itself: files and logs.
    Local(Effect),
}

/// What to do with a backend link; what happens on it comes back as [`Endpoint::handle_net`].
#[derive(Debug, PartialEq, Eq)]
pub enum LinkOutput {
    /// Open a link (TCP + TLS as `security` says).
    Connect {
        /// Link id, chosen by the endpoint.
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
    /// [`Endpoint::persisted`].
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

/// A connection as the endpoint knows it: enough to re-check it on a keystore reload.
struct Known {
    admin: bool,
    /// The client's leaf certificate.
    peer_cert: Option<Vec<u8>>,
    /// Whether it was authorized at the last check.
    authorized: bool,
}

/// The shared half of a node. See the module docs for the drain rule.
pub struct Endpoint {
    settings: Arc<BrokerSettings>,
    identities: Identities,
    cert_expiry: Vec<(String, i64)>,
    backend: Backend,
    rng: Drbg,
    conns: BTreeMap<ConnId, Known>,
    ops: BTreeMap<OpId, (ConnId, u64, usize)>,
    next_op: OpId,
    outputs: VecDeque<Output>,
    metrics: SharedMetrics,
    cache: Cache,
    /// Every backend link, by the id the endpoint gave it.
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
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("conns", &self.conns.len())
            .field("ops_in_flight", &self.ops.len())
            .field("draining", &self.draining)
            .finish()
    }
}

impl Endpoint {
    /// An endpoint serving `keystore`'s identities with `backend`, its DRBG seeded with 32
    /// bytes from the shell's CSPRNG, started at `now`: the backend's and the cache's first
    /// outputs (links to open) are waiting in [`Endpoint::poll_output`].
    pub fn new(
        now: Now,
        settings: BrokerSettings,
        keystore: &Keystore,
        backend: Backend,
        seed: &[u8; 32],
    ) -> Endpoint {
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
        let mut e = Endpoint {
            cache,
            links: Links::default(),
            deferred: BTreeMap::new(),
            cache_keys: BTreeMap::new(),
            immediate: VecDeque::new(),
            identities: Identities::default(),
            cert_expiry: Vec::new(),
            settings: Arc::new(settings),
            backend,
            rng: Drbg::new(),
            conns: BTreeMap::new(),
            ops: BTreeMap::new(),
            next_op: 1,
            outputs: VecDeque::new(),
            metrics: SharedMetrics::default(),
            draining: false,
            drain_started: Instant::default(),
            now,
            request_counter: 0,
        };
        e.rng.reseed(seed);
        e.set_keystore(keystore);
        e.backend.start(now, &mut e.rng);
        e.cache.start(now);
        e.pump_backend();
        e
    }

    /// Names the shell's TLS implementation for `/metrics` (`keybroker_build_info`).
    pub fn set_tls_provider(&mut self, provider: &'static str) {
        self.metrics.lock().tls_provider = provider;
    }

    /// Moves the clock to `now` (time never goes backwards); call before feeding anything.
    pub fn set_now(&mut self, now: Now) {
        self.now.advance(now);
    }

    /// The clock as last set.
    pub fn now(&self) -> Now {
        self.now
    }

    /// Replaces the identities (live reload) and re-checks every open client connection:
    /// each is sent who its client is now ([`ToConn::Client`]); one no longer authorized
    /// gets a 403 on its next request and is closed.
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
            if c.authorized && now_is.is_err() {
                revoked.push(*id);
            }
            c.authorized = now_is.is_ok();
            self.outputs
                .push_back(Output::Conn(*id, ToConn::Client(now_is)));
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

    /// Whether every connection is gone after [`Endpoint::shutdown`].
    pub fn is_drained(&self) -> bool {
        self.draining && self.conns.is_empty()
    }

    /// Number of open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A connection finished its handshake: who the client is is decided here, and the
    /// connection's own state machine is returned for the shell to drive.
    pub fn accept(&mut self, conn: ConnId, listener: Listener) -> Connection {
        let (admin, client, peer_cert) = match listener {
            Listener::Admin => (true, Err(Denied::NoCertificate), None),
            Listener::Client { peer_cert } => (
                false,
                self.identities.recognise(
                    peer_cert.as_deref(),
                    &self.settings.roles,
                    self.now.unix_secs,
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
            Known {
                admin,
                authorized: client.is_ok(),
                peer_cert,
            },
        );
        let mut seed = [0u8; 32];
        if !self.rng.fill(&mut seed) {
            self.request_counter += 1;
            seed[..8].copy_from_slice(&self.request_counter.to_be_bytes());
        }
        {
            let mut m = self.metrics.lock();
            m.connections_accepted += 1;
            m.connections_open = self.conns.len() as u64;
        }
        Connection::new(
            self.now,
            ConnSetup {
                id: conn,
                settings: self.settings.clone(),
                metrics: self.metrics.clone(),
                admin,
                client,
                seed,
                draining: self.draining.then_some(self.drain_started),
            },
        )
    }

    /// A connection is gone (closed by either side): outcomes of its requests still in
    /// flight are dropped.
    pub fn closed(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        self.metrics.lock().connections_open = self.conns.len() as u64;
    }

    /// Takes one request's work from connection `conn`.
    pub fn submit(&mut self, conn: ConnId, work: Work) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        match work.what {
            WorkKind::Admin(req) => {
                let response = self.admin(&req);
                self.outputs.push_back(Output::Conn(
                    conn,
                    ToConn::Admin {
                        seq: work.seq,
                        response,
                    },
                ));
            }
            WorkKind::Ops(ops) => {
                for (idx, op) in ops {
                    let op_id = self.next_op;
                    self.next_op += 1;
                    self.ops.insert(op_id, (conn, work.seq, idx));
                    self.dispatch(op_id, op);
                }
            }
        }
        self.pump_backend();
    }

    /// Something happened on a backend link.
    pub fn handle_net(&mut self, ev: NetEvent) {
        // A late event on a link already closed has no owner: dropped.
        if let Some((owner, ev)) = self.links.inward(ev) {
            match owner {
                LinkOwner::Cache => self.cache.handle_net(self.now, ev),
                LinkOwner::Backend => self.backend.handle_net(self.now, ev, &mut self.rng),
            }
        }
        self.pump_backend();
    }

    /// Time passed: the backend's and the cache's deadlines up to now fire.
    pub fn handle_timeout(&mut self) {
        self.backend.handle_timeout(self.now, &mut self.rng);
        self.cache.handle_timeout(self.now);
        self.pump_backend();
    }

    /// 32 fresh bytes from the shell's CSPRNG.
    pub fn reseed(&mut self, entropy: &[u8; 32]) {
        self.rng.reseed(entropy);
    }

    /// The shell finished an [`Effect::PersistSoftKeys`].
    pub fn persisted(&mut self, id: PersistId, result: Result<(), String>) {
        self.backend.persisted(id, result, &mut self.rng);
        self.pump_backend();
    }

    /// Stops taking new work: every connection is told to answer what has arrived and close.
    pub fn shutdown(&mut self) {
        self.draining = true;
        self.drain_started = self.now.mono;
        for id in self.conns.keys() {
            self.outputs.push_back(Output::Conn(
                *id,
                ToConn::Drain {
                    since: self.drain_started,
                },
            ));
        }
    }

    /// The next thing to do, or `None` when drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the endpoint next needs [`Endpoint::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.backend.poll_timeout(), self.cache.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// A complete `503 overloaded` answer with `Retry-After` and `Connection: close`, for a
    /// shell to write on a connection it cannot take (over `keybroker.http.max-connections`).
    pub fn overload_answer(&mut self) -> Vec<u8> {
        let rid = crate::conn::request_id(&mut self.rng, &mut self.request_counter);
        let e = ApiError {
            retry_after: Some(std::time::Duration::from_secs(1)),
            ..ApiError::new(
                503,
                "overloaded",
                "too many connections; retry after the delay in Retry-After",
            )
        };
        self.metrics.lock().record("overload", 503);
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
                    self.metrics.lock().render(&crate::metrics::Snapshot {
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
            while let Some((op_id, job)) = self.backend.poll_job() {
                progressed = true;
                if self.cache_keys.contains_key(&op_id) {
                    // Its answer is to be cached: run here, where the cache is.
                    self.immediate.push_back((op_id, job.run()));
                } else if let Some((conn, seq, idx)) = self.ops.remove(&op_id) {
                    if self.conns.contains_key(&conn) {
                        self.outputs
                            .push_back(Output::Conn(conn, ToConn::Run { seq, idx, job }));
                    }
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
            let mut ck = None;
            let found = self.cache.lookup(self.now, op_id, || {
                *ck.insert(cache::cache_key(key, &envelope.encode(), context))
            });
            match (found, ck) {
                (Lookup::Hit(p), _) => {
                    self.immediate.push_back((op_id, Ok(Reply::Plaintext(p))));
                    return;
                }
                (Lookup::Miss, Some(ck)) => {
                    self.cache_keys.insert(op_id, ck);
                }
                (Lookup::Pending, Some(ck)) => {
                    self.cache_keys.insert(op_id, ck);
                    self.deferred.insert(op_id, op);
                    return;
                }
                _ => {}
            }
        }
        self.backend.submit(self.now, op_id, op, &mut self.rng);
    }

    fn complete_op(&mut self, op_id: OpId, result: Result<Reply, BackendError>) {
        let Some((conn, seq, idx)) = self.ops.remove(&op_id) else {
            return;
        };
        if self.conns.contains_key(&conn) {
            self.outputs
                .push_back(Output::Conn(conn, ToConn::Done { seq, idx, result }));
        }
    }

    fn log(&mut self, component: &'static str, level: Level, message: String) {
        self.outputs.push_back(Output::Local(Effect::Log {
            component,
            level,
            message,
        }));
    }
}
