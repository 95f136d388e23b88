//! A cluster of KMIP HSMs sharing one object store (as the endpoints of one HSM cluster do),
//! speaking KMIP 1.0–1.4 over TTLV with the core's own codec: DiscoverVersions, Query,
//! Locate by Name (newest first, as PyKMIP lists), Create (AES-256) and Activate, Encrypt and
//! Decrypt with AES-GCM (1.4) or AES-CBC/PKCS5, and failed batch items with a Result Reason.
use crate::{Rng, KEYS};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use keybroker_core::kmip::messages::{op, ProtocolVersion};
use keybroker_core::kmip::tags::tag;
use keybroker_core::kmip::ttlv::{self, Item, Limits, Value};
use keybroker_core::Instant;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use super::PeerOut;

const R_ITEM_NOT_FOUND: u32 = 0x01;
const R_OPERATION_NOT_SUPPORTED: u32 = 0x05;
const R_INVALID_FIELD: u32 = 0x07;
const R_CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;
const R_PERMISSION_DENIED: u32 = 0x0C;
const R_GENERAL_FAILURE: u32 = 0x100;
const MODE_CBC: u32 = 1;

#[derive(Debug)]
struct Object {
    uid: String,
    name: String,
    key: [u8; 32],
    active: bool,
}

#[derive(Debug, Default)]
struct Instance {
    /// Unparsed bytes per connection.
    conns: BTreeMap<u64, Vec<u8>>,
    errors_until: Option<Instant>,
}

/// The HSM cluster.
#[derive(Debug)]
pub struct Cluster {
    objects: Vec<Object>,
    instances: Vec<Instance>,
    /// Highest protocol version the HSMs speak.
    pub max_version: ProtocolVersion,
    secret: [u8; 32],
    /// Key versions made by Create, per name (after the initial ones).
    pub created: BTreeMap<String, u64>,
}

fn result(
    version: ProtocolVersion,
    operation: Option<u32>,
    reason: Option<u32>,
    payload: Vec<Item>,
) -> Vec<u8> {
    let mut b = Vec::new();
    if let Some(o) = operation {
        b.push(Item::new(tag::OPERATION, Value::Enumeration(o)));
    }
    b.push(Item::new(
        tag::RESULT_STATUS,
        Value::Enumeration(u32::from(reason.is_some())),
    ));
    if let Some(r) = reason {
        b.push(Item::new(tag::RESULT_REASON, Value::Enumeration(r)));
        b.push(Item::new(
            tag::RESULT_MESSAGE,
            Value::TextString("simulated HSM refused the operation".into()),
        ));
    } else {
        b.push(Item::structure(tag::RESPONSE_PAYLOAD, payload));
    }
    Item::structure(
        tag::RESPONSE_MESSAGE,
        vec![
            Item::structure(
                tag::RESPONSE_HEADER,
                vec![
                    version.to_item(),
                    Item::new(tag::TIME_STAMP, Value::DateTime(1_800_000_000)),
                    Item::new(tag::BATCH_COUNT, Value::Integer(1)),
                ],
            ),
            Item::structure(tag::BATCH_ITEM, b),
        ],
    )
    .encode()
}

fn find(i: &Item, t: u32) -> Option<&Item> {
    if i.tag == t {
        return Some(i);
    }
    i.children().iter().find_map(|c| find(c, t))
}

fn bytes_of(i: &Item, t: u32) -> Vec<u8> {
    match find(i, t).map(|x| &x.value) {
        Some(Value::ByteString(b)) => b.clone(),
        _ => Vec::new(),
    }
}

fn text_of(i: &Item, t: u32) -> String {
    match find(i, t).map(|x| &x.value) {
        Some(Value::TextString(s)) => s.clone(),
        _ => String::new(),
    }
}

fn uid_item(s: &str) -> Item {
    Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString(s.into()))
}

/// AES-256-CBC with PKCS#5 padding, as the HSM applies it.
fn cbc(key: &[u8; 32], iv: &[u8], data: &[u8], encrypt: bool) -> Option<Vec<u8>> {
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit as _};
    let c = aes::Aes256::new_from_slice(key).ok()?;
    let mut prev: [u8; 16] = iv.try_into().ok()?;
    let mut out = Vec::new();
    if encrypt {
        let mut d = data.to_vec();
        let pad = 16 - d.len() % 16;
        d.extend(std::iter::repeat_n(pad as u8, pad));
        for chunk in d.chunks(16) {
            let mut b = aes::Block::clone_from_slice(chunk);
            b.iter_mut().zip(prev).for_each(|(x, p)| *x ^= p);
            c.encrypt_block(&mut b);
            prev = b.into();
            out.extend_from_slice(&prev);
        }
        return Some(out);
    }
    if data.is_empty() || !data.len().is_multiple_of(16) {
        return None;
    }
    for chunk in data.chunks(16) {
        let mut b = aes::Block::clone_from_slice(chunk);
        c.decrypt_block(&mut b);
        b.iter_mut().zip(prev).for_each(|(x, p)| *x ^= p);
        out.extend_from_slice(&b);
        prev = chunk.try_into().ok()?;
    }
    let pad = *out.last()? as usize;
    if pad == 0 || pad > 16 || !out[out.len() - pad..].iter().all(|b| *b as usize == pad) {
        return None;
    }
    out.truncate(out.len() - pad);
    Some(out)
}

