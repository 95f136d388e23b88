//! keybroker-sim: drives one `Broker` with a virtual clock, a seeded RNG and simulated clients.
//!
//! The seed alone decides everything: which faults are on (swarm testing, as TigerBeetle's
//! VOPR), every client action, every byte split, every clock jump and the entropy fed to the
//! broker. A run has a *safety* phase (random actions and faults, invariants checked after
//! every step) and a *liveness* phase (faults stop, every byte is delivered, time runs on: every
//! accepted request must have its answer and every connection must close). The trace — every
//! input and every output — is hashed; two runs of one seed print the same hash.
#![forbid(unsafe_code)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use keybroker_core::backend::soft::{SoftBackend, SoftKeys};
use keybroker_core::backend::Backend;
use keybroker_core::broker::MAX_PIPELINE;
use keybroker_core::config::keystore::{Entry, EntryKind, Format, Keystore};
use keybroker_core::config::{properties, Settings};
use keybroker_core::drbg::Drbg;
use keybroker_core::{
    Broker, ConnId, ConnOutput, Effect, Input, Instant, Listener, Now, Output, Secret,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

const BACKEND_CERT: &[u8] = include_bytes!("../fixtures/cmxBackend.der");
const DEVICE_CERT: &[u8] = include_bytes!("../fixtures/cmxDevice.der");
const STRANGER_CERT: &[u8] = include_bytes!("../fixtures/stranger.der");
/// Virtual wall clock at the start of every run (2027; the fixtures are valid for 100 years).
const UNIX_BASE: i64 = 1_800_000_000;
const SAFETY_STEPS: u32 = 400;
const MAX_CONNS: usize = 8;
const MAX_PIPELINED: usize = 4;

/// A small seeded generator (SplitMix64): the simulator's only source of choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `p` percent.
    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Which faults a run injects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Deliver client bytes in random pieces.
    pub split: bool,
    /// Hold client bytes back for a while.
    pub delay: bool,
    /// Deliver a piece twice (the stream is then garbage for the server).
    pub duplicate: bool,
    /// Reset connections mid-request.
    pub reset: bool,
    /// Jump the clock by tens of seconds.
    pub clock: bool,
    /// Shut the broker down mid-run.
    pub shutdown: bool,
    /// Send malformed requests.
    pub malformed: bool,
    /// Clients that trickle bytes (slow loris).
    pub slow: bool,
}

impl Faults {
    /// Every fault.
    pub const ALL: Faults = Faults {
        split: true,
        delay: true,
        duplicate: true,
        reset: true,
        clock: true,
        shutdown: true,
        malformed: true,
        slow: true,
    };
    const NAMES: [&'static str; 8] = [
        "split",
        "delay",
        "duplicate",
        "reset",
        "clock",
        "shutdown",
        "malformed",
        "slow",
    ];

    fn flags_mut(&mut self) -> [&mut bool; 8] {
        [
            &mut self.split,
            &mut self.delay,
            &mut self.duplicate,
            &mut self.reset,
            &mut self.clock,
            &mut self.shutdown,
            &mut self.malformed,
            &mut self.slow,
        ]
    }

    /// The faults the seed picks (each on with probability 1/2).
    pub fn from_seed(seed: u64) -> Faults {
        let mut r = Rng::new(seed.rotate_left(17) ^ 0xFA17);
        let mut f = Faults::default();
        for flag in f.flags_mut() {
            *flag = r.percent(50);
        }
        f
    }

    /// Parses `all`, `none` or a comma-separated list of fault names.
    pub fn parse(s: &str) -> Result<Faults, String> {
        match s {
            "all" => return Ok(Faults::ALL),
            "none" => return Ok(Faults::default()),
            _ => {}
        }
        let mut f = Faults::default();
        for name in s.split(',') {
            let i = Faults::NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| {
                    format!(
                        "unknown fault {name:?} (all, none, {})",
                        Faults::NAMES.join(", ")
                    )
                })?;
            *f.flags_mut()[i] = true;
        }
        Ok(f)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut me = *self;
        let on: Vec<&str> = me
            .flags_mut()
            .into_iter()
            .zip(Faults::NAMES)
            .filter(|(b, _)| **b)
            .map(|(_, n)| n)
            .collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

/// A run that broke an invariant.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The faults in force.
    pub faults: Faults,
    /// The step at which it broke.
    pub step: u64,
    /// Which invariant, and how.
    pub message: String,
    /// Hash of the trace up to the failure.
    pub trace_hash: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FAIL at step {}: {}\n  replay: keybroker-sim --seed {} --faults {}\n  trace {}",
            self.step, self.message, self.seed, self.faults, self.trace_hash
        )
    }
}

