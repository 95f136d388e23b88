//! The one driver: a [`Host`] owns the node's shared [`Endpoint`] and carries out its
//! outputs; each connection's task or thread owns that connection's state machine through a
//! [`Served`]; a server's runtime supplies only how values reach a connection or a link, how
//! a link is started and where slow work runs ([`Runtime`]).
//!
//! A connection's HTTP parsing, authorization, bodies, answers and audit lines run on its own
//! task or thread without any shared lock; it takes the endpoint's lock once per request
//! ([`Served::poll_action`] hands its work over and gets back what is already known, such as a soft
//! backend's answer). Every other thread or task (links, the timer) feeds what happened
//! through a `Host` method, which drains the endpoint's `poll_output` under its lock and routes
//! each output at once (the drain rule). Routing never blocks: a connection's outcomes go to
//! its channel, bytes to a link's, the soft-key file is sealed and written on
//! [`Runtime::spawn_blocking`], and its outcome comes back to [`Endpoint::persisted`].
//!
//! The policy both servers share lives here too: admission against the listeners' limits
//! ([`Host::admit`]), the accept-error backoff, the timer (endpoint deadlines, keystore watch,
//! DRBG reseed: [`Ticker`]), reload and shutdown.
use crate::node::{log, log_as, now_since, Effects, LinkTls, Prepared};
use keybroker_core::backend::{LinkId, LinkSecurity, NetEvent};
use keybroker_core::conn::{ConnEvent, Connection, ToConn, Work};
use keybroker_core::endpoint::{Endpoint, Output};
use keybroker_core::{ConnId, Effect, LinkOutput, Listener, Now};
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the driver hands a link: bytes to write, or the order to close.
#[derive(Debug)]
pub enum Msg {
    /// Write these bytes.
    Data(Vec<u8>),
    /// Close once what came before is written.
    Close,
}

/// Everything a runtime needs to open one backend link.
#[derive(Debug)]
pub struct LinkRequest {
    /// The broker's id for the link.
    pub link: LinkId,
    /// Host name or IP literal.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS profile (`Plain` for TCP).
    pub security: LinkSecurity,
    /// The TLS client configuration for `security`, if the keystore gave one.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Deadline for the TCP connect and, again, for the TLS handshake.
    pub connect_timeout: Duration,
    /// The OpenSSL context to use instead of rustls (`keybroker.hsm.tls=legacy`, HSM links).
    #[cfg(feature = "legacy-hsm-tls")]
    pub legacy: Option<Arc<crate::legacy_tls::Legacy>>,
}

impl LinkRequest {
    /// A blocking TCP connection to every address the host resolves to, in order, each within
    /// the connect timeout (for shells and links on threads).
    pub fn connect_blocking(&self) -> Result<std::net::TcpStream, String> {
        use std::net::ToSocketAddrs;
        let authority = self.authority();
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("{authority}: {e}"))?;
        let mut last = format!("{authority}: no address");
        for addr in addrs {
            match std::net::TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(t) => return Ok(t),
                Err(e) => last = format!("connect {addr}: {e}"),
            }
        }
        Err(last)
    }

    /// `host:port`, with an IPv6 literal in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// What to do after TCP: `Ok(None)` for a plain link, the TLS configuration and the
    /// server name to verify otherwise; `Err` says why the link cannot be secured.
    pub fn tls_setup(
        &self,
    ) -> Result<Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>, String> {
        if self.security == LinkSecurity::Plain {
            return Ok(None);
        }
        let Some(cfg) = self.tls.clone() else {
            return Err(format!(
                "no TLS client configuration for {:?} (check the keystore)",
                self.security
            ));
        };
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| format!("{}: not a valid TLS server name: {e}", self.host))?;
        Ok(Some((cfg, name)))
    }
}

