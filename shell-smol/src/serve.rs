//! The smol shell: sockets, TLS, timers and signals around one `Broker`.
use crate::files;
use crate::tls;
use futures_rustls::TlsAcceptor;
use keybroker_core::backend::{LinkId, LinkSecurity, NetEvent};
use keybroker_core::config::load::{self, NodeConfig};
use keybroker_core::{Broker, ConnId, Input, Listener, Now, Output};
use smol::channel::{unbounded, Receiver, Sender};
use smol::future::FutureExt;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::Timer;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

enum ConnMsg {
    Data(Vec<u8>),
    Close,
}

/// TLS client configurations for backend links, built once from the keystore.
pub struct LinkTls {
    /// For KMIP HSMs.
    pub kmip: Option<Arc<rustls::ClientConfig>>,
    /// For Vault.
    pub vault: Option<Arc<rustls::ClientConfig>>,
}

/// State shared by every task of one server.
pub struct Shared {
    broker: Mutex<Broker>,
    conns: Mutex<HashMap<ConnId, Sender<ConnMsg>>>,
    epoch: std::time::Instant,
    next_conn: AtomicU64,
    soft_key_path: String,
    audit: Mutex<Option<std::fs::File>>,
    properties_path: String,
    links: Mutex<HashMap<LinkId, Sender<ConnMsg>>>,
    link_tls: LinkTls,
    executor: OnceLock<Arc<smol::Executor<'static>>>,
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
        match out {
            Output::Send { conn, bytes } => {
                if let Some(tx) = self.conns.lock().expect("conns").get(&conn) {
                    let _ = tx.try_send(ConnMsg::Data(bytes));
                }
            }
            Output::Close { conn } => {
                if let Some(tx) = self.conns.lock().expect("conns").get(&conn) {
                    let _ = tx.try_send(ConnMsg::Close);
                }
            }
            Output::PersistSoftKeys(bytes) => {
                if let Err(e) = files::write_atomic(&self.soft_key_path, &bytes) {
                    log(
                        "error",
                        &format!("keybroker.soft.key-file {}: {e}", self.soft_key_path),
                    );
                }
            }
            Output::Audit(line) => {
                let mut a = self.audit.lock().expect("audit");
                match a.as_mut() {
                    Some(f) => {
                        let _ = writeln!(f, "{line}");
                    }
                    None => log("audit", &line),
                }
            }
            Output::Log { level, message } => log(level, &message),
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
                let tls = match security {
                    LinkSecurity::KmipTls => self.link_tls.kmip.clone(),
                    LinkSecurity::VaultTls => self.link_tls.vault.clone(),
                    _ => None,
                };
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
        }
    }

    fn wants_read(&self, conn: ConnId) -> bool {
        self.broker.lock().expect("broker").wants_read(conn)
    }

    /// Re-reads the keystore; on any error the old one keeps serving.
    pub fn reload(&self) {
        let result = std::fs::read(&self.properties_path)
            .map_err(|e| format!("{}: {e}", self.properties_path))
            .and_then(|bytes| {
                load::load(&self.properties_path, &bytes, &mut files::read)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(cfg) => {
                let n = cfg.keystore.entries.len();
                self.broker
                    .lock()
                    .expect("broker")
                    .set_keystore(&cfg.keystore);
                log(
                    "info",
                    &format!("reloaded {} ({n} entries)", cfg.keystore_path),
                );
            }
            Err(e) => log(
                "error",
                &format!("reload failed, still serving the previous keystore: {e}"),
            ),
        }
    }
}

/// The core's view of the time, with `epoch` as its monotonic zero.
fn now_since(epoch: std::time::Instant) -> Now {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Now {
        mono: keybroker_core::Instant::from_epoch(epoch.elapsed()),
        unix_secs: unix,
    }
}

/// Writes one log line to stderr.
pub fn log(level: &str, message: &str) {
    let ts = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    eprintln!("{ts:.3} {level} {message}");
}

/// A configured but not yet started server.
pub struct Server {
    shared: Arc<Shared>,
    tls: TlsAcceptor,
    client: TcpListener,
    admin: TcpListener,
}