/// A run that kept every invariant.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Hash of the whole trace (inputs and outputs).
    pub trace_hash: String,
    /// Requests answered.
    pub answers: u64,
    /// Steps taken.
    pub steps: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Backend,
    Device,
    Stranger,
    NoCert,
}

/// What a token was made from: (plaintext, context).
type Truth = (Vec<u8>, Vec<u8>);

#[derive(Debug)]
enum Expect {
    Encrypt {
        pt: Vec<u8>,
        ctx: Vec<u8>,
    },
    Generate {
        ctx: Vec<u8>,
    },
    /// Decrypt or rewrap of a token; `truth` is what it was made from, if genuine.
    Unwrap {
        rewrap: bool,
        ctx: Vec<u8>,
        truth: Option<Truth>,
    },
    Rotate,
    Describe,
    /// Encrypt or generate under another key: role-checked, token not kept.
    Untracked,
}

#[derive(Debug)]
struct Pending {
    rid: String,
    expect: Expect,
    /// Offset in the connection's byte stream where this request ends.
    end: u64,
    /// Fully handed to the broker before shutdown: it must be answered.
    accepted: bool,
}

#[derive(Debug)]
struct SimConn {
    role: Role,
    /// A refused client got its one answer: the broker must have closed it.
    refused_answered: bool,
    /// Framing broken on purpose (malformed, duplicated bytes): answers may be errors.
    chaos: bool,
    slow: bool,
    outbox: VecDeque<u8>,
    delivered: u64,
    queued: u64,
    inbox: Vec<u8>,
    pending: VecDeque<Pending>,
    last_activity: Instant,
    hold_until: Instant,
    next_req: u64,
}

struct World {
    seed: u64,
    faults: Faults,
    rng: Rng,
    broker: Broker,
    now: Instant,
    conns: BTreeMap<ConnId, SimConn>,
    next_conn: ConnId,
    /// Every genuine token the broker made: (plaintext, context).
    tokens: HashMap<String, Truth>,
    trace: Sha256,
    step: u64,
    shut: bool,
    answers: u64,
    idle: Duration,
    header: Duration,
}

fn settings() -> Settings {
    let props = properties::parse(
        b"kms.keystore.file=none\nkms.keystore.password=sim\nkms.hsm.protocol=soft\n\
          keybroker.keys=other\n",
    )
    .expect("sim properties parse");
    Settings::from_properties(&props).expect("sim settings").0
}

fn keystore() -> Keystore {
    let trusted = |alias: &str, cert: &[u8]| Entry {
        alias: alias.into(),
        kind: EntryKind::TrustedCert {
            cert: cert.to_vec(),
        },
    };
    Keystore {
        format: Format::Pem,
        entries: vec![
            trusted("cmxBackend", BACKEND_CERT),
            trusted("cmxDevice", DEVICE_CERT),
        ],
    }
}

/// What the simulated shell reports back after carrying out an output.
enum Ack {
    /// All of a `Send` reached the client.
    Written(ConnId, usize),
    /// A soft-key file was "written".
    Persisted(keybroker_core::backend::PersistId),
}

