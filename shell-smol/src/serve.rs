//! The smol runtime under the shared driver ([`keybroker_host::driver`]): accept tasks, one
//! task per connection and per backend link, one timer task, `futures-rustls` for TLS.
//!
//! Every accepted socket is counted from accept (TLS handshake included) by
//! [`Host::admit`]; the admin listener has its own accept task and limit. A connection task
//! drives its own connection ([`keybroker_host::driver::Served`]): it writes before it
//! reads, one answer chunk at a time (within `keybroker.http.write-timeout`), and keeps the
//! connection's deadlines on one timer of its own.
use futures_rustls::TlsAcceptor;
use keybroker_core::backend::LinkId;
use keybroker_core::conn::ToConn;
use keybroker_core::Listener;
use keybroker_host::driver::{
    client_listener, AcceptBackoff, Action, Admission, Host, LinkRequest, Msg, Runtime, Side,
};
use keybroker_host::node;
use smol::channel::{unbounded, Receiver, Sender};
use smol::future::FutureExt;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::Timer;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use keybroker_host::node::log;

/// The smol side of the driver: channels, the executor tasks run on, `unblock` for files.
#[derive(Default)]
pub struct Smol {
    executor: OnceLock<Arc<smol::Executor<'static>>>,
}

impl Smol {
    /// Runs every task of this runtime on `ex`.
    pub(crate) fn set_executor(&self, ex: Arc<smol::Executor<'static>>) {
        let _ = self.executor.set(ex);
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> Result<(), String> {
        let ex = self.executor.get().ok_or("the executor is not running")?;
        ex.spawn(task).detach();
        Ok(())
    }
}

impl Runtime for Smol {
    type ConnTx = Sender<ToConn>;
    type LinkTx = Sender<Msg>;
    type LinkRx = Receiver<Msg>;

    fn to_conn(&self, tx: &Sender<ToConn>, msg: ToConn) -> bool {
        tx.try_send(msg).is_ok()
    }

    fn to_link(&self, tx: &Sender<Msg>, msg: Msg) {
        let _ = tx.try_send(msg);
    }

    fn link_channel(&self) -> (Sender<Msg>, Receiver<Msg>) {
        unbounded()
    }

    fn spawn_link(
        host: &Arc<Host<Self>>,
        req: LinkRequest,
        rx: Receiver<Msg>,
    ) -> Result<(), String> {
        #[cfg(feature = "legacy-hsm-tls")]
        if let Some(legacy) = req.legacy.clone() {
            use keybroker_host::legacy_tls::{run, Next};
            let host = host.clone();
            return std::thread::Builder::new()
                .name(format!("link-{}", req.link))
                .spawn(move || {
                    run(&host, req, &legacy, || match rx.try_recv() {
                        Ok(Msg::Data(b)) => Next::Data(b),
                        Ok(Msg::Close) | Err(smol::channel::TryRecvError::Closed) => Next::Close,
                        Err(smol::channel::TryRecvError::Empty) => Next::Empty,
                    })
                })
                .map(drop)
                .map_err(|e| format!("cannot start a thread: {e}"));
        }
        host.runtime().spawn(link_task(host.clone(), req, rx))
    }

