//! The decrypt cache (`kms.cache.type`, docs/configuration.md): `none`, `local` (in-process,
//! bounded) or `distributed` (Redis/Valkey, sealed).
//!
//! Only decrypt results are cached, keyed by SHA-256 over (key name, ciphertext, context), so
//! a rotation or rewrap never changes what a cached entry answers: the same token under the
//! same context always decrypts to the same bytes. In Redis, each value is AES-KWP-sealed
//! (RFC 5649) under a key derived with HKDF-SHA-256 from the server's private key — which
//! every node's copy of the keystore already holds — over `cache key ‖ plaintext`, so Redis
//! never sees a data key and an entry moved under another key is refused. A Redis outage or
//! a slow Redis degrades to the backend (a lookup waits at most `keybroker.cache.redis.timeout-ms`),
//! never to an error.
pub mod resp;

use crate::backend::pool::Breaker;
use crate::backend::{BackendOutput, LinkId, LinkSecurity, NetEvent};
use crate::secret::Secret;
use crate::time::{Instant, Now};
use aes_kw::KekAes256;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How often an unhealthy Redis is warned about, at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A cache key: SHA-256 over (key name, ciphertext token, context).
pub type CacheKey = [u8; 32];

/// The cache key for decrypting `token` under `key_name` with `context`.
pub fn cache_key(key_name: &str, token: &str, context: &[u8]) -> CacheKey {
    let mut h = Sha256::new();
    h.update(b"keybroker-cache-v1\0");
    h.update((key_name.len() as u64).to_be_bytes());
    h.update(key_name.as_bytes());
    h.update((token.len() as u64).to_be_bytes());
    h.update(token.as_bytes());
    // The simulator's test that it has teeth builds core with this planted bug.
    if !cfg!(feature = "planted-bug-cache-ignores-context") {
        h.update(context);
    }
    h.finalize().into()
}

/// Cache counters for /metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to the backend.
    pub misses: u64,
    /// Redis errors, timeouts and outages seen.
    pub errors: u64,
}

/// Where a Redis server is and how to log in.
#[derive(Clone, Debug)]
pub struct RedisTarget {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `AUTH` password, if any.
    pub password: Option<Secret<String>>,
    /// `SELECT` database, if not 0.
    pub db: u32,
}

impl RedisTarget {
    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    pub fn parse(url: &str) -> Result<RedisTarget, String> {
        use crate::config::endpoint::{parse, UrlKind};
        let u = parse(UrlKind::Redis, url, None)?;
        let db = match u.path.trim_start_matches('/') {
            "" => 0,
            db => db.parse().map_err(|_| "database must be a number")?,
        };
        Ok(RedisTarget {
            host: u.endpoint.host,
            port: u.endpoint.port,
            password: u.password,
            db,
        })
    }
}

/// Cache settings.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// How long an entry answers.
    pub ttl: Duration,
    /// Local cache bound.
    pub max_entries: usize,
    /// Redis, for the distributed mode.
    pub redis: Option<RedisTarget>,
    /// Longest a lookup waits for Redis.
    pub redis_timeout: Duration,
}

#[derive(Debug)]
enum Pending {
    /// A GET for a lookup (None once given up on).
    Get(Option<u64>, CacheKey, Instant),
    /// A SET, AUTH or SELECT whose answer only matters if it is an error.
    Other(Instant),
}

struct Redis {
    target: RedisTarget,
    timeout: Duration,
    link: Option<LinkId>,
    connected: bool,
    next_link: LinkId,
    rx: Vec<u8>,
    fifo: VecDeque<Pending>,
    /// Reconnect pacing: the backends' endpoint breaker (1 s, doubling to 30 s).
    breaker: Breaker,
}

impl Redis {
    /// When to reconnect: only while no link is open, once the breaker's pause is over.
    fn retry_at(&self) -> Option<Instant> {
        self.link
            .is_none()
            .then(|| self.breaker.open_until())
            .flatten()
    }
}

/// Events the broker collects from the cache.
#[derive(Debug)]
pub enum CacheEvent {
    /// A distributed lookup finished: the plaintext, or `None` for a miss.
    Looked(u64, Option<Secret<Vec<u8>>>),
}