/// Runs one seed; `Err` names the first broken invariant.
pub fn run(seed: u64, faults: Faults) -> Result<Outcome, Failure> {
    let mut rng = Rng::new(seed);
    let mut drbg = Drbg::new();
    let entropy: [u8; 32] = rng.bytes(32).try_into().expect("32");
    drbg.reseed(&entropy);
    let settings = settings();
    let names = settings.served_keys();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let keys = SoftKeys::generate(&names, &mut drbg).expect("soft keys");
    let (idle, header) = (settings.idle_timeout, settings.header_timeout);
    let backend = Backend::Soft(SoftBackend::new(keys, Secret::new(b"sim".to_vec())));
    let start = Instant::from_epoch(Duration::from_secs(1));
    let seed2: [u8; 32] = rng.bytes(32).try_into().expect("32");
    let broker = Broker::new(
        Now {
            mono: start,
            unix_secs: UNIX_BASE + 1,
        },
        settings.broker(),
        &keystore(),
        backend,
        &seed2,
    );
    let mut w = World {
        seed,
        faults,
        rng,
        broker,
        now: start,
        conns: BTreeMap::new(),
        next_conn: 1,
        tokens: HashMap::new(),
        trace: Sha256::new(),
        step: 0,
        shut: false,
        answers: 0,
        idle,
        header,
    };
    w.drain()?;
    for _ in 0..SAFETY_STEPS {
        w.step += 1;
        w.safety_step()?;
        w.check()?;
    }
    w.liveness()?;
    Ok(Outcome {
        trace_hash: w.hash(),
        answers: w.answers,
        steps: w.step,
    })
}

impl World {
    fn clock(&self) -> Now {
        Now {
            mono: self.now,
            unix_secs: UNIX_BASE + self.now.since_epoch().as_secs() as i64,
        }
    }