/// What differs between the servers: how values reach a connection or a link, how a link is
/// started, where slow work runs. Every method is called with the endpoint's lock held, so
/// none may block or call back into the [`Host`] synchronously.
pub trait Runtime: Send + Sync + Sized + 'static {
    /// The sending half of a connection's channel.
    type ConnTx: Send + 'static;
    /// The sending half of a link's channel.
    type LinkTx: Send + 'static;
    /// The receiving half of a link's channel, handed to the link's task or thread.
    type LinkRx: Send + 'static;

    /// Hands `msg` to a connection's task or thread (unbounded: what can come is bounded by
    /// the connection's own pipeline limits); `false` if it is gone.
    fn to_conn(&self, tx: &Self::ConnTx, msg: ToConn) -> bool;
    /// Hands `msg` to a link.
    fn to_link(&self, tx: &Self::LinkTx, msg: Msg);
    /// A new link channel.
    fn link_channel(&self) -> (Self::LinkTx, Self::LinkRx);
    /// Starts a link's task or thread: connect as `req` says, report with
    /// [`Host::link_connected`] / [`Host::link_received`] / [`Host::link_closed`], write what
    /// arrives on `rx`, stop on [`Msg::Close`] or when `rx` is closed.
    fn spawn_link(host: &Arc<Host<Self>>, req: LinkRequest, rx: Self::LinkRx)
        -> Result<(), String>;
    /// Runs `job` off the endpoint's lock (it may block on files).
    fn spawn_blocking(&self, job: Box<dyn FnOnce() + Send + 'static>);
}

/// Which listener a socket came in on, for admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The mTLS client listener.
    Client,
    /// The plain-HTTP admin listener.
    Admin,
}

/// A socket's place in its listener's count; released when dropped, however the socket ends.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What to do with an accepted socket.
pub enum Admission {
    /// Serve it (handshake within [`Host::handshake_timeout`], then [`Host::open_conn`]).
    Serve(Slot),
    /// Over the listener's limit: answer [`Host::overload_answer`] and close.
    Refuse(Slot),
    /// Past the overload allowance too: close at once.
    Drop,
}

struct Counter {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// The endpoint and everything that routes its outputs, shared by every task or thread.
pub struct Host<R: Runtime> {
    rt: R,
    endpoint: Mutex<Endpoint>,
    conns: Mutex<HashMap<ConnId, R::ConnTx>>,
    links: Mutex<HashMap<LinkId, R::LinkTx>>,
    epoch: std::time::Instant,
    effects: Effects,
    link_tls: LinkTls,
    server_tls: Mutex<Arc<rustls::ServerConfig>>,
    next_conn: AtomicU64,
    client: Counter,
    admin: Counter,
    overload: Counter,
    write_timeout: Duration,
    handshake_timeout: Duration,
}

impl<R: Runtime> Host<R> {
    /// Takes a loaded node; its first outputs are carried out by [`Host::start`].
    pub fn new(rt: R, p: Prepared) -> Arc<Host<R>> {
        let st = p.limits;
        let client = Counter {
            open: Arc::default(),
            max: st.max_connections,
        };
        let admin = Counter {
            open: Arc::default(),
            max: st.admin_max_connections,
        };
        let overload = Counter {
            open: Arc::default(),
            max: st.overload_connections,
        };
        let (write_timeout, handshake_timeout) = (st.write_timeout, st.handshake_timeout);
        Arc::new(Host {
            rt,
            endpoint: Mutex::new(p.endpoint),
            conns: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            epoch: p.epoch,
            effects: p.effects,
            link_tls: p.link_tls,
            server_tls: Mutex::new(p.server_tls),
            next_conn: AtomicU64::new(1),
            client,
            admin,
            overload,
            write_timeout,
            handshake_timeout,
        })
    }

    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.rt
    }

    /// The broker's clock now.
    pub fn now(&self) -> Now {
        now_since(self.epoch)
    }

    /// Carries out what the endpoint asked for when it started (backend and cache links);
    /// call once the runtime can spawn links.
    pub fn start(self: &Arc<Self>) {
        self.drive(|_| ());
    }

    /// Runs `feed` on the endpoint and carries out every output, in order, under its lock;
    /// audit lines are sealed and written after the lock is released.
    ///
    /// Sealing (HMAC) and the file write are kept out of the one lock every request takes.
    /// The chain's sequence number is given when a line is sealed, so lines of concurrent
    /// requests may reach the file in another order than they were made, still chained and
    /// verifiable; an answer may leave a moment before its line.
    pub fn drive<T>(self: &Arc<Self>, feed: impl FnOnce(&mut Endpoint) -> T) -> T {
        self.drive_for(None, &mut Vec::new(), feed)
    }