/// The decrypt cache.
pub struct Cache {
    cfg: CacheConfig,
    kek: Option<KekAes256>,
    local: BTreeMap<CacheKey, (Secret<Vec<u8>>, Instant)>,
    order: VecDeque<(CacheKey, Instant)>,
    redis: Option<Redis>,
    events: VecDeque<CacheEvent>,
    outputs: VecDeque<BackendOutput>,
    warnings: VecDeque<String>,
    last_warn: Option<Instant>,
    /// Counters.
    pub stats: CacheStats,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("local_entries", &self.local.len())
            .field("distributed", &self.redis.is_some())
            .field("stats", &self.stats)
            .finish()
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// Answered now.
    Hit(Secret<Vec<u8>>),
    /// Not cached: go to the backend, then store the answer.
    Miss,
    /// This cache stores nothing (no room, no Redis): go to the backend; the key was not
    /// computed.
    Off,
    /// Asked Redis; the answer comes as [`CacheEvent::Looked`].
    Pending,
}

impl Cache {
    /// A cache; `seal_ikm` (the server private key) seals distributed entries.
    pub fn new(cfg: CacheConfig, distributed: bool, seal_ikm: &[u8]) -> Cache {
        let redis = match (&cfg.redis, distributed) {
            (Some(t), true) => Some(Redis {
                target: t.clone(),
                timeout: cfg.redis_timeout,
                link: None,
                connected: false,
                next_link: 1,
                rx: Vec::new(),
                fifo: VecDeque::new(),
                breaker: Breaker::default(),
            }),
            _ => None,
        };
        let kek = redis.as_ref().map(|_| {
            let hk = hkdf::Hkdf::<Sha256>::new(Some(b"keybroker cache seal v1"), seal_ikm);
            let mut k = [0u8; 32];
            hk.expand(b"aes-kwp key for redis values", &mut k)
                .expect("32 bytes");
            let kek = KekAes256::from(k);
            zeroize::Zeroize::zeroize(&mut k);
            kek
        });
        Cache {
            cfg,
            kek,
            local: BTreeMap::new(),
            order: VecDeque::new(),
            redis,
            events: VecDeque::new(),
            outputs: VecDeque::new(),
            warnings: VecDeque::new(),
            last_warn: None,
            stats: CacheStats::default(),
        }
    }

    /// Whether this cache uses Redis.
    pub fn is_distributed(&self) -> bool {
        self.redis.is_some()
    }

    /// Seals a value for Redis: AES-KWP over `key ‖ plaintext`.
    pub fn seal(&self, key: &CacheKey, plaintext: &[u8]) -> Option<Vec<u8>> {
        let mut input = Secret::new(Vec::with_capacity(32 + plaintext.len()));
        input.expose_mut().extend_from_slice(key);
        input.expose_mut().extend_from_slice(plaintext);
        self.kek
            .as_ref()?
            .wrap_with_padding_vec(input.expose())
            .ok()
    }

    /// Opens a sealed value; `None` unless it was sealed for exactly this key.
    pub fn unseal(&self, key: &CacheKey, sealed: &[u8]) -> Option<Secret<Vec<u8>>> {
        let plain = Secret::new(self.kek.as_ref()?.unwrap_with_padding_vec(sealed).ok()?);
        let p = plain.expose();
        (p.len() >= 32 && p[..32] == key[..]).then(|| Secret::new(p[32..].to_vec()))
    }

    /// Starts connecting to Redis (distributed mode).
    pub fn start(&mut self, now: Now) {
        self.connect(now.mono);
    }

    fn connect(&mut self, now: Instant) {
        let Some(r) = self.redis.as_mut() else { return };
        if r.link.is_some() {
            return;
        }
        let link = r.next_link;
        r.next_link += 1;
        r.link = Some(link);
        r.connected = false;
        r.rx.clear();
        self.outputs.push_back(BackendOutput::Connect {
            link,
            host: r.target.host.clone(),
            port: r.target.port,
            security: LinkSecurity::Plain,
            connect_timeout: Duration::from_secs(1),
        });
        let _ = now;
    }

