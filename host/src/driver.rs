//! The one driver: a [`Host`] owns the broker and carries out its outputs; a server's runtime
//! supplies only how bytes reach a connection or a link, how a link is started and where slow
//! work runs ([`Runtime`]).
//!
//! Every thread or task of a server feeds what happened through a `Host` method (which calls
//! [`Host::drive`]); `drive` hands the input to the broker and drains `poll_output` under the
//! broker's lock, routing each output at once (the drain rule). Routing never blocks: bytes go
//! to the owning connection's or link's channel, the soft-key file is sealed and written on
//! [`Runtime::spawn_blocking`], and its outcome comes back as `Input::Persisted`.
//!
//! The policy both servers share lives here too: admission against the listeners' limits
//! ([`Host::admit`]), the accept-error backoff, the timer (broker deadlines, keystore watch,
//! DRBG reseed: [`Ticker`]), reload and shutdown.
use crate::node::{log, log_as, now_since, Effects, LinkTls, Prepared};
use keybroker_core::backend::{LinkId, LinkSecurity, NetEvent};
use keybroker_core::{
    Broker, ConnId, ConnOutput, Effect, Input, LinkOutput, Listener, Now, Output,
};
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the driver hands a connection or a link: bytes to write, or the order to close.
#[derive(Debug)]
pub enum Msg {
    /// Write these bytes (for a connection: report them with [`Host::written`]).
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

/// What differs between the servers: how bytes reach a connection or a link, how a link is
/// started, where slow work runs. Every method is called with the broker's lock held, so none
/// may block or call back into the [`Host`] synchronously.
pub trait Runtime: Send + Sync + Sized + 'static {
    /// The sending half of a connection's channel (plus whatever wakes its reader).
    type ConnTx: Send + 'static;
    /// The sending half of a link's channel.
    type LinkTx: Send + 'static;
    /// The receiving half of a link's channel, handed to the link's task or thread.
    type LinkRx: Send + 'static;

    /// Hands `msg` to a connection; `false` if its queue is full (a broken invariant: the
    /// broker hands out one `Send` per connection until it is reported written).
    fn to_conn(&self, tx: &Self::ConnTx, msg: Msg) -> bool;
    /// Hands `msg` to a link.
    fn to_link(&self, tx: &Self::LinkTx, msg: Msg);
    /// A new link channel.
    fn link_channel(&self) -> (Self::LinkTx, Self::LinkRx);
    /// Starts a link's task or thread: connect as `req` says, report with
    /// [`Host::link_connected`] / [`Host::link_received`] / [`Host::link_closed`], write what
    /// arrives on `rx`, stop on [`Msg::Close`] or when `rx` is closed.
    fn spawn_link(host: &Arc<Host<Self>>, req: LinkRequest, rx: Self::LinkRx)
        -> Result<(), String>;
    /// Runs `job` off the broker's lock (it may block on files).
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

/// The broker and everything that routes its outputs, shared by every task or thread.
pub struct Host<R: Runtime> {
    rt: R,
    broker: Mutex<Broker>,
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
            broker: Mutex::new(p.broker),
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

    /// Carries out what the broker asked for when it started (backend and cache links);
    /// call once the runtime can spawn links.
    pub fn start(self: &Arc<Self>) {
        let mut b = self.broker.lock().expect("broker");
        while let Some(out) = b.poll_output() {
            self.route(out);
        }
    }

    /// Feeds one input and carries out every output, in order, under the broker lock; audit
    /// lines are sealed and written after the lock is released.
    ///
    /// Sealing (HMAC) and the file write are kept out of the one lock every connection waits
    /// for. The chain's sequence number is given when a line is sealed,
    /// so lines of concurrent requests may reach the file in another order than the broker
    /// made them, still chained and verifiable; an answer may leave a moment before its line.
    pub fn drive(self: &Arc<Self>, input: Input<'_>) {
        self.drive_then(input, |_| ());
    }

    /// [`Host::drive`], then `look` at the broker before its lock is released (one lock
    /// round trip where a connection's task would otherwise take it twice).
    fn drive_then<T>(self: &Arc<Self>, input: Input<'_>, look: impl FnOnce(&Broker) -> T) -> T {
        let now = self.now();
        let mut audit = Vec::new();
        let seen = {
            let mut b = self.broker.lock().expect("broker lock");
            b.handle_input(now, input);
            while let Some(out) = b.poll_output() {
                match out {
                    Output::Local(Effect::Audit(line)) => audit.push(line),
                    out => self.route(out),
                }
            }
            look(&b)
        };
        for line in audit {
            self.effects.audit(&line);
        }
        seen
    }

