//! keybroker-sim: drives brokers, their backend peers and a network with a virtual clock, a
//! seeded RNG and simulated clients.
//!
//! The seed alone decides everything: the backend and cache mode (unless forced), which faults
//! are on (swarm testing, as TigerBeetle's VOPR), every client action, every byte split, every
//! packet's latency, every peer fault and the entropy fed to each broker. A run has a *safety*
//! phase (random actions and faults, invariants checked after every step) and a *liveness*
//! phase (faults stop and heal, every byte is delivered, time runs on: every accepted request
//! must have its answer and every connection must close). The trace — every input and every
//! output — is hashed; two runs of one seed print the same hash.
//!
//! Layout (after TigerBeetle's `src/testing`): [`net`] carries backend links between brokers
//! and peers with faults; [`peers`] are the simulated KMIP HSMs, Vault and Redis, built on the
//! core's own codecs; [`workload`] makes clients and their requests; [`oracle`] judges each
//! answer; [`checker`] holds the invariants checked after every step.
#![forbid(unsafe_code)]

pub mod checker;
pub mod net;
pub mod oracle;
pub mod peers;
pub mod workload;

use keybroker_core::backend::kmip::{Endpoint, KmipBackend, KmipConfig};
use keybroker_core::backend::soft::{SoftBackend, SoftKeys};
use keybroker_core::backend::vault::{VaultAuthConfig, VaultBackend, VaultConfig};
use keybroker_core::backend::{Backend, LinkSecurity};
use keybroker_core::config::keystore::{Entry, EntryKind, Format, Keystore};
use keybroker_core::config::{properties, Settings};
use keybroker_core::drbg::Drbg;
use keybroker_core::kmip::messages::ProtocolVersion;
use keybroker_core::{
    Broker, ConnId, ConnOutput, Effect, Input, Instant, LinkOutput, Now, Output, Secret,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub(crate) const BACKEND_CERT: &[u8] = include_bytes!("../fixtures/cmxBackend.der");
pub(crate) const DEVICE_CERT: &[u8] = include_bytes!("../fixtures/cmxDevice.der");
pub(crate) const STRANGER_CERT: &[u8] = include_bytes!("../fixtures/stranger.der");
/// Virtual wall clock at the start of every run (2027; the fixtures are valid for 100 years).
pub(crate) const UNIX_BASE: i64 = 1_800_000_000;
const SAFETY_STEPS: u32 = 400;
/// Backend request deadline given to the KMIP and Vault backends.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Backend connect deadline.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Redis lookup deadline (`keybroker.cache.redis.timeout-ms`).
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(200);

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
    /// A duration uniform in `0..max_ms` milliseconds.
    pub fn millis(&mut self, max_ms: u64) -> Duration {
        Duration::from_millis(self.below(max_ms))
    }
}

/// One kind of fault a run may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Deliver client bytes in random pieces.
    Split,
    /// Hold client bytes back for a while.
    Delay,
    /// Deliver a client piece twice (the stream is then garbage for the server).
    Duplicate,
    /// Reset client connections mid-request.
    Reset,
    /// Jump the clock by tens of seconds.
    Clock,
    /// Shut a broker down mid-run.
    Shutdown,
    /// Send malformed requests.
    Malformed,
    /// Clients that trickle bytes (slow loris).
    Slow,
    /// Clients that read their answers late (`Input::Written` comes late).
    SlowReader,
    /// Backend links: latency and jitter.
    Latency,
    /// Backend links reset mid-exchange.
    LinkReset,
    /// Backend bytes delivered in partial frames.
    Partial,
    /// A peer endpoint swallows connects and bytes for a while.
    BlackHole,
    /// A broker is cut off from some peers, then the partition heals.
    Partition,
    /// A peer answers seconds late for a while.
    SlowPeer,
    /// A peer restarts (links dropped, refused while down; Redis loses its data, Vault comes
    /// back sealed).
    Restart,
    /// A peer answers with errors for a while (KMIP error results, Vault 5xx, Redis -ERR).
    PeerErrors,
}