    /// Looks up a decrypt result under the key `key` computes (only when anything can be
    /// cached: hashing a token is the lookup's main cost); `lookup` identifies a distributed
    /// lookup's event. Every lookup that is not a hit counts as a miss.
    pub fn lookup(&mut self, now: Now, lookup: u64, key: impl FnOnce() -> CacheKey) -> Lookup {
        if self.redis.is_none() && self.cfg.max_entries == 0 {
            self.stats.misses += 1;
            return Lookup::Off;
        }
        let key = key();
        let t = now.mono;
        if let Some((v, exp)) = self.local.get(&key) {
            if *exp > t {
                self.stats.hits += 1;
                return Lookup::Hit(v.clone());
            }
            self.local.remove(&key);
        }
        let Some(r) = self.redis.as_mut() else {
            self.stats.misses += 1;
            return Lookup::Miss;
        };
        if !r.connected {
            self.stats.misses += 1;
            return Lookup::Miss;
        }
        let link = r.link.expect("connected has a link");
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let redis_key = format!("kb:d:{hex}");
        r.fifo
            .push_back(Pending::Get(Some(lookup), key, t + r.timeout));
        self.outputs.push_back(BackendOutput::Send {
            link,
            bytes: resp::command(&[b"GET", redis_key.as_bytes()]),
        });
        Lookup::Pending
    }

    /// Remembers a decrypt result.
    pub fn store(&mut self, now: Now, key: CacheKey, plaintext: &Secret<Vec<u8>>) {
        let t = now.mono;
        if self.redis.is_none() {
            if self.cfg.max_entries == 0 {
                return;
            }
            while self.local.len() >= self.cfg.max_entries {
                match self.order.pop_front() {
                    Some((k, at)) => {
                        if self.local.get(&k).is_some_and(|(_, e)| *e == at) {
                            self.local.remove(&k);
                        }
                    }
                    None => break,
                }
            }
            let exp = t + self.cfg.ttl;
            self.local.insert(key, (plaintext.clone(), exp));
            self.order.push_back((key, exp));
            return;
        }
        let Some(sealed) = self.seal(&key, plaintext.expose()) else {
            return;
        };
        let r = self.redis.as_mut().expect("distributed");
        let (true, Some(link)) = (r.connected, r.link) else {
            return;
        };
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let ttl_ms = self.cfg.ttl.as_millis().max(1).to_string();
        let cmd = resp::command(&[
            b"SET",
            format!("kb:d:{hex}").as_bytes(),
            &sealed,
            b"PX",
            ttl_ms.as_bytes(),
        ]);
        r.fifo.push_back(Pending::Other(t + r.timeout));
        self.outputs
            .push_back(BackendOutput::Send { link, bytes: cmd });
    }

