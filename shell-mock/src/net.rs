//! The simulated network between brokers and peers: every backend link the brokers open
//! (`LinkOutput::Connect` / `Send` / `Close`, under the broker's own link ids) becomes a
//! connection to a peer endpoint, and every byte crosses it as a packet delivered at a virtual
//! time. Faults chosen by the seed: latency and jitter, links reset, partial frames, a
//! black-holed endpoint, a partition between one broker and some endpoints (healed later), a
//! slow peer, a peer restart, a peer answering errors.
//!
//! A byte stream never loses a middle piece: what meets a black hole or a partition waits
//! until it heals (as TCP retransmits), then arrives in order — unless the broker gave up on
//! the link first.
use crate::peers::{PeerOut, PeerRef, Peers};
use crate::{Fault, Faults, Rng};
use keybroker_core::backend::{LinkId, NetEvent};
use keybroker_core::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

/// A place the brokers can connect to.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The peer answering there.
    pub peer: PeerRef,
    /// Faults may hit it (in survivor runs, one KMIP endpoint is never touched).
    pub victim: bool,
}

#[derive(Debug)]
struct NetLink {
    ep: usize,
    /// The peer's id for this connection.
    conn: u64,
    /// Connected event delivered.
    connected: bool,
    /// Reset: only its `Closed` is still on the way.
    dead: bool,
    /// The peer closed its side: bytes toward it are dropped.
    peer_closed: bool,
    /// Latest delivery time scheduled toward the peer (keeps the stream in order).
    to_peer_at: Instant,
    /// Latest delivery time scheduled toward the broker.
    to_node_at: Instant,
}

#[derive(Debug)]
enum Packet {
    Connected,
    ToPeer { bytes: Vec<u8>, sent_at: Instant },
    ToNode(Vec<u8>),
    Closed(String),
}

/// An endpoint cut off (from one broker, or from all: a black hole) until a time.
#[derive(Clone, Copy, Debug)]
struct Cut {
    node: Option<usize>,
    ep: usize,
    until: Instant,
}

/// The network state.
#[derive(Debug)]
pub struct Net {
    /// Every endpoint, in a fixed order.
    pub endpoints: Vec<Endpoint>,
    links: BTreeMap<(usize, LinkId), NetLink>,
    queue: BTreeMap<(Instant, u64), (usize, LinkId, Packet)>,
    seq: u64,
    next_conn: u64,
    faults: Faults,
    nodes: usize,
    latency: Duration,
    jitter_ms: u64,
    cuts: Vec<Cut>,
    /// Extra answer delay per endpoint, until a time.
    slow: BTreeMap<usize, (Instant, Duration)>,
    /// Endpoints restarting: connections refused until a time.
    down: BTreeMap<usize, Instant>,
    /// One KMIP endpoint is never faulted in this run.
    pub survivor: bool,
    /// The last injected fault touched a KMIP or Vault endpoint.
    pub last_fault_hit_backend: bool,
}

impl Net {
    /// The network of a run: the peers' endpoints, latency picked by the seed.
    pub fn new(faults: Faults, peers: &Peers, nodes: usize, rng: &mut Rng) -> Net {
        let survivor = peers.kmip.is_some() && rng.percent(50);
        let mut endpoints = peers.endpoints();
        if survivor {
            if let Some(last) = endpoints
                .iter_mut()
                .rev()
                .find(|e| matches!(e.peer, PeerRef::Kmip(_)))
            {
                last.victim = false;
            }
        }
        let (latency, jitter_ms) = if faults.on(Fault::Latency) {
            (rng.millis(20), rng.below(40))
        } else {
            (Duration::ZERO, 0)
        };
        Net {
            endpoints,
            links: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            next_conn: 1,
            faults,
            nodes,
            latency,
            jitter_ms,
            cuts: Vec::new(),
            slow: BTreeMap::new(),
            down: BTreeMap::new(),
            survivor,
            last_fault_hit_backend: false,
        }
    }

    fn delay(&self, rng: &mut Rng) -> Duration {
        self.latency + Duration::from_millis(rng.below(self.jitter_ms + 1))
    }

    fn push(&mut self, at: Instant, node: usize, link: LinkId, p: Packet) {
        self.seq += 1;
        self.queue.insert((at, self.seq), (node, link, p));
    }

    /// When the cut between `node` and `ep` heals, if it is cut at `now`.
    fn cut_until(&self, node: usize, ep: usize, now: Instant) -> Option<Instant> {
        self.cuts
            .iter()
            .filter(|c| c.ep == ep && c.node.is_none_or(|n| n == node) && c.until > now)
            .map(|c| c.until)
            .max()
    }