    fn route(self: &Arc<Self>, out: Output) {
        match out {
            Output::Conn(out) => self.route_conn(out),
            Output::Link(out) => self.route_link(out),
            Output::Local(Effect::PersistSoftKeys(p)) => {
                let me = self.clone();
                self.rt.spawn_blocking(Box::new(move || {
                    let result = me.effects.persist(&p);
                    me.drive(Input::Persisted { id: p.id, result });
                }));
            }
            Output::Local(Effect::Audit(line)) => self.effects.audit(&line),
            Output::Local(Effect::Log {
                component,
                level,
                message,
            }) => log_as(component, level.as_str(), &message),
        }
    }

    fn route_conn(&self, out: ConnOutput) {
        let (conn, msg) = match out {
            ConnOutput::Send { conn, bytes } => (conn, Msg::Data(bytes)),
            ConnOutput::Close { conn } => (conn, Msg::Close),
        };
        if let Some(tx) = self.conns.lock().expect("conns").get(&conn) {
            let close = matches!(msg, Msg::Close);
            if !self.rt.to_conn(tx, msg) && !close {
                log("error", &format!("connection {conn}: write queue full"));
            }
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

    /// Registers a connection that finished its handshake and tells the broker.
    pub fn open_conn(self: &Arc<Self>, tx: R::ConnTx, listener: Listener) -> ConnId {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().expect("conns").insert(id, tx);
        self.drive(Input::Accepted { conn: id, listener });
        id
    }

    /// Bytes read from a connection (after TLS); answers whether the broker reads from
    /// `conn` now, as [`Host::read_state`] would.
    pub fn received(self: &Arc<Self>, conn: ConnId, bytes: &[u8]) -> bool {
        self.drive_then(Input::Received { conn, bytes }, |b| b.wants_read(conn))
    }

    /// `bytes` of a [`Msg::Data`] reached the connection's socket; answers whether the broker
    /// reads from `conn` now.
    pub fn written(self: &Arc<Self>, conn: ConnId, bytes: usize) -> bool {
        self.drive_then(Input::Written { conn, bytes }, |b| b.wants_read(conn))
    }

    /// The peer went away or a read or write failed.
    pub fn closed(self: &Arc<Self>, conn: ConnId) {
        self.drive(Input::Closed { conn });
    }

    /// The connection's task or thread ends: forget its channel.
    pub fn forget(&self, conn: ConnId) {
        self.conns.lock().expect("conns").remove(&conn);
    }

    /// Whether the broker reads from `conn` now, and whether it has requests in flight there
    /// (whose answers may come from another thread).
    pub fn read_state(&self, conn: ConnId) -> (bool, bool) {
        let b = self.broker.lock().expect("broker");
        (b.wants_read(conn), b.in_flight(conn) > 0)
    }

    /// A link is connected (TCP, and TLS if asked).
    pub fn link_connected(self: &Arc<Self>, link: LinkId) {
        self.drive(Input::Net(NetEvent::Connected { link }));
    }

    /// Bytes from a link.
    pub fn link_received(self: &Arc<Self>, link: LinkId, bytes: &[u8]) {
        self.drive(Input::Net(NetEvent::Received {
            link,
            bytes: bytes.to_vec(),
        }));
    }

    /// A link failed or its peer closed it (not after [`Msg::Close`]: that needs no report).
    pub fn link_closed(self: &Arc<Self>, link: LinkId, reason: String) {
        self.links.lock().expect("links").remove(&link);
        self.drive(Input::Net(NetEvent::Closed { link, reason }));
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
        self.broker.lock().expect("broker").overload_answer()
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
    pub fn reload(&self) {
        if let Some(cfg) = self.effects.reload(&self.broker) {
            *self.server_tls.lock().expect("tls") = cfg;
        }
    }

    /// Stops taking new work: in-flight requests finish, then every connection closes.
    pub fn shutdown(self: &Arc<Self>) {
        log("info", "shutting down: finishing in-flight requests");
        self.drive(Input::Shutdown);
    }

    /// Whether shutdown has finished every connection.
    pub fn is_drained(&self) -> bool {
        self.broker.lock().expect("broker").is_drained()
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
    /// How long to sleep before the next tick: until the broker's next deadline, at most
    /// 250 ms.
    pub fn wait(&self) -> Duration {
        let b = self.host.broker.lock().expect("broker");
        let now = self.host.now().mono;
        b.poll_timeout()
            .map(|t| t.saturating_since(now))
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT)
    }

    /// Fires the broker's deadlines; every 2 s reloads if the keystore file changed; every
    /// 10 min reseeds the broker's DRBG from the OS.
    pub fn tick(&mut self) {
        self.host.drive(Input::Timeout);
        if self.last_watch.elapsed() > WATCH_EVERY {
            if self.host.effects.keystore_changed() {
                self.host.reload();
            }
            self.last_watch = std::time::Instant::now();
        }
        if self.last_reseed.elapsed() > RESEED_EVERY {
            let mut seed = [0u8; 32];
            crate::tls::random(&mut seed);
            self.host.drive(Input::Entropy(&seed));
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
