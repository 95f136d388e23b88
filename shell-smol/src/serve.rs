//! The smol shell: sockets, TLS, timers and signals around one `Broker`.
//!
//! Every accepted socket is counted from accept (TLS handshake included) against its
//! listener's limit: `keybroker.http.max-connections` for clients, and a separate
//! `keybroker.admin.max-connections` for the admin listener, which has its own accept task.
//! Past the client limit, up to `keybroker.http.overload-connections` more sockets get a TLS
//! handshake and a `503` with `Retry-After`; beyond that they are closed at once. A connection
//! task writes before it reads, writes one `Output::Send` at a time (within
//! `keybroker.http.write-timeout`) and reports it with `Input::Written`, so its queue never
//! holds more than one answer chunk.
use crate::node::{self, now_since, Effects};
use crate::tls;
use futures_rustls::TlsAcceptor;
use keybroker_core::backend::{LinkId, LinkSecurity, NetEvent};
use keybroker_core::{Broker, ConnId, Input, Listener, Now, Output};
use smol::channel::{bounded, unbounded, Receiver, Sender, TryRecvError};
use smol::future::FutureExt;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::Timer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

enum ConnMsg {
    Data(Vec<u8>),
    Close,
}

pub use crate::node::{log, LinkTls};

/// State shared by every task of one server.
pub struct Shared {
    broker: Mutex<Broker>,
    conns: Mutex<HashMap<ConnId, Sender<ConnMsg>>>,
    epoch: std::time::Instant,
    next_conn: AtomicU64,
    effects: Effects,
    links: Mutex<HashMap<LinkId, Sender<ConnMsg>>>,
    link_tls: LinkTls,
    server_tls: Mutex<TlsAcceptor>,
    executor: OnceLock<Arc<smol::Executor<'static>>>,
    /// Client-listener sockets open, counted from accept.
    client_active: AtomicUsize,
    /// Admin-listener sockets open.
    admin_active: AtomicUsize,
    /// Sockets being told 503.
    overload_active: AtomicUsize,
    /// `keybroker.http.max-connections`, fitted to the open-file limit.
    max_connections: usize,
}

/// Decrements a connection counter when a connection's task ends, however it ends.
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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
                if let Some(tx) = self.conns.lock().expect("conns").get(&conn) {
                    // The broker hands out one Send at a time: the queue has room.
                    if tx.try_send(ConnMsg::Data(bytes)).is_err() {
                        log("error", &format!("connection {conn}: write queue full"));
                    }
                }
            }
            Output::Close { conn } => {
                if let Some(tx) = self.conns.lock().expect("conns").get(&conn) {
                    let _ = tx.try_send(ConnMsg::Close);
                }
            }
            Output::PersistSoftKeys(p) => {
                let me = self.clone();
                let task = async move {
                    let me2 = me.clone();
                    let (id, result) = smol::unblock(move || (p.id, me2.effects.persist(&p))).await;
                    me.drive(Input::Persisted { id, result });
                };
                if let Some(ex) = self.executor.get() {
                    ex.spawn(task).detach();
                }
            }
            Output::Connect {
                link,
                host,
                port,
                security,
                connect_timeout,
            } => {
                let (tx, rx) = unbounded();
                self.links.lock().expect("links").insert(link, tx);
                let me = self.clone();
                let tls = self.link_tls.for_link(security);
                let task = link_task(me, link, host, port, security, tls, connect_timeout, rx);
                if let Some(ex) = self.executor.get() {
                    ex.spawn(task).detach();
                }
            }
            Output::NetSend { link, bytes } => {
                if let Some(tx) = self.links.lock().expect("links").get(&link) {
                    let _ = tx.try_send(ConnMsg::Data(bytes));
                }
            }
            Output::NetClose { link } => {
                if let Some(tx) = self.links.lock().expect("links").remove(&link) {
                    let _ = tx.try_send(ConnMsg::Close);
                }
            }
            _ => {}
        }
    }

    fn wants_read(&self, conn: ConnId) -> bool {
        self.broker.lock().expect("broker").wants_read(conn)
    }

    /// Re-reads the configuration and keystore; on any error the old one keeps serving.
    ///
    /// Every open connection's identity is re-checked against the new keystore. A new server
    /// certificate is served from the next handshake on.
    pub fn reload(&self) {
        if let Some(cfg) = self.effects.reload(&self.broker) {
            *self.server_tls.lock().expect("tls") = TlsAcceptor::from(cfg);
        }
    }

    /// Reloads when the keystore file has changed since the last load.
    fn reload_if_changed(&self) {
        if self.effects.keystore_changed() {
            self.reload();
        }
    }
}