impl Cluster {
    /// Two or three HSMs speaking up to KMIP 1.4 (or an older version), holding one to three
    /// versions of every served key.
    pub fn new(rng: &mut Rng) -> Cluster {
        let max_version = match rng.below(10) {
            0 => ProtocolVersion::V1_2,
            1 => ProtocolVersion::V1_3,
            _ => ProtocolVersion::V1_4,
        };
        let mut c = Cluster {
            objects: Vec::new(),
            instances: (0..2 + rng.below(2)).map(|_| Instance::default()).collect(),
            max_version,
            secret: rng.bytes(32).try_into().expect("32"),
            created: BTreeMap::new(),
        };
        for name in KEYS {
            for _ in 0..1 + rng.below(3) {
                c.create(name);
            }
        }
        c
    }

    /// How many HSM endpoints the cluster has.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    fn create(&mut self, name: &str) -> String {
        let uid = format!("{}", self.objects.len() + 1);
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(uid.as_bytes());
        self.objects.push(Object {
            uid: uid.clone(),
            name: name.to_owned(),
            key: h.finalize().into(),
            active: true,
        });
        uid
    }

    /// A connection to instance `i`.
    pub fn accept(&mut self, i: usize, conn: u64) {
        self.instances[i].conns.insert(conn, Vec::new());
    }

    /// A connection to instance `i` is gone.
    pub fn closed(&mut self, i: usize, conn: u64) {
        self.instances[i].conns.remove(&conn);
    }

    /// Instance `i` restarts: its connections are gone, its objects (the cluster's) stay.
    pub fn restart(&mut self, i: usize) {
        self.instances[i].conns.clear();
    }

    /// Instance `i` fails every operation until `until`.
    pub fn errors(&mut self, i: usize, until: Instant) {
        self.instances[i].errors_until = Some(until);
    }

    /// Every instance healthy.
    pub fn calm(&mut self) {
        for i in &mut self.instances {
            i.errors_until = None;
        }
    }

    /// Bytes on `conn` of instance `i`: answers every whole request; `true` if one was an
    /// injected error. Malformed TTLV closes the connection, as HSMs do.
    pub fn receive(
        &mut self,
        i: usize,
        conn: u64,
        bytes: &[u8],
        now: Instant,
    ) -> Result<(PeerOut, bool), String> {
        let Some(buf) = self.instances[i].conns.get_mut(&conn) else {
            return Ok((PeerOut::default(), false));
        };
        buf.extend_from_slice(bytes);
        let mut out = PeerOut::default();
        let mut erred = false;
        loop {
            let buf = self.instances[i].conns.get_mut(&conn).expect("live");
            let n = match ttlv::frame_len(buf, &Limits::DEFAULT) {
                Ok(Some(n)) if buf.len() >= n => n,
                Ok(_) => break,
                Err(e) => {
                    return Err(format!(
                        "keybroker sent malformed TTLV to HSM {i} (connection {conn}, {} bytes buffered, this piece {} bytes): {e}",
                        buf.len(),
                        bytes.len()
                    ))
                }
            };
            let frame: Vec<u8> = buf.drain(..n).collect();
            let item = ttlv::decode(&frame)
                .map_err(|e| format!("keybroker sent malformed TTLV to the HSM: {e}"))?;
            let failing = self.instances[i].errors_until.is_some_and(|t| t > now);
            let (answer, e) = self.answer(&item, failing)?;
            erred |= e;
            out.bytes.extend(answer);
        }
        Ok((out, erred))
    }

    fn answer(&mut self, item: &Item, failing: bool) -> Result<(Vec<u8>, bool), String> {
        let version = item
            .child(tag::REQUEST_HEADER)
            .and_then(|h| h.child(tag::PROTOCOL_VERSION))
            .and_then(ProtocolVersion::from_item)
            .ok_or("KMIP request without a protocol version")?;
        let batch = item
            .child(tag::BATCH_ITEM)
            .ok_or("KMIP request without a batch item")?;
        let operation = match batch.child(tag::OPERATION).map(|o| &o.value) {
            Some(Value::Enumeration(o)) => *o,
            _ => return Err("KMIP batch item without an operation".into()),
        };
        let empty = Item::structure(tag::REQUEST_PAYLOAD, Vec::new());
        let p = batch.child(tag::REQUEST_PAYLOAD).unwrap_or(&empty);
        let v = version.min(self.max_version);
        let fail = |reason| Ok((result(v, Some(operation), Some(reason), Vec::new()), false));
        let ok = |payload| Ok((result(v, Some(operation), None, payload), false));
        if version > self.max_version && operation != op::DISCOVER_VERSIONS {
            return fail(R_OPERATION_NOT_SUPPORTED);
        }
        if failing && operation != op::DISCOVER_VERSIONS {
            return Ok((
                result(v, Some(operation), Some(R_GENERAL_FAILURE), Vec::new()),
                true,
            ));
        }
        match operation {
            op::DISCOVER_VERSIONS => {
                let offered: Vec<ProtocolVersion> = p
                    .children()
                    .iter()
                    .filter_map(ProtocolVersion::from_item)
                    .collect();
                let mine = [
                    ProtocolVersion::V1_4,
                    ProtocolVersion::V1_3,
                    ProtocolVersion::V1_2,
                    ProtocolVersion::V1_1,
                    ProtocolVersion::V1_0,
                ]
                .into_iter()
                .filter(|x| *x <= self.max_version)
                .filter(|x| offered.is_empty() || offered.contains(x))
                .map(ProtocolVersion::to_item)
                .collect();
                ok(mine)
            }
            op::QUERY => ok(Vec::new()),
            op::LOCATE => {
                let name = text_of(p, tag::NAME_VALUE);
                let ids = self
                    .objects
                    .iter()
                    .rev()
                    .filter(|o| o.name == name)
                    .map(|o| uid_item(&o.uid))
                    .collect();
                ok(ids)
            }
            op::CREATE => {
                let name = text_of(p, tag::NAME_VALUE);
                if name.is_empty() {
                    return fail(R_INVALID_FIELD);
                }
                let uid = self.create(&name);
                self.objects.last_mut().expect("made").active = false;
                *self.created.entry(name).or_default() += 1;
                ok(vec![uid_item(&uid)])
            }
            op::ACTIVATE => {
                let uid = text_of(p, tag::UNIQUE_IDENTIFIER);
                match self.objects.iter_mut().find(|o| o.uid == uid) {
                    None => fail(R_ITEM_NOT_FOUND),
                    Some(o) if o.active => fail(R_PERMISSION_DENIED),
                    Some(o) => {
                        o.active = true;
                        ok(vec![uid_item(&uid)])
                    }
                }
            }
            op::ENCRYPT | op::DECRYPT => {
                let encrypt = operation == op::ENCRYPT;
                let uid = text_of(p, tag::UNIQUE_IDENTIFIER);
                let Some(obj) = self.objects.iter().find(|o| o.uid == uid && o.active) else {
                    return fail(R_ITEM_NOT_FOUND);
                };
                let key = obj.key;
                let iv = bytes_of(p, tag::IV_COUNTER_NONCE);
                let data = bytes_of(p, tag::DATA);
                let cbc_mode = matches!(
                    find(p, tag::BLOCK_CIPHER_MODE).map(|i| &i.value),
                    Some(Value::Enumeration(MODE_CBC))
                );
                if cbc_mode {
                    return match cbc(&key, &iv, &data, encrypt) {
                        Some(out) => ok(vec![
                            uid_item(&uid),
                            Item::new(tag::DATA, Value::ByteString(out)),
                        ]),
                        None => fail(R_CRYPTOGRAPHIC_FAILURE),
                    };
                }
                if version < ProtocolVersion::V1_4 || iv.len() != 12 {
                    return fail(R_INVALID_FIELD);
                }
                let c = Aes256Gcm::new_from_slice(&key).map_err(|_| "AES key")?;
                let aad = bytes_of(p, tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA);
                if encrypt {
                    let mut out = c
                        .encrypt(
                            Nonce::from_slice(&iv),
                            Payload {
                                msg: &data,
                                aad: &aad,
                            },
                        )
                        .map_err(|_| "AES-GCM encrypt")?;
                    let t = out.split_off(out.len() - 16);
                    return ok(vec![
                        uid_item(&uid),
                        Item::new(tag::DATA, Value::ByteString(out)),
                        Item::new(tag::AUTHENTICATED_ENCRYPTION_TAG, Value::ByteString(t)),
                    ]);
                }
                let mut ct = data;
                ct.extend(bytes_of(p, tag::AUTHENTICATED_ENCRYPTION_TAG));
                match c.decrypt(
                    Nonce::from_slice(&iv),
                    Payload {
                        msg: &ct,
                        aad: &aad,
                    },
                ) {
                    Ok(pt) => ok(vec![
                        uid_item(&uid),
                        Item::new(tag::DATA, Value::ByteString(pt)),
                    ]),
                    Err(_) => fail(R_CRYPTOGRAPHIC_FAILURE),
                }
            }
            _ => fail(R_OPERATION_NOT_SUPPORTED),
        }
    }
}
