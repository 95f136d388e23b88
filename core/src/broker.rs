//! The broker: one sans-IO state machine for a whole node — the shared
//! [`Endpoint`] and every connection's [`Connection`] — behind one pair of calls. The
//! simulator and the core's tests drive it; the servers drive the two halves themselves (each
//! connection on its own task, the endpoint behind a lock), through the same code.
//!
//! # Driving it
//! A shell calls [`Broker::handle_input`] for everything that happens (a connection accepted,
//! bytes received, a peer gone, time passing, fresh entropy) and then **drains
//! [`Broker::poll_output`] until it returns `None`**, carrying out each [`Output`] in order;
//! then it sleeps until [`Broker::poll_timeout`] (or the next event) and feeds
//! [`Input::Timeout`]. Time never goes backwards; feeding a timeout early is harmless.
//! Before reading more bytes from a connection a shell asks [`Broker::wants_read`], which
//! bounds what one client can make the server hold, and reads at most [`READ_CHUNK`] bytes.
//!
//! # Writing
//! Answers wait in the connection until the shell can write them: it hands out one
//! [`ConnOutput::Send`] per connection at a time, and the next only after the shell reported the
//! bytes written with [`Input::Written`]. So a shell's per-connection queue never holds more
//! than one `Send` and one `Close` (a `Close` may follow the last `Send` at once: the shell
//! writes that `Send` first, within `keybroker.http.write-timeout`), and every byte a client
//! makes the node hold (parser buffer, requests in flight, answers not yet written) is counted
//! against `keybroker.http.max-connection-bytes`. A write that the client does not read within
//! `keybroker.http.write-timeout` closes the connection.
use crate::backend::{Backend, NetEvent, PersistId};
use crate::config::keystore::Keystore;
use crate::config::BrokerSettings;
use crate::conn::{ConnEvent, Connection};
use crate::endpoint::{self, Endpoint};
use crate::time::{Instant, Now};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use crate::conn::{min_connection_bytes, DRAIN_LINGER, MAX_PIPELINE, READ_CHUNK, SEND_CHUNK};
pub use crate::endpoint::{ConnId, Effect, LinkOutput, Listener};

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
    /// 32 fresh bytes from the shell's CSPRNG, now and then (the first seed goes to
    /// [`Broker::new`]).
    Entropy(&'a [u8; 32]),
    /// Stop taking new work; finish what is in flight, then close every connection.
    Shutdown,
    /// Something happened on a backend link.
    Net(NetEvent),
    /// The shell wrote `bytes` more of what [`ConnOutput::Send`] gave it for `conn`.
    Written {
        /// Which connection.
        conn: ConnId,
        /// How many bytes reached the socket since the last report.
        bytes: usize,
    },
    /// The shell finished an [`Effect::PersistSoftKeys`]: `Ok` once the file is written and
    /// synced, `Err` with the reason (no secret) otherwise.
    Persisted {
        /// The job's id.
        id: PersistId,
        /// Outcome.
        result: Result<(), String>,
    },
}

/// Something the shell must do, grouped by whom it concerns, so that a shell matches each
/// group exhaustively.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// For one client connection.
    Conn(ConnOutput),
    /// For one backend link (KMIP, Vault, Redis cache).
    Link(LinkOutput),
    /// For the node itself: files and logs.
    Local(Effect),
}

/// What to do with a client connection.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnOutput {
    /// Write these bytes to the connection, then report [`Input::Written`].
    Send {
        /// Which connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close the connection once the `Send` before it is written (the shell's own write
    /// timeout, `keybroker.http.write-timeout`, bounds that wait); on a write deadline the
    /// unwritten rest is dropped.
    Close {
        /// Which connection.
        conn: ConnId,
    },
}

/// The per-node state machine. See the module docs for the drain rule.
pub struct Broker {
    ep: Endpoint,
    conns: BTreeMap<ConnId, Connection>,
    /// Each connection's next deadline.
    deadlines: BTreeSet<(Instant, ConnId)>,
    deadline_of: BTreeMap<ConnId, Instant>,
    outputs: VecDeque<Output>,
    /// Connections with events to carry out, in the order they got them.
    dirty: Vec<ConnId>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("endpoint", &self.ep)
            .field("conns", &self.conns.len())
            .finish()
    }
}

impl Broker {
    /// Names the shell's TLS implementation for `/metrics` (`keybroker_build_info`).
    pub fn set_tls_provider(&mut self, provider: &'static str) {
        self.ep.set_tls_provider(provider);
    }

    /// A broker serving `keystore`'s identities with `backend`, its DRBG seeded with 32 bytes
    /// from the shell's CSPRNG, started at `now`: the backend's and the cache's first
    /// outputs (links to open) are waiting in [`Broker::poll_output`].
    pub fn new(
        now: Now,
        settings: BrokerSettings,
        keystore: &Keystore,
        backend: Backend,
        seed: &[u8; 32],
    ) -> Broker {
        let mut b = Broker {
            ep: Endpoint::new(now, settings, keystore, backend, seed),
            conns: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            deadline_of: BTreeMap::new(),
            outputs: VecDeque::new(),
            dirty: Vec::new(),
        };
        b.settle();
        b
    }

