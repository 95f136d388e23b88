//! A Vault / OpenBao server as keybroker uses it, over HTTP/1.1 framed by the core's own request
//! parser and response writer: transit `encrypt` / `decrypt` (single and `batch_input`, with
//! the listener's 1,000-JSON-strings limit, `associated_data` as AES-GCM AAD, `vault:vN:`
//! ciphertexts), `keys/{name}` (read, create, rotate: several versions), token `lookup-self` /
//! `renew-self` with a TTL and a max TTL, 503 while sealed, 403 `permission denied` for a
//! missing or expired token.
use super::PeerOut;
use crate::Rng;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use keybroker_core::http::{write_response, Limits, Parser, Request, Response};
use keybroker_core::Instant;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// The token the brokers are given.
pub const TOKEN: &str = "hvs.SIMULATEDTOKEN0000000000000001";
/// `keybroker.vault.renew-before-expiry` in the simulated nodes.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5);
/// The listener's `max_request_json_strings`.
pub const MAX_JSON_STRINGS: usize = 1000;

/// The Vault server.
#[derive(Debug)]
pub struct Vault {
    conns: BTreeMap<u64, Parser>,
    keys: BTreeMap<String, Vec<[u8; 32]>>,
    secret: [u8; 32],
    nonce_counter: u64,
    created: Instant,
    ttl: Duration,
    max_ttl: Duration,
    expires: Instant,
    sealed_until: Option<Instant>,
    /// Answer 500 until then.
    pub errors_until: Option<Instant>,
    /// Key versions made by `rotate`, per key.
    pub rotated: BTreeMap<String, u64>,
}

fn count_strings(v: &Value) -> usize {
    match v {
        Value::String(_) => 1,
        Value::Array(a) => a.iter().map(count_strings).sum(),
        Value::Object(m) => m.len() + m.values().map(count_strings).sum::<usize>(),
        _ => 0,
    }
}

fn answer(status: u16, body: Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_response(
        &Response {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: serde_json::to_vec(&body).expect("json"),
        },
        &mut out,
    );
    out
}

/// `secs` since the epoch as RFC 3339 UTC (what Vault writes in `expire_time`).
fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn errors(status: u16, msg: &str) -> Vec<u8> {
    answer(status, json!({"errors": [msg]}))
}

impl Vault {
    /// A Vault holding one to three versions of every served key and a renewable token.
    pub fn new(rng: &mut Rng, start: Instant) -> Vault {
        let ttl = Duration::from_secs(15 + rng.below(30));
        let max_ttl = ttl * (2 + rng.below(5) as u32);
        let mut keys = BTreeMap::new();
        for name in crate::KEYS {
            let versions = (0..1 + rng.below(3))
                .map(|_| rng.bytes(32).try_into().expect("32"))
                .collect();
            keys.insert(name.to_owned(), versions);
        }
        Vault {
            conns: BTreeMap::new(),
            keys,
            secret: rng.bytes(32).try_into().expect("32"),
            nonce_counter: 0,
            created: start,
            ttl,
            max_ttl,
            expires: start + ttl,
            sealed_until: None,
            errors_until: None,
            rotated: BTreeMap::new(),
        }
    }

    /// A connection arrived.
    pub fn accept(&mut self, conn: u64) {
        self.conns.insert(conn, Parser::new(Limits::default()));
    }