    /// When the next packet is due.
    pub fn next_at(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(t, _)| *t)
    }

    /// A broker opens `link` to `host:port`.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        &mut self,
        now: Instant,
        node: usize,
        link: LinkId,
        host: &str,
        port: u16,
        _peers: &mut Peers,
        rng: &mut Rng,
    ) -> Result<(), String> {
        if self.links.contains_key(&(node, link)) {
            return Err(format!("node {node} reused link id {link}"));
        }
        let d = self.delay(rng);
        let Some(ep) = self
            .endpoints
            .iter()
            .position(|e| e.host == host && e.port == port)
        else {
            self.push(now + d, node, link, Packet::Closed("no such host".into()));
            return Ok(());
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        self.links.insert(
            (node, link),
            NetLink {
                ep,
                conn,
                connected: false,
                dead: false,
                peer_closed: false,
                to_peer_at: now,
                to_node_at: now,
            },
        );
        if self.down.get(&ep).is_some_and(|t| *t > now) {
            self.push(
                now + d,
                node,
                link,
                Packet::Closed("connection refused".into()),
            );
        } else {
            self.push(now + d, node, link, Packet::Connected);
        }
        Ok(())
    }

    /// A broker writes on `link`.
    pub fn send(
        &mut self,
        now: Instant,
        node: usize,
        link: LinkId,
        bytes: Vec<u8>,
        _peers: &mut Peers,
        rng: &mut Rng,
    ) -> Result<(), String> {
        let Some(l) = self.links.get(&(node, link)) else {
            // Closed under the broker's feet (the Closed event is on its way).
            return Ok(());
        };
        if !l.connected {
            return Err(format!(
                "node {node} sent on link {link} before it connected"
            ));
        }
        if l.dead || l.peer_closed {
            return Ok(());
        }
        let pieces = self.pieces(bytes, rng);
        for piece in pieces {
            let d = self.delay(rng);
            let l = self.links.get_mut(&(node, link)).expect("checked");
            let at = (now + d).max(l.to_peer_at);
            l.to_peer_at = at;
            self.push(
                at,
                node,
                link,
                Packet::ToPeer {
                    bytes: piece,
                    sent_at: now,
                },
            );
        }
        Ok(())
    }

    fn pieces(&self, bytes: Vec<u8>, rng: &mut Rng) -> Vec<Vec<u8>> {
        if !self.faults.on(Fault::Partial) || bytes.len() < 2 || !rng.percent(30) {
            return vec![bytes];
        }
        let mut out = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() && out.len() < 4 {
            let n = (1 + rng.below(rest.len() as u64) as usize).min(rest.len());
            out.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        if !rest.is_empty() {
            out.push(rest.to_vec());
        }
        out
    }

    /// A broker closes `link` (no event follows).
    pub fn close(&mut self, _now: Instant, node: usize, link: LinkId, peers: &mut Peers) {
        if let Some(l) = self.links.remove(&(node, link)) {
            let peer = self.endpoints[l.ep].peer;
            peers.closed(peer, l.conn);
        }
    }

    /// The next due packet for a broker, running the peer side of every packet due before it.
    pub fn pop_due(
        &mut self,
        now: Instant,
        peers: &mut Peers,
        rng: &mut Rng,
    ) -> Result<Option<(usize, NetEvent)>, String> {
        loop {
            let Some((&key, _)) = self.queue.iter().next() else {
                return Ok(None);
            };
            if key.0 > now {
                return Ok(None);
            }
            let (node, link, p) = self.queue.remove(&key).expect("first");
            let t = key.0;
            let Some(l) = self.links.get(&(node, link)) else {
                // A refused or unknown-host connect has no link entry.
                if let Packet::Closed(reason) = p {
                    return Ok(Some((node, NetEvent::Closed { link, reason })));
                }
                continue;
            };
            let (ep, conn, dead) = (l.ep, l.conn, l.dead);
            if dead {
                if let Packet::Closed(reason) = p {
                    self.links.remove(&(node, link));
                    return Ok(Some((node, NetEvent::Closed { link, reason })));
                }
                continue;
            }
            if let Some(until) = self.cut_until(node, ep, t) {
                // Held until the cut heals, keeping its place in the stream: its sequence
                // number orders it before anything sent after it.
                self.queue.insert((until, key.1), (node, link, p));
                continue;
            }
            let peer = self.endpoints[ep].peer;
            match p {
                Packet::Connected => {
                    peers.accept(peer, conn);
                    self.links.get_mut(&(node, link)).expect("live").connected = true;
                    return Ok(Some((node, NetEvent::Connected { link })));
                }
                Packet::ToPeer { bytes, sent_at } => {
                    if self.links[&(node, link)].peer_closed {
                        continue;
                    }
                    let PeerOut { bytes, close } = peers
                        .receive(peer, conn, &bytes, sent_at, t)
                        .map_err(|e| format!("node {node} link {link}: {e}"))?;
                    let slow = self
                        .slow
                        .get(&ep)
                        .filter(|(until, _)| *until > t)
                        .map_or(Duration::ZERO, |(_, d)| *d);
                    let mut last = t;
                    if !bytes.is_empty() {
                        for piece in self.pieces(bytes, rng) {
                            let d = self.delay(rng) + slow;
                            let l = self.links.get_mut(&(node, link)).expect("live");
                            let at = (t + d).max(l.to_node_at);
                            l.to_node_at = at;
                            last = at;
                            self.push(at, node, link, Packet::ToNode(piece));
                        }
                    }
                    if close {
                        peers.closed(peer, conn);
                        self.links.get_mut(&(node, link)).expect("live").peer_closed = true;
                        self.push(last, node, link, Packet::Closed("closed by peer".into()));
                    }
                }
                Packet::ToNode(bytes) => {
                    return Ok(Some((node, NetEvent::Received { link, bytes })));
                }
                Packet::Closed(reason) => {
                    self.links.remove(&(node, link));
                    return Ok(Some((node, NetEvent::Closed { link, reason })));
                }
            }
        }
    }

    /// Ends faults whose time is up.
    pub fn heal(&mut self, now: Instant, _peers: &mut Peers) -> Result<(), String> {
        self.cuts.retain(|c| c.until > now);
        self.slow.retain(|_, (until, _)| *until > now);
        self.down.retain(|_, t| *t > now);
        Ok(())
    }

    /// No new fault from now on (the liveness phase); cuts, slow peers and restarts under way
    /// run out by themselves (ending a cut early would let later bytes overtake held ones).
    pub fn calm(&mut self, now: Instant, peers: &mut Peers) -> Result<(), String> {
        self.faults = Faults::NONE;
        peers.calm(now);
        Ok(())
    }

    fn victims(&self) -> Vec<usize> {
        (0..self.endpoints.len())
            .filter(|e| self.endpoints[*e].victim)
            .collect()
    }

    /// Injects one fault the run allows, picked by `rng`.
    pub fn inject(&mut self, now: Instant, peers: &mut Peers, rng: &mut Rng) -> Result<(), String> {
        self.last_fault_hit_backend = false;
        let on: Vec<Fault> = [
            Fault::LinkReset,
            Fault::BlackHole,
            Fault::Partition,
            Fault::SlowPeer,
            Fault::Restart,
            Fault::PeerErrors,
        ]
        .into_iter()
        .filter(|f| self.faults.on(*f))
        .collect();
        let victims = self.victims();
        if on.is_empty() || victims.is_empty() {
            return Ok(());
        }
        let fault = on[rng.below(on.len() as u64) as usize];
        let ep = victims[rng.below(victims.len() as u64) as usize];
        let window = Duration::from_millis(500 + rng.below(6000));
        self.last_fault_hit_backend = self.endpoints[ep].peer.is_backend();
        match fault {
            Fault::LinkReset => {
                let live: Vec<(usize, LinkId)> = self
                    .links
                    .iter()
                    .filter(|(_, l)| self.endpoints[l.ep].victim && l.connected && !l.dead)
                    .map(|(k, _)| *k)
                    .collect();
                if live.is_empty() {
                    self.last_fault_hit_backend = false;
                    return Ok(());
                }
                let key = live[rng.below(live.len() as u64) as usize];
                self.last_fault_hit_backend = self.endpoints[self.links[&key].ep].peer.is_backend();
                self.reset(key, now, "connection reset by peer", peers);
            }
            Fault::BlackHole => self.cuts.push(Cut {
                node: None,
                ep,
                until: now + window,
            }),
            Fault::Partition => {
                let node = rng.below(self.nodes as u64) as usize;
                for v in victims {
                    if rng.percent(60) || v == ep {
                        self.last_fault_hit_backend |= self.endpoints[v].peer.is_backend();
                        self.cuts.push(Cut {
                            node: Some(node),
                            ep: v,
                            until: now + window,
                        });
                    }
                }
            }
            Fault::SlowPeer => {
                let by = Duration::from_millis(200 + rng.below(2500));
                self.slow.insert(ep, (now + window, by));
            }
            Fault::Restart => {
                let peer = self.endpoints[ep].peer;
                let same: Vec<(usize, LinkId)> = self
                    .links
                    .iter()
                    .filter(|(_, l)| self.endpoints[l.ep].peer == peer)
                    .map(|(k, _)| *k)
                    .collect();
                for key in same {
                    self.reset(key, now, "connection reset (peer restarted)", peers);
                }
                let down = Duration::from_millis(100 + rng.below(2000));
                for (i, e) in self.endpoints.iter().enumerate() {
                    if e.peer == peer {
                        self.down.insert(i, now + down);
                    }
                }
                peers.restart(peer, now + down, rng);
            }
            Fault::PeerErrors => peers.errors(self.endpoints[ep].peer, now + window),
            _ => {}
        }
        Ok(())
    }

    fn reset(&mut self, key: (usize, LinkId), now: Instant, why: &str, peers: &mut Peers) {
        let Some(l) = self.links.get_mut(&key) else {
            return;
        };
        if l.dead {
            return;
        }
        l.dead = true;
        let (ep, conn) = (l.ep, l.conn);
        peers.closed(self.endpoints[ep].peer, conn);
        // The reset overtakes whatever was in flight.
        let stale: Vec<(Instant, u64)> = self
            .queue
            .iter()
            .filter(|(_, (n, l, _))| (*n, *l) == key)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            self.queue.remove(&k);
        }
        self.push(now, key.0, key.1, Packet::Closed(why.into()));
    }
}
