//! The clients: roles, connections, the requests they send (well-formed, forged, malformed,
//! trickled), and the actions of a step (open, send, deliver, reset, wait, shut down).
use crate::{Failure, Fault, World, BACKEND_CERT, DEVICE_CERT, STRANGER_CERT};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use keybroker_core::vault::http::ResponseParser;
use keybroker_core::{ConnId, Input, Instant, Listener};
use std::collections::VecDeque;
use std::time::Duration;

const MAX_CONNS: usize = 8;
const MAX_PIPELINED: usize = 4;

/// Which certificate a client presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// cmxBackend: every operation.
    Backend,
    /// cmxDevice: encrypt, generate, decrypt.
    Device,
    /// A certificate the keystore does not trust.
    Stranger,
    /// No certificate.
    NoCert,
}

/// What a token was made from: (plaintext, context).
pub type Truth = (Vec<u8>, Vec<u8>);

/// What a request asked for, and so what its answer may be.
#[derive(Debug)]
pub enum Expect {
    /// Encrypt `pt` under `ctx`.
    Encrypt {
        /// Plaintext.
        pt: Vec<u8>,
        /// Context.
        ctx: Vec<u8>,
    },
    /// Generate a data key under `ctx`.
    Generate {
        /// Context.
        ctx: Vec<u8>,
    },
    /// Decrypt or rewrap of a token; `truth` is what it was made from, if genuine.
    Unwrap {
        /// Rewrap rather than decrypt.
        rewrap: bool,
        /// Context presented.
        ctx: Vec<u8>,
        /// What the token was made from, if a broker made it.
        truth: Option<Truth>,
    },
    /// Rotate the key.
    Rotate,
    /// Describe the key.
    Describe,
    /// Encrypt or generate under another key: role-checked, token not kept.
    Untracked,
}

/// One request a client sent and awaits the answer of.
#[derive(Debug)]
pub struct Pending {
    /// Its `x-request-id`.
    pub rid: String,
    /// What it asked.
    pub expect: Expect,
    /// Offset in the connection's byte stream where this request ends.
    pub end: u64,
    /// When it was wholly handed to the broker (before any shutdown): it must be answered.
    pub accepted: Option<Instant>,
}

/// One simulated client connection.
#[derive(Debug)]
pub struct SimConn {
    /// The node it is connected to.
    pub node: usize,
    /// Its certificate.
    pub role: Role,
    /// A refused client got its one answer: the broker must have closed it.
    pub refused_answered: bool,
    /// Framing broken on purpose (malformed, duplicated bytes): answers may be errors.
    pub chaos: bool,
    /// Trickles its bytes.
    pub slow: bool,
    /// Reads its answers late.
    pub slow_reader: bool,
    /// Bytes not yet delivered to the broker.
    pub outbox: VecDeque<u8>,
    /// Bytes delivered.
    pub delivered: u64,
    /// Bytes queued in total.
    pub queued: u64,
    /// Answer bytes, parsed with the core's HTTP response parser.
    pub inbox: ResponseParser,
    /// Requests awaiting answers, in order.
    pub pending: VecDeque<Pending>,
    /// Last byte in or out.
    pub last_activity: Instant,
    /// Bytes are held back until then.
    pub hold_until: Instant,
    /// Requests made.
    pub next_req: u64,
}

impl World {
    /// One random action of the safety phase.
    pub(crate) fn safety_step(&mut self) -> Result<(), Failure> {
        let f = self.sc.faults;
        match self.rng.below(100) {
            0..=8 if self.conns.len() < MAX_CONNS => self.open(),
            9..=36 => self.enqueue(),
            37..=72 => self.deliver(f.on(Fault::Split), f.on(Fault::Duplicate)),
            73..=89 => {
                let d = if f.on(Fault::Clock) && self.rng.percent(10) {
                    Duration::from_secs(5 + self.rng.below(70))
                } else {
                    Duration::from_millis(1 + self.rng.below(200))
                };
                self.advance(d)
            }
            90..=92 => self.read_late(),
            93..=95 => {
                let now = self.now;
                self.net
                    .inject(now, &mut self.peers, &mut self.rng)
                    .map_err(|e| self.fail(e))?;
                self.checks.fault_started(now, &self.net);
                self.drain()
            }
            96 if f.on(Fault::Reset) => self.reset(),
            97 if f.on(Fault::Shutdown) && !self.nodes[0].shut && self.step > 50 => {
                self.nodes[0].shut = true;
                self.input(0, Input::Shutdown)
            }
            _ => {
                let node = self.rng.below(self.nodes.len() as u64) as usize;
                let e: [u8; 32] = self.rng.bytes(32).try_into().expect("32");
                self.input(node, Input::Entropy(&e))
            }
        }
    }

