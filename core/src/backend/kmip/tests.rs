//! KmipBackend driven against a simulated HSM built from the core's own TTLV codec and real
//! AES-GCM; time is virtual, so timeouts and breakers are deterministic.
use super::*;
use crate::kmip::messages::op;
use crate::kmip::tags::tag;
use crate::kmip::text;
use crate::kmip::ttlv::{Item, Value};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

mod failover;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Answers everything.
    Normal,
    /// Accepts connections, never answers (a black hole).
    Silent,
    /// Refuses connections.
    Down,
    /// Answers every request as PyKMIP does to an unknown client certificate.
    AuthFail,
}

struct Sim {
    /// (uid, name, key) in creation order.
    objects: Vec<(String, String, [u8; 32])>,
    modes: Vec<Mode>,
    links: BTreeMap<LinkId, usize>,
    sent: Vec<String>,
    /// A KMIP 1.2 server: no DiscoverVersions, CBC only.
    old: bool,
    /// Objects created but never activated (Locate lists them; Encrypt refuses them).
    preactive: Vec<String>,
}

fn cbc(key: &[u8; 32], iv: &[u8], data: &[u8], encrypt: bool) -> Option<Vec<u8>> {
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit as _};
    let c = aes::Aes256::new_from_slice(key).unwrap();
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
        Some(out)
    } else {
        if data.is_empty() || !data.len().is_multiple_of(16) {
            return None;
        }
        for chunk in data.chunks(16) {
            let mut b = aes::Block::clone_from_slice(chunk);
            c.decrypt_block(&mut b);
            b.iter_mut().zip(prev).for_each(|(x, p)| *x ^= p);
            out.extend_from_slice(&b);
            prev = chunk.try_into().unwrap();
        }
        let pad = *out.last()? as usize;
        if pad == 0 || pad > 16 || !out[out.len() - pad..].iter().all(|b| *b as usize == pad) {
            return None;
        }
        out.truncate(out.len() - pad);
        Some(out)
    }
}