impl Server {
    /// Loads config from `properties_path`, binds both listeners.
    pub fn bind(properties_path: &str) -> Result<Server, String> {
        let bytes =
            std::fs::read(properties_path).map_err(|e| format!("{properties_path}: {e}"))?;
        let cfg: NodeConfig =
            load::load(properties_path, &bytes, &mut files::read).map_err(|e| e.to_string())?;
        for w in &cfg.warnings {
            match w.line {
                Some(l) => log("warn", &format!("{properties_path}:{l}: {}", w.message)),
                None => log("warn", &w.message),
            }
        }
        let config_dir = properties_path
            .rsplit_once('/')
            .map(|(d, _)| d)
            .unwrap_or(".");
        let mut seed = [0u8; 32];
        tls::random(&mut seed);
        let mut rng = keybroker_core::drbg::Drbg::new();
        rng.reseed(&seed);
        let (backend, new_file) = load::backend(
            &cfg,
            config_dir,
            &mut files::read,
            &|k: &str| std::env::var(k).ok(),
            &mut rng,
        )
        .map_err(|e| e.to_string())?;
        if let Some((path, file)) = new_file {
            files::write_atomic(&path, &file)
                .map_err(|e| format!("keybroker.soft.key-file {path}: {e}"))?;
            log("info", &format!("wrote soft master keys to {path}"));
        }
        let soft_key_path = load::resolve(config_dir, &cfg.settings.soft_key_file);
        let tls_cfg = tls::server_config(&cfg.server_chain, cfg.server_key.expose())
            .map_err(|e| format!("{}: {}: {e}", cfg.keystore_path, cfg.settings.server_alias))?;
        let audit = match &cfg.settings.audit_file {
            Some(p) => {
                let p = load::resolve(config_dir, p);
                Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&p)
                        .map_err(|e| format!("keybroker.audit.file {p}: {e}"))?,
                )
            }
            None => None,
        };
        let listen = cfg.settings.listen.clone();
        let admin_listen = cfg.settings.admin_listen.clone();
        let client = smol::block_on(TcpListener::bind(listen.as_str()))
            .map_err(|e| format!("keybroker.listen {listen}: {e}"))?;
        let admin = smol::block_on(TcpListener::bind(admin_listen.as_str()))
            .map_err(|e| format!("keybroker.admin.listen {admin_listen}: {e}"))?;
        let link_tls = tls::link_configs(&cfg);
        let epoch = std::time::Instant::now();
        let mut broker = Broker::new(cfg.settings, &cfg.keystore, backend);
        let mut seed2 = [0u8; 32];
        tls::random(&mut seed2);
        broker.handle_input(now_since(epoch), Input::Entropy(&seed2));
        let shared = Arc::new(Shared {
            broker: Mutex::new(broker),
            conns: Mutex::new(HashMap::new()),
            epoch,
            next_conn: AtomicU64::new(1),
            soft_key_path,
            audit: Mutex::new(audit),
            properties_path: properties_path.to_owned(),
            links: Mutex::new(HashMap::new()),
            link_tls,
            executor: OnceLock::new(),
        });
        Ok(Server {
            shared,
            tls: TlsAcceptor::from(tls_cfg),
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
            tls,
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
            let a1 = ex.spawn(accept_loop(ex.clone(), shared.clone(), client, Some(tls)));
            let a2 = ex.spawn(accept_loop(ex.clone(), shared.clone(), admin, None));
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
    tls: Option<TlsAcceptor>,
) {
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log("warn", &format!("accept failed: {e}"));
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let max = shared
            .broker
            .lock()
            .expect("broker")
            .settings()
            .max_connections;
        if shared.conns.lock().expect("conns").len() >= max {
            drop(stream); // over keybroker.http.max-connections
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        ex.spawn(async move {
            let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
            match tls {
                Some(acceptor) => {
                    let hs = async { acceptor.accept(stream).await.ok() }
                        .or(async {
                            Timer::after(Duration::from_secs(10)).await;
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
    let (tx, rx) = unbounded();
    shared.conns.lock().expect("conns").insert(id, tx);
    shared.drive(Input::Accepted { conn: id, listener });
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        let ev = if shared.wants_read(id) {
            async { Event::Read(stream.read(&mut buf).await) }
                .or(async { Event::Msg(rx.recv().await.ok()) })
                .await
        } else {
            Event::Msg(rx.recv().await.ok())
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
            Event::Msg(Some(first)) => {
                let mut msg = Some(first);
                while let Some(m) = msg {
                    match m {
                        ConnMsg::Data(bytes) => {
                            if stream.write_all(&bytes).await.is_err() {
                                shared.drive(Input::Closed { conn: id });
                                break 'conn;
                            }
                        }
                        ConnMsg::Close => {
                            let _ = stream.flush().await;
                            let _ = stream.close().await;
                            break 'conn;
                        }
                    }
                    msg = rx.try_recv().ok();
                }
                if stream.flush().await.is_err() {
                    shared.drive(Input::Closed { conn: id });
                    break;
                }
            }
        }
    }
    shared.conns.lock().expect("conns").remove(&id);
}