    /// A slow reader reads what it was sent.
    fn read_late(&mut self) -> Result<(), Failure> {
        if self.unread.is_empty() {
            return Ok(());
        }
        let (node, conn, bytes) = self.unread.remove(0);
        let now = self.now;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_activity = now;
        }
        self.input(node, Input::Written { conn, bytes })
    }

    fn open(&mut self) -> Result<(), Failure> {
        let role = match self.rng.below(10) {
            0..=3 => Role::Backend,
            4..=7 => Role::Device,
            8 => Role::Stranger,
            _ => Role::NoCert,
        };
        let peer_cert = match role {
            Role::Backend => Some(BACKEND_CERT.to_vec()),
            Role::Device => Some(DEVICE_CERT.to_vec()),
            Role::Stranger => Some(STRANGER_CERT.to_vec()),
            Role::NoCert => None,
        };
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|n| !self.nodes[*n].shut)
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let node = live[self.rng.below(live.len() as u64) as usize];
        let id = self.next_conn;
        self.next_conn += 1;
        let slow = self.sc.faults.on(Fault::Slow) && self.rng.percent(20);
        let slow_reader = self.sc.faults.on(Fault::SlowReader) && self.rng.percent(20);
        self.conns.insert(
            id,
            SimConn {
                node,
                role,
                refused_answered: false,
                chaos: false,
                slow,
                slow_reader,
                outbox: VecDeque::new(),
                delivered: 0,
                queued: 0,
                inbox: ResponseParser::new(),
                pending: VecDeque::new(),
                last_activity: self.now,
                hold_until: self.now,
                next_req: 0,
            },
        );
        self.input(
            node,
            Input::Accepted {
                conn: id,
                listener: Listener::Client { peer_cert },
            },
        )
    }

    pub(crate) fn pick_conn(&mut self) -> Option<ConnId> {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        if ids.is_empty() {
            return None;
        }
        Some(ids[self.rng.below(ids.len() as u64) as usize])
    }

    fn enqueue(&mut self) -> Result<(), Failure> {
        let Some(id) = self.pick_conn() else {
            return Ok(());
        };
        let n = 1 + self.rng.below(3) as usize;
        for _ in 0..n {
            if self.conns[&id].pending.len() >= MAX_PIPELINED {
                break;
            }
            self.one_request(id);
        }
        Ok(())
    }

    fn context(&mut self) -> Vec<u8> {
        match self.rng.below(4) {
            0 => Vec::new(),
            k => format!("tenant={k}").into_bytes(),
        }
    }

    fn one_request(&mut self, id: ConnId) {
        if self.sc.faults.on(Fault::Malformed) && self.rng.percent(3) {
            let n = 1 + self.rng.below(40) as usize;
            let junk = self.rng.bytes(n);
            let c = self.conns.get_mut(&id).expect("live");
            c.chaos = true;
            c.queued += junk.len() as u64;
            c.outbox.extend(junk);
            return;
        }
        let mut key = if self.rng.percent(90) {
            "default"
        } else {
            "other"
        };
        // Rotation re-seals the soft-key file (PBKDF2): keep it rare there so 1000 seeds stay fast.
        let rotate_odds = if self.sc.backend == crate::BackendChoice::Soft {
            15
        } else {
            60
        };
        let (op, body, expect) = match self.rng.below(10) {
            0..=2 => {
                let n = 1 + self.rng.below(48) as usize;
                let pt = self.rng.bytes(n);
                let ctx = self.context();
                let body =
                    serde_json::json!({"plaintext": B64.encode(&pt), "context": B64.encode(&ctx)});
                ("encrypt", body, Expect::Encrypt { pt, ctx })
            }
            3 => {
                let ctx = self.context();
                let n = 1 + self.rng.below(64);
                let body = serde_json::json!({"bytes": n, "context": B64.encode(&ctx)});
                ("generate", body, Expect::Generate { ctx })
            }
            4..=7 => {
                let rewrap = self.rng.percent(25);
                let (token, truth) = self.some_token();
                let ctx = match (&truth, self.rng.percent(70)) {
                    (Some((_, c)), true) => c.clone(),
                    _ => self.context(),
                };
                let body = serde_json::json!({"ciphertext": token, "context": B64.encode(&ctx)});
                let op = if rewrap { "rewrap" } else { "decrypt" };
                key = "default"; // tokens are only kept for `default`
                (op, body, Expect::Unwrap { rewrap, ctx, truth })
            }
            8 if self.rng.percent(rotate_odds) => {
                let name = if key == "default" {
                    crate::KEYS[0]
                } else {
                    key
                };
                *self.rotations.entry(name.to_owned()).or_default() += 1;
                ("rotate", serde_json::json!({}), Expect::Rotate)
            }
            _ => ("", serde_json::Value::Null, Expect::Describe),
        };
        let expect = match expect {
            // Keep tokens made under `default` only (unwraps name `default`).
            Expect::Encrypt { .. } | Expect::Generate { .. } if key != "default" => {
                Expect::Untracked
            }
            e => e,
        };
        let c = self.conns.get_mut(&id).expect("live");
        c.next_req += 1;
        let rid = format!("s{}-c{id}-r{}", self.seed, c.next_req);
        let req = if op.is_empty() {
            format!("GET /v1/keys/{key} HTTP/1.1\r\nhost: sim\r\nx-request-id: {rid}\r\n\r\n")
        } else {
            let body = body.to_string();
            format!(
                "POST /v1/keys/{key}/{op} HTTP/1.1\r\nhost: sim\r\nx-request-id: {rid}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        c.queued += req.len() as u64;
        c.outbox.extend(req.into_bytes());
        c.pending.push_back(Pending {
            rid,
            expect,
            end: c.queued,
            accepted: None,
        });
    }

    /// A token to unwrap: a genuine one (sorted, so the choice is deterministic), a tampered
    /// one, or garbage.
    fn some_token(&mut self) -> (String, Option<crate::workload::Truth>) {
        let known: Vec<&String> = self.tokens.keys().collect();
        if known.is_empty() || self.rng.percent(10) {
            return ("kb1:AAAA".into(), None);
        }
        let t = known[self.rng.below(known.len() as u64) as usize].clone();
        let truth = self.tokens.get(&t).cloned();
        if self.rng.percent(10) {
            let mut b = t.into_bytes();
            let i = 4 + self.rng.below((b.len() - 4) as u64) as usize;
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(b).expect("ascii");
            let truth = self.tokens.get(&s).cloned();
            return (s, truth);
        }
        (t, truth)
    }

    fn deliver(&mut self, split: bool, duplicate: bool) -> Result<(), Failure> {
        match self.pick_conn() {
            Some(id) => self.deliver_to(id, split, duplicate),
            None => Ok(()),
        }
    }

    pub(crate) fn deliver_to(
        &mut self,
        id: ConnId,
        split: bool,
        duplicate: bool,
    ) -> Result<(), Failure> {
        let now = self.now;
        let c = &self.conns[&id];
        let node = c.node;
        if c.outbox.is_empty() || c.hold_until > now || !self.nodes[node].broker.wants_read(id) {
            return Ok(());
        }
        let slow = c.slow;
        let total = c.outbox.len();
        let n = if slow {
            1 + self.rng.below(3) as usize
        } else if split && self.rng.percent(50) {
            1 + self.rng.below(total as u64) as usize
        } else {
            total.min(16 * 1024)
        };
        let n = n.min(total);
        if self.sc.faults.on(Fault::Delay) && self.rng.percent(10) {
            let hold = Duration::from_millis(self.rng.below(3000));
            self.conns.get_mut(&id).expect("live").hold_until = now + hold;
        }
        let dup = duplicate && self.rng.percent(3);
        let shut = self.nodes[node].shut;
        let c = self.conns.get_mut(&id).expect("live");
        let chunk: Vec<u8> = c.outbox.drain(..n).collect();
        c.delivered += n as u64;
        c.last_activity = now;
        let delivered = c.delivered;
        for p in c.pending.iter_mut() {
            if p.end <= delivered && p.accepted.is_none() && !shut && !c.chaos {
                p.accepted = Some(now);
            }
        }
        if dup {
            c.chaos = true;
            // The copy may hold whole rotations (and one cut at its start): the broker may
            // carry them out a second time.
            let again = 1 + chunk.windows(6).filter(|w| w == b"rotate").count() as u64;
            for name in crate::KEYS {
                *self.rotations.entry(name.to_owned()).or_default() += again;
            }
        }
        self.input(
            node,
            Input::Received {
                conn: id,
                bytes: &chunk,
            },
        )?;
        if dup && self.conns.contains_key(&id) {
            self.input(
                node,
                Input::Received {
                    conn: id,
                    bytes: &chunk,
                },
            )?;
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Failure> {
        let Some(id) = self.pick_conn() else {
            return Ok(());
        };
        let c = self.conns.remove(&id).expect("picked");
        self.unread.retain(|(_, conn, _)| *conn != id);
        self.input(c.node, Input::Closed { conn: id })
    }

    /// The broker closed connection `id`: it must not have left an accepted request unanswered
    /// (unless the client broke framing or did not read in time).
    pub(crate) fn closed_by_broker(&mut self, id: ConnId, c: SimConn) -> Result<(), Failure> {
        if c.inbox.buffered() != 0 && !c.chaos && !c.slow_reader {
            return Err(self.fail(format!("connection {id} closed with a partial answer")));
        }
        if let Some(p) = c.pending.iter().find(|p| p.accepted.is_some()) {
            if !c.chaos && !c.refused_answered && !c.slow_reader {
                return Err(self.fail(format!(
                    "connection {id} ({:?}) closed with accepted request {} unanswered",
                    c.role, p.rid
                )));
            }
        }
        Ok(())
    }

    /// Faults stop and heal; everything sent is delivered and read; time runs on until every
    /// connection is gone.
    pub(crate) fn liveness(&mut self) -> Result<(), Failure> {
        self.calm = true;
        let now = self.now;
        self.net
            .calm(now, &mut self.peers)
            .map_err(|e| self.fail(e))?;
        for _ in 0..10_000 {
            while !self.unread.is_empty() {
                self.read_late()?;
            }
            let ids: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(id, c)| {
                    !c.outbox.is_empty() && self.nodes[c.node].broker.wants_read(**id)
                })
                .map(|(id, _)| *id)
                .collect();
            let waiting = self
                .conns
                .values()
                .any(|c| c.pending.iter().any(|p| p.accepted.is_some()));
            if ids.is_empty() && !waiting {
                break;
            }
            for id in ids {
                self.step += 1;
                let now = self.now;
                if let Some(c) = self.conns.get_mut(&id) {
                    c.hold_until = now;
                    c.slow = false;
                    self.deliver_to(id, false, false)?;
                }
            }
            self.advance(Duration::from_millis(10))?;
            self.check()?;
        }
        for (id, c) in &self.conns {
            if let Some(p) = c.pending.iter().find(|p| p.accepted.is_some()) {
                if !c.chaos {
                    return Err(self.fail(format!(
                        "connection {id}: accepted request {} never answered",
                        p.rid
                    )));
                }
            }
        }
        let end = self.now + self.idle + self.header + self.write_timeout + Duration::from_secs(2);
        while self.now < end && !self.conns.is_empty() {
            self.step += 1;
            while !self.unread.is_empty() {
                self.read_late()?;
            }
            self.advance(Duration::from_secs(1))?;
            self.check()?;
        }
        let open: usize = self.nodes.iter().map(|n| n.broker.connections()).sum();
        if !self.conns.is_empty() || open != 0 {
            return Err(self.fail(format!(
                "{open} connections still open after every deadline passed"
            )));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.shut && !n.broker.is_drained() {
                return Err(self.fail(format!("node {i}: shutdown never drained")));
            }
        }
        Ok(())
    }
}
