//! The blocking shell: std threads around one `Broker` behind a mutex.
//!
//! One thread per connection (bounded by `keybroker.http.max-connections`, counted from
//! accept, TLS handshake included), one timer thread, one accept thread per listener (the admin
//! listener has its own limit, `keybroker.admin.max-connections`), one thread per backend
//! link. Past the client limit, up to `keybroker.http.overload-connections` more sockets get a
//! handshake and a `503` with `Retry-After`. Every thread feeds inputs with [`Shared::drive`],
//! which drains the broker's outputs under its lock (the drain rule); carrying out an output
//! never blocks: bytes go to the owning thread's bounded channel (the broker hands out one
//! `Send` per connection until it is reported with `Input::Written`).
//!
//! A connection thread blocks in `read`. Answers that come from another thread (a backend
//! reply, a timeout, shutdown) reach it in two ways: `Close` also shuts the socket's read
//! half, which wakes the read; while the broker has requests in flight on the connection
//! (`Broker::in_flight`) the thread reads with a short timeout and checks its channel.
use keybroker::node::{self, log, now_since, Effects, LinkTls};
use keybroker::tls;
use keybroker_core::backend::{LinkId, LinkSecurity, NetEvent};
use keybroker_core::{Broker, ConnId, Input, Listener, Now, Output};
use rustls::{ClientConnection, ServerConfig, ServerConnection, StreamOwned};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a busy connection or a link reads before it looks at its channel again.
const POLL: Duration = Duration::from_millis(5);
/// Stack of a connection thread: rustls and the parser need little.
const CONN_STACK: usize = 256 * 1024;

enum Msg {
    Data(Vec<u8>),
    Close,
}

struct ConnHandle {
    tx: SyncSender<Msg>,
    /// A second handle on the socket, to wake the reading thread.
    sock: TcpStream,
}

/// State shared by every thread of one server.
pub struct Shared {
    broker: Mutex<Broker>,
    conns: Mutex<HashMap<ConnId, ConnHandle>>,
    links: Mutex<HashMap<LinkId, Sender<Msg>>>,
    epoch: std::time::Instant,
    effects: Effects,
    link_tls: LinkTls,
    server_tls: Mutex<Arc<ServerConfig>>,
    next_conn: AtomicU64,
    /// Client-listener sockets open, counted from accept.
    active: AtomicUsize,
    /// Admin-listener sockets open.
    admin_active: AtomicUsize,
    /// Sockets being told 503.
    overload_active: AtomicUsize,
    /// `keybroker.http.max-connections`, fitted to the open-file limit.
    max_connections: usize,
}

impl Shared {
    fn now(&self) -> Now {
        now_since(self.epoch)
    }

    /// Feeds one input and carries out every output, in order, under the broker lock.
    fn drive(self: &Arc<Self>, input: Input<'_>) {
        let now = self.now();
        let mut b = self.broker.lock().expect("broker lock");
        b.handle_input(now, input);
        while let Some(out) = b.poll_output() {
            self.carry_out(out);
        }
    }

    fn carry_out(self: &Arc<Self>, out: Output) {
        let Some(out) = self.effects.local(out) else {
            return;
        };
        match out {
            Output::Send { conn, bytes } => {
                if let Some(h) = self.conns.lock().expect("conns").get(&conn) {
                    // The broker hands out one Send at a time: the queue has room.
                    if h.tx.try_send(Msg::Data(bytes)).is_err() {
                        log("error", &format!("connection {conn}: write queue full"));
                    }
                }
            }
            Output::Close { conn } => {
                if let Some(h) = self.conns.lock().expect("conns").get(&conn) {
                    let _ = h.tx.try_send(Msg::Close);
                    // Wakes a blocked read; a blocked write ends at the socket's write timeout.
                    let _ = h.sock.shutdown(Shutdown::Read);
                }
            }
            Output::PersistSoftKeys(p) => {
                let me = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("persist".into())
                    .spawn(move || {
                        let result = me.effects.persist(&p);
                        me.drive(Input::Persisted { id: p.id, result });
                    });
                if let Err(e) = spawned {
                    log("error", &format!("cannot start the soft-key writer: {e}"));
                }
            }
            Output::Connect {
                link,
                host,
                port,
                security,
                connect_timeout,
            } => {
                let (tx, rx) = channel();
                self.links.lock().expect("links").insert(link, tx);
                let me = self.clone();
                let tls = self.link_tls.for_link(security);
                let spawned = std::thread::Builder::new()
                    .name(format!("link-{link}"))
                    .spawn(move || {
                        link_thread(&me, link, &host, port, security, tls, connect_timeout, rx)
                    });
                if let Err(e) = spawned {
                    log("error", &format!("link {link}: cannot start a thread: {e}"));
                }
            }
            Output::NetSend { link, bytes } => {
                if let Some(tx) = self.links.lock().expect("links").get(&link) {
                    let _ = tx.send(Msg::Data(bytes));
                }
            }
            Output::NetClose { link } => {
                if let Some(tx) = self.links.lock().expect("links").remove(&link) {
                    let _ = tx.send(Msg::Close);
                }
            }
            _ => {}
        }
    }