/// A configured but not yet started server.
pub struct Server {
    shared: Arc<Shared>,
    client: TcpListener,
    admin: TcpListener,
}

impl Server {
    /// Loads config from `properties_path`, binds both listeners.
    pub fn bind(properties_path: &str) -> Result<Server, String> {
        let p = node::prepare(properties_path)?;
        let client = smol::block_on(TcpListener::bind(p.listen.as_str()))
            .map_err(|e| format!("keybroker.listen {}: {e}", p.listen))?;
        let admin = smol::block_on(TcpListener::bind(p.admin_listen.as_str()))
            .map_err(|e| format!("keybroker.admin.listen {}: {e}", p.admin_listen))?;
        let max_connections = node::connection_budget(p.broker.settings());
        let shared = Arc::new(Shared {
            client_active: AtomicUsize::new(0),
            admin_active: AtomicUsize::new(0),
            overload_active: AtomicUsize::new(0),
            max_connections,
            broker: Mutex::new(p.broker),
            conns: Mutex::new(HashMap::new()),
            epoch: p.epoch,
            next_conn: AtomicU64::new(1),
            effects: p.effects,
            links: Mutex::new(HashMap::new()),
            link_tls: p.link_tls,
            server_tls: Mutex::new(TlsAcceptor::from(p.server_tls)),
            executor: OnceLock::new(),
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
        let ex = Arc::new(smol::Executor::new());
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4);
        let (done_tx, done_rx) = unbounded::<()>();
        let mut workers = Vec::new();
        for _ in 1..threads {
            let ex = ex.clone();
            let done_rx = done_rx.clone();
            workers.push(std::thread::spawn(move || {
                let _ = smol::block_on(ex.run(done_rx.recv()));
            }));
        }
        let Server {
            shared,
            client,
            admin,
        } = self;
        let _ = shared.executor.set(ex.clone());
        {
            let now = shared.now();
            let mut b = shared.broker.lock().expect("broker");
            b.start(now);
            while let Some(out) = b.poll_output() {
                shared.carry_out(out);
            }
        }
        smol::block_on(ex.run(async {
            let timer = ex.spawn(timer_task(shared.clone()));
            let a1 = ex.spawn(accept_loop(ex.clone(), shared.clone(), client, true));
            let a2 = ex.spawn(accept_loop(ex.clone(), shared.clone(), admin, false));
            let _ = stop.recv().await;
            drop((a1, a2)); // stop accepting
            log("info", "shutting down: finishing in-flight requests");
            shared.drive(Input::Shutdown);
            let deadline = std::time::Instant::now() + grace;
            while !shared.broker.lock().expect("broker").is_drained()
                && std::time::Instant::now() < deadline
            {
                Timer::after(Duration::from_millis(20)).await;
            }
            drop(timer);
        }));
        drop(done_tx);
        for w in workers {
            let _ = w.join();
        }
        log("info", "stopped");
    }
}

/// One backend link: connect (TCP, then TLS per `security`), then move bytes both ways.
#[allow(clippy::too_many_arguments)]
async fn link_task(
    shared: Arc<Shared>,
    link: LinkId,
    host: String,
    port: u16,
    security: LinkSecurity,
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    rx: Receiver<ConnMsg>,
) {
    let closed = |reason: String| {
        shared.links.lock().expect("links").remove(&link);
        shared.drive(Input::Net(NetEvent::Closed { link, reason }));
    };
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let connect = async {
        let tcp = TcpStream::connect(addr.as_str())
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok::<_, String>(tcp)
    };
    let timeout = async {
        Timer::after(connect_timeout).await;
        Err(format!(
            "connect {addr}: timed out after {connect_timeout:?}"
        ))
    };
    let tcp = match connect.or(timeout).await {
        Ok(t) => t,
        Err(e) => return closed(e),
    };
    if security == LinkSecurity::Plain {
        shared.drive(Input::Net(NetEvent::Connected { link }));
        return pump_link(shared, link, tcp, rx).await;
    }
    let Some(cfg) = tls else {
        return closed(format!(
            "no TLS client configuration for {security:?} (check the keystore)"
        ));
    };
    let name = match rustls::pki_types::ServerName::try_from(host.clone()) {
        Ok(n) => n,
        Err(e) => return closed(format!("{host}: not a valid TLS server name: {e}")),
    };
    let hs = async {
        futures_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))
    };
    let timeout = async {
        Timer::after(connect_timeout).await;
        Err(format!(
            "TLS handshake with {addr}: timed out after {connect_timeout:?}"
        ))
    };
    match hs.or(timeout).await {
        Ok(stream) => {
            shared.drive(Input::Net(NetEvent::Connected { link }));
            pump_link(shared, link, stream, rx).await
        }
        Err(e) => closed(e),
    }
}