impl Fault {
    /// Every fault, in the order of [`Fault::name`]s.
    pub const ALL: [Fault; 17] = [
        Fault::Split,
        Fault::Delay,
        Fault::Duplicate,
        Fault::Reset,
        Fault::Clock,
        Fault::Shutdown,
        Fault::Malformed,
        Fault::Slow,
        Fault::SlowReader,
        Fault::Latency,
        Fault::LinkReset,
        Fault::Partial,
        Fault::BlackHole,
        Fault::Partition,
        Fault::SlowPeer,
        Fault::Restart,
        Fault::PeerErrors,
    ];
    /// The fault's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Split => "split",
            Fault::Delay => "delay",
            Fault::Duplicate => "duplicate",
            Fault::Reset => "reset",
            Fault::Clock => "clock",
            Fault::Shutdown => "shutdown",
            Fault::Malformed => "malformed",
            Fault::Slow => "slow",
            Fault::SlowReader => "slow-reader",
            Fault::Latency => "latency",
            Fault::LinkReset => "link-reset",
            Fault::Partial => "partial",
            Fault::BlackHole => "black-hole",
            Fault::Partition => "partition",
            Fault::SlowPeer => "slow-peer",
            Fault::Restart => "restart",
            Fault::PeerErrors => "peer-errors",
        }
    }
}

/// Which faults a run injects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults(u32);

impl Faults {
    /// Every fault.
    pub const ALL: Faults = Faults((1 << Fault::ALL.len()) - 1);
    /// No fault.
    pub const NONE: Faults = Faults(0);

    /// Whether `f` is on.
    pub fn on(self, f: Fault) -> bool {
        self.0 & (1 << f as u32) != 0
    }
    /// `self` with `f` on.
    pub fn with(self, f: Fault) -> Faults {
        Faults(self.0 | (1 << f as u32))
    }

    /// The faults the seed picks (each on with probability 1/2).
    pub fn from_seed(seed: u64) -> Faults {
        let mut r = Rng::new(seed.rotate_left(17) ^ 0xFA17);
        let mut f = Faults::NONE;
        for x in Fault::ALL {
            if r.percent(50) {
                f = f.with(x);
            }
        }
        f
    }

    /// Parses `all`, `none` or a comma-separated list of fault names.
    pub fn parse(s: &str) -> Result<Faults, String> {
        match s {
            "all" => return Ok(Faults::ALL),
            "none" => return Ok(Faults::NONE),
            _ => {}
        }
        let mut f = Faults::NONE;
        for name in s.split(',') {
            let x = Fault::ALL
                .into_iter()
                .find(|x| x.name() == name)
                .ok_or_else(|| {
                    let all: Vec<&str> = Fault::ALL.iter().map(|x| x.name()).collect();
                    format!("unknown fault {name:?} (all, none, {})", all.join(", "))
                })?;
            f = f.with(x);
        }
        Ok(f)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<&str> = Fault::ALL
            .into_iter()
            .filter(|x| self.on(*x))
            .map(Fault::name)
            .collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

/// Which backend the brokers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// Software keys, one node.
    Soft,
    /// Two nodes sharing a cluster of simulated KMIP HSMs.
    Kmip,
    /// Two nodes sharing a simulated Vault.
    Vault,
}

impl BackendChoice {
    /// Parses `soft`, `kmip` or `vault`.
    pub fn parse(s: &str) -> Result<BackendChoice, String> {
        match s {
            "soft" => Ok(BackendChoice::Soft),
            "kmip" => Ok(BackendChoice::Kmip),
            "vault" => Ok(BackendChoice::Vault),
            _ => Err(format!("unknown backend {s:?} (soft, kmip, vault)")),
        }
    }
    /// The name `parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Soft => "soft",
            BackendChoice::Kmip => "kmip",
            BackendChoice::Vault => "vault",
        }
    }
}

/// Which decrypt cache the brokers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheChoice {
    /// No cache.
    None,
    /// In-process cache.
    Local,
    /// Redis cache shared by the nodes.
    Distributed,
}