    /// Feeds an event on the Redis link.
    pub fn handle_net(&mut self, now: Now, ev: NetEvent) {
        let t = now.mono;
        let Some(r) = self.redis.as_mut() else { return };
        match ev {
            NetEvent::Connected { link } if Some(link) == r.link => {
                r.connected = true;
                r.breaker.reset();
                let mut hello = Vec::new();
                if let Some(pw) = &r.target.password {
                    hello.extend(resp::command(&[b"AUTH", pw.expose().as_bytes()]));
                    r.fifo.push_back(Pending::Other(t + Duration::from_secs(2)));
                }
                if r.target.db != 0 {
                    hello.extend(resp::command(&[
                        b"SELECT",
                        r.target.db.to_string().as_bytes(),
                    ]));
                    r.fifo.push_back(Pending::Other(t + Duration::from_secs(2)));
                }
                if !hello.is_empty() {
                    self.outputs
                        .push_back(BackendOutput::Send { link, bytes: hello });
                }
            }
            NetEvent::Received { link, bytes } if Some(link) == r.link => {
                r.rx.extend_from_slice(&bytes);
                loop {
                    let r = self.redis.as_mut().expect("distributed");
                    match resp::parse(&r.rx) {
                        Ok(Some((v, used))) => {
                            r.rx.drain(..used);
                            let pending = r.fifo.pop_front();
                            let (ev, warn) = Self::answer(self.kek.as_ref(), pending, v);
                            if let Some(e) = ev {
                                self.events.push_back(e);
                            }
                            if let Some(w) = warn {
                                self.stats.errors += 1;
                                self.warn(t, w);
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            self.fail(t, format!("Redis sent garbage: {}", e.0));
                            return;
                        }
                    }
                }
            }
            NetEvent::Closed { link, reason } if Some(link) == r.link => {
                self.fail(t, format!("Redis connection lost: {reason}"));
            }
            _ => {}
        }
    }

    fn answer(
        kek: Option<&KekAes256>,
        pending: Option<Pending>,
        v: resp::Value,
    ) -> (Option<CacheEvent>, Option<String>) {
        match pending {
            Some(Pending::Get(Some(id), key, _)) => match v {
                resp::Value::Bulk(Some(sealed)) => {
                    let opened = kek
                        .and_then(|k| k.unwrap_with_padding_vec(&sealed).ok())
                        .map(Secret::new);
                    match opened {
                        Some(p) if p.expose().len() >= 32 && p.expose()[..32] == key[..] => {
                            (Some(CacheEvent::Looked(id, Some(Secret::new(p.expose()[32..].to_vec())))), None)
                        }
                        _ => (
                            Some(CacheEvent::Looked(id, None)),
                            Some("a Redis entry did not unseal for its key (tampered, or another keystore)".into()),
                        ),
                    }
                }
                resp::Value::Bulk(None) => (Some(CacheEvent::Looked(id, None)), None),
                resp::Value::Error(e) => (
                    Some(CacheEvent::Looked(id, None)),
                    Some(format!("Redis error: {e}")),
                ),
                _ => (
                    Some(CacheEvent::Looked(id, None)),
                    Some("unexpected Redis reply to GET".into()),
                ),
            },
            Some(Pending::Get(None, ..)) => (None, None),
            Some(Pending::Other(_)) => match v {
                resp::Value::Error(e) => (None, Some(format!("Redis error: {e}"))),
                _ => (None, None),
            },
            None => (None, Some("Redis answered more than was asked".into())),
        }
    }

    /// Drops the link, answers every waiting lookup with a miss, and retries later.
    fn fail(&mut self, now: Instant, why: String) {
        self.stats.errors += 1;
        let Some(r) = self.redis.as_mut() else { return };
        if let Some(link) = r.link.take() {
            self.outputs.push_back(BackendOutput::Close { link });
        }
        r.connected = false;
        r.rx.clear();
        for p in r.fifo.drain(..) {
            if let Pending::Get(Some(id), ..) = p {
                self.events.push_back(CacheEvent::Looked(id, None));
            }
        }
        r.breaker.trip(now);
        self.warn(
            now,
            format!("{why}; decrypts go to the backend until Redis is back"),
        );
    }

    fn warn(&mut self, now: Instant, msg: String) {
        if self
            .last_warn
            .is_none_or(|t| now.saturating_since(t) >= WARN_EVERY)
        {
            self.last_warn = Some(now);
            self.warnings.push_back(msg);
        }
    }

    /// Gives up on lookups past their deadline (a miss each) and reconnects when due.
    pub fn handle_timeout(&mut self, now: Now) {
        let t = now.mono;
        let Some(r) = self.redis.as_mut() else { return };
        let mut expired = Vec::new();
        for p in r.fifo.iter_mut() {
            if let Pending::Get(id @ Some(_), _, deadline) = p {
                if *deadline <= t {
                    expired.push(id.take().expect("some"));
                }
            }
        }
        // A Redis that has not answered the oldest request in 5 timeouts is treated as down.
        let stuck = r.fifo.front().is_some_and(|p| {
            let d = match p {
                Pending::Get(_, _, d) | Pending::Other(d) => *d,
            };
            t.saturating_since(d) > r.timeout * 5
        });
        let retry = r.retry_at().is_some_and(|at| at <= t);
        for id in expired {
            self.stats.errors += 1;
            self.events.push_back(CacheEvent::Looked(id, None));
        }
        if stuck {
            self.fail(t, "Redis is not answering".into());
        } else if retry {
            self.connect(t);
        }
    }

    /// When the cache next needs [`Cache::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let r = self.redis.as_ref()?;
        let deadline = r.fifo.iter().find_map(|p| match p {
            Pending::Get(Some(_), _, d) => Some(*d),
            _ => None,
        });
        let stuck = r.fifo.front().map(|p| match p {
            Pending::Get(_, _, d) | Pending::Other(d) => {
                *d + r.timeout * 5 + Duration::from_millis(1)
            }
        });
        [deadline, stuck, r.retry_at()].into_iter().flatten().min()
    }

    /// The next finished distributed lookup.
    pub fn poll_event(&mut self) -> Option<CacheEvent> {
        let ev = self.events.pop_front()?;
        match &ev {
            CacheEvent::Looked(_, Some(_)) => self.stats.hits += 1,
            CacheEvent::Looked(_, None) => self.stats.misses += 1,
        }
        Some(ev)
    }

    /// The next link action for the shell.
    pub fn poll_output(&mut self) -> Option<BackendOutput> {
        self.outputs.pop_front()
    }

    /// The next warning for the log.
    pub fn poll_warning(&mut self) -> Option<String> {
        self.warnings.pop_front()
    }
}

#[cfg(test)]
mod tests;
