//! VaultBackend behaviour with scripted Vault answers: error mapping, timeouts, keep-alive
//! reuse, batching, and waiting for a token.
use keybroker_core::backend::kmip::Endpoint;
use keybroker_core::backend::vault::{VaultAuthConfig, VaultBackend, VaultConfig};
use keybroker_core::backend::{BackendError, BackendOutput, LinkSecurity, NetEvent, Op, Reply};
use keybroker_core::drbg::Drbg;
use keybroker_core::envelope::{BackendKind, Envelope};
use keybroker_core::{Instant, Now, Secret};
use std::time::Duration;

fn at(s: f64) -> Now {
    Now {
        mono: Instant::from_epoch(Duration::from_secs_f64(s)),
        unix_secs: 1_700_000_000,
    }
}

fn resp(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Token auth, transit key `kms`, 10 s timeout, 2 links per node.
fn config(endpoints: Vec<Endpoint>) -> VaultConfig {
    VaultConfig {
        endpoints,
        security: LinkSecurity::VaultTls,
        namespace: None,
        mount: "transit".into(),
        keys: vec!["kms".into()],
        auto_create: false,
        renew_before: Duration::from_secs(30),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        max_links: 2,
        auth: VaultAuthConfig::Token(Secret::new("s.SECRET-TOKEN".into())),
        key_refresh: Duration::from_secs(60),
    }
}

struct T {
    b: VaultBackend,
    rng: Drbg,
    sent: Vec<(u64, String)>,
    connects: u32,
}

impl T {
    fn new() -> T {
        let mut b = VaultBackend::new(VaultConfig {
            namespace: Some("eng".into()),
            max_links: 4,
            ..config(vec![Endpoint {
                host: "vault.test".into(),
                port: 8200,
            }])
        });
        let mut rng = Drbg::new();
        rng.reseed(&[1; 32]);
        b.start(at(0.0));
        T {
            b,
            rng,
            sent: vec![],
            connects: 0,
        }
    }
    /// Carries outputs: connects succeed at once; sent requests are recorded.
    fn pump(&mut self, now: f64) {
        while let Some(o) = self.b.poll_output() {
            match o {
                BackendOutput::Connect { link, .. } => {
                    self.connects += 1;
                    self.b.handle_net(at(now), NetEvent::Connected { link });
                }
                BackendOutput::Send { link, bytes } => {
                    let s = String::from_utf8(bytes).unwrap();
                    assert!(s.contains("x-vault-namespace: eng\r\n"));
                    self.sent.push((link, s));
                }
                _ => {}
            }
        }
    }
    /// Answers the oldest unanswered request whose first line contains `path`.
    fn answer(&mut self, now: f64, path: &str, status: u16, body: &str) {
        let i = self
            .sent
            .iter()
            .position(|(_, s)| s.lines().next().unwrap().contains(path))
            .unwrap_or_else(|| {
                panic!(
                    "no request for {path}: {:?}",
                    self.sent
                        .iter()
                        .map(|s| s.1.lines().next().unwrap().to_owned())
                        .collect::<Vec<_>>()
                )
            });
        let (link, _) = self.sent.remove(i);
        self.b.handle_net(
            at(now),
            NetEvent::Received {
                link,
                bytes: resp(status, body),
            },
        );
        self.pump(now);
    }
    fn ready(&mut self) {
        self.pump(0.0);
        self.answer(
            0.1,
            "lookup-self",
            200,
            r#"{"data":{"ttl":0,"renewable":false}}"#,
        );
        self.answer(0.1, "/keys/kms", 200, r#"{"data":{"latest_version":3,"min_decryption_version":1,"keys":{"1":1,"2":2,"3":3},"type":"aes256-gcm96"}}"#);
        assert!(self.b.is_ready());
    }
    fn encrypt(&mut self, now: f64, id: u64) {
        self.b.submit(
            at(now),
            id,
            Op::Encrypt {
                key: "kms".into(),
                plaintext: Secret::new(b"pt".to_vec()),
                context: b"ctx".to_vec(),
            },
            &mut self.rng,
        );
        self.pump(now);
    }
    fn reply(&mut self) -> (u64, Result<Reply, BackendError>) {
        self.b.poll_reply().expect("a reply")
    }
}

#[test]
fn work_waits_for_the_token_lookup_then_goes() {
    let mut t = T::new();
    t.pump(0.0);
    t.encrypt(0.0, 1);
    assert_eq!(
        t.sent.len(),
        1,
        "only lookup-self is out before the token is confirmed"
    );
    t.answer(
        0.1,
        "lookup-self",
        200,
        r#"{"data":{"ttl":0,"renewable":false}}"#,
    );
    t.answer(
        0.1,
        "/keys/kms",
        200,
        r#"{"data":{"latest_version":3,"keys":{"3":3},"type":"aes256-gcm96"}}"#,
    );
    let req = &t.sent[0].1;
    assert!(req.starts_with("POST /v1/transit/encrypt/kms "));
    assert!(req.contains("\"key_version\":3"));
    let aad = Envelope::aad(BackendKind::Vault, "kms", 3, b"ctx");
    use base64::Engine;
    assert!(req.contains(&base64::engine::general_purpose::STANDARD.encode(aad)));
    t.answer(
        0.2,
        "encrypt",
        200,
        r#"{"data":{"ciphertext":"vault:v3:QUJD","key_version":3}}"#,
    );
    let (id, r) = t.reply();
    let Ok(Reply::Ciphertext {
        token,
        key_version: 3,
    }) = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(id, 1);
    let env = Envelope::decode(&token).unwrap();
    assert_eq!(env.reference, b"vault:v3:QUJD");
    assert!(!format!("{:?}", t.b).contains("SECRET"));
}

#[test]
fn items_of_one_step_go_as_one_batch_and_links_are_reused() {
    let mut t = T::new();
    t.ready();
    for i in 0..5 {
        t.b.submit(
            at(1.0),
            i,
            Op::Encrypt {
                key: "kms".into(),
                plaintext: Secret::new(vec![i as u8]),
                context: vec![],
            },
            &mut t.rng,
        );
    }
    t.pump(1.0);
    assert_eq!(t.sent.len(), 1);
    assert!(t.sent[0].1.contains("\"batch_input\""));
    assert!(t.sent[0]
        .1
        .contains("\"partial_failure_response_code\":200"));
    let items: Vec<String> = (0..5)
        .map(|_| r#"{"ciphertext":"vault:v3:QUJD","key_version":3}"#.into())
        .collect();
    t.answer(
        1.1,
        "encrypt",
        200,
        &format!(r#"{{"data":{{"batch_results":[{}]}}}}"#, items.join(",")),
    );
    for _ in 0..5 {
        assert!(t.reply().1.is_ok());
    }
    let before = t.connects;
    for i in 10..13 {
        t.encrypt(2.0 + i as f64, i);
        t.answer(
            2.1 + i as f64,
            "encrypt",
            200,
            r#"{"data":{"ciphertext":"vault:v3:QUJD","key_version":3}}"#,
        );
    }
    assert_eq!(
        t.connects, before,
        "sequential requests reuse a keep-alive link"
    );
}

/// JSON strings (object keys and string values) in a value, as Vault's input limit counts them.
fn json_strings(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::String(_) => 1,
        serde_json::Value::Array(a) => a.iter().map(json_strings).sum(),
        serde_json::Value::Object(o) => o.values().map(|x| 1 + json_strings(x)).sum(),
        _ => 0,
    }
}

#[test]
fn a_batch_of_1000_is_split_under_vaults_1000_json_strings_limit() {
    // Found by scripts/bench: OpenBao 2.7 refused keybroker's single 1,000-item batch_input
    // ("refused JSON input due to high complexity: exceeded maximum number of strings").
    let mut t = T::new();
    t.ready();
    for i in 0..1000 {
        t.b.submit(
            at(1.0),
            i,
            Op::Encrypt {
                key: "kms".into(),
                plaintext: Secret::new(vec![i as u8]),
                context: b"tenant=7".to_vec(),
            },
            &mut t.rng,
        );
    }
    t.pump(1.0);
    assert!(t.sent.len() >= 2, "one request for 1000 items");
    let mut items = 0;
    for (_, s) in &t.sent {
        let body: serde_json::Value =
            serde_json::from_str(s.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert!(
            json_strings(&body) <= 1000,
            "{} JSON strings",
            json_strings(&body)
        );
        items += body["batch_input"].as_array().unwrap().len();
    }
    // The rest wait for a free link (max_links 4).
    assert_eq!(items, t.sent.len() * 200);
}

#[test]
fn permission_denied_names_the_policy_path_and_sealed_is_503() {
    let mut t = T::new();
    t.ready();
    let env = Envelope {
        backend: BackendKind::Vault,
        key_name: "kms".into(),
        key_version: 3,
        reference: b"vault:v3:QUJD".to_vec(),
    };
    t.b.submit(
        at(1.0),
        7,
        Op::Decrypt {
            key: "kms".into(),
            envelope: env.clone(),
            context: vec![],
        },
        &mut t.rng,
    );
    t.pump(1.0);
    t.answer(
        1.1,
        "decrypt",
        403,
        r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#,
    );
    let (_, r) = t.reply();
    let Err(BackendError::Failed(m)) = r else {
        panic!("{r:?}")
    };
    assert!(
        m.contains("\"update\" on path \"transit/decrypt/kms\" in namespace \"eng\""),
        "{m}"
    );
    t.encrypt(2.0, 8);
    let mut sealed = resp(503, r#"{"errors":["Vault is sealed"]}"#);
    sealed.splice(16..16, b"Retry-After: 9\r\n".iter().copied());
    let link = t.sent.remove(0).0;
    t.b.handle_net(
        at(2.1),
        NetEvent::Received {
            link,
            bytes: sealed,
        },
    );
    let (_, r) = t.reply();
    assert_eq!(
        r.unwrap_err(),
        BackendError::Unavailable {
            reason: "Vault is sealed".into(),
            retry_after: Duration::from_secs(9)
        }
    );
    assert!(!t.b.is_ready());
    // while the node's breaker is open (1 s), requests fail at once without reaching Vault
    t.encrypt(2.5, 11);
    assert!(t.sent.is_empty());
    let (id, r) = t.reply();
    assert!(
        matches!(&r, Err(BackendError::Unavailable { reason, .. }) if id == 11 && reason.contains("sealed")),
        "{r:?}"
    );
    // a wrong context / tampered ciphertext is a 400, and a version mismatch never reaches Vault
    t.b.submit(
        at(3.2),
        9,
        Op::Decrypt {
            key: "kms".into(),
            envelope: env.clone(),
            context: vec![],
        },
        &mut t.rng,
    );
    t.pump(3.2);
    t.answer(
        3.3,
        "decrypt",
        400,
        r#"{"errors":["cipher: message authentication failed"]}"#,
    );
    assert!(matches!(t.reply().1, Err(BackendError::BadCiphertext(_))));
    let forged = Envelope {
        key_version: 2,
        ..env
    };
    t.b.submit(
        at(4.0),
        10,
        Op::Decrypt {
            key: "kms".into(),
            envelope: forged,
            context: vec![],
        },
        &mut t.rng,
    );
    t.pump(4.0);
    assert!(matches!(t.reply().1, Err(BackendError::BadCiphertext(_))));
}

#[test]
fn no_answer_in_time_is_a_timeout() {
    let mut t = T::new();
    t.ready();
    t.encrypt(1.0, 1);
    assert!(t.b.poll_timeout().unwrap() <= at(11.0).mono);
    t.b.handle_timeout(at(11.0));
    t.pump(11.0);
    let (id, r) = t.reply();
    assert_eq!((id, r.unwrap_err()), (1, BackendError::Timeout));
}

fn split_url(url: &str, port: Option<u16>) -> Result<(bool, String, u16), String> {
    use keybroker_core::config::endpoint::{parse, UrlKind};
    parse(UrlKind::Vault, url, port).map(|u| (u.tls, u.endpoint.host, u.endpoint.port))
}

#[test]
fn urls_split() {
    assert_eq!(
        split_url("https://vault.example.com", None).unwrap(),
        (true, "vault.example.com".into(), 443)
    );
    assert_eq!(
        split_url("http://127.0.0.1:8200/", Some(9)).unwrap(),
        (false, "127.0.0.1".into(), 9)
    );
    assert_eq!(
        split_url("https://[::1]:8200", None).unwrap(),
        (true, "::1".into(), 8200)
    );
    assert!(split_url("vault:8200", None).is_err());
}

/// Three Vault nodes (ports 8201-8203); connects to `refused` ports fail at once.
struct Cluster {
    b: VaultBackend,
    rng: Drbg,
    port_of: std::collections::BTreeMap<u64, u16>,
    refused: Vec<u16>,
    /// (link, port, request) not yet answered.
    sent: Vec<(u64, u16, String)>,
}

impl Cluster {
    fn new(refused: &[u16]) -> Cluster {
        let mut b = VaultBackend::new(config(
            (8201..=8203)
                .map(|port| Endpoint {
                    host: "127.0.0.1".into(),
                    port,
                })
                .collect(),
        ));
        let mut rng = Drbg::new();
        rng.reseed(&[3; 32]);
        b.start(at(0.0));
        Cluster {
            b,
            rng,
            port_of: Default::default(),
            refused: refused.to_vec(),
            sent: vec![],
        }
    }
    fn pump(&mut self, now: f64) {
        while let Some(o) = self.b.poll_output() {
            match o {
                BackendOutput::Connect { link, port, .. } => {
                    self.port_of.insert(link, port);
                    let ev = if self.refused.contains(&port) {
                        NetEvent::Closed {
                            link,
                            reason: "connection refused".into(),
                        }
                    } else {
                        NetEvent::Connected { link }
                    };
                    self.b.handle_net(at(now), ev);
                }
                BackendOutput::Send { link, bytes } => {
                    let s = String::from_utf8(bytes).unwrap();
                    let port = self.port_of[&link];
                    assert!(s.contains(&format!("host: 127.0.0.1:{port}\r\n")), "{s}");
                    self.sent.push((link, port, s));
                }
                _ => {}
            }
        }
    }
    fn rotate(&mut self, now: f64, id: u64) {
        self.b
            .submit(at(now), id, Op::Rotate { key: "kms".into() }, &mut self.rng);
        self.pump(now);
    }
    /// Answers the token lookup and the key read; returns the port the lookup went to.
    fn ready(&mut self) -> u16 {
        self.pump(0.0);
        let port = self.answer(
            0.1,
            "lookup-self",
            200,
            r#"{"data":{"ttl":0,"renewable":false}}"#,
        );
        self.answer(0.1, "/keys/kms", 200, KEY);
        assert!(self.b.is_ready());
        port
    }
    fn encrypt(&mut self, now: f64, id: u64) {
        self.b.submit(
            at(now),
            id,
            Op::Encrypt {
                key: "kms".into(),
                plaintext: Secret::new(b"pt".to_vec()),
                context: vec![],
            },
            &mut self.rng,
        );
        self.pump(now);
    }
    /// Answers the oldest request for `path`; returns the port it went to.
    fn answer(&mut self, now: f64, path: &str, status: u16, body: &str) -> u16 {
        let i = self
            .sent
            .iter()
            .position(|(_, _, s)| s.lines().next().unwrap().contains(path))
            .unwrap_or_else(|| panic!("no request for {path}: {:?}", self.sent));
        let (link, port, _) = self.sent.remove(i);
        self.b.handle_net(
            at(now),
            NetEvent::Received {
                link,
                bytes: resp(status, body),
            },
        );
        self.pump(now);
        port
    }
}

const KEY: &str = r#"{"data":{"latest_version":1,"min_decryption_version":1,"keys":{"1":1},"type":"aes256-gcm96"}}"#;
const ROTATED: &str = r#"{"data":{"latest_version":2,"min_decryption_version":1,"keys":{"1":1,"2":2},"type":"aes256-gcm96"}}"#;
const ENCRYPTED: &str = r#"{"data":{"ciphertext":"vault:v1:QUJD","key_version":1}}"#;

#[test]
fn failover_skips_a_dead_node_and_a_standby_then_comes_back_after_the_breaker() {
    let mut c = Cluster::new(&[8201]);
    assert_eq!(c.ready(), 8202, "the refused first node is skipped");
    // A standby (429) and a sealed node (503) send the request on to the next node.
    c.encrypt(0.2, 1);
    assert_eq!(c.answer(0.3, "encrypt", 429, r#"{"errors":[]}"#), 8202);
    assert!(c.b.poll_reply().is_none(), "not answered yet: retried");
    assert_eq!(c.answer(0.4, "encrypt", 200, ENCRYPTED), 8203);
    let (id, r) = c.b.poll_reply().expect("a reply");
    assert!(matches!(
        (id, r),
        (1, Ok(Reply::Ciphertext { key_version: 1, .. }))
    ));
    assert!(c.b.is_ready());
    // 8201 comes back; after its breaker's pause it takes requests again: here when the
    // node that has links (8203) is sealed.
    c.refused.clear();
    c.b.handle_timeout(at(5.0));
    c.encrypt(5.0, 2);
    assert_eq!(
        c.answer(5.1, "encrypt", 503, r#"{"errors":["Vault is sealed"]}"#),
        8203
    );
    assert_eq!(c.answer(5.2, "encrypt", 200, ENCRYPTED), 8201);
    assert!(c.b.poll_reply().unwrap().1.is_ok());
}

#[test]
fn a_rotate_is_not_sent_twice_unless_vault_did_nothing() {
    let mut c = Cluster::new(&[]);
    c.ready();
    c.rotate(0.2, 1);
    // A 500 may have rotated: not retried, a clear error.
    assert_eq!(
        c.answer(0.3, "rotate", 500, r#"{"errors":["internal error"]}"#),
        8201
    );
    let (_, r) = c.b.poll_reply().expect("a reply");
    assert!(r.is_err(), "{r:?}");
    assert!(c.sent.is_empty());
    // A standby's 503 did nothing: the next node rotates.
    c.rotate(0.4, 2);
    assert_eq!(
        c.answer(
            0.5,
            "rotate",
            503,
            r#"{"errors":["node is in standby mode"]}"#
        ),
        8202
    );
    assert_eq!(c.answer(0.6, "rotate", 204, ""), 8203);
    c.answer(0.7, "/keys/kms", 200, KEY);
    assert!(c.b.poll_reply().unwrap().1.is_ok());
}

#[test]
fn a_rotate_answer_is_believed_and_a_lagging_standby_does_not_take_the_version_back() {
    let mut c = Cluster::new(&[]);
    c.ready();
    c.rotate(0.2, 1);
    c.answer(0.3, "rotate", 200, ROTATED);
    let (_, r) = c.b.poll_reply().expect("a reply");
    assert!(matches!(r, Ok(Reply::Rotated { key_version: 2 })), "{r:?}");
    assert!(c.sent.is_empty(), "no key read needed");
    // The periodic read is answered by a node that has not seen the rotation yet.
    c.b.handle_timeout(at(60.5));
    c.pump(60.5);
    c.answer(60.6, "/keys/kms", 200, KEY);
    c.encrypt(61.0, 2);
    let req = &c.sent.iter().find(|s| s.2.contains("encrypt")).unwrap().2;
    assert!(req.contains("\"key_version\":2"), "{req}");
}

#[test]
fn a_standby_that_has_not_seen_a_rotation_is_passed_over_but_a_forged_version_is_not() {
    let mut c = Cluster::new(&[]);
    c.ready();
    c.rotate(0.2, 1);
    c.answer(0.3, "rotate", 200, ROTATED);
    assert!(c.b.poll_reply().unwrap().1.is_ok());
    let decrypt = |c: &mut Cluster, id: u64, version: u32| {
        let envelope = Envelope {
            backend: BackendKind::Vault,
            key_name: "kms".into(),
            key_version: version,
            reference: format!("vault:v{version}:QUJD").into_bytes(),
        };
        c.b.submit(
            at(0.4),
            id,
            Op::Decrypt {
                key: "kms".into(),
                envelope,
                context: vec![],
            },
            &mut c.rng,
        );
        c.pump(0.4);
    };
    let too_new = r#"{"errors":["invalid ciphertext: version is too new"]}"#;
    decrypt(&mut c, 2, 2);
    let first = c.answer(0.5, "decrypt", 400, too_new);
    assert!(c.b.poll_reply().is_none(), "sent on to another node");
    let second = c.answer(0.6, "decrypt", 200, r#"{"data":{"plaintext":"cHQ="}}"#);
    assert_ne!(first, second);
    let (id, r) = c.b.poll_reply().unwrap();
    assert!(matches!((id, &r), (2, Ok(Reply::Plaintext(_)))), "{r:?}");
    // Version 9 does not exist as far as keybroker knows: Vault's 400 stands.
    decrypt(&mut c, 3, 9);
    c.answer(0.7, "decrypt", 400, too_new);
    let (id, r) = c.b.poll_reply().unwrap();
    assert!(
        matches!((id, &r), (3, Err(BackendError::BadCiphertext(_)))),
        "{r:?}"
    );
    assert!(c.sent.is_empty());
}

#[test]
fn token_expiry_is_known_for_metrics() {
    let mut t = T::new();
    t.pump(0.0);
    assert_eq!(t.b.token_expires_in(), None, "not yet looked up");
    t.answer(
        10.0,
        "lookup-self",
        200,
        r#"{"data":{"ttl":3600,"renewable":true}}"#,
    );
    // The lease counts from when lookup-self went out (0 s), not from its answer (10 s).
    let left = t.b.token_expires_in().expect("an expiring token");
    assert!(
        (Duration::from_secs(3589)..=Duration::from_secs(3590)).contains(&left),
        "{left:?}"
    );
    assert_eq!(t.b.endpoints().len(), 1);
    assert_eq!(t.b.endpoints()[0].name, "vault.test:8200");
}

/// A call that waited for a link and was then sent keeps only its answer deadline: its passed
/// queue deadline must not stay in `poll_timeout`, or a shell's timer spins until the answer.
#[test]
fn a_sent_call_does_not_leave_a_passed_deadline_behind() {
    let mut t = T::new();
    t.ready();
    // Vault closed the idle keep-alive links: the next call needs a new one.
    for link in 1..=8 {
        t.b.handle_net(
            at(0.5),
            NetEvent::Closed {
                link,
                reason: "idle".into(),
            },
        );
    }
    t.b.submit(
        at(1.0),
        1,
        Op::Encrypt {
            key: "kms".into(),
            plaintext: Secret::new(b"pt".to_vec()),
            context: b"ctx".to_vec(),
        },
        &mut t.rng,
    );
    let mut link = None;
    while let Some(o) = t.b.poll_output() {
        if let BackendOutput::Connect { link: l, .. } = o {
            link = Some(l);
        }
    }
    // The link comes up just before the call's 10 s queue deadline; the call goes out then.
    t.b.handle_net(
        at(10.5),
        NetEvent::Connected {
            link: link.expect("a new link"),
        },
    );
    t.pump(10.5);
    assert!(t
        .sent
        .iter()
        .any(|(_, s)| s.starts_with("POST /v1/transit/encrypt/kms ")));
    t.b.handle_timeout(at(11.5));
    t.pump(11.5);
    let next = t.b.poll_timeout().expect("the encrypt's answer deadline");
    assert_eq!(
        next,
        at(20.5).mono,
        "the answer deadline of the call sent at 10.5 s"
    );
}

/// A rotation whose reused keep-alive link breaks before the answer is not sent again: Vault
/// may have carried it out, and a second one would make another key version.
#[test]
fn a_rotation_is_never_sent_twice() {
    let mut t = T::new();
    t.ready();
    t.encrypt(1.0, 1);
    t.answer(
        1.1,
        "encrypt",
        200,
        r#"{"data":{"ciphertext":"vault:v3:QUJD","key_version":3}}"#,
    );
    let _ = t.reply();
    t.b.submit(at(2.0), 2, Op::Rotate { key: "kms".into() }, &mut t.rng);
    t.pump(2.0);
    let i = t
        .sent
        .iter()
        .position(|(_, s)| s.contains("/rotate "))
        .expect("rotate sent");
    let (link, _) = t.sent.remove(i);
    t.b.handle_net(
        at(2.1),
        NetEvent::Closed {
            link,
            reason: "reset".into(),
        },
    );
    t.pump(2.1);
    assert!(
        !t.sent.iter().any(|(_, s)| s.contains("/rotate ")),
        "the rotation went out again"
    );
    let (id, r) = t.reply();
    assert_eq!(id, 2);
    assert!(matches!(r, Err(BackendError::Unavailable { .. })), "{r:?}");
}

/// lookup-self answering ttl 0 with an `expire_time` is a token in its last second, not a
/// token that never expires: nothing may be sent with it afterwards.
#[test]
fn ttl_zero_with_an_expiry_time_is_not_a_token_that_never_expires() {
    let mut t = T::new();
    t.pump(0.0);
    t.encrypt(0.0, 1);
    t.answer(
        0.1,
        "lookup-self",
        200,
        r#"{"data":{"ttl":0,"renewable":true,"expire_time":"2027-01-15T08:00:00Z"}}"#,
    );
    // Without a valid token the key read does not go out either; if it did, answer it.
    if t.sent.iter().any(|(_, s)| s.contains("/keys/kms")) {
        t.answer(
            0.1,
            "/keys/kms",
            200,
            r#"{"data":{"latest_version":1,"keys":{"1":1},"type":"aes256-gcm96"}}"#,
        );
    }
    assert!(
        !t.sent.iter().any(|(_, s)| s.contains("/encrypt/")),
        "an encrypt went out with an expired token"
    );
}

/// A lease counts from when the lookup went out, not from when its answer arrived: a slow
/// answer must not stretch the token past its real expiry.
#[test]
fn a_late_answer_does_not_stretch_the_token() {
    let mut t = T::new();
    t.pump(0.0);
    // Sent at 0 s, answered at 3 s: the token ends at 10 s, not 13 s.
    t.answer(
        3.0,
        "lookup-self",
        200,
        r#"{"data":{"ttl":10,"renewable":false}}"#,
    );
    t.answer(
        3.0,
        "/keys/kms",
        200,
        r#"{"data":{"latest_version":1,"keys":{"1":1},"type":"aes256-gcm96"}}"#,
    );
    t.b.handle_timeout(at(11.0));
    t.pump(11.0);
    t.encrypt(11.0, 1);
    assert!(
        !t.sent.iter().any(|(_, s)| s.contains("/encrypt/")),
        "an encrypt went out at 11 s with a token that ended at 10 s"
    );
}

/// A renewal that grants no more time (the token's max TTL is used up) leaves the token ending
/// when it did; it must not become a token that never expires (found by keybroker-sim, seed 74:
/// an encrypt went out 24 s after the token's end).
#[test]
fn a_renewal_granting_nothing_does_not_make_the_token_eternal() {
    let mut t = T::new();
    t.pump(0.0);
    t.answer(
        0.0,
        "lookup-self",
        200,
        r#"{"data":{"ttl":20,"renewable":true}}"#,
    );
    t.answer(
        0.0,
        "/keys/kms",
        200,
        r#"{"data":{"latest_version":1,"keys":{"1":1},"type":"aes256-gcm96"}}"#,
    );
    // renew-before (30 s) exceeds the lease: the renewal goes out at half of it.
    t.b.handle_timeout(at(10.0));
    t.pump(10.0);
    t.answer(
        10.0,
        "renew-self",
        200,
        r#"{"auth":{"client_token":"s.SECRET-TOKEN","lease_duration":0,"renewable":true}}"#,
    );
    let left = t.b.token_expires_in().expect("the token still ends");
    assert!(left <= Duration::from_secs(10), "{left:?}");
    // Past its end nothing is sent with it.
    t.b.handle_timeout(at(21.0));
    t.encrypt(21.0, 7);
    assert!(
        t.sent.iter().all(|(_, s)| !s.contains("/transit/encrypt/")),
        "{:?}",
        t.sent
    );
}