async fn pump_link<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    link: LinkId,
    mut stream: S,
    rx: Receiver<ConnMsg>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let reason = loop {
        let ev = async { Event::Read(stream.read(&mut buf).await) }
            .or(async { Event::Msg(rx.recv().await.ok()) })
            .await;
        match ev {
            Event::Read(Ok(0)) => break "closed by peer".to_string(),
            Event::Read(Err(e)) => break e.to_string(),
            Event::Read(Ok(n)) => shared.drive(Input::Net(NetEvent::Received {
                link,
                bytes: buf[..n].to_vec(),
            })),
            Event::Msg(Some(ConnMsg::Data(bytes))) => {
                if let Err(e) = async {
                    stream.write_all(&bytes).await?;
                    stream.flush().await
                }
                .await
                {
                    break e.to_string();
                }
            }
            Event::Msg(Some(ConnMsg::Close)) | Event::Msg(None) => {
                let _ = stream.close().await;
                return; // closed at the backend's request: no event
            }
        }
    };
    shared.links.lock().expect("links").remove(&link);
    shared.drive(Input::Net(NetEvent::Closed { link, reason }));
}

async fn timer_task(shared: Arc<Shared>) {
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
        Timer::after(wait).await;
        shared.drive(Input::Timeout);
        if last_watch.elapsed() > Duration::from_secs(2) {
            shared.reload_if_changed();
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

async fn accept_loop(
    ex: Arc<smol::Executor<'static>>,
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: bool,
) {
    let (max, overload, handshake) = {
        let b = shared.broker.lock().expect("broker");
        let st = b.settings();
        if tls {
            (
                shared.max_connections,
                st.overload_connections,
                st.handshake_timeout,
            )
        } else {
            (st.admin_max_connections, 1, st.handshake_timeout)
        }
    };
    let mut backoff = Duration::from_millis(5);
    let mut last_warn: Option<std::time::Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _peer)) => {
                backoff = Duration::from_millis(5);
                s
            }
            Err(e) => {
                // EMFILE and friends: wait (longer each time) instead of spinning, and say
                // so at most once a second.
                if last_warn.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    log(
                        "warn",
                        &format!("accept failed: {e} (retrying in {backoff:?})"),
                    );
                    last_warn = Some(std::time::Instant::now());
                }
                Timer::after(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let counter = if tls {
            &shared.client_active
        } else {
            &shared.admin_active
        };
        if counter.fetch_add(1, Ordering::SeqCst) >= max {
            counter.fetch_sub(1, Ordering::SeqCst);
            if shared.overload_active.fetch_add(1, Ordering::SeqCst) >= overload {
                shared.overload_active.fetch_sub(1, Ordering::SeqCst);
                drop(stream); // past the overload allowance too: closed at once
                continue;
            }
            let shared = shared.clone();
            let acceptor = tls.then(|| shared.server_tls.lock().expect("tls").clone());
            ex.spawn(async move {
                let s2 = shared.clone();
                let _count = Counted(&s2.overload_active);
                let answer = shared.broker.lock().expect("broker").overload_answer();
                let hs = handshake.min(Duration::from_secs(2));
                match acceptor {
                    Some(a) => {
                        let tls = async { a.accept(stream).await.ok() }
                            .or(async {
                                Timer::after(hs).await;
                                None
                            })
                            .await;
                        if let Some(s) = tls {
                            refuse_overloaded(s, &answer).await;
                        }
                    }
                    None => refuse_overloaded(stream, &answer).await,
                }
            })
            .detach();
            continue;
        }
        let shared = shared.clone();
        let tls = tls.then(|| shared.server_tls.lock().expect("tls").clone());
        ex.spawn(async move {
            let s2 = shared.clone();
            let _count = Counted(if tls.is_some() {
                &s2.client_active
            } else {
                &s2.admin_active
            });
            let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
            match tls {
                Some(acceptor) => {
                    let hs = async { acceptor.accept(stream).await.ok() }
                        .or(async {
                            Timer::after(handshake).await;
                            None
                        })
                        .await;
                    let Some(tls_stream) = hs else { return };
                    let peer_cert = tls_stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| c.as_ref().to_vec());
                    serve_conn(shared, id, Listener::Client { peer_cert }, tls_stream).await;
                }
                None => serve_conn(shared, id, Listener::Admin, stream).await,
            }
        })
        .detach();
    }
}