    /// Re-reads the keystore; on any error the old one keeps serving. A new server
    /// certificate is served from the next handshake on.
    pub fn reload(&self) {
        if let Some(cfg) = self.effects.reload(&self.broker) {
            *self.server_tls.lock().expect("tls") = cfg;
        }
    }
}

/// A configured, bound, not yet started server.
pub struct Server {
    shared: Arc<Shared>,
    client: TcpListener,
    admin: TcpListener,
}

impl Server {
    /// Loads config from `properties_path`, binds both listeners.
    pub fn bind(properties_path: &str) -> Result<Server, String> {
        let p = node::prepare(properties_path)?;
        let client = TcpListener::bind(p.listen.as_str())
            .map_err(|e| format!("keybroker.listen {}: {e}", p.listen))?;
        let admin = TcpListener::bind(p.admin_listen.as_str())
            .map_err(|e| format!("keybroker.admin.listen {}: {e}", p.admin_listen))?;
        let max_connections = node::connection_budget(p.broker.settings());
        let shared = Arc::new(Shared {
            admin_active: AtomicUsize::new(0),
            overload_active: AtomicUsize::new(0),
            max_connections,
            broker: Mutex::new(p.broker),
            conns: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            epoch: p.epoch,
            effects: p.effects,
            link_tls: p.link_tls,
            server_tls: Mutex::new(p.server_tls),
            next_conn: AtomicU64::new(1),
            active: AtomicUsize::new(0),
        });
        Ok(Server {
            shared,
            client,
            admin,
        })
    }

    /// The bound client and admin addresses.
    pub fn addrs(&self) -> (SocketAddr, SocketAddr) {
        (
            self.client.local_addr().expect("bound"),
            self.admin.local_addr().expect("bound"),
        )
    }

    /// Shared state, for reloads.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serves until `stop` yields, then drains in-flight requests (at most `grace`).
    pub fn run(self, stop: Receiver<()>, grace: Duration) {
        let Server {
            shared,
            client,
            admin,
        } = self;
        {
            let now = shared.now();
            let mut b = shared.broker.lock().expect("broker");
            b.start(now);
            while let Some(out) = b.poll_output() {
                shared.carry_out(out);
            }
        }
        let s = shared.clone();
        std::thread::spawn(move || timer_thread(&s));
        let s = shared.clone();
        std::thread::spawn(move || accept_loop(&s, client, true));
        let s = shared.clone();
        std::thread::spawn(move || accept_loop(&s, admin, false));
        let _ = stop.recv();
        log("info", "shutting down: finishing in-flight requests");
        shared.drive(Input::Shutdown);
        let deadline = std::time::Instant::now() + grace;
        while !shared.broker.lock().expect("broker").is_drained()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let connection threads write their last bytes.
        while shared.active.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        log("info", "stopped");
    }
}