    fn hash(&self) -> String {
        let h = self.trace.clone().finalize();
        h.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    fn fail(&self, message: String) -> Failure {
        Failure {
            seed: self.seed,
            faults: self.faults,
            step: self.step,
            message,
            trace_hash: self.hash(),
        }
    }

    fn record(&mut self, what: &str, conn: u64, bytes: &[u8]) {
        self.trace.update(what.as_bytes());
        self.trace.update(conn.to_be_bytes());
        self.trace.update((bytes.len() as u64).to_be_bytes());
        self.trace.update(bytes);
    }

    fn input(&mut self, input: Input<'_>) -> Result<(), Failure> {
        let now = self.clock();
        let desc = format!("{input:?}");
        self.record(
            "in",
            self.now.since_epoch().as_nanos() as u64,
            desc.as_bytes(),
        );
        self.broker.handle_input(now, input);
        self.drain()
    }

    /// Carries out every output; outputs of one drain are ordered by connection (the broker
    /// may list connections in hash order, e.g. at shutdown), keeping each one's order.
    fn drain(&mut self) -> Result<(), Failure> {
        // Write progress and persist results go back in as inputs, without recursion.
        for _ in 0..1_000_000 {
            let acks = self.drain_once()?;
            if acks.is_empty() {
                return Ok(());
            }
            let now = self.clock();
            for ack in acks {
                let input = match &ack {
                    Ack::Written(conn, bytes) => Input::Written {
                        conn: *conn,
                        bytes: *bytes,
                    },
                    Ack::Persisted(id) => Input::Persisted {
                        id: *id,
                        result: Ok(()),
                    },
                };
                self.record("in", 0, format!("{input:?}").as_bytes());
                self.broker.handle_input(now, input);
            }
        }
        Err(self.fail("outputs never stopped coming".into()))
    }

    fn drain_once(&mut self) -> Result<Vec<Ack>, Failure> {
        let mut acks = Vec::new();
        let mut outs = Vec::new();
        while let Some(o) = self.broker.poll_output() {
            outs.push(o);
        }
        for o in outs {
            match o {
                Output::Conn(ConnOutput::Send { conn, bytes }) => {
                    self.record("send", conn, &bytes);
                    let now = self.now;
                    let Some(c) = self.conns.get_mut(&conn) else {
                        return Err(self.fail(format!("Send on unknown connection {conn}")));
                    };
                    c.inbox.extend_from_slice(&bytes);
                    c.last_activity = now;
                    acks.push(Ack::Written(conn, bytes.len()));
                    self.parse_answers(conn)?;
                }
                Output::Conn(ConnOutput::Close { conn }) => {
                    self.record("close", conn, &[]);
                    let Some(c) = self.conns.remove(&conn) else {
                        return Err(self.fail(format!("Close of unknown connection {conn}")));
                    };
                    if !c.inbox.is_empty() && !c.chaos {
                        return Err(
                            self.fail(format!("connection {conn} closed with a partial answer"))
                        );
                    }
                    // A refused client gets one answer, then the connection closes.
                    if let Some(p) = c.pending.iter().find(|p| p.accepted) {
                        if !c.chaos && !c.refused_answered {
                            return Err(self.fail(format!(
                                "connection {conn} ({:?}) closed with accepted request {} unanswered",
                                c.role,
                                p.rid
                            )));
                        }
                    }
                }
                Output::Local(Effect::Audit(line)) => {
                    if line.contains("\"plaintext\"") {
                        return Err(self.fail("plaintext in an audit line".into()));
                    }
                    self.record("audit", 0, line.as_bytes());
                }
                Output::Local(Effect::Log { message, .. }) => {
                    self.record("log", 0, message.as_bytes())
                }
                Output::Local(Effect::PersistSoftKeys(p)) => {
                    self.record("persist", p.id, &[]);
                    acks.push(Ack::Persisted(p.id));
                }
                Output::Link(other) => {
                    return Err(self.fail(format!("unexpected output for soft backend: {other:?}")))
                }
            }
        }
        Ok(acks)
    }

    fn parse_answers(&mut self, id: ConnId) -> Result<(), Failure> {
        loop {
            let c = self.conns.get_mut(&id).expect("live");
            let Some(head_end) = c.inbox.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Ok(());
            };
            let head = String::from_utf8_lossy(&c.inbox[..head_end]).into_owned();
            let mut lines = head.split("\r\n");
            let status: u16 = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let mut len = 0usize;
            let mut rid = String::new();
            for l in lines {
                if let Some((n, v)) = l.split_once(':') {
                    match n.trim().to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap_or(0),
                        "x-request-id" => rid = v.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            if status == 100 {
                c.inbox.drain(..head_end + 4);
                continue;
            }
            if c.inbox.len() < head_end + 4 + len {
                return Ok(());
            }
            let body: Vec<u8> = c.inbox[head_end + 4..head_end + 4 + len].to_vec();
            c.inbox.drain(..head_end + 4 + len);
            if matches!(c.role, Role::Stranger | Role::NoCert) {
                c.refused_answered = true;
            }
            self.answers += 1;
            self.check_answer(id, status, &rid, &body)?;
        }
    }

    fn check_answer(
        &mut self,
        id: ConnId,
        status: u16,
        rid: &str,
        body: &[u8],
    ) -> Result<(), Failure> {
        let c = self.conns.get_mut(&id).expect("live");
        let role = c.role;
        let front_matches = c.pending.front().is_some_and(|p| p.rid == rid);
        if !front_matches {
            // An answer to no request we sent in order: only an error on a broken stream or
            // for a request that never fully arrived (408).
            let partial = c.pending.front().is_some_and(|p| !p.accepted);
            // Duplicated bytes make a broken stream repeat requests: anything goes there.
            if c.chaos || (status >= 400 && (partial || c.pending.is_empty())) {
                return Ok(());
            }
            let expected = c.pending.front().map(|p| p.rid.clone());
            return Err(self.fail(format!(
                "connection {id}: answer {status} for request id {rid:?}, expected {expected:?} (out of order or unasked)"
            )));
        }
        let p = c.pending.pop_front().expect("front");
        if status != 200 {
            // Genuine, allowed, well-formed requests must succeed.
            if matches!(p.expect, Expect::Encrypt { .. } | Expect::Generate { .. })
                && matches!(role, Role::Backend | Role::Device)
                && !c.chaos
            {
                return Err(self.fail(format!(
                    "connection {id}: well-formed {:?} by {role:?} answered {status}",
                    p.expect
                )));
            }
            if let Expect::Unwrap {
                truth: Some((_, tctx)),
                ctx,
                rewrap,
            } = &p.expect
            {
                let allowed = role == Role::Backend || (role == Role::Device && !rewrap);
                if allowed && tctx == ctx && !c.chaos {
                    return Err(self.fail(format!(
                        "connection {id}: genuine {} with its own context answered {status}",
                        if *rewrap { "rewrap" } else { "decrypt" }
                    )));
                }
            }
            return Ok(());
        }
        // The roles of docs/api.md's table, restated independently of core's authz.
        let allowed = matches!(
            (&p.expect, role),
            (_, Role::Backend)
                | (
                    Expect::Encrypt { .. }
                        | Expect::Generate { .. }
                        | Expect::Untracked
                        | Expect::Unwrap { rewrap: false, .. },
                    Role::Device,
                )
        );
        if !allowed {
            return Err(self.fail(format!(
                "connection {id}: 200 for {:?} by role {role:?}",
                p.expect
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| self.fail(format!("connection {id}: 200 with a non-JSON body: {e}")))?;
        let b64 = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|s| B64.decode(s).ok())
                .unwrap_or_default()
        };
        match p.expect {
            Expect::Encrypt { pt, ctx } => {
                let t = v["ciphertext"].as_str().unwrap_or_default().to_owned();
                self.tokens.insert(t, (pt, ctx));
            }
            Expect::Generate { ctx } => {
                let t = v["ciphertext"].as_str().unwrap_or_default().to_owned();
                self.tokens.insert(t, (b64(&v["plaintext"]), ctx));
            }
            Expect::Unwrap { rewrap, ctx, truth } => {
                let Some((tpt, tctx)) = truth else {
                    return Err(self.fail(format!(
                        "connection {id}: a forged ciphertext was accepted (200)"
                    )));
                };
                if tctx != ctx {
                    return Err(self.fail(format!(
                        "connection {id}: {} succeeded under a different context than encryption's",
                        if rewrap { "rewrap" } else { "decrypt" }
                    )));
                }
                if rewrap {
                    let t = v["ciphertext"].as_str().unwrap_or_default().to_owned();
                    self.tokens.insert(t, (tpt, tctx));
                } else if b64(&v["plaintext"]) != tpt {
                    return Err(self.fail(format!(
                        "connection {id}: decrypt returned other bytes than were encrypted"
                    )));
                }
            }
            Expect::Rotate | Expect::Describe | Expect::Untracked => {}
        }
        Ok(())
    }

    fn safety_step(&mut self) -> Result<(), Failure> {
        let f = self.faults;
        match self.rng.below(100) {
            0..=9 if self.conns.len() < MAX_CONNS && !self.shut => self.open(),
            10..=39 => self.enqueue(),
            40..=79 => self.deliver(f.split, f.duplicate),
            80..=94 => {
                let d = if f.clock && self.rng.percent(10) {
                    Duration::from_secs(5 + self.rng.below(70))
                } else {
                    Duration::from_millis(1 + self.rng.below(200))
                };
                self.advance(d)
            }
            95..=97 if f.reset => self.reset(),
            98 if f.shutdown && !self.shut && self.step > 50 => {
                self.shut = true;
                self.input(Input::Shutdown)
            }
            _ => {
                let e: [u8; 32] = self.rng.bytes(32).try_into().expect("32");
                self.input(Input::Entropy(&e))
            }
        }
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
        let id = self.next_conn;
        self.next_conn += 1;
        let slow = self.faults.slow && self.rng.percent(20);
        self.conns.insert(
            id,
            SimConn {
                role,
                refused_answered: false,
                chaos: false,
                slow,
                outbox: VecDeque::new(),
                delivered: 0,
                queued: 0,
                inbox: Vec::new(),
                pending: VecDeque::new(),
                last_activity: self.now,
                hold_until: self.now,
                next_req: 0,
            },
        );
        self.input(Input::Accepted {
            conn: id,
            listener: Listener::Client { peer_cert },
        })
    }

    fn pick_conn(&mut self) -> Option<ConnId> {
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
        if self.faults.malformed && self.rng.percent(3) {
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
            // Rotation re-seals the soft-key file (PBKDF2): keep it rare so 1000 seeds stay fast.
            8 if self.rng.percent(15) => ("rotate", serde_json::json!({}), Expect::Rotate),
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
            accepted: false,
        });
    }

    /// A token to unwrap: a genuine one (sorted, so the choice is deterministic), a tampered
    /// one, or garbage.
    fn some_token(&mut self) -> (String, Option<Truth>) {
        let mut known: Vec<&String> = self.tokens.keys().collect();
        known.sort();
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

    fn deliver_to(&mut self, id: ConnId, split: bool, duplicate: bool) -> Result<(), Failure> {
        let now = self.now;
        let c = &self.conns[&id];
        if c.outbox.is_empty() || c.hold_until > now || !self.broker.wants_read(id) {
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
        if self.faults.delay && self.rng.percent(10) {
            let hold = Duration::from_millis(self.rng.below(3000));
            self.conns.get_mut(&id).expect("live").hold_until = now + hold;
        }
        let dup = duplicate && self.rng.percent(3);
        let shut = self.shut;
        let c = self.conns.get_mut(&id).expect("live");
        let chunk: Vec<u8> = c.outbox.drain(..n).collect();
        c.delivered += n as u64;
        c.last_activity = now;
        let delivered = c.delivered;
        for p in c.pending.iter_mut() {
            if p.end <= delivered && !p.accepted && !shut && !c.chaos {
                p.accepted = true;
            }
        }
        if dup {
            c.chaos = true;
        }
        self.input(Input::Received {
            conn: id,
            bytes: &chunk,
        })?;
        if dup && self.conns.contains_key(&id) {
            self.input(Input::Received {
                conn: id,
                bytes: &chunk,
            })?;
        }
        Ok(())
    }

    fn advance(&mut self, d: Duration) -> Result<(), Failure> {
        self.now = self.now + d;
        self.input(Input::Timeout)
    }

    fn reset(&mut self) -> Result<(), Failure> {
        let Some(id) = self.pick_conn() else {
            return Ok(());
        };
        self.conns.remove(&id);
        self.input(Input::Closed { conn: id })
    }

    /// Invariants that hold after every step.
    fn check(&self) -> Result<(), Failure> {
        let limit = self.broker.settings().max_connection_bytes;
        for (id, c) in &self.conns {
            if c.refused_answered {
                return Err(self.fail(format!(
                    "connection {id}: refused client still open after its answer"
                )));
            }
        }
        for id in self.conns.keys() {
            if self.broker.held_bytes(*id) > limit {
                return Err(self.fail(format!(
                    "connection {id} holds {} bytes, bound is {limit}",
                    self.broker.held_bytes(*id)
                )));
            }
        }
        if self.broker.connections() != self.conns.len() {
            return Err(self.fail(format!(
                "broker holds {} connections, clients see {}",
                self.broker.connections(),
                self.conns.len()
            )));
        }
        let limit = self.idle.max(self.header) + Duration::from_secs(1);
        for (id, c) in &self.conns {
            if self.broker.in_flight(*id) > MAX_PIPELINE {
                return Err(self.fail(format!(
                    "connection {id}: {} requests held, bound is {MAX_PIPELINE}",
                    self.broker.in_flight(*id)
                )));
            }
            if self.broker.in_flight(*id) == 0 && self.now.saturating_since(c.last_activity) > limit
            {
                return Err(self.fail(format!(
                    "connection {id} still open {:?} after its last activity (deadline {limit:?})",
                    self.now.saturating_since(c.last_activity)
                )));
            }
        }
        Ok(())
    }

    /// Faults stop; everything sent is delivered; time runs on until every connection is gone.
    fn liveness(&mut self) -> Result<(), Failure> {
        for _ in 0..10_000 {
            let ids: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(id, c)| !c.outbox.is_empty() && self.broker.wants_read(**id))
                .map(|(id, _)| *id)
                .collect();
            if ids.is_empty() {
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
        }
        for (id, c) in &self.conns {
            if let Some(p) = c.pending.iter().find(|p| p.accepted) {
                if !c.chaos {
                    return Err(self.fail(format!(
                        "connection {id}: accepted request {} never answered",
                        p.rid
                    )));
                }
            }
        }
        let end = self.now + self.idle + self.header + Duration::from_secs(2);
        while self.now < end && !self.conns.is_empty() {
            self.step += 1;
            self.advance(Duration::from_secs(1))?;
            self.check()?;
        }
        if !self.conns.is_empty() || self.broker.connections() != 0 {
            return Err(self.fail(format!(
                "{} connections still open after every deadline passed",
                self.broker.connections()
            )));
        }
        if self.shut && !self.broker.is_drained() {
            return Err(self.fail("shutdown never drained".into()));
        }
        Ok(())
    }
}