fn resp(operation: Option<u32>, status: u32, reason: Option<u32>, payload: Vec<Item>) -> Vec<u8> {
    let version = if operation.is_none() {
        ProtocolVersion::V1_0
    } else {
        ProtocolVersion::V1_4
    };
    let mut b = Vec::new();
    if let Some(o) = operation {
        b.push(Item::new(tag::OPERATION, Value::Enumeration(o)));
    }
    b.push(Item::new(tag::RESULT_STATUS, Value::Enumeration(status)));
    if let Some(r) = reason {
        b.push(Item::new(tag::RESULT_REASON, Value::Enumeration(r)));
        b.push(Item::new(
            tag::RESULT_MESSAGE,
            Value::TextString("simulated failure".into()),
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
                    Item::new(tag::TIME_STAMP, Value::DateTime(1_700_000_000)),
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

impl Sim {
    fn answer(&mut self, req: &[u8]) -> Vec<u8> {
        let item = ttlv::decode(req).unwrap();
        self.sent.push(text::render(&item));
        let batch = item.child(tag::BATCH_ITEM).unwrap();
        let operation = match batch.child(tag::OPERATION).unwrap().value {
            Value::Enumeration(o) => o,
            _ => panic!(),
        };
        let p = batch.child(tag::REQUEST_PAYLOAD).unwrap();
        let uid = |s: &str| Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString(s.into()));
        if self.old && operation == op::DISCOVER_VERSIONS {
            return resp(Some(operation), 1, Some(5), vec![]);
        }
        if operation == op::QUERY {
            return resp(Some(operation), 0, None, vec![]);
        }
        if (operation == op::ENCRYPT || operation == op::DECRYPT)
            && self.preactive.contains(&text_of(p, tag::UNIQUE_IDENTIFIER))
        {
            return resp(Some(operation), 1, Some(R_PERMISSION_DENIED), vec![]);
        }
        let cbc_mode = matches!(
            find(p, tag::BLOCK_CIPHER_MODE).map(|i| &i.value),
            Some(Value::Enumeration(1))
        );
        if cbc_mode && (operation == op::ENCRYPT || operation == op::DECRYPT) {
            let id = text_of(p, tag::UNIQUE_IDENTIFIER);
            let Some(key) = self.objects.iter().find(|o| o.0 == id).map(|o| o.2) else {
                return resp(Some(operation), 1, Some(R_ITEM_NOT_FOUND), vec![]);
            };
            let iv = bytes_of(p, tag::IV_COUNTER_NONCE);
            return match cbc(&key, &iv, &bytes_of(p, tag::DATA), operation == op::ENCRYPT) {
                Some(out) => resp(
                    Some(operation),
                    0,
                    None,
                    vec![uid(&id), Item::new(tag::DATA, Value::ByteString(out))],
                ),
                None => resp(Some(operation), 1, Some(R_CRYPTOGRAPHIC_FAILURE), vec![]),
            };
        }
        match operation {
            op::DISCOVER_VERSIONS => resp(
                Some(operation),
                0,
                None,
                vec![
                    ProtocolVersion::V1_4.to_item(),
                    ProtocolVersion::V1_2.to_item(),
                ],
            ),
            op::LOCATE => {
                let name = text_of(p, tag::NAME_VALUE);
                let ids = self
                    .objects
                    .iter()
                    .rev()
                    .filter(|o| o.1 == name)
                    .map(|o| uid(&o.0))
                    .collect();
                resp(Some(operation), 0, None, ids)
            }
            op::CREATE => {
                let n = self.objects.len() as u8 + 1;
                let id = format!("{n}");
                self.objects
                    .push((id.clone(), text_of(p, tag::NAME_VALUE), [n; 32]));
                resp(Some(operation), 0, None, vec![uid(&id)])
            }
            op::ACTIVATE => resp(
                Some(operation),
                0,
                None,
                vec![uid(&text_of(p, tag::UNIQUE_IDENTIFIER))],
            ),
            op::ENCRYPT | op::DECRYPT => {
                let id = text_of(p, tag::UNIQUE_IDENTIFIER);
                let Some(key) = self.objects.iter().find(|o| o.0 == id).map(|o| o.2) else {
                    return resp(Some(operation), 1, Some(R_ITEM_NOT_FOUND), vec![]);
                };
                let c = Aes256Gcm::new_from_slice(&key).unwrap();
                let iv = bytes_of(p, tag::IV_COUNTER_NONCE);
                let aad = bytes_of(p, tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA);
                let data = bytes_of(p, tag::DATA);
                if operation == op::ENCRYPT {
                    let mut out = c
                        .encrypt(
                            Nonce::from_slice(&iv),
                            Payload {
                                msg: &data,
                                aad: &aad,
                            },
                        )
                        .unwrap();
                    let t = out.split_off(out.len() - 16);
                    resp(
                        Some(operation),
                        0,
                        None,
                        vec![
                            uid(&id),
                            Item::new(tag::DATA, Value::ByteString(out)),
                            Item::new(tag::AUTHENTICATED_ENCRYPTION_TAG, Value::ByteString(t)),
                        ],
                    )
                } else {
                    let mut ct = data;
                    ct.extend(bytes_of(p, tag::AUTHENTICATED_ENCRYPTION_TAG));
                    match c.decrypt(
                        Nonce::from_slice(&iv),
                        Payload {
                            msg: &ct,
                            aad: &aad,
                        },
                    ) {
                        Ok(pt) => resp(
                            Some(operation),
                            0,
                            None,
                            vec![uid(&id), Item::new(tag::DATA, Value::ByteString(pt))],
                        ),
                        Err(_) => resp(Some(operation), 1, Some(R_GENERAL_FAILURE), vec![]),
                    }
                }
            }
            _ => resp(Some(operation), 1, Some(5), vec![]),
        }
    }
}

struct H {
    b: KmipBackend,
    sim: Sim,
    rng: Drbg,
    now: Now,
    replies: Vec<(OpId, Result<Reply, BackendError>)>,
    logs: Vec<String>,
}

fn cfg(n: usize, auto_create: bool) -> KmipConfig {
    KmipConfig {
        endpoints: (0..n)
            .map(|i| Endpoint {
                host: format!("hsm{i}"),
                port: DEFAULT_PORT,
            })
            .collect(),
        keys: vec!["k".into()],
        auto_create,
        pool_size: 2,
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        max_version: ProtocolVersion::V1_4,
        credential: None,
    }
}

impl H {
    fn new(modes: &[Mode], auto_create: bool) -> H {
        let mut rng = Drbg::new();
        rng.reseed(&[7; 32]);
        H {
            b: KmipBackend::new(cfg(modes.len(), auto_create)),
            sim: Sim {
                objects: Vec::new(),
                modes: modes.to_vec(),
                links: BTreeMap::new(),
                sent: Vec::new(),
                old: false,
                preactive: Vec::new(),
            },
            rng,
            now: Now::default(),
            replies: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// Moves bytes between backend and simulated HSMs until nothing happens.
    fn run(&mut self) {
        loop {
            let mut events = Vec::new();
            while let Some(o) = self.b.outputs.pop_front() {
                match o {
                    BackendOutput::Connect { link, host, .. } => {
                        let ep: usize = host[3..].parse().unwrap();
                        self.sim.links.insert(link, ep);
                        match self.sim.modes[ep] {
                            Mode::Down => events.push(NetEvent::Closed {
                                link,
                                reason: "refused".into(),
                            }),
                            Mode::Silent => {}
                            _ => events.push(NetEvent::Connected { link }),
                        }
                    }
                    BackendOutput::Send { link, bytes } => {
                        let ep = self.sim.links[&link];
                        match self.sim.modes[ep] {
                            Mode::Normal => {
                                let a = self.sim.answer(&bytes);
                                // Deliver in two pieces to exercise reassembly.
                                let (x, y) = a.split_at(5);
                                events.push(NetEvent::Received {
                                    link,
                                    bytes: x.to_vec(),
                                });
                                events.push(NetEvent::Received {
                                    link,
                                    bytes: y.to_vec(),
                                });
                            }
                            Mode::AuthFail => events.push(NetEvent::Received {
                                link,
                                bytes: resp(None, 1, Some(R_AUTHENTICATION), vec![]),
                            }),
                            Mode::Down => events.push(NetEvent::Closed {
                                link,
                                reason: "reset".into(),
                            }),
                            Mode::Silent => {}
                        }
                    }
                    BackendOutput::Close { link } => {
                        self.sim.links.remove(&link);
                    }
                    BackendOutput::Log { message, .. } => self.logs.push(message),
                    BackendOutput::PersistSoftKeys(_) => panic!(),
                }
            }
            while let Some(r) = self.b.replies.pop_front() {
                self.replies.push(r);
            }
            if events.is_empty() {
                return;
            }
            for e in events {
                self.b.handle_net(self.now, e, &mut self.rng);
            }
        }
    }

    fn start(&mut self) {
        self.b.start(self.now, &mut self.rng);
        self.run();
    }

    fn advance(&mut self, d: Duration) {
        self.now.mono = self.now.mono + d;
        self.b.handle_timeout(self.now, &mut self.rng);
        self.run();
    }

    fn call(&mut self, op: Op) -> Result<Reply, BackendError> {
        let id = 1000 + self.replies.len() as u64;
        self.b.submit(self.now, id, op, &mut self.rng);
        self.run();
        let pos = self
            .replies
            .iter()
            .position(|r| r.0 == id)
            .expect("answered");
        self.replies.remove(pos).1
    }
}

fn enc(key: &str, pt: &[u8], ctx: &[u8]) -> Op {
    Op::Encrypt {
        key: key.into(),
        plaintext: Secret::new(pt.to_vec()),
        context: ctx.to_vec(),
    }
}

fn dec(token: &str, ctx: &[u8]) -> Op {
    Op::Decrypt {
        key: "k".into(),
        envelope: Envelope::decode(token).unwrap(),
        context: ctx.to_vec(),
    }
}

fn token(r: Result<Reply, BackendError>) -> (String, u32) {
    match r.unwrap() {
        Reply::Ciphertext { token, key_version } => (token, key_version),
        r => panic!("{r:?}"),
    }
}

fn plain(r: Result<Reply, BackendError>) -> Vec<u8> {
    match r.unwrap() {
        Reply::Plaintext(p) => p.expose().clone(),
        r => panic!("{r:?}"),
    }
}

#[test]
fn endpoints_parse_like_the_seed_writes_them() {
    let parse = |urls: &[String], port| {
        crate::config::endpoint::hsm_links(crate::config::endpoint::UrlKind::Kmip, urls, port)
            .map(|l| l.endpoints)
    };
    let e = parse(
        &[
            "https://kmshsm.myCorp.com".into(),
            "b:7000".into(),
            "https://[::1]:9/x".into(),
        ],
        Some(5697),
    )
    .unwrap();
    assert_eq!(
        e[0],
        Endpoint {
            host: "kmshsm.myCorp.com".into(),
            port: 5697
        }
    );
    assert_eq!(
        e[1],
        Endpoint {
            host: "b".into(),
            port: 7000
        }
    );
    assert_eq!(
        e[2],
        Endpoint {
            host: "::1".into(),
            port: 9
        }
    );
    assert_eq!(parse(&["h".into()], None).unwrap()[0].port, DEFAULT_PORT);
    assert!(parse(&["http://h".into()], None).is_err());
    assert!(parse(&["h:0".into()], None).is_err());
}

#[test]
fn starts_creates_key_encrypts_decrypts_and_snapshots_requests() {
    let mut h = H::new(&[Mode::Normal], true);
    h.start();
    assert!(h.b.is_ready(), "{:?}", h.logs);
    assert_eq!(h.b.protocol_version(), Some(ProtocolVersion::V1_4));
    let (t, v) = token(h.call(enc("k", b"secret", b"ctx")));
    assert_eq!(v, 1);
    assert_eq!(plain(h.call(dec(&t, b"ctx"))), b"secret");
    // Wrong context, unknown key name, and every flipped byte: BadCiphertext.
    assert!(matches!(
        h.call(dec(&t, b"other")),
        Err(BackendError::BadCiphertext(_))
    ));
    let env = Envelope::decode(&t).unwrap();
    for i in 0..env.reference.len() {
        let mut e = env.clone();
        e.reference[i] ^= 0x40;
        let r = h.call(Op::Decrypt {
            key: "k".into(),
            envelope: e,
            context: b"ctx".to_vec(),
        });
        assert!(
            matches!(r, Err(BackendError::BadCiphertext(_))),
            "byte {i}: {r:?}"
        );
    }
    let mut e = env.clone();
    e.key_version = 9;
    let r = h.call(Op::Decrypt {
        key: "k".into(),
        envelope: e,
        context: b"ctx".to_vec(),
    });
    assert!(matches!(r, Err(BackendError::BadCiphertext(_))));
    let all = h.sim.sent.clone();
    for (name, i) in [
        ("start_discover_versions", 0),
        ("start_locate", 1),
        ("start_create", 2),
        ("start_activate", 3),
        ("encrypt_gcm_with_envelope_aad", 4),
        ("decrypt_gcm_with_envelope_aad", 5),
    ] {
        insta::assert_snapshot!(name, all[i]);
    }
}

#[test]
fn credential_goes_in_every_request_header() {
    let mut h = H::new(&[Mode::Normal], true);
    h.b.cfg.credential = Some(crate::kmip::messages::Credential {
        username: "kbuser".into(),
        password: Some(crate::secret::Secret::new("Hsm-Pa55".into())),
    });
    h.start();
    assert!(h.b.is_ready(), "{:?}", h.logs);
    let (t, _) = token(h.call(enc("k", b"secret", b"ctx")));
    assert_eq!(plain(h.call(dec(&t, b"ctx"))), b"secret");
    let all = h.sim.sent.clone();
    // DiscoverVersions, Locate, Create, Activate, Encrypt, Decrypt: all carry it.
    assert_eq!(all.len(), 6, "{all:#?}");
    for r in &all {
        let header = r.split("  BatchItem").next().unwrap();
        assert!(
            header.contains("CredentialType Enumeration UsernameAndPassword")
                && header.contains("Username TextString \"kbuser\"")
                && header.contains("Password TextString \"Hsm-Pa55\""),
            "{r}"
        );
    }
    assert!(!format!("{:?} {:?}", h.b, h.b.cfg).contains("Hsm-Pa55"));
    insta::assert_snapshot!("start_discover_versions_with_credential", all[0]);
}

#[test]
fn rotate_rewrap_describe_generate() {
    let mut h = H::new(&[Mode::Normal], true);
    h.start();
    let (t1, _) = token(h.call(enc("k", b"one", b"")));
    let Reply::Rotated { key_version: 2 } = h.call(Op::Rotate { key: "k".into() }).unwrap() else {
        panic!()
    };
    let (t2, v2) = token(h.call(enc("k", b"two", b"")));
    assert_eq!(v2, 2);
    assert_eq!(plain(h.call(dec(&t1, b""))), b"one");
    assert_eq!(plain(h.call(dec(&t2, b""))), b"two");
    let (t3, v3) = token(h.call(Op::Rewrap {
        key: "k".into(),
        envelope: Envelope::decode(&t1).unwrap(),
        context: vec![],
    }));
    assert_eq!(v3, 2);
    assert_eq!(plain(h.call(dec(&t3, b""))), b"one");
    let Reply::Described {
        latest_version: 2,
        versions,
        ..
    } = h.call(Op::Describe { key: "k".into() }).unwrap()
    else {
        panic!()
    };
    assert_eq!(versions, vec![1, 2]);
    let Reply::Generated {
        plaintext,
        token,
        key_version: 2,
    } = h
        .call(Op::Generate {
            key: "k".into(),
            bytes: 24,
            context: b"c".to_vec(),
        })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(plain(h.call(dec(&token, b"c"))), plaintext.expose().clone());
    assert!(matches!(
        h.call(Op::Generate {
            key: "k".into(),
            bytes: 0,
            context: vec![]
        }),
        Err(BackendError::BadRequest(_))
    ));
    assert!(matches!(
        h.call(enc("nope", b"x", b"")),
        Err(BackendError::UnknownKey(_))
    ));
    let r = h
        .sim
        .sent
        .iter()
        .find(|s| s.contains("Create"))
        .unwrap()
        .clone();
    insta::assert_snapshot!("rotate_create", r);
}

#[test]
fn missing_key_without_auto_create_is_not_ready_and_retries() {
    let mut h = H::new(&[Mode::Normal], false);
    h.start();
    assert!(!h.b.is_ready());
    assert!(
        h.logs
            .iter()
            .any(|l| l.contains("not found on the HSM") && l.contains("auto-create")),
        "{:?}",
        h.logs
    );
    assert!(matches!(
        h.call(enc("k", b"x", b"")),
        Err(BackendError::Unavailable { .. })
    ));
    // An operator creates the key; the retry finds it.
    h.sim.objects.push(("77".into(), "k".into(), [9; 32]));
    h.advance(Duration::from_secs(5));
    assert!(h.b.is_ready(), "{:?}", h.logs);
}

#[test]
fn auth_failure_reply_without_operation_is_reported() {
    let mut h = H::new(&[Mode::AuthFail], true);
    h.start();
    assert!(!h.b.is_ready());
    assert!(
        h.logs.iter().any(|l| l.contains("client certificate")),
        "{:?}",
        h.logs
    );
}

#[test]
fn old_server_falls_back_to_1_2_and_cbc_binds_context() {
    let mut h = H::new(&[Mode::Normal], true);
    h.sim.old = true;
    h.start();
    assert!(h.b.is_ready(), "{:?}", h.logs);
    assert_eq!(h.b.protocol_version(), Some(ProtocolVersion::V1_2));
    assert!(h.logs.iter().any(|l| l.contains("AES-CBC")));
    let (t, _) = token(h.call(enc("k", b"cbc secret", b"ctx")));
    assert_eq!(plain(h.call(dec(&t, b"ctx"))), b"cbc secret");
    assert!(matches!(
        h.call(dec(&t, b"other")),
        Err(BackendError::BadCiphertext(_))
    ));
    let env = Envelope::decode(&t).unwrap();
    for i in 0..env.reference.len() {
        let mut e = env.clone();
        e.reference[i] ^= 0x01;
        let r = h.call(Op::Decrypt {
            key: "k".into(),
            envelope: e,
            context: b"ctx".to_vec(),
        });
        assert!(
            matches!(r, Err(BackendError::BadCiphertext(_))),
            "byte {i}: {r:?}"
        );
    }
    let enc_req = h
        .sim
        .sent
        .iter()
        .find(|s| s.contains("Operation Enumeration Encrypt"))
        .unwrap()
        .clone();
    insta::assert_snapshot!("encrypt_cbc_v12_with_digest", enc_req);
    assert!(h.sim.sent[1].contains("Query"));
}

#[test]
fn versions_rotated_by_another_node_are_learned_by_the_periodic_refresh() {
    let mut h = H::new(&[Mode::Normal], true);
    h.start();
    assert_eq!(token(h.call(enc("k", b"x", b""))).1, 1);
    // Another keybroker node rotates: a second object with the same name appears.
    h.sim.objects.push(("2".into(), "k".into(), [2; 32]));
    assert_eq!(token(h.call(enc("k", b"x", b""))).1, 1, "not yet seen");
    assert!(h.b.poll_timeout().is_some());
    h.advance(REFRESH_EVERY);
    let (t, v) = token(h.call(enc("k", b"x", b"")));
    assert_eq!(v, 2);
    assert_eq!(plain(h.call(dec(&t, b""))), b"x");
    assert!(
        h.logs.iter().any(|l| l.contains("now has 2 versions")),
        "{:?}",
        h.logs
    );
}

#[test]
fn a_latest_version_never_activated_is_skipped_for_encryption() {
    let mut h = H::new(&[Mode::Normal], true);
    h.start();
    // A rotation elsewhere made an object whose Activate was lost: Locate lists it last.
    h.sim.objects.push(("2".into(), "k".into(), [2; 32]));
    h.sim.preactive.push("2".into());
    h.advance(REFRESH_EVERY);
    let (t, v) = token(h.call(enc("k", b"x", b"")));
    assert_eq!(v, 1, "encrypts under the newest usable version");
    assert_eq!(plain(h.call(dec(&t, b""))), b"x");
    assert!(
        h.logs.iter().any(|l| l.contains("not usable")),
        "{:?}",
        h.logs
    );
}