impl CacheChoice {
    /// Parses `none`, `local` or `distributed`.
    pub fn parse(s: &str) -> Result<CacheChoice, String> {
        match s {
            "none" => Ok(CacheChoice::None),
            "local" => Ok(CacheChoice::Local),
            "distributed" => Ok(CacheChoice::Distributed),
            _ => Err(format!("unknown cache {s:?} (none, local, distributed)")),
        }
    }
    /// The name `parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            CacheChoice::None => "none",
            CacheChoice::Local => "local",
            CacheChoice::Distributed => "distributed",
        }
    }
}

/// Everything that shapes a run besides the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Backend.
    pub backend: BackendChoice,
    /// Cache mode.
    pub cache: CacheChoice,
    /// Faults.
    pub faults: Faults,
}

impl Scenario {
    /// What the seed picks, each part overridable.
    pub fn for_seed(
        seed: u64,
        backend: Option<BackendChoice>,
        cache: Option<CacheChoice>,
        faults: Option<Faults>,
    ) -> Scenario {
        let mut r = Rng::new(seed.rotate_left(29) ^ 0x5CE7);
        let b = match r.below(3) {
            0 => BackendChoice::Soft,
            1 => BackendChoice::Kmip,
            _ => BackendChoice::Vault,
        };
        let c = match r.below(3) {
            0 => CacheChoice::None,
            1 => CacheChoice::Local,
            _ => CacheChoice::Distributed,
        };
        Scenario {
            backend: backend.unwrap_or(b),
            cache: cache.unwrap_or(c),
            faults: faults.unwrap_or_else(|| Faults::from_seed(seed)),
        }
    }

    /// The command line that replays `seed` under this scenario.
    pub fn replay(&self, seed: u64) -> String {
        format!(
            "keybroker-sim --seed {seed} --backend {} --cache {} --faults {}",
            self.backend.name(),
            self.cache.name(),
            self.faults
        )
    }
}

/// A run that broke an invariant.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// Backend, cache and faults.
    pub scenario: Scenario,
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
            "FAIL at step {}: {}\n  replay: {}\n  trace {}",
            self.step,
            self.message,
            self.scenario.replay(self.seed),
            self.trace_hash
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

/// One broker and what the simulator knows of it.
pub(crate) struct Node {
    pub(crate) broker: Broker,
    pub(crate) shut: bool,
}

/// What the simulated shell reports back after carrying out an output.
enum Ack {
    /// All of a `Send` reached the client.
    Written(usize, ConnId, usize),
    /// A soft-key file was "written".
    Persisted(usize, keybroker_core::backend::PersistId),
}

/// The whole simulated world: brokers, clients, network, peers, and what the checks know.
pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) sc: Scenario,
    pub(crate) rng: Rng,
    pub(crate) nodes: Vec<Node>,
    pub(crate) now: Instant,
    pub(crate) conns: BTreeMap<ConnId, workload::SimConn>,
    pub(crate) next_conn: ConnId,
    /// Every genuine token a broker made: (plaintext, context).
    pub(crate) tokens: BTreeMap<String, workload::Truth>,
    pub(crate) trace: Sha256,
    pub(crate) step: u64,
    pub(crate) answers: u64,
    pub(crate) idle: Duration,
    pub(crate) header: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) net: net::Net,
    pub(crate) peers: peers::Peers,
    /// Writes a slow reader has not read yet: (node, conn, bytes).
    pub(crate) unread: Vec<(usize, ConnId, usize)>,
    /// Rotations the clients asked for, per key (each may make one HSM key version).
    pub(crate) rotations: BTreeMap<String, u64>,
    pub(crate) checks: checker::State,
    /// In the liveness phase: faults are off.
    pub(crate) calm: bool,
    /// Print every trace record (`KEYBROKER_SIM_TRACE=1`).
    pub(crate) print_trace: bool,
}

