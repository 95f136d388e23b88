//! Long timelines on a virtual clock: the Vault backend against an in-test Vault + IMDS
//! simulation for 24 h with 1 h leases. The simulation checks, independently of the backend,
//! that no request ever arrives with an expired (or unknown) token.
use keybroker_core::backend::kmip::Endpoint;
use keybroker_core::backend::vault::{AzureConfig, VaultAuthConfig, VaultBackend, VaultConfig};
use keybroker_core::backend::{BackendOutput, LinkSecurity, NetEvent, Op, Reply};
use keybroker_core::drbg::Drbg;
use keybroker_core::{Instant, Now, Secret};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

struct Sim {
    lease: Duration,
    max_ttl: Duration,
    tokens: HashMap<String, (Duration, Duration)>, // token -> (expires, max expiry)
    next_token: u32,
    violations: Vec<String>,
    logins: u32,
    renewals: u32,
    requests: u32,
}

fn answer(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Sim {
    fn issue(&mut self, now: Duration) -> (String, u64) {
        self.next_token += 1;
        let t = format!("s.tok{}", self.next_token);
        self.tokens
            .insert(t.clone(), (now + self.lease, now + self.max_ttl));
        (t, self.lease.as_secs())
    }

    fn handle(&mut self, now: Duration, imds: bool, raw: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let reqline = lines.next().unwrap().to_owned();
        let path = reqline.split(' ').nth(1).unwrap().to_owned();
        let headers: BTreeMap<String, String> = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_owned(), v.to_owned())
            })
            .collect();
        if imds {
            assert_eq!(headers.get("metadata").map(String::as_str), Some("true"));
            return if path.starts_with("/metadata/identity/oauth2/token?api-version=") {
                answer(
                    200,
                    r#"{"access_token":"eyJ.imds.jwt","expires_in":"3599","token_type":"Bearer","resource":"https://vault.hashicorp.com/"}"#,
                )
            } else {
                answer(
                    200,
                    r#"{"compute":{"name":"vm1","resourceGroupName":"rg","subscriptionId":"sub","vmScaleSetName":""}}"#,
                )
            };
        }
        self.requests += 1;
        if path == "/v1/auth/azure/login" {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["jwt"], "eyJ.imds.jwt");
            self.logins += 1;
            let (t, lease) = self.issue(now);
            return answer(
                200,
                &format!(
                    r#"{{"auth":{{"client_token":"{t}","lease_duration":{lease},"renewable":true}}}}"#
                ),
            );
        }
        let Some(tok) = headers.get("x-vault-token") else {
            self.violations.push(format!("{reqline} without a token"));
            return answer(403, r#"{"errors":["permission denied"]}"#);
        };
        let Some(&(exp, max)) = self.tokens.get(tok) else {
            self.violations
                .push(format!("{reqline} with unknown token"));
            return answer(403, r#"{"errors":["permission denied"]}"#);
        };
        if now >= exp {
            self.violations.push(format!(
                "{reqline} at {now:?} with token expired at {exp:?}"
            ));
            return answer(403, r#"{"errors":["permission denied"]}"#);
        }
        match path.as_str() {
            "/v1/auth/token/lookup-self" => {
                let ttl = (exp - now).as_secs();
                answer(
                    200,
                    &format!(r#"{{"data":{{"ttl":{ttl},"renewable":true}}}}"#),
                )
            }
            "/v1/auth/token/renew-self" => {
                self.renewals += 1;
                let new = (now + self.lease).min(max);
                self.tokens.insert(tok.clone(), (new, max));
                let lease = (new - now).as_secs();
                answer(
                    200,
                    &format!(
                        r#"{{"auth":{{"client_token":"{tok}","lease_duration":{lease},"renewable":true}}}}"#
                    ),
                )
            }
            "/v1/transit/keys/kms" => answer(
                200,
                r#"{"data":{"latest_version":1,"min_decryption_version":1,"keys":{"1":1},"type":"aes256-gcm96"}}"#,
            ),
            "/v1/transit/encrypt/kms" => {
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                assert_eq!(v["key_version"], 1);
                match v["batch_input"].as_array() {
                    Some(items) => {
                        let r: Vec<String> = items
                            .iter()
                            .map(|_| {
                                r#"{"ciphertext":"vault:v1:QUJD","key_version":1}"#.to_string()
                            })
                            .collect();
                        answer(
                            200,
                            &format!(r#"{{"data":{{"batch_results":[{}]}}}}"#, r.join(",")),
                        )
                    }
                    None => answer(
                        200,
                        r#"{"data":{"ciphertext":"vault:v1:QUJD","key_version":1}}"#,
                    ),
                }
            }
            p => panic!("unexpected request {p}"),
        }
    }
}

struct Outcome {
    sim: Sim,
    ok: u32,
    failed: u32,
    ready_samples_false: u32,
    /// Every request sent with a token: (when, the time the backend said the token had left).
    sent_with_token: Vec<(Duration, Option<Duration>)>,
}

fn run(auth: VaultAuthConfig, sim: Sim, span: Duration) -> Outcome {
    let mut sim = sim;
    let mut b = VaultBackend::new(VaultConfig {
        endpoints: vec![Endpoint {
            host: "vault.test".into(),
            port: 8200,
        }],
        security: LinkSecurity::VaultTls,
        namespace: None,
        mount: "transit".into(),
        keys: vec!["kms".into()],
        auto_create: false,
        renew_before: Duration::from_secs(30),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        max_links: 2,
        auth,
        key_refresh: Duration::from_secs(60),
    });
    let mut rng = Drbg::new();
    rng.reseed(&[9; 32]);
    let at = |d: Duration| Now {
        mono: Instant::from_epoch(d),
        unix_secs: 1_700_000_000 + d.as_secs() as i64,
    };
    let mut now = Duration::from_secs(1);
    let mut events: Vec<(Duration, NetEvent)> = Vec::new();
    let mut imds_links = std::collections::HashSet::new();
    b.start(at(now));
    let mut next_op = now + Duration::from_secs(5);
    let mut op_id = 0u64;
    let (mut ok, mut failed, mut ready_false) = (0, 0, 0);
    let latency = Duration::from_millis(20);
    let mut sent_with_token = Vec::new();
    while now < span {
        // carry out what the backend asks
        while let Some(out) = b.poll_output() {
            match out {
                BackendOutput::Connect { link, host, .. } => {
                    if host == "imds.test" {
                        imds_links.insert(link);
                    }
                    events.push((now + latency, NetEvent::Connected { link }));
                }
                BackendOutput::Send { link, bytes } => {
                    if has_token_header(&bytes) {
                        sent_with_token.push((now, b.token_expires_in()));
                    }
                    let reply = sim.handle(now, imds_links.contains(&link), &bytes);
                    events.push((now + latency, NetEvent::Received { link, bytes: reply }));
                }
                BackendOutput::Close { .. }
                | BackendOutput::Log { .. }
                | BackendOutput::PersistSoftKeys(_) => {}
            }
        }
        while let Some((_, r)) = b.poll_reply() {
            match r {
                Ok(Reply::Ciphertext { .. }) => ok += 1,
                _ => failed += 1,
            }
        }
        // next instant: an event, a backend deadline, or the next client request
        let mut next = next_op;
        if let Some(t) = b.poll_timeout() {
            next = next.min(t.since_epoch());
        }
        if let Some(t) = events.iter().map(|e| e.0).min() {
            next = next.min(t);
        }
        now = next.max(now);
        if let Some(i) = events.iter().position(|e| e.0 <= now) {
            let (_, ev) = events.remove(i);
            b.handle_net(at(now), ev);
            continue;
        }
        b.handle_timeout(at(now));
        if now >= next_op {
            if !b.is_ready() {
                ready_false += 1;
            }
            for _ in 0..3 {
                op_id += 1;
                b.submit(
                    at(now),
                    op_id,
                    Op::Encrypt {
                        key: "kms".into(),
                        plaintext: Secret::new(b"dk".to_vec()),
                        context: vec![],
                    },
                    &mut rng,
                );
            }
            next_op = now + Duration::from_secs(137);
        }
    }
    Outcome {
        sent_with_token,
        sim,
        ok,
        failed,
        ready_samples_false: ready_false,
    }
}

/// Whether an HTTP request's head carries `X-Vault-Token`.
fn has_token_header(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n")
        .any(|l| l.to_ascii_lowercase().starts_with("x-vault-token:"))
}

fn sim(lease: Duration, max_ttl: Duration) -> Sim {
    Sim {
        lease,
        max_ttl,
        tokens: HashMap::new(),
        next_token: 0,
        violations: vec![],
        logins: 0,
        renewals: 0,
        requests: 0,
    }
}

#[test]
fn azure_24h_with_1h_leases_never_sends_an_expired_token() {
    let auth = VaultAuthConfig::Azure(AzureConfig {
        role: "kms".into(),
        path: "/v1/auth/azure/login".into(),
        resource: "https://vault.hashicorp.com/".into(),
        imds_host: "imds.test".into(),
        imds_port: 80,
    });
    let o = run(auth, sim(HOUR, 4 * HOUR), 24 * HOUR);
    assert!(
        o.sim.violations.is_empty(),
        "{:?}",
        &o.sim.violations[..o.sim.violations.len().min(5)]
    );
    assert!(
        o.sent_with_token.len() > 1800,
        "{}",
        o.sent_with_token.len()
    );
    let late = o
        .sent_with_token
        .iter()
        .find(|(_, left)| left.is_some_and(|l| l.is_zero()));
    assert!(late.is_none(), "sent with an expired token at {late:?}");
    // 24 h / 4 h max TTL: a login at start plus about one per 4 h; renewals in between.
    assert!((6..=8).contains(&o.sim.logins), "logins {}", o.sim.logins);
    assert!(o.sim.renewals >= 15, "renewals {}", o.sim.renewals);
    assert_eq!(o.failed, 0, "every request served; ok {}", o.ok);
    assert!(o.ok > 1800, "ok {}", o.ok);
    assert_eq!(o.ready_samples_false, 0);
}

#[test]
fn token_with_max_ttl_stops_sending_before_expiry_and_readiness_fails_first() {
    let mut s = sim(HOUR, 10 * HOUR);
    let (t, _) = s.issue(Duration::ZERO);
    let o = run(VaultAuthConfig::Token(Secret::new(t)), s, 24 * HOUR);
    assert!(
        o.sim.violations.is_empty(),
        "{:?}",
        &o.sim.violations[..o.sim.violations.len().min(5)]
    );
    assert!(o.sim.renewals >= 9, "renewals {}", o.sim.renewals);
    // Served for ~10 h, then refused (503/timeout) — never with an expired token.
    assert!(
        o.ok > 600 && o.failed > 600,
        "ok {} failed {}",
        o.ok,
        o.failed
    );
    assert!(
        o.ready_samples_false > 0,
        "readiness must fail once the token cannot be renewed"
    );
}