fn timer_thread(shared: &Arc<Shared>) {
    let mut last_reseed = std::time::Instant::now();
    let mut last_watch = std::time::Instant::now();
    loop {
        let wait = {
            let b = shared.broker.lock().expect("broker");
            let now = shared.now().mono;
            b.poll_timeout()
                .map(|t| t.saturating_since(now))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_millis(250))
        };
        std::thread::sleep(wait);
        shared.drive(Input::Timeout);
        if last_watch.elapsed() > Duration::from_secs(2) {
            if shared.effects.keystore_changed() {
                shared.reload();
            }
            last_watch = std::time::Instant::now();
        }
        if last_reseed.elapsed() > Duration::from_secs(600) {
            let mut seed = [0u8; 32];
            tls::random(&mut seed);
            shared.drive(Input::Entropy(&seed));
            last_reseed = std::time::Instant::now();
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: TcpListener, tls: bool) {
    let (max, overload, settings_write, handshake) = {
        let b = shared.broker.lock().expect("broker");
        let st = b.settings();
        let max = if tls {
            shared.max_connections
        } else {
            st.admin_max_connections
        };
        let overload = if tls { st.overload_connections } else { 1 };
        (max, overload, st.write_timeout, st.handshake_timeout)
    };
    let counter = if tls {
        &shared.active
    } else {
        &shared.admin_active
    };
    let mut backoff = Duration::from_millis(5);
    let mut last_warn: Option<std::time::Instant> = None;
    for stream in listener.incoming() {
        let tcp = match stream {
            Ok(s) => {
                backoff = Duration::from_millis(5);
                s
            }
            Err(e) => {
                // EMFILE and friends: wait (longer each time) instead of spinning.
                if last_warn.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    log(
                        "warn",
                        &format!("accept failed: {e} (retrying in {backoff:?})"),
                    );
                    last_warn = Some(std::time::Instant::now());
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let tls_cfg = tls.then(|| shared.server_tls.lock().expect("tls").clone());
        if counter.fetch_add(1, Ordering::SeqCst) >= max {
            counter.fetch_sub(1, Ordering::SeqCst);
            if shared.overload_active.fetch_add(1, Ordering::SeqCst) >= overload {
                shared.overload_active.fetch_sub(1, Ordering::SeqCst);
                continue; // past the overload allowance too: closed at once
            }
            let s = shared.clone();
            let hs = handshake.min(Duration::from_secs(2));
            let spawned = std::thread::Builder::new()
                .stack_size(CONN_STACK)
                .spawn(move || {
                    refuse_overloaded(&s, tcp, tls_cfg, hs);
                    s.overload_active.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                shared.overload_active.fetch_sub(1, Ordering::SeqCst);
            }
            continue;
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(CONN_STACK)
            .spawn(move || {
                connection(&s, tcp, tls_cfg, handshake, settings_write);
                let c = if tls { &s.active } else { &s.admin_active };
                c.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            counter.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A TLS handshake that gives up at `deadline` however the peer drips its bytes.
fn handshake_until(
    s: &mut StreamOwned<ServerConnection, TcpStream>,
    deadline: std::time::Instant,
) -> bool {
    while s.conn.is_handshaking() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || s.sock.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        if s.conn.complete_io(&mut s.sock).is_err() {
            return false;
        }
    }
    true
}

/// Over the connection limit: handshake, write the 503 answer, drain briefly, close.
fn refuse_overloaded(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    tls: Option<Arc<ServerConfig>>,
    handshake: Duration,
) {
    let answer = shared.broker.lock().expect("broker").overload_answer();
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(2)));
    let linger = |s: &mut dyn Read| {
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            if !matches!(s.read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
    };
    match tls {
        Some(cfg) => {
            let Ok(conn) = ServerConnection::new(cfg) else {
                return;
            };
            let mut s = StreamOwned::new(conn, tcp);
            if !handshake_until(&mut s, std::time::Instant::now() + handshake) {
                return;
            }
            if s.write_all(&answer).and_then(|_| s.flush()).is_ok() {
                let _ = s.sock.set_read_timeout(Some(Duration::from_millis(500)));
                linger(&mut s);
            }
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        None => {
            let mut s = tcp;
            if s.write_all(&answer).is_ok() {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                linger(&mut s);
            }
        }
    }
}

/// One accepted socket: TLS handshake (client listener), then serve it.
fn connection(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    tls: Option<Arc<ServerConfig>>,
    handshake: Duration,
    write_timeout: Duration,
) {
    let Ok(wake) = tcp.try_clone() else { return };
    let _ = tcp.set_write_timeout(Some(write_timeout));
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    match tls {
        Some(cfg) => {
            let Ok(conn) = ServerConnection::new(cfg) else {
                return;
            };
            let mut s = StreamOwned::new(conn, tcp);
            if !handshake_until(&mut s, std::time::Instant::now() + handshake) {
                return;
            }
            let peer_cert = s
                .conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref().to_vec());
            serve_conn(shared, id, Listener::Client { peer_cert }, &mut s, wake);
            s.conn.send_close_notify();
            let _ = s.flush();
            let _ = s.sock.shutdown(Shutdown::Both);
        }
        None => {
            let mut s = tcp;
            serve_conn(shared, id, Listener::Admin, &mut s, wake);
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

enum Flow {
    Go,
    /// Bytes were written (the broker may have more, or may want to read again).
    Wrote,
    /// The broker closed the connection (bytes written).
    Done,
    /// Writing failed: the peer is gone.
    Broken,
}

/// Writes what the broker queued for this connection, reporting each write.
fn drain_conn<S: Write>(
    shared: &Arc<Shared>,
    id: ConnId,
    stream: &mut S,
    rx: &Receiver<Msg>,
) -> Flow {
    let mut wrote = false;
    loop {
        match rx.try_recv() {
            Ok(m) => match write_conn(shared, id, stream, m) {
                Flow::Go | Flow::Wrote => wrote = true,
                other => return other,
            },
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => return Flow::Done,
        }
    }
    if wrote {
        Flow::Wrote
    } else {
        Flow::Go
    }
}

fn write_conn<S: Write>(shared: &Arc<Shared>, id: ConnId, stream: &mut S, m: Msg) -> Flow {
    match m {
        Msg::Data(bytes) => match stream.write_all(&bytes).and_then(|_| stream.flush()) {
            Ok(()) => {
                shared.drive(Input::Written {
                    conn: id,
                    bytes: bytes.len(),
                });
                Flow::Wrote
            }
            Err(_) => Flow::Broken,
        },
        Msg::Close => {
            let _ = stream.flush();
            Flow::Done
        }
    }
}

fn apply<S: Write>(stream: &mut S, msg: Msg) -> Flow {
    match msg {
        Msg::Data(bytes) => match stream.write_all(&bytes) {
            Ok(()) => Flow::Go,
            Err(_) => Flow::Broken,
        },
        Msg::Close => Flow::Done,
    }
}

/// Carries out everything queued for a backend link.
fn drain<S: Write>(stream: &mut S, rx: &Receiver<Msg>) -> Flow {
    let mut wrote = false;
    loop {
        match rx.try_recv() {
            Ok(m) => {
                wrote = true;
                match apply(stream, m) {
                    Flow::Go | Flow::Wrote => {}
                    other => return other,
                }
            }
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => return Flow::Done,
        }
    }
    if wrote && stream.flush().is_err() {
        return Flow::Broken;
    }
    Flow::Go
}

fn serve_conn<S: Read + Write>(
    shared: &Arc<Shared>,
    id: ConnId,
    listener: Listener,
    stream: &mut S,
    wake: TcpStream,
) {
    // One Send and one Close at most are ever queued (the broker waits for `Written`).
    let (tx, rx) = sync_channel(4);
    let sock = match wake.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    };
    shared
        .conns
        .lock()
        .expect("conns")
        .insert(id, ConnHandle { tx, sock });
    shared.drive(Input::Accepted { conn: id, listener });
    let mut buf = vec![0u8; keybroker_core::READ_CHUNK];
    let gone = loop {
        // Ask the broker first, then write: outputs are queued under the broker lock, so an
        // answer that completed before this look is in the channel by now, and one that
        // completes after it finds `busy` set (the read below polls). Writing first would
        // let a backend reply slip in between and leave the thread blocked in `read` with
        // the answer queued (the client waits forever).
        let (wants, busy) = {
            let b = shared.broker.lock().expect("broker");
            (b.wants_read(id), b.in_flight(id) > 0)
        };
        match drain_conn(shared, id, stream, &rx) {
            Flow::Go => {}
            Flow::Wrote => continue, // look again: writing may have freed room to read
            Flow::Done => break false,
            Flow::Broken => break true,
        }
        if !wants {
            // Held back (pipeline full, memory bound, closing): wait for the broker.
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(m) => match write_conn(shared, id, stream, m) {
                    Flow::Go | Flow::Wrote => continue,
                    Flow::Done => break false,
                    Flow::Broken => break true,
                },
                Err(_) => continue,
            }
        }
        let _ = wake.set_read_timeout(if busy { Some(POLL) } else { None });
        match stream.read(&mut buf) {
            Ok(0) => {
                // Our own Close (read half shut) or the peer went away.
                match drain_conn(shared, id, stream, &rx) {
                    Flow::Done => break false,
                    _ => break true,
                }
            }
            Ok(n) => shared.drive(Input::Received {
                conn: id,
                bytes: &buf[..n],
            }),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => match drain_conn(shared, id, stream, &rx) {
                Flow::Done => break false,
                _ => break true,
            },
        }
    };
    shared.conns.lock().expect("conns").remove(&id);
    if gone {
        shared.drive(Input::Closed { conn: id });
    }
}

/// One backend link: connect (TCP, then TLS per `security`), then move bytes both ways.
#[allow(clippy::too_many_arguments)]
fn link_thread(
    shared: &Arc<Shared>,
    link: LinkId,
    host: &str,
    port: u16,
    security: LinkSecurity,
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    rx: Receiver<Msg>,
) {
    let closed = |reason: String| {
        shared.links.lock().expect("links").remove(&link);
        shared.drive(Input::Net(NetEvent::Closed { link, reason }));
    };
    let addr = match (host, port).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => return closed(format!("{host}:{port}: no address")),
        Err(e) => return closed(format!("{host}:{port}: {e}")),
    };
    let tcp = match TcpStream::connect_timeout(&addr, connect_timeout) {
        Ok(t) => t,
        Err(e) => return closed(format!("connect {addr}: {e}")),
    };
    let _ = tcp.set_nodelay(true);
    let Ok(wake) = tcp.try_clone() else {
        return closed(format!("connect {addr}: cannot clone the socket"));
    };
    if security == LinkSecurity::Plain {
        shared.drive(Input::Net(NetEvent::Connected { link }));
        let mut s = tcp;
        return pump_link(shared, link, &mut s, &wake, &rx);
    }
    let Some(cfg) = tls else {
        return closed(format!(
            "no TLS client configuration for {security:?} (check the keystore)"
        ));
    };
    let name = match rustls::pki_types::ServerName::try_from(host.to_owned()) {
        Ok(n) => n,
        Err(e) => return closed(format!("{host}: not a valid TLS server name: {e}")),
    };
    let conn = match ClientConnection::new(cfg, name) {
        Ok(c) => c,
        Err(e) => return closed(format!("TLS with {addr}: {e}")),
    };
    let mut s = StreamOwned::new(conn, tcp);
    let _ = wake.set_read_timeout(Some(connect_timeout));
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            return closed(format!("TLS handshake with {addr}: {e}"));
        }
    }
    shared.drive(Input::Net(NetEvent::Connected { link }));
    pump_link(shared, link, &mut s, &wake, &rx);
}

fn pump_link<S: Read + Write>(
    shared: &Arc<Shared>,
    link: LinkId,
    stream: &mut S,
    wake: &TcpStream,
    rx: &Receiver<Msg>,
) {
    let _ = wake.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 16 * 1024];
    let reason = loop {
        match drain(stream, rx) {
            Flow::Go | Flow::Wrote => {}
            Flow::Done => return, // closed at the backend's request: no event
            Flow::Broken => break "write failed".to_string(),
        }
        match stream.read(&mut buf) {
            Ok(0) => break "closed by peer".to_string(),
            Ok(n) => shared.drive(Input::Net(NetEvent::Received {
                link,
                bytes: buf[..n].to_vec(),
            })),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => break e.to_string(),
        }
    };
    shared.links.lock().expect("links").remove(&link);
    shared.drive(Input::Net(NetEvent::Closed { link, reason }));
}
