//! The std-threads runtime under the shared driver ([`keybroker_host::driver`]): one accept
//! thread per listener, one thread per connection and per backend link, one timer thread,
//! rustls `StreamOwned` for TLS.
//!
//! Every accepted socket is counted from accept (TLS handshake included) by
//! [`Host::admit`]. Each connection thread drives its own connection
//! ([`keybroker_host::driver::Served`]): parsing, answers and deadlines run on it, and it
//! takes the endpoint's lock once per request.
//!
//! A connection thread blocks in `read` until its next deadline. What comes from another thread
//! (a backend reply, shutdown, a keystore reload) waits on its channel: while requests are in
//! flight the thread reads with a 5 ms timeout and looks at the channel after each; otherwise
//! at least once a second (and before it takes any bytes read, so a reload applies first).
use keybroker_core::backend::LinkId;
use keybroker_core::conn::ToConn;
use keybroker_core::Listener;
use keybroker_host::driver::{
    client_listener, AcceptBackoff, Action, Admission, Host, LinkRequest, Msg, Runtime, Side,
};
use keybroker_host::node::{self, log};
use rustls::{ClientConnection, ServerConfig, ServerConnection, StreamOwned};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a busy connection or a link reads before it looks at its channel again.
const POLL: Duration = Duration::from_millis(5);
/// How long an idle connection reads (at most) before it looks at its channel again: it bounds
/// how late an idle connection learns of a shutdown, at one wake-up a second per connection.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Stack of a connection thread: rustls and the parser need little.
const CONN_STACK: usize = 256 * 1024;

/// The std-threads side of the driver.
pub struct Threads;

impl Runtime for Threads {
    type ConnTx = Sender<ToConn>;
    type LinkTx = Sender<Msg>;
    type LinkRx = Receiver<Msg>;

    fn to_conn(&self, to: &Sender<ToConn>, msg: ToConn) -> bool {
        to.send(msg).is_ok()
    }

    fn to_link(&self, tx: &Sender<Msg>, msg: Msg) {
        let _ = tx.send(msg);
    }

    fn link_channel(&self) -> (Sender<Msg>, Receiver<Msg>) {
        channel()
    }

    fn spawn_link(
        host: &Arc<Host<Self>>,
        req: LinkRequest,
        rx: Receiver<Msg>,
    ) -> Result<(), String> {
        let host = host.clone();
        #[cfg(feature = "legacy-hsm-tls")]
        if let Some(legacy) = req.legacy.clone() {
            use keybroker_host::legacy_tls::{run, Next};
            return std::thread::Builder::new()
                .name(format!("link-{}", req.link))
                .spawn(move || {
                    run(&host, req, &legacy, || match rx.try_recv() {
                        Ok(Msg::Data(b)) => Next::Data(b),
                        Ok(Msg::Close) | Err(TryRecvError::Disconnected) => Next::Close,
                        Err(TryRecvError::Empty) => Next::Empty,
                    })
                })
                .map(drop)
                .map_err(|e| format!("cannot start a thread: {e}"));
        }
        std::thread::Builder::new()
            .name(format!("link-{}", req.link))
            .spawn(move || link_thread(&host, req, rx))
            .map(drop)
            .map_err(|e| format!("cannot start a thread: {e}"))
    }

    fn spawn_blocking(&self, job: Box<dyn FnOnce() + Send + 'static>) {
        if let Err(e) = std::thread::Builder::new()
            .name("persist".into())
            .spawn(job)
        {
            log("error", &format!("cannot start the soft-key writer: {e}"));
        }
    }
}

type Shared = Host<Threads>;