    /// [`Host::drive`]; what the endpoint has for connection `mine` goes to `own` instead of
    /// its channel (its own task is the caller).
    fn drive_for<T>(
        self: &Arc<Self>,
        mine: Option<ConnId>,
        own: &mut Vec<ToConn>,
        feed: impl FnOnce(&mut Endpoint) -> T,
    ) -> T {
        let now = self.now();
        let mut audit = Vec::new();
        let seen = {
            let mut ep = self.endpoint.lock().expect("endpoint lock");
            ep.set_now(now);
            let seen = feed(&mut ep);
            while let Some(out) = ep.poll_output() {
                match out {
                    Output::Conn(id, msg) if Some(id) == mine => own.push(msg),
                    Output::Conn(id, msg) => {
                        if let Some(tx) = self.conns.lock().expect("conns").get(&id) {
                            self.rt.to_conn(tx, msg);
                        }
                    }
                    Output::Link(out) => self.route_link(out),
                    Output::Local(Effect::Audit(line)) => audit.push(line),
                    Output::Local(e) => self.local(e),
                }
            }
            seen
        };
        for line in audit {
            self.effects.audit(&line);
        }
        seen
    }

    fn local(self: &Arc<Self>, e: Effect) {
        match e {
            Effect::PersistSoftKeys(p) => {
                let me = self.clone();
                self.rt.spawn_blocking(Box::new(move || {
                    let result = me.effects.persist(&p);
                    me.drive(|ep| ep.persisted(p.id, result));
                }));
            }
            Effect::Audit(line) => self.effects.audit(&line),
            Effect::Log {
                component,
                level,
                message,
            } => log_as(component, level.as_str(), &message),
        }
    }

    fn route_link(self: &Arc<Self>, out: LinkOutput) {
        match out {
            LinkOutput::Connect {
                link,
                host,
                port,
                security,
                connect_timeout,
            } => {
                let (tx, rx) = self.rt.link_channel();
                self.links.lock().expect("links").insert(link, tx);
                let req = LinkRequest {
                    link,
                    host,
                    port,
                    security,
                    tls: self.link_tls.for_link(security),
                    connect_timeout,
                    #[cfg(feature = "legacy-hsm-tls")]
                    legacy: self.link_tls.legacy_for(security),
                };
                if let Err(e) = R::spawn_link(self, req, rx) {
                    self.links.lock().expect("links").remove(&link);
                    log("error", &format!("link {link}: cannot start: {e}"));
                }
            }
            LinkOutput::Send { link, bytes } => {
                if let Some(tx) = self.links.lock().expect("links").get(&link) {
                    self.rt.to_link(tx, Msg::Data(bytes));
                }
            }
            LinkOutput::Close { link } => {
                if let Some(tx) = self.links.lock().expect("links").remove(&link) {
                    self.rt.to_link(&tx, Msg::Close);
                }
            }
        }
    }

    /// Registers a connection that finished its handshake: the endpoint decides who the
    /// client is, and the caller's task or thread drives the connection through the
    /// returned [`Served`].
    pub fn open_conn(self: &Arc<Self>, tx: R::ConnTx, listener: Listener) -> Served<R> {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().expect("conns").insert(id, tx);
        let mut own = Vec::new();
        let conn = self.drive_for(Some(id), &mut own, |ep| ep.accept(id, listener));
        let mut served = Served {
            host: self.clone(),
            id,
            conn,
            work: Vec::new(),
            own,
        };
        served.deliver_own();
        served
    }

    /// A link is connected (TCP, and TLS if asked).
    pub fn link_connected(self: &Arc<Self>, link: LinkId) {
        self.drive(|ep| ep.handle_net(NetEvent::Connected { link }));
    }

    /// Bytes from a link.
    pub fn link_received(self: &Arc<Self>, link: LinkId, bytes: &[u8]) {
        self.drive(|ep| {
            ep.handle_net(NetEvent::Received {
                link,
                bytes: bytes.to_vec(),
            })
        });
    }

    /// A link failed or its peer closed it (not after [`Msg::Close`]: that needs no report).
    pub fn link_closed(self: &Arc<Self>, link: LinkId, reason: String) {
        self.links.lock().expect("links").remove(&link);
        self.drive(|ep| ep.handle_net(NetEvent::Closed { link, reason }));
    }