fn settings(cache: CacheChoice) -> Settings {
    let cache = match cache {
        CacheChoice::None => "kms.cache.type=none\n".to_owned(),
        CacheChoice::Local => "kms.cache.type=local\nkeybroker.cache.max-entries=16\n".to_owned(),
        CacheChoice::Distributed => format!(
            "kms.cache.type=distributed\nkeybroker.cache.redis.url=redis://{}:{}\n\
             keybroker.cache.redis.timeout-ms={}\n",
            peers::REDIS_HOST,
            peers::REDIS_PORT,
            REDIS_TIMEOUT.as_millis()
        ),
    };
    let text = format!(
        "kms.keystore.file=none\nkms.keystore.password=sim\nkms.hsm.protocol=soft\n\
         keybroker.keys=other\nkeybroker.cache.ttl=30\n{cache}"
    );
    let props = properties::parse(text.as_bytes()).expect("sim properties parse");
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
            // The distributed cache seals entries under a key derived from the server's
            // private key: every node's keystore holds the same one.
            Entry {
                alias: "kmsServer".into(),
                kind: EntryKind::PrivateKey {
                    key_pkcs8: Secret::new(b"simulated server private key".to_vec()),
                    chain: Vec::new(),
                },
            },
        ],
    }
}

/// Backend names of the keys every node serves (`default` is `keybroker-master`).
pub(crate) const KEYS: [&str; 2] = ["keybroker-master", "other"];

fn backend_for(sc: &Scenario, keys: &Option<SoftKeys>, peers: &peers::Peers) -> Backend {
    match sc.backend {
        BackendChoice::Soft => Backend::Soft(Box::new(SoftBackend::new(
            keys.clone().expect("soft keys"),
            Secret::new(b"sim".to_vec()),
        ))),
        BackendChoice::Kmip => Backend::Kmip(Box::new(KmipBackend::new(KmipConfig {
            endpoints: peers
                .kmip_endpoints()
                .into_iter()
                .map(|(host, port)| Endpoint { host, port })
                .collect(),
            keys: KEYS.iter().map(|k| k.to_string()).collect(),
            auto_create: false,
            pool_size: 2,
            request_timeout: REQUEST_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            max_version: ProtocolVersion::V1_4,
            credential: None,
        }))),
        BackendChoice::Vault => Backend::Vault(Box::new(VaultBackend::new(VaultConfig {
            endpoints: vec![Endpoint {
                host: peers::VAULT_HOST.into(),
                port: peers::VAULT_PORT,
            }],
            security: LinkSecurity::VaultTls,
            namespace: None,
            mount: "transit".into(),
            keys: KEYS.iter().map(|k| k.to_string()).collect(),
            auto_create: false,
            renew_before: peers::vault::RENEW_BEFORE,
            request_timeout: REQUEST_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            max_links: 4,
            auth: VaultAuthConfig::Token(Secret::new(peers::vault::TOKEN.to_owned())),
            key_refresh: std::time::Duration::from_secs(60),
        }))),
    }
}