/// A configured, bound, not yet started server.
pub struct Server {
    host: Arc<Shared>,
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
        Ok(Server {
            host: Host::new(Threads, p),
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

    /// The driver, for reloads.
    pub fn shared(&self) -> Arc<Shared> {
        self.host.clone()
    }

    /// Serves until `stop` yields, then drains in-flight requests (at most `grace`).
    pub fn run(self, stop: Receiver<()>, grace: Duration) {
        let Server {
            host,
            client,
            admin,
        } = self;
        host.start();
        let h = host.clone();
        std::thread::spawn(move || {
            let mut ticker = h.ticker();
            loop {
                std::thread::sleep(ticker.wait());
                ticker.tick();
            }
        });
        let h = host.clone();
        std::thread::spawn(move || accept_loop(&h, client, Side::Client));
        let h = host.clone();
        std::thread::spawn(move || accept_loop(&h, admin, Side::Admin));
        let _ = stop.recv();
        host.shutdown();
        let deadline = Instant::now() + grace;
        while !host.is_drained() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let connection threads write their last bytes.
        while host.clients_open() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        log("info", "stopped");
    }
}

fn accept_loop(host: &Arc<Shared>, listener: TcpListener, side: Side) {
    let handshake = host.handshake_timeout();
    let mut backoff = AcceptBackoff::default();
    for stream in listener.incoming() {
        let tcp = match stream {
            Ok(s) => {
                backoff.ok();
                s
            }
            Err(e) => {
                std::thread::sleep(backoff.failed(&e));
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let tls = (side == Side::Client).then(|| host.server_tls());
        let h = host.clone();
        let spawned =
            match host.admit(side) {
                Admission::Drop => continue,
                Admission::Refuse(slot) => std::thread::Builder::new()
                    .stack_size(CONN_STACK)
                    .spawn(move || {
                        let _slot = slot;
                        refuse_overloaded(&h, tcp, tls, handshake.min(Duration::from_secs(2)));
                    }),
                Admission::Serve(slot) => {
                    std::thread::Builder::new()
                        .stack_size(CONN_STACK)
                        .spawn(move || {
                            let _slot = slot;
                            connection(&h, tcp, tls);
                        })
                }
            };
        if let Err(e) = spawned {
            log("error", &format!("cannot start a connection thread: {e}"));
        }
    }
}

/// A TLS handshake that gives up at `deadline` however the peer drips its bytes.
fn handshake_until<C, D>(s: &mut StreamOwned<C, TcpStream>, deadline: Instant) -> Result<(), String>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    while s.conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out".into());
        }
        s.sock
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Over the connection limit: handshake, write the 503 answer, drain briefly, close.
fn refuse_overloaded(
    host: &Arc<Shared>,
    tcp: TcpStream,
    tls: Option<Arc<ServerConfig>>,
    handshake: Duration,
) {
    let answer = host.overload_answer();
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
            if handshake_until(&mut s, Instant::now() + handshake).is_err() {
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
fn connection(host: &Arc<Shared>, tcp: TcpStream, tls: Option<Arc<ServerConfig>>) {
    let Ok(wake) = tcp.try_clone() else { return };
    let _ = tcp.set_write_timeout(Some(host.write_timeout()));
    match tls {
        Some(cfg) => {
            let Ok(conn) = ServerConnection::new(cfg) else {
                return;
            };
            let mut s = StreamOwned::new(conn, tcp);
            if handshake_until(&mut s, Instant::now() + host.handshake_timeout()).is_err() {
                return;
            }
            let listener = client_listener(&s.conn);
            serve_conn(host, listener, &mut s, wake);
            s.conn.send_close_notify();
            let _ = s.flush();
            let _ = s.sock.shutdown(Shutdown::Both);
        }
        None => {
            let mut s = tcp;
            serve_conn(host, Listener::Admin, &mut s, wake);
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn serve_conn<S: Read + Write>(
    host: &Arc<Shared>,
    listener: Listener,
    stream: &mut S,
    sock: TcpStream,
) {
    let (tx, rx) = channel();
    let mut conn = host.open_conn(tx, listener);
    let mut buf = vec![0u8; keybroker_core::READ_CHUNK];
    let mut read_timeout = None;
    loop {
        loop {
            match rx.try_recv() {
                Ok(m) => conn.deliver(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        while let Some(action) = conn.poll_action() {
            match action {
                Action::Send(bytes) => {
                    if stream
                        .write_all(&bytes)
                        .and_then(|_| stream.flush())
                        .is_err()
                    {
                        return;
                    }
                    // The socket's write timeout ends a write that stalls; one that trickles
                    // on past the connection's write deadline closes it here.
                    if conn.deadline().is_some_and(|d| d <= Instant::now()) {
                        conn.handle_timeout();
                    } else {
                        conn.written(bytes.len());
                    }
                }
                Action::Close => {
                    let _ = stream.flush();
                    return;
                }
            }
        }
        if conn.deadline().is_some_and(|d| d <= Instant::now()) {
            conn.handle_timeout();
            continue;
        }
        if !conn.wants_read() {
            // Held back (pipeline full, memory bound, closing): wait for the endpoint.
            match rx.recv_timeout(IDLE_POLL) {
                Ok(m) => conn.deliver(m),
                Err(RecvTimeoutError::Timeout) => conn.handle_timeout(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
            continue;
        }
        let wait = if conn.in_flight() > 0 {
            POLL
        } else {
            conn.deadline()
                .map_or(IDLE_POLL, |d| d.saturating_duration_since(Instant::now()))
                .clamp(Duration::from_millis(1), IDLE_POLL)
        };
        if read_timeout != Some(wait) {
            let _ = sock.set_read_timeout(Some(wait));
            read_timeout = Some(wait);
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                // What the endpoint sent first (a keystore reload) applies before the bytes.
                while let Ok(m) = rx.try_recv() {
                    conn.deliver(m);
                }
                conn.received(&buf[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.handle_timeout()
            }
            Err(_) => return,
        }
    }
}

/// One backend link: connect (TCP, then TLS as the request says), then move bytes both ways.
fn link_thread(host: &Arc<Shared>, req: LinkRequest, rx: Receiver<Msg>) {
    let link = req.link;
    let tls = match req.tls_setup() {
        Ok(t) => t,
        Err(e) => return host.link_closed(link, e),
    };
    let tcp = match req.connect_blocking() {
        Ok(t) => t,
        Err(e) => return host.link_closed(link, e),
    };
    let _ = tcp.set_nodelay(true);
    let Ok(wake) = tcp.try_clone() else {
        return host.link_closed(
            link,
            format!("connect {}: cannot clone the socket", req.authority()),
        );
    };
    let Some((cfg, name)) = tls else {
        host.link_connected(link);
        let mut s = tcp;
        return pump_link(host, link, &mut s, &wake, &rx);
    };
    let conn = match ClientConnection::new(cfg, name) {
        Ok(c) => c,
        Err(e) => return host.link_closed(link, format!("TLS with {}: {e}", req.authority())),
    };
    let mut s = StreamOwned::new(conn, tcp);
    if let Err(e) = handshake_until(&mut s, Instant::now() + req.connect_timeout) {
        return host.link_closed(link, format!("TLS handshake with {}: {e}", req.authority()));
    }
    host.link_connected(link);
    pump_link(host, link, &mut s, &wake, &rx);
}

/// Writes everything queued for a link; `Done` once the broker closed it.
/// What writing a link's queue left it as.
enum Flow {
    Go,
    /// Closed at the backend's request.
    Done,
    /// Writing failed.
    Broken,
}

fn drain_link<S: Write>(stream: &mut S, rx: &Receiver<Msg>) -> Flow {
    let mut wrote = false;
    loop {
        match rx.try_recv() {
            Ok(Msg::Data(bytes)) => {
                wrote = true;
                if stream.write_all(&bytes).is_err() {
                    return Flow::Broken;
                }
            }
            Ok(Msg::Close) | Err(TryRecvError::Disconnected) => return Flow::Done,
            Err(TryRecvError::Empty) => break,
        }
    }
    if wrote && stream.flush().is_err() {
        return Flow::Broken;
    }
    Flow::Go
}

fn pump_link<S: Read + Write>(
    host: &Arc<Shared>,
    link: LinkId,
    stream: &mut S,
    wake: &TcpStream,
    rx: &Receiver<Msg>,
) {
    let _ = wake.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 16 * 1024];
    let reason = loop {
        match drain_link(stream, rx) {
            Flow::Go => {}
            Flow::Done => return, // closed at the backend's request: no event
            Flow::Broken => break "write failed".to_string(),
        }
        match stream.read(&mut buf) {
            Ok(0) => break "closed by peer".to_string(),
            Ok(n) => host.link_received(link, &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => break e.to_string(),
        }
    };
    host.link_closed(link, reason);
}