    /// Counts an accepted socket against its listener's limit.
    ///
    /// Client sockets count against `keybroker.http.max-connections` (fitted to the open-file
    /// limit), admin sockets against `keybroker.admin.max-connections`; past the limit up to
    /// `keybroker.http.overload-connections` more (one for the admin listener) are refused
    /// with a 503, the rest dropped.
    pub fn admit(&self, side: Side) -> Admission {
        let (c, overload) = match side {
            Side::Client => (&self.client, self.overload.max),
            Side::Admin => (&self.admin, 1),
        };
        if c.open.fetch_add(1, Ordering::SeqCst) < c.max {
            return Admission::Serve(Slot(c.open.clone()));
        }
        c.open.fetch_sub(1, Ordering::SeqCst);
        if self.overload.open.fetch_add(1, Ordering::SeqCst) < overload {
            return Admission::Refuse(Slot(self.overload.open.clone()));
        }
        self.overload.open.fetch_sub(1, Ordering::SeqCst);
        Admission::Drop
    }

    /// Client sockets open now.
    pub fn clients_open(&self) -> usize {
        self.client.open.load(Ordering::SeqCst)
    }

    /// The 503 answer for a socket over the limit.
    pub fn overload_answer(&self) -> Vec<u8> {
        self.endpoint.lock().expect("endpoint").overload_answer()
    }

    /// `keybroker.http.write-timeout`: a client that does not read loses its connection.
    pub fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    /// `keybroker.http.handshake-timeout`.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The TLS server configuration for the next handshake.
    pub fn server_tls(&self) -> Arc<rustls::ServerConfig> {
        self.server_tls.lock().expect("tls").clone()
    }

    /// Re-reads the configuration and keystore; on any error the old one keeps serving.
    /// Every open connection's identity is re-checked against the new keystore; a new server
    /// certificate is served from the next handshake on.
    pub fn reload(self: &Arc<Self>) {
        if let Some(cfg) = self
            .effects
            .reload(|ks| self.drive(|ep| ep.set_keystore(ks)))
        {
            *self.server_tls.lock().expect("tls") = cfg;
        }
    }

    /// Stops taking new work: in-flight requests finish, then every connection closes.
    pub fn shutdown(self: &Arc<Self>) {
        log("info", "shutting down: finishing in-flight requests");
        self.drive(Endpoint::shutdown);
    }

    /// Whether shutdown has finished every connection.
    pub fn is_drained(&self) -> bool {
        self.endpoint.lock().expect("endpoint").is_drained()
    }

    /// The timer policy, for the server's one timer task or thread.
    pub fn ticker(self: &Arc<Self>) -> Ticker<R> {
        let now = std::time::Instant::now();
        Ticker {
            host: self.clone(),
            last_reseed: now,
            last_watch: now,
        }
    }
}

/// How often the keystore file is looked at for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How often the broker's DRBG gets fresh entropy.
const RESEED_EVERY: Duration = Duration::from_secs(600);
/// The longest sleep between two timeouts (shutdown and reload stay prompt).
const MAX_WAIT: Duration = Duration::from_millis(250);

/// The timer: sleep [`Ticker::wait`], then [`Ticker::tick`], forever.
pub struct Ticker<R: Runtime> {
    host: Arc<Host<R>>,
    last_reseed: std::time::Instant,
    last_watch: std::time::Instant,
}

impl<R: Runtime> Ticker<R> {
    /// How long to sleep before the next tick: until the endpoint's next deadline, at most
    /// 250 ms (connections keep their own deadlines).
    pub fn wait(&self) -> Duration {
        let ep = self.host.endpoint.lock().expect("endpoint");
        let now = self.host.now().mono;
        ep.poll_timeout()
            .map(|t| t.saturating_since(now))
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT)
    }

    /// Fires the endpoint's deadlines; every 2 s reloads if the keystore file changed; every
    /// 10 min reseeds the endpoint's DRBG from the OS.
    pub fn tick(&mut self) {
        self.host.drive(Endpoint::handle_timeout);
        if self.last_watch.elapsed() > WATCH_EVERY {
            if self.host.effects.keystore_changed() {
                self.host.reload();
            }
            self.last_watch = std::time::Instant::now();
        }
        if self.last_reseed.elapsed() > RESEED_EVERY {
            let mut seed = [0u8; 32];
            crate::tls::random(&mut seed);
            self.host.drive(|ep| ep.reseed(&seed));
            self.last_reseed = std::time::Instant::now();
        }
    }
}

/// Waits after a failed `accept` (EMFILE and friends) instead of spinning, longer each time,
/// and says so at most once a second.
pub struct AcceptBackoff {
    next: Duration,
    last_warn: Option<std::time::Instant>,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            next: Duration::from_millis(5),
            last_warn: None,
        }
    }
}

