//! Simulated peers speaking the real protocols, built on the core's own codecs: KMIP HSMs
//! (TTLV), Vault / OpenBao (HTTP/1.1 + JSON) and Redis (RESP2). Each is a test double that
//! follows the published protocol for the operations keybroker uses; none opens a socket.
pub mod kmip;
pub mod redis;
pub mod vault;

use crate::net::Endpoint;
use crate::{BackendChoice, CacheChoice, Rng, Scenario};
use keybroker_core::Instant;

/// Redis host name the brokers are configured with.
pub const REDIS_HOST: &str = "redis.sim";
/// Redis port.
pub const REDIS_PORT: u16 = 6379;
/// Vault host name.
pub const VAULT_HOST: &str = "vault.sim";
/// Vault port.
pub const VAULT_PORT: u16 = 8200;
/// KMIP port of every HSM (`hsm-N.sim`).
pub const KMIP_PORT: u16 = 5696;

/// Which peer answers at an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRef {
    /// HSM instance `n` of the KMIP cluster.
    Kmip(usize),
    /// The Vault server.
    Vault,
    /// The Redis server.
    Redis,
}

impl PeerRef {
    /// Whether it is a key backend (not the cache).
    pub fn is_backend(self) -> bool {
        !matches!(self, PeerRef::Redis)
    }
}

/// What a peer does after receiving bytes: answer bytes, and whether it then closes.
#[derive(Debug, Default)]
pub struct PeerOut {
    /// Bytes to send back.
    pub bytes: Vec<u8>,
    /// Close the connection after them.
    pub close: bool,
}

/// Every peer of a run.
#[derive(Debug)]
pub struct Peers {
    /// The KMIP HSM cluster.
    pub kmip: Option<kmip::Cluster>,
    /// The Vault server.
    pub vault: Option<vault::Vault>,
    /// The Redis server.
    pub redis: Option<redis::Redis>,
    /// When a peer last answered with an injected error.
    pub last_error: Option<Instant>,
}

impl Peers {
    /// The peers `sc` needs, with keys and tokens set up.
    pub fn new(sc: &Scenario, rng: &mut Rng, start: Instant) -> Peers {
        Peers {
            kmip: (sc.backend == BackendChoice::Kmip).then(|| kmip::Cluster::new(rng)),
            vault: (sc.backend == BackendChoice::Vault).then(|| vault::Vault::new(rng, start)),
            redis: (sc.cache == CacheChoice::Distributed).then(redis::Redis::new),
            last_error: None,
        }
    }

    /// `(host, port)` of every HSM, in the brokers' order of preference.
    pub fn kmip_endpoints(&self) -> Vec<(String, u16)> {
        self.kmip.as_ref().map_or_else(Vec::new, |k| {
            (0..k.instances())
                .map(|i| (format!("hsm-{i}.sim"), KMIP_PORT))
                .collect()
        })
    }

    /// Every endpoint, each a victim of faults until the network says otherwise.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .kmip_endpoints()
            .into_iter()
            .enumerate()
            .map(|(i, (host, port))| Endpoint {
                host,
                port,
                peer: PeerRef::Kmip(i),
                victim: true,
            })
            .collect();
        if self.vault.is_some() {
            out.push(Endpoint {
                host: VAULT_HOST.into(),
                port: VAULT_PORT,
                peer: PeerRef::Vault,
                victim: true,
            });
        }
        if self.redis.is_some() {
            out.push(Endpoint {
                host: REDIS_HOST.into(),
                port: REDIS_PORT,
                peer: PeerRef::Redis,
                victim: true,
            });
        }
        out
    }

    /// A connection arrived.
    pub fn accept(&mut self, peer: PeerRef, conn: u64) {
        match peer {
            PeerRef::Kmip(i) => self.kmip.as_mut().expect("kmip").accept(i, conn),
            PeerRef::Vault => self.vault.as_mut().expect("vault").accept(conn),
            PeerRef::Redis => self.redis.as_mut().expect("redis").accept(conn),
        }
    }

    /// Bytes arrived on `conn` (sent by the broker at `sent_at`); `Err` is a broken invariant.
    pub fn receive(
        &mut self,
        peer: PeerRef,
        conn: u64,
        bytes: &[u8],
        sent_at: Instant,
        now: Instant,
    ) -> Result<PeerOut, String> {
        let (out, erred) = match peer {
            PeerRef::Kmip(i) => self
                .kmip
                .as_mut()
                .expect("kmip")
                .receive(i, conn, bytes, now)?,
            PeerRef::Vault => self
                .vault
                .as_mut()
                .expect("vault")
                .receive(conn, bytes, sent_at, now)?,
            PeerRef::Redis => self
                .redis
                .as_mut()
                .expect("redis")
                .receive(conn, bytes, now),
        };
        if erred {
            self.last_error = Some(now);
        }
        Ok(out)
    }

    /// `conn` is gone.
    pub fn closed(&mut self, peer: PeerRef, conn: u64) {
        match peer {
            PeerRef::Kmip(i) => self.kmip.as_mut().expect("kmip").closed(i, conn),
            PeerRef::Vault => self.vault.as_mut().expect("vault").closed(conn),
            PeerRef::Redis => self.redis.as_mut().expect("redis").closed(conn),
        }
    }

    /// The peer restarts, back at `up`.
    pub fn restart(&mut self, peer: PeerRef, up: Instant, rng: &mut Rng) {
        match peer {
            PeerRef::Kmip(i) => self.kmip.as_mut().expect("kmip").restart(i),
            PeerRef::Vault => self.vault.as_mut().expect("vault").restart(up, rng),
            PeerRef::Redis => self.redis.as_mut().expect("redis").restart(),
        }
    }

    /// The peer answers with errors until `until`.
    pub fn errors(&mut self, peer: PeerRef, until: Instant) {
        match peer {
            PeerRef::Kmip(i) => self.kmip.as_mut().expect("kmip").errors(i, until),
            PeerRef::Vault => self.vault.as_mut().expect("vault").errors_until = Some(until),
            PeerRef::Redis => self.redis.as_mut().expect("redis").errors_until = Some(until),
        }
    }

    /// Every peer healthy again (the liveness phase).
    pub fn calm(&mut self, now: Instant) {
        if let Some(k) = &mut self.kmip {
            k.calm();
        }
        if let Some(v) = &mut self.vault {
            v.calm(now);
        }
        if let Some(r) = &mut self.redis {
            r.errors_until = None;
        }
    }

    /// Whether a peer answered with an injected error at or after `t`, or within a backend
    /// request deadline before it (a request then may fail as a bad one).
    pub fn errors_since(&self, t: Instant) -> bool {
        self.last_error
            .is_some_and(|e| e + crate::checker::deadline() >= t)
    }
}