    /// A connection is gone.
    pub fn closed(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    /// Restarts: connections drop; it comes back sealed, and is unsealed a little later.
    pub fn restart(&mut self, up: Instant, rng: &mut Rng) {
        self.conns.clear();
        self.sealed_until = Some(up + Duration::from_millis(500 + rng.below(3000)));
    }

    /// Unsealed and healthy.
    pub fn calm(&mut self, _now: Instant) {
        self.sealed_until = None;
        self.errors_until = None;
    }

    /// Bytes on `conn` sent at `sent_at`: answers every whole request (`true` if one was an
    /// injected error); `Err` if a request carried a token already expired when sent.
    pub fn receive(
        &mut self,
        conn: u64,
        bytes: &[u8],
        sent_at: Instant,
        now: Instant,
    ) -> Result<(PeerOut, bool), String> {
        let Some(p) = self.conns.get_mut(&conn) else {
            return Ok((PeerOut::default(), false));
        };
        p.push(bytes);
        let mut out = PeerOut::default();
        let mut erred = false;
        loop {
            let p = self.conns.get_mut(&conn).expect("live");
            let req = match p.next_request() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    return Err(format!(
                        "keybroker sent Vault a malformed HTTP request: {}",
                        e.message
                    ))
                }
            };
            let (a, e) = self.handle(&req, sent_at, now)?;
            erred |= e;
            out.bytes.extend(a);
            if !req.keep_alive() {
                out.close = true;
                break;
            }
        }
        Ok((out, erred))
    }

    fn handle(
        &mut self,
        req: &Request,
        sent_at: Instant,
        now: Instant,
    ) -> Result<(Vec<u8>, bool), String> {
        if self.sealed_until.is_some_and(|t| t > now) {
            return Ok((errors(503, "Vault is sealed"), false));
        }
        if self.errors_until.is_some_and(|t| t > now) {
            return Ok((errors(500, "internal error"), true));
        }
        let token = req.header("x-vault-token").unwrap_or_default();
        if token == TOKEN.as_bytes() && sent_at >= self.expires {
            return Err(format!(
                "keybroker sent {} {} with a token expired {:?} before",
                req.method,
                req.target,
                sent_at.saturating_since(self.expires)
            ));
        }
        if token != TOKEN.as_bytes() || now >= self.expires {
            return Ok((errors(403, "permission denied"), false));
        }
        let body: Value = if req.body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(_) => return Ok((errors(400, "failed to parse JSON input"), false)),
            }
        };
        if count_strings(&body) > MAX_JSON_STRINGS {
            return Ok((
                errors(400, "refused JSON input due to high complexity"),
                false,
            ));
        }
        let path: Vec<&str> = req.target.trim_start_matches('/').split('/').collect();
        let a = match (req.method.as_str(), path.as_slice()) {
            ("GET", ["v1", "auth", "token", "lookup-self"]) => {
                let left = self.expires.saturating_since(now).as_secs();
                let at = crate::UNIX_BASE as u64 + self.expires.since_epoch().as_secs();
                answer(
                    200,
                    json!({"data": {"ttl": left, "renewable": true, "expire_time": rfc3339(at)}}),
                )
            }
            ("POST", ["v1", "auth", "token", "renew-self"]) => {
                let cap = self.created + self.max_ttl;
                self.expires = (now + self.ttl).min(cap).max(self.expires);
                let left = self.expires.saturating_since(now).as_secs();
                answer(
                    200,
                    json!({"auth": {"client_token": TOKEN, "lease_duration": left, "renewable": true}}),
                )
            }
            ("GET", ["v1", "transit", "keys", name]) => self.key_info(name),
            ("POST", ["v1", "transit", "keys", name]) => {
                let name = name.to_string();
                if !self.keys.contains_key(&name) {
                    let k = self.next_key(&name, 1);
                    self.keys.insert(name.clone(), vec![k]);
                }
                self.key_info(&name)
            }
            ("POST", ["v1", "transit", "keys", name, "rotate"]) => {
                let name = name.to_string();
                let Some(n) = self.keys.get(&name).map(Vec::len) else {
                    return Ok((errors(404, "no such key"), false));
                };
                let k = self.next_key(&name, n + 1);
                self.keys.get_mut(&name).expect("known").push(k);
                *self.rotated.entry(name.clone()).or_default() += 1;
                self.key_info(&name)
            }
            ("POST", ["v1", "transit", "encrypt", name]) => self.transit(name, &body, true),
            ("POST", ["v1", "transit", "decrypt", name]) => self.transit(name, &body, false),
            _ => errors(404, "unsupported path"),
        };
        Ok((a, false))
    }

    fn next_key(&self, name: &str, version: usize) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(name.as_bytes());
        h.update(version.to_be_bytes());
        h.finalize().into()
    }

    fn key_info(&self, name: &str) -> Vec<u8> {
        let Some(v) = self.keys.get(name) else {
            return errors(404, "");
        };
        let keys: serde_json::Map<String, Value> = (1..=v.len())
            .map(|i| (i.to_string(), json!(1_800_000_000)))
            .collect();
        answer(
            200,
            json!({"data": {"name": name, "type": "aes256-gcm96", "latest_version": v.len(),
                "min_decryption_version": 1, "min_encryption_version": 0, "keys": keys}}),
        )
    }

    fn transit(&mut self, name: &str, body: &Value, encrypt: bool) -> Vec<u8> {
        if !self.keys.contains_key(name) {
            return errors(400, "encryption key not found");
        }
        let batch = body.get("batch_input").and_then(Value::as_array);
        let items: Vec<Value> = match batch {
            Some(b) => b.clone(),
            None => vec![body.clone()],
        };
        let version = body["key_version"].as_u64().unwrap_or(0) as usize;
        let results: Vec<Result<Value, String>> = items
            .iter()
            .map(|i| {
                if encrypt {
                    self.encrypt_one(name, i, version)
                } else {
                    self.decrypt_one(name, i)
                }
            })
            .collect();
        if batch.is_none() {
            return match results.into_iter().next().expect("one") {
                Ok(v) => answer(200, json!({"data": v})),
                Err(e) => errors(400, &e),
            };
        }
        let any_err = results.iter().any(Result::is_err);
        let out: Vec<Value> = results
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| json!({"error": e})))
            .collect();
        let code = if any_err {
            body["partial_failure_response_code"]
                .as_u64()
                .unwrap_or(400) as u16
        } else {
            200
        };
        answer(code, json!({"data": {"batch_results": out}}))
    }

    fn encrypt_one(&mut self, name: &str, item: &Value, version: usize) -> Result<Value, String> {
        let versions = &self.keys[name];
        let v = if version == 0 {
            versions.len()
        } else {
            version
        };
        if v > versions.len() {
            return Err(
                "requested version for encryption is higher than the latest key version".into(),
            );
        }
        let pt = B64
            .decode(item["plaintext"].as_str().unwrap_or(""))
            .map_err(|_| "failed to base64-decode plaintext")?;
        let aad = B64
            .decode(item["associated_data"].as_str().unwrap_or(""))
            .map_err(|_| "failed to base64-decode associated_data")?;
        let key = versions[v - 1];
        self.nonce_counter += 1;
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(self.nonce_counter.to_be_bytes());
        let nonce: [u8; 12] = h.finalize()[..12].try_into().expect("12");
        let c = Aes256Gcm::new_from_slice(&key).map_err(|_| "key")?;
        let ct = c
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .map_err(|_| "encrypt failed")?;
        let mut blob = nonce.to_vec();
        blob.extend(ct);
        Ok(json!({"ciphertext": format!("vault:v{v}:{}", B64.encode(blob)), "key_version": v}))
    }

    fn decrypt_one(&self, name: &str, item: &Value) -> Result<Value, String> {
        let ct = item["ciphertext"].as_str().unwrap_or("");
        let rest = ct
            .strip_prefix("vault:v")
            .ok_or("invalid ciphertext: no prefix")?;
        let (v, b64) = rest.split_once(':').ok_or("invalid ciphertext")?;
        let v: usize = v.parse().map_err(|_| "invalid ciphertext: bad version")?;
        let versions = &self.keys[name];
        if v == 0 || v > versions.len() {
            return Err("invalid ciphertext: version is too high".into());
        }
        let blob = B64.decode(b64).map_err(|_| "invalid ciphertext: base64")?;
        if blob.len() < 12 + 16 {
            return Err("invalid ciphertext: too short".into());
        }
        let aad = B64
            .decode(item["associated_data"].as_str().unwrap_or(""))
            .map_err(|_| "failed to base64-decode associated_data")?;
        let c = Aes256Gcm::new_from_slice(&versions[v - 1]).map_err(|_| "key")?;
        let pt = c
            .decrypt(
                Nonce::from_slice(&blob[..12]),
                Payload {
                    msg: &blob[12..],
                    aad: &aad,
                },
            )
            .map_err(|_| "cipher: message authentication failed")?;
        Ok(json!({"plaintext": B64.encode(pt)}))
    }
}