    /// Replaces the identities (live reload) and re-checks every open client connection: one
    /// whose certificate no longer authorizes gets a 403 on its next request and is closed.
    pub fn set_keystore(&mut self, keystore: &Keystore) {
        self.ep.set_keystore(keystore);
        self.settle();
    }

    /// The settings in force.
    pub fn settings(&self) -> &BrokerSettings {
        self.ep.settings()
    }

    /// Whether every connection is gone after [`Input::Shutdown`].
    pub fn is_drained(&self) -> bool {
        self.ep.is_drained()
    }

    /// Number of open connections.
    pub fn connections(&self) -> usize {
        self.ep.connections()
    }

    /// Requests read from `conn` and not yet answered; while this is above zero an answer can
    /// come from another event (a backend reply), so a blocking shell must watch for it.
    pub fn in_flight(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, Connection::in_flight)
    }

    /// Whether the shell should read more bytes (at most [`READ_CHUNK`]) from `conn` now.
    pub fn wants_read(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(Connection::wants_read)
    }

    /// Bytes `conn` makes the node hold now: unparsed input, requests in flight with a bound
    /// of their answers, answers not yet written. Never above `max-connection-bytes`.
    pub fn held_bytes(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, Connection::held_bytes)
    }

    /// A complete `503 overloaded` answer with `Retry-After` and `Connection: close`, for a
    /// shell to write on a connection it cannot take (over `keybroker.http.max-connections`).
    pub fn overload_answer(&mut self) -> Vec<u8> {
        self.ep.overload_answer()
    }

    /// The next thing to do, or `None` when drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the broker next needs [`Input::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.deadlines.iter().next().map(|(t, _)| *t);
        [conns, self.ep.poll_timeout()].into_iter().flatten().min()
    }

    /// Feeds one event in; then drain [`Broker::poll_output`].
    pub fn handle_input(&mut self, now: Now, input: Input<'_>) {
        self.ep.set_now(now);
        let now = self.ep.now();
        match input {
            Input::Accepted { conn, listener } => {
                let c = self.ep.accept(conn, listener);
                self.conns.insert(conn, c);
                self.dirty.push(conn);
            }
            Input::Received { conn, bytes } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.received(now, bytes);
                    self.dirty.push(conn);
                }
            }
            Input::Written { conn, bytes } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.written(now, bytes);
                    self.dirty.push(conn);
                }
            }
            Input::Closed { conn } => self.remove(conn),
            Input::Timeout => {
                while let Some(&(t, id)) = self.deadlines.iter().next() {
                    if t > now.mono {
                        break;
                    }
                    self.deadlines.remove(&(t, id));
                    self.deadline_of.remove(&id);
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.handle_timeout(now);
                        self.dirty.push(id);
                    }
                }
                self.ep.handle_timeout();
            }
            Input::Entropy(e) => self.ep.reseed(e),
            Input::Shutdown => self.ep.shutdown(),
            Input::Net(ev) => self.ep.handle_net(ev),
            Input::Persisted { id, result } => self.ep.persisted(id, result),
        }
        self.settle();
    }

    /// Carries events between the halves until neither has any left.
    fn settle(&mut self) {
        let now = self.ep.now();
        loop {
            let mut progressed = false;
            while let Some(out) = self.ep.poll_output() {
                progressed = true;
                match out {
                    endpoint::Output::Conn(id, msg) => {
                        if let Some(c) = self.conns.get_mut(&id) {
                            c.deliver(now, msg);
                            self.dirty.push(id);
                        }
                    }
                    endpoint::Output::Link(l) => self.outputs.push_back(Output::Link(l)),
                    endpoint::Output::Local(e) => self.outputs.push_back(Output::Local(e)),
                }
            }
            for id in std::mem::take(&mut self.dirty) {
                progressed = true;
                self.pump_conn(id);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Carries out one connection's events and files its deadline.
    fn pump_conn(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut closed = false;
        while let Some(ev) = c.poll_output() {
            match ev {
                ConnEvent::Send(bytes) => self
                    .outputs
                    .push_back(Output::Conn(ConnOutput::Send { conn: id, bytes })),
                ConnEvent::Close => {
                    self.outputs
                        .push_back(Output::Conn(ConnOutput::Close { conn: id }));
                    closed = true;
                }
                ConnEvent::Submit(work) => self.ep.submit(id, work),
                ConnEvent::Audit(line) => {
                    self.outputs.push_back(Output::Local(Effect::Audit(line)))
                }
                ConnEvent::Log {
                    component,
                    level,
                    message,
                } => self.outputs.push_back(Output::Local(Effect::Log {
                    component,
                    level,
                    message,
                })),
            }
        }
        if closed {
            return self.remove(id);
        }
        let new = c.poll_timeout();
        if self.deadline_of.get(&id).copied() != new {
            if let Some(d) = self.deadline_of.remove(&id) {
                self.deadlines.remove(&(d, id));
            }
            if let Some(d) = new {
                self.deadlines.insert((d, id));
                self.deadline_of.insert(id, d);
            }
        }
    }

    fn remove(&mut self, id: ConnId) {
        if self.conns.remove(&id).is_some() {
            if let Some(d) = self.deadline_of.remove(&id) {
                self.deadlines.remove(&(d, id));
            }
            self.ep.closed(id);
        }
    }
}