/// Writes the 503 answer, then reads (and drops) what the client sends for a moment so that
/// closing does not reset the connection before the client has read the answer.
async fn refuse_overloaded<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, answer: &[u8]) {
    let write = async {
        s.write_all(answer).await?;
        s.flush().await
    };
    let timed = async {
        Timer::after(Duration::from_secs(2)).await;
        Err(std::io::ErrorKind::TimedOut.into())
    };
    if write.or(timed).await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let linger = async {
        for _ in 0..16 {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    linger
        .or(async {
            Timer::after(Duration::from_millis(500)).await;
        })
        .await;
    let _ = s.close().await;
}

enum Event {
    Read(std::io::Result<usize>),
    Msg(Option<ConnMsg>),
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    id: ConnId,
    listener: Listener,
    mut stream: S,
) {
    // One Send and one Close at most are ever queued (the broker waits for `Written`).
    let (tx, rx) = bounded(4);
    shared.conns.lock().expect("conns").insert(id, tx);
    shared.drive(Input::Accepted { conn: id, listener });
    let mut buf = vec![0u8; keybroker_core::READ_CHUNK];
    let write_timeout = shared
        .broker
        .lock()
        .expect("broker")
        .settings()
        .write_timeout;
    loop {
        // Write before reading: whatever is queued goes out first.
        let ev = match rx.try_recv() {
            Ok(m) => Event::Msg(Some(m)),
            Err(TryRecvError::Closed) => Event::Msg(None),
            Err(TryRecvError::Empty) if shared.wants_read(id) => {
                async { Event::Read(stream.read(&mut buf).await) }
                    .or(async { Event::Msg(rx.recv().await.ok()) })
                    .await
            }
            Err(TryRecvError::Empty) => Event::Msg(rx.recv().await.ok()),
        };
        match ev {
            Event::Read(Ok(0)) | Event::Read(Err(_)) => {
                shared.drive(Input::Closed { conn: id });
                break;
            }
            Event::Read(Ok(n)) => shared.drive(Input::Received {
                conn: id,
                bytes: &buf[..n],
            }),
            Event::Msg(None) => break,
            Event::Msg(Some(ConnMsg::Data(bytes))) => {
                // A client that does not read loses its connection at the write timeout.
                let write = async {
                    let r = async {
                        stream.write_all(&bytes).await?;
                        stream.flush().await
                    }
                    .await;
                    Some(r)
                };
                let timed_out = async {
                    Timer::after(write_timeout).await;
                    None
                };
                match write.or(timed_out).await {
                    Some(Ok(())) => shared.drive(Input::Written {
                        conn: id,
                        bytes: bytes.len(),
                    }),
                    Some(Err(_)) | None => {
                        shared.drive(Input::Closed { conn: id });
                        break;
                    }
                }
            }
            Event::Msg(Some(ConnMsg::Close)) => {
                let _ = stream.flush().await;
                let _ = stream.close().await;
                break;
            }
        }
    }
    shared.conns.lock().expect("conns").remove(&id);
}