    fn spawn_blocking(&self, job: Box<dyn FnOnce() + Send + 'static>) {
        smol::unblock(job).detach();
    }
}

/// The driver on smol.
pub(crate) type Shared = Host<Smol>;

/// A configured but not yet started server.
pub struct Server {
    host: Arc<Shared>,
    client: TcpListener,
    admin: TcpListener,
    threads: usize,
}

impl Server {
    /// Loads config from `properties_path`, binds both listeners.
    pub fn bind(properties_path: &str) -> Result<Server, String> {
        let p = node::prepare(properties_path)?;
        let client = smol::block_on(TcpListener::bind(p.listen.as_str()))
            .map_err(|e| format!("keybroker.listen {}: {e}", p.listen))?;
        let admin = smol::block_on(TcpListener::bind(p.admin_listen.as_str()))
            .map_err(|e| format!("keybroker.admin.listen {}: {e}", p.admin_listen))?;
        Ok(Server {
            threads: p.limits.threads,
            host: Host::new(Smol::default(), p),
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
        let ex = Arc::new(smol::Executor::new());
        log("info", &format!("{} executor thread(s)", self.threads));
        let (done_tx, done_rx) = unbounded::<()>();
        let mut workers = Vec::new();
        for _ in 1..self.threads {
            let ex = ex.clone();
            let done_rx = done_rx.clone();
            workers.push(std::thread::spawn(move || {
                let _ = smol::block_on(ex.run(done_rx.recv()));
            }));
        }
        let Server {
            host,
            client,
            admin,
            ..
        } = self;
        host.runtime().set_executor(ex.clone());
        host.start();
        smol::block_on(ex.run(async {
            let timer = ex.spawn(timer_task(host.clone()));
            let a1 = ex.spawn(accept_loop(ex.clone(), host.clone(), client, Side::Client));
            let a2 = ex.spawn(accept_loop(ex.clone(), host.clone(), admin, Side::Admin));
            let _ = stop.recv().await;
            drop((a1, a2)); // stop accepting
            host.shutdown();
            let deadline = std::time::Instant::now() + grace;
            while !host.is_drained() && std::time::Instant::now() < deadline {
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

/// `fut`, or `None` once `after` has passed.
pub(crate) async fn within<T>(after: Duration, fut: impl Future<Output = T>) -> Option<T> {
    async { Some(fut.await) }
        .or(async {
            Timer::after(after).await;
            None
        })
        .await
}

/// One backend link: connect (TCP, then TLS as the request says), then move bytes both ways.
async fn link_task(host: Arc<Shared>, req: LinkRequest, rx: Receiver<Msg>) {
    let (link, addr, limit) = (req.link, req.authority(), req.connect_timeout);
    let tls = match req.tls_setup() {
        Ok(t) => t,
        Err(e) => return host.link_closed(link, e),
    };
    // Every address the name resolves to is tried, in order.
    let tcp = match within(limit, TcpStream::connect(addr.as_str())).await {
        Some(Ok(t)) => t,
        Some(Err(e)) => return host.link_closed(link, format!("connect {addr}: {e}")),
        None => {
            return host.link_closed(link, format!("connect {addr}: timed out after {limit:?}"))
        }
    };
    let _ = tcp.set_nodelay(true);
    let Some((cfg, name)) = tls else {
        host.link_connected(link);
        return pump_link(host, link, tcp, rx).await;
    };
    let hs = futures_rustls::TlsConnector::from(cfg).connect(name, tcp);
    match within(limit, hs).await {
        Some(Ok(stream)) => {
            host.link_connected(link);
            pump_link(host, link, stream, rx).await
        }
        Some(Err(e)) => host.link_closed(link, format!("TLS handshake with {addr}: {e}")),
        None => host.link_closed(
            link,
            format!("TLS handshake with {addr}: timed out after {limit:?}"),
        ),
    }
}

enum Event<M> {
    Read(std::io::Result<usize>),
    Msg(Option<M>),
    Due,
}

async fn pump_link<S: AsyncRead + AsyncWrite + Unpin>(
    host: Arc<Shared>,
    link: LinkId,
    mut stream: S,
    rx: Receiver<Msg>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let reason = loop {
        let ev = async { Event::Read(stream.read(&mut buf).await) }
            .or(async { Event::Msg(rx.recv().await.ok()) })
            .await;
        match ev {
            Event::Read(Ok(0)) => break "closed by peer".to_string(),
            Event::Read(Err(e)) => break e.to_string(),
            Event::Read(Ok(n)) => host.link_received(link, &buf[..n]),
            Event::Msg(Some(Msg::Data(bytes))) => {
                let write = async {
                    stream.write_all(&bytes).await?;
                    stream.flush().await
                };
                if let Err(e) = write.await {
                    break e.to_string();
                }
            }
            Event::Msg(Some(Msg::Close)) | Event::Msg(None) => {
                let _ = stream.close().await;
                return; // closed at the backend's request: no event
            }
            Event::Due => {}
        }
    };
    host.link_closed(link, reason);
}

/// The host's timer policy on a smol timer.
pub(crate) async fn timer_task(host: Arc<Shared>) {
    let mut ticker = host.ticker();
    loop {
        Timer::after(ticker.wait()).await;
        ticker.tick();
    }
}

async fn accept_loop(
    ex: Arc<smol::Executor<'static>>,
    host: Arc<Shared>,
    listener: TcpListener,
    side: Side,
) {
    let handshake = host.handshake_timeout();
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _peer)) => {
                backoff.ok();
                s
            }
            Err(e) => {
                Timer::after(backoff.failed(&e)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = (side == Side::Client).then(|| TlsAcceptor::from(host.server_tls()));
        let host = host.clone();
        match host.admit(side) {
            Admission::Drop => drop(stream),
            Admission::Refuse(slot) => {
                let hs = handshake.min(Duration::from_secs(2));
                ex.spawn(async move {
                    let _slot = slot;
                    let answer = host.overload_answer();
                    match acceptor {
                        Some(a) => {
                            if let Some(Ok(s)) = within(hs, a.accept(stream)).await {
                                refuse_overloaded(s, &answer).await;
                            }
                        }
                        None => refuse_overloaded(stream, &answer).await,
                    }
                })
                .detach();
            }
            Admission::Serve(slot) => ex
                .spawn(async move {
                    let _slot = slot;
                    match acceptor {
                        Some(a) => {
                            let Some(Ok(s)) = within(handshake, a.accept(stream)).await else {
                                return;
                            };
                            let listener = client_listener(s.get_ref().1);
                            serve_conn(host, listener, s).await;
                        }
                        None => serve_conn(host, Listener::Admin, stream).await,
                    }
                })
                .detach(),
        }
    }
}

/// Writes the 503 answer, then reads (and drops) what the client sends for a moment so that
/// closing does not reset the connection before the client has read the answer.
async fn refuse_overloaded<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, answer: &[u8]) {
    let write = async {
        s.write_all(answer).await?;
        s.flush().await
    };
    if !matches!(within(Duration::from_secs(2), write).await, Some(Ok(()))) {
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
    within(Duration::from_millis(500), linger).await;
    let _ = s.close().await;
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(
    host: Arc<Shared>,
    listener: Listener,
    mut stream: S,
) {
    let (tx, rx) = unbounded();
    let mut conn = host.open_conn(tx, listener);
    let mut buf = vec![0u8; keybroker_core::READ_CHUNK];
    let write_timeout = host.write_timeout();
    // The connection's deadlines on one timer, armed lazily: a deadline that moves later
    // (every answer moves the idle one) leaves the timer where it is, and an early wake-up
    // finds nothing due and re-arms. Arming wakes the reactor thread, so it is done about
    // once per idle timeout instead of once per request.
    let mut timer = Timer::never();
    let mut armed: Option<std::time::Instant> = None;
    loop {
        while let Ok(m) = rx.try_recv() {
            conn.deliver(m);
        }
        // Write before reading: whatever is ready goes out first.
        while let Some(action) = conn.poll_action() {
            match action {
                Action::Send(bytes) => {
                    // A client that does not read loses its connection at the write timeout.
                    // The timer is armed only if the socket does not take the answer at once.
                    let mut write = Box::pin(async {
                        stream.write_all(&bytes).await?;
                        stream.flush().await
                    });
                    let written = match smol::future::poll_once(&mut write).await {
                        Some(done) => Some(done),
                        None => within(write_timeout, write).await,
                    };
                    match written {
                        Some(Ok(())) => conn.written(bytes.len()),
                        Some(Err(_)) | None => return,
                    }
                }
                Action::Close => {
                    let _ = stream.flush().await;
                    let _ = stream.close().await;
                    return;
                }
            }
        }
        if let Some(due) = conn.deadline() {
            if armed.is_none_or(|a| due < a) {
                timer.set_at(due);
                armed = Some(due);
            }
        }
        let ready = async { Event::Msg(rx.recv().await.ok()) }.or(async {
            (&mut timer).await;
            Event::Due
        });
        let ev = if conn.wants_read() {
            async { Event::Read(stream.read(&mut buf).await) }
                .or(ready)
                .await
        } else {
            ready.await
        };
        match ev {
            Event::Read(Ok(0)) | Event::Read(Err(_)) | Event::Msg(None) => return,
            Event::Read(Ok(n)) => {
                // What the endpoint sent first (a keystore reload) applies before the bytes.
                while let Ok(m) = rx.try_recv() {
                    conn.deliver(m);
                }
                conn.received(&buf[..n]);
            }
            Event::Msg(Some(m)) => conn.deliver(m),
            Event::Due => {
                armed = None;
                conn.handle_timeout();
            }
        }
    }
}
