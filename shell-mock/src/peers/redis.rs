//! A Redis server for the distributed cache, speaking RESP2 (commands parsed with the core's
//! own RESP parser): `AUTH`, `SELECT`, `PING`, `GET`, `SET key value [EX s | PX ms]`; it holds at
//! most [`MAX_KEYS`] entries (evicting the oldest, as `allkeys-lru` would under memory
//! pressure) and loses everything when it restarts.
use super::PeerOut;
use keybroker_core::cache::resp::{self, Value};
use keybroker_core::Instant;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Most entries held before eviction.
pub const MAX_KEYS: usize = 24;

/// The Redis server.
#[derive(Debug, Default)]
pub struct Redis {
    conns: BTreeMap<u64, Vec<u8>>,
    data: BTreeMap<Vec<u8>, (Vec<u8>, Option<Instant>)>,
    order: VecDeque<Vec<u8>>,
    /// Answer `-ERR` until then.
    pub errors_until: Option<Instant>,
}

impl Redis {
    /// An empty server.
    pub fn new() -> Redis {
        Redis::default()
    }

    /// A connection arrived.
    pub fn accept(&mut self, conn: u64) {
        self.conns.insert(conn, Vec::new());
    }

    /// A connection is gone.
    pub fn closed(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    /// Restarts: connections and data are gone.
    pub fn restart(&mut self) {
        self.conns.clear();
        self.data.clear();
        self.order.clear();
    }

    /// Answers every whole command on `conn`; a protocol error closes it, as Redis does.
    pub fn receive(&mut self, conn: u64, bytes: &[u8], now: Instant) -> (PeerOut, bool) {
        let Some(buf) = self.conns.get_mut(&conn) else {
            return (PeerOut::default(), false);
        };
        buf.extend_from_slice(bytes);
        let mut out = PeerOut::default();
        let mut erred = false;
        loop {
            let buf = self.conns.get_mut(&conn).expect("live");
            let (cmd, n) = match resp::parse(buf) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(_) => {
                    out.bytes.extend_from_slice(b"-ERR Protocol error\r\n");
                    out.close = true;
                    break;
                }
            };
            buf.drain(..n);
            let args: Vec<Vec<u8>> = match cmd {
                Value::Array(Some(items)) => items
                    .into_iter()
                    .filter_map(|i| match i {
                        Value::Bulk(Some(b)) => Some(b),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if self.errors_until.is_some_and(|t| t > now) {
                erred = true;
                out.bytes
                    .extend_from_slice(b"-LOADING Redis is loading the dataset in memory\r\n");
                continue;
            }
            out.bytes.extend(self.command(&args, now));
        }
        (out, erred)
    }

    fn command(&mut self, args: &[Vec<u8>], now: Instant) -> Vec<u8> {
        let name = args
            .first()
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        match (name.as_slice(), args.len()) {
            (b"AUTH" | b"SELECT", _) | (b"PING", 1) => b"+OK\r\n".to_vec(),
            (b"GET", 2) => match self.data.get(&args[1]) {
                Some((v, exp)) if exp.is_none_or(|e| e > now) => {
                    let mut o = format!("${}\r\n", v.len()).into_bytes();
                    o.extend_from_slice(v);
                    o.extend_from_slice(b"\r\n");
                    o
                }
                _ => b"$-1\r\n".to_vec(),
            },
            (b"SET", 3 | 5) => {
                let exp = if args.len() == 5 {
                    let n: u64 = match std::str::from_utf8(&args[4])
                        .ok()
                        .and_then(|s| s.parse().ok())
                    {
                        Some(n) if n > 0 => n,
                        _ => return b"-ERR invalid expire time in 'set' command\r\n".to_vec(),
                    };
                    match args[3].to_ascii_uppercase().as_slice() {
                        b"EX" => Some(now + Duration::from_secs(n)),
                        b"PX" => Some(now + Duration::from_millis(n)),
                        _ => return b"-ERR syntax error\r\n".to_vec(),
                    }
                } else {
                    None
                };
                if !self.data.contains_key(&args[1]) {
                    self.order.push_back(args[1].clone());
                }
                self.data.insert(args[1].clone(), (args[2].clone(), exp));
                while self.data.len() > MAX_KEYS {
                    let Some(k) = self.order.pop_front() else {
                        break;
                    };
                    self.data.remove(&k);
                }
                b"+OK\r\n".to_vec()
            }
            _ => b"-ERR unknown command or wrong number of arguments\r\n".to_vec(),
        }
    }
}