/// Runs one seed under `sc`; `Err` names the first broken invariant.
pub fn run(seed: u64, sc: &Scenario) -> Result<Outcome, Failure> {
    let mut rng = Rng::new(seed);
    let settings = settings(sc.cache);
    assert_eq!(
        settings.served_keys(),
        KEYS,
        "the simulated peers hold the served keys"
    );
    let (idle, header, write_timeout) = (
        settings.idle_timeout,
        settings.header_timeout,
        settings.write_timeout,
    );
    let soft_keys = (sc.backend == BackendChoice::Soft).then(|| {
        let mut drbg = Drbg::new();
        let entropy: [u8; 32] = rng.bytes(32).try_into().expect("32");
        drbg.reseed(&entropy);
        SoftKeys::generate(&KEYS, &mut drbg).expect("soft keys")
    });
    let start = Instant::from_epoch(Duration::from_secs(1));
    let peers = peers::Peers::new(sc, &mut rng, start);
    let n_nodes = if sc.backend == BackendChoice::Soft {
        1
    } else {
        2
    };
    let net = net::Net::new(sc.faults, &peers, n_nodes, &mut rng);
    let mut nodes = Vec::new();
    for _ in 0..n_nodes {
        let seed2: [u8; 32] = rng.bytes(32).try_into().expect("32");
        let broker = Broker::new(
            Now {
                mono: start,
                unix_secs: UNIX_BASE + 1,
            },
            settings.broker(),
            &keystore(),
            backend_for(sc, &soft_keys, &peers),
            &seed2,
        );
        nodes.push(Node {
            broker,
            shut: false,
        });
    }
    let mut w = World {
        seed,
        sc: *sc,
        rng,
        nodes,
        now: start,
        conns: BTreeMap::new(),
        next_conn: 1,
        tokens: BTreeMap::new(),
        trace: Sha256::new(),
        step: 0,
        answers: 0,
        idle,
        header,
        write_timeout,
        net,
        peers,
        unread: Vec::new(),
        rotations: BTreeMap::new(),
        checks: checker::State::default(),
        calm: false,
        print_trace: std::env::var_os("KEYBROKER_SIM_TRACE").is_some(),
    };
    w.drain()?;
    // Let the backends start (negotiate, look keys up, log in) before clients arrive.
    w.advance(Duration::from_millis(500))?;
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
    pub(crate) fn clock(&self) -> Now {
        Now {
            mono: self.now,
            unix_secs: UNIX_BASE + self.now.since_epoch().as_secs() as i64,
        }
    }

    pub(crate) fn hash(&self) -> String {
        let h = self.trace.clone().finalize();
        h.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn fail(&self, message: String) -> Failure {
        Failure {
            seed: self.seed,
            scenario: self.sc,
            step: self.step,
            message,
            trace_hash: self.hash(),
        }
    }

    pub(crate) fn record(&mut self, what: &str, id: u64, bytes: &[u8]) {
        if self.print_trace {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]);
            println!(
                "{:>10.3}s {what:<7} {id:<4} {}",
                self.now.since_epoch().as_secs_f64(),
                text.replace("\r\n", " | ")
            );
        }
        self.trace.update(what.as_bytes());
        self.trace.update(id.to_be_bytes());
        self.trace.update((bytes.len() as u64).to_be_bytes());
        self.trace.update(bytes);
    }

    /// Feeds `input` to node `node` and carries out what follows.
    pub(crate) fn input(&mut self, node: usize, input: Input<'_>) -> Result<(), Failure> {
        let now = self.clock();
        let desc = format!("{node} {input:?}");
        self.record(
            "in",
            self.now.since_epoch().as_nanos() as u64,
            desc.as_bytes(),
        );
        self.nodes[node].broker.handle_input(now, input);
        self.drain()
    }

    /// Carries out every output of every node until none is left; write progress and persist
    /// results go back in as inputs, without recursion.
    pub(crate) fn drain(&mut self) -> Result<(), Failure> {
        for _ in 0..1_000_000 {
            let acks = self.drain_once()?;
            if acks.is_empty() {
                return Ok(());
            }
            let now = self.clock();
            for ack in acks {
                let (node, input) = match ack {
                    Ack::Written(node, conn, bytes) => (node, Input::Written { conn, bytes }),
                    Ack::Persisted(node, id) => (node, Input::Persisted { id, result: Ok(()) }),
                };
                self.record("in", node as u64, format!("{input:?}").as_bytes());
                self.nodes[node].broker.handle_input(now, input);
            }
        }
        Err(self.fail("outputs never stopped coming".into()))
    }

    fn drain_once(&mut self) -> Result<Vec<Ack>, Failure> {
        let mut acks = Vec::new();
        for node in 0..self.nodes.len() {
            let mut outs = Vec::new();
            while let Some(o) = self.nodes[node].broker.poll_output() {
                outs.push(o);
            }
            for o in outs {
                self.output(node, o, &mut acks)?;
            }
        }
        Ok(acks)
    }

    fn output(&mut self, node: usize, o: Output, acks: &mut Vec<Ack>) -> Result<(), Failure> {
        match o {
            Output::Conn(ConnOutput::Send { conn, bytes }) => {
                self.record("send", conn, &bytes);
                let now = self.now;
                let Some(c) = self.conns.get_mut(&conn).filter(|c| c.node == node) else {
                    return Err(
                        self.fail(format!("node {node}: Send on unknown connection {conn}"))
                    );
                };
                c.inbox.push(&bytes);
                c.last_activity = now;
                if c.slow_reader {
                    self.unread.push((node, conn, bytes.len()));
                } else {
                    acks.push(Ack::Written(node, conn, bytes.len()));
                }
                self.parse_answers(conn)?;
            }
            Output::Conn(ConnOutput::Close { conn }) => {
                self.record("close", conn, &[]);
                self.unread.retain(|(_, c, _)| *c != conn);
                let Some(c) = self.conns.remove(&conn) else {
                    return Err(self.fail(format!("Close of unknown connection {conn}")));
                };
                self.closed_by_broker(conn, c)?;
            }
            Output::Local(Effect::Audit(line)) => {
                if line.contains("\"plaintext\"") {
                    return Err(self.fail("plaintext in an audit line".into()));
                }
                self.record("audit", node as u64, line.as_bytes());
            }
            Output::Local(Effect::Log { message, .. }) => {
                if message.contains(peers::vault::TOKEN) {
                    return Err(self.fail("the Vault token in a log line".into()));
                }
                self.record("log", node as u64, message.as_bytes())
            }
            Output::Local(Effect::PersistSoftKeys(p)) => {
                self.record("persist", p.id, &[]);
                acks.push(Ack::Persisted(node, p.id));
            }
            Output::Link(l) => {
                let desc = format!("{node} {l:?}");
                self.record("link", 0, desc.as_bytes());
                let now = self.now;
                let r = match l {
                    LinkOutput::Connect {
                        link, host, port, ..
                    } => self.net.connect(
                        now,
                        node,
                        link,
                        &host,
                        port,
                        &mut self.peers,
                        &mut self.rng,
                    ),
                    LinkOutput::Send { link, bytes } => {
                        self.net
                            .send(now, node, link, bytes, &mut self.peers, &mut self.rng)
                    }
                    LinkOutput::Close { link } => {
                        self.net.close(now, node, link, &mut self.peers);
                        Ok(())
                    }
                };
                r.map_err(|e| self.fail(e))?;
            }
        }
        Ok(())
    }

    /// Moves the clock forward by `d`, delivering every packet and firing every broker
    /// deadline due on the way, in time order.
    pub(crate) fn advance(&mut self, d: Duration) -> Result<(), Failure> {
        let end = self.now + d;
        for _ in 0..1_000_000 {
            let next_net = self.net.next_at();
            let next_broker = self
                .nodes
                .iter()
                .filter_map(|n| n.broker.poll_timeout())
                .min();
            let next = [next_net, next_broker]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            if next_net.is_some_and(|n| n <= self.now) {
                self.deliver_net()?;
            }
            for node in 0..self.nodes.len() {
                if self.nodes[node]
                    .broker
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    self.input(node, Input::Timeout)?;
                    self.deadline_moved(node)?;
                }
            }
            self.net
                .heal(self.now, &mut self.peers)
                .map_err(|e| self.fail(e))?;
            self.check()?;
        }
        self.now = end;
        self.net
            .heal(self.now, &mut self.peers)
            .map_err(|e| self.fail(e))?;
        for node in 0..self.nodes.len() {
            self.input(node, Input::Timeout)?;
            self.deadline_moved(node)?;
        }
        Ok(())
    }

    /// After `Input::Timeout` at `now`, the broker's next deadline is later than `now`: a
    /// deadline that does not move when it fires makes a real shell's timer spin.
    fn deadline_moved(&self, node: usize) -> Result<(), Failure> {
        match self.nodes[node].broker.poll_timeout() {
            Some(t) if t <= self.now => Err(self.fail(format!(
                "node {node}: poll_timeout still says {t:?} after a Timeout at {:?} (a shell's timer would spin)",
                self.now
            ))),
            _ => Ok(()),
        }
    }

    /// Hands every due packet to its broker or peer.
    fn deliver_net(&mut self) -> Result<(), Failure> {
        while let Some(ev) = self
            .net
            .pop_due(self.now, &mut self.peers, &mut self.rng)
            .map_err(|e| self.fail(e))?
        {
            let (node, ev) = ev;
            self.input(node, Input::Net(ev))?;
        }
        Ok(())
    }
}