impl AcceptBackoff {
    /// An accept succeeded.
    pub fn ok(&mut self) {
        self.next = Duration::from_millis(5);
    }

    /// An accept failed: how long to wait before the next.
    pub fn failed(&mut self, e: &std::io::Error) -> Duration {
        let wait = self.next;
        if self
            .last_warn
            .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            log(
                "warn",
                &format!("accept failed: {e} (retrying in {wait:?})"),
            );
            self.last_warn = Some(std::time::Instant::now());
        }
        self.next = (wait * 2).min(Duration::from_secs(1));
        wait
    }
}

/// The identity a client presented in its TLS handshake, for [`Host::open_conn`].
pub fn client_listener(conn: &rustls::ServerConnection) -> Listener {
    Listener::Client {
        peer_cert: conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec()),
    }
}

/// What a connection's task or thread must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes (within `keybroker.http.write-timeout`), then report
    /// [`Served::written`].
    Send(Vec<u8>),
    /// Close the connection (what came before is written).
    Close,
}

/// One connection as its own task or thread drives it: its state machine, without any shared
/// lock, and the way to the endpoint. Dropping it tells the endpoint the connection is gone.
pub struct Served<R: Runtime> {
    host: Arc<Host<R>>,
    id: ConnId,
    conn: Connection,
    /// Requests parsed and not yet handed to the endpoint (kept for its capacity).
    work: Vec<Work>,
    /// What the endpoint answered in the last lock round trip (kept for its capacity).
    own: Vec<ToConn>,
}

impl<R: Runtime> Served<R> {
    /// Bytes read from the connection (after TLS).
    pub fn received(&mut self, bytes: &[u8]) {
        self.conn.received(self.host.now(), bytes);
    }

    /// `bytes` of the last [`Action::Send`] reached the socket.
    pub fn written(&mut self, bytes: usize) {
        self.conn.written(self.host.now(), bytes);
    }

    /// Something the endpoint sent on the connection's channel.
    pub fn deliver(&mut self, msg: ToConn) {
        self.conn.deliver(self.host.now(), msg);
    }

    /// Delivers what the endpoint answered in the last lock round trip, in order.
    fn deliver_own(&mut self) {
        let now = self.host.now();
        for msg in self.own.drain(..) {
            self.conn.deliver(now, msg);
        }
    }

    /// Lets the connection's deadlines up to now fire (harmless when none is due).
    pub fn handle_timeout(&mut self) {
        self.conn.handle_timeout(self.host.now());
    }

    /// Whether to read more bytes (at most [`keybroker_core::READ_CHUNK`]) now.
    pub fn wants_read(&self) -> bool {
        self.conn.wants_read()
    }

    /// Requests read and not yet answered (their outcomes may arrive on the channel).
    pub fn in_flight(&self) -> usize {
        self.conn.in_flight()
    }

    /// When [`Served::handle_timeout`] is next due.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.conn
            .poll_timeout()
            .map(|t| self.host.epoch + t.since_epoch())
    }

    /// The next write or close, or `None` when there is nothing to do until the next event.
    /// Requests parsed meanwhile go to the endpoint in one lock round trip, and what it
    /// already knows (a soft backend's answer, an admin page) comes back in the same trip.
    pub fn poll_action(&mut self) -> Option<Action> {
        loop {
            match self.conn.poll_output() {
                Some(ConnEvent::Send(bytes)) => return Some(Action::Send(bytes)),
                Some(ConnEvent::Close) => return Some(Action::Close),
                Some(ConnEvent::Submit(w)) => self.work.push(w),
                Some(ConnEvent::Audit(line)) => self.host.effects.audit(&line),
                Some(ConnEvent::Log {
                    component,
                    level,
                    message,
                }) => log_as(component, level.as_str(), &message),
                None if self.work.is_empty() => return None,
                None => {
                    let id = self.id;
                    let work = &mut self.work;
                    self.host.drive_for(Some(id), &mut self.own, |ep| {
                        for w in work.drain(..) {
                            ep.submit(id, w);
                        }
                    });
                    self.deliver_own();
                }
            }
        }
    }
}

impl<R: Runtime> Drop for Served<R> {
    fn drop(&mut self) {
        self.host.conns.lock().expect("conns").remove(&self.id);
        let id = self.id;
        self.host.drive(|ep| ep.closed(id));
    }
}
