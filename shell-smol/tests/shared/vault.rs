// The HTTP API with `kms.hsm.protocol=VAULT` against a real OpenBao (`bao server -dev`, TLS),
// started per test: token renewal for real, a namespace, a policy lacking decrypt, the
// Connected-KMS transit policy alone, sealing mid-run, and Azure login through OpenBao's jwt auth
// with a loopback IMDS double.
//
// One suite, two shells: `include!`d by shell-smol/tests/vault.rs (BIN = keybroker) and
// shell-blocking/tests/vault.rs (BIN = keybroker-lite), each declaring `mod common` and `BIN`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::imds::Imds;
use common::openbao::{Bao, SEED_POLICY};
use common::{promtool_check, Node, Site};
use common::raw::Conn;
use keybroker_client::{Answer, Client};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FULL_POLICY: &str = r#"
path "transit/*" {
  capabilities = [ "create", "read", "update", "list" ]
}
"#;

fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

/// A site whose kms.properties points at `bao` with `token` in a token file.
fn site(bao: &Bao, token: &str, extra: &str) -> Site {
    let s = Site::new("");
    std::fs::write(s.dir.join("vault-token"), format!("{token}\n")).unwrap();
    let props = std::fs::read_to_string(s.properties()).unwrap();
    std::fs::write(
        s.properties(),
        format!(
            "{props}kms.hsm.protocol=VAULT\nkms.hsm.server.url=https://127.0.0.1\nkms.hsm.server.port={}\n\
             keybroker.vault.ca-file={}\nkeybroker.vault.token-file=vault-token\nkeybroker.vault.timeout=5\n{extra}\n",
            bao.port,
            bao.ca().display()
        ),
    )
    .unwrap();
    s
}

fn post(c: &Client, path: &str, body: Value) -> Answer {
    c.request("POST", path, Some(&body)).unwrap()
}

fn wait_ready(node: &Node, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if node.admin_get("/readyz").0 == 200 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn assert_no_secret(node: &Node, secrets: &[&str]) {
    for l in node.log.lock().unwrap().iter() {
        for s in secrets {
            assert!(!l.contains(s), "secret in log line: {l}");
        }
    }
}

#[test]
fn whole_api_over_tls() {
    let bao = Bao::start(true);
    bao.policy(None, "kms-app", FULL_POLICY);
    let token = bao.token(None, "kms-app", &[]);
    let s = site(&bao, &token, "");
    let node = Node::start_bin(BIN, &s);
    assert!(
        wait_ready(&node, Duration::from_secs(10)),
        "{:?}",
        node.log.lock().unwrap()
    );
    let c = node.connect(&s, "backend");
    common::walk::whole_api(&c, "vault");
    // The key's own name reaches the same transit key.
    let e = c.encrypt("kms", common::walk::PLAINTEXT, b"").unwrap();
    assert_eq!(e.key_version, 2);
    assert_eq!(
        c.decrypt("default", &e.ciphertext, b"").unwrap().expose(),
        common::walk::PLAINTEXT
    );
    assert_no_secret(&node, &[&token, "aGVsbG8"]);
}

#[test]
fn policy_without_decrypt_is_a_clear_502() {
    let bao = Bao::start(true);
    bao.policy(None, "enc-only", "path \"transit/encrypt/*\" { capabilities = [\"update\"] }\npath \"transit/keys/*\" { capabilities = [\"read\"] }\n");
    let token = bao.token(None, "enc-only", &[]);
    let s = site(&bao, &token, "");
    let node = Node::start_bin(BIN, &s);
    assert!(wait_ready(&node, Duration::from_secs(10)));
    let c = node.connect(&s, "backend");
    let e = post(
        &c,
        "/v1/keys/default/encrypt",
        json!({"plaintext": b64(b"x")}),
    );
    assert_eq!(e.status, 200);
    let d = post(
        &c,
        "/v1/keys/default/decrypt",
        json!({"ciphertext": e.json()["ciphertext"]}),
    );
    assert_eq!(d.status, 502);
    let msg = d.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("transit/decrypt/kms") && msg.contains("permission denied"),
        "{msg}"
    );
}

#[test]
fn seed_policy_alone_serves_generate_and_rewrap() {
    let bao = Bao::start(true);
    bao.policy(None, "kms-app", SEED_POLICY);
    let token = bao.token(None, "kms-app", &[]);
    let s = site(&bao, &token, "");
    let node = Node::start_bin(BIN, &s);
    assert!(wait_ready(&node, Duration::from_secs(10)));
    let c = node.connect(&s, "backend");
    let g = post(&c, "/v1/keys/default/generate", json!({"bytes": 16}));
    assert_eq!(g.status, 200, "{:?}", g.json());
    // transit/keys/* covers keys/kms/rotate
    let r = post(&c, "/v1/keys/default/rotate", json!({}));
    assert_eq!(
        (r.status, r.json()["key_version"].clone()),
        (200, json!(2)),
        "{:?}",
        r.json()
    );
    let k = c.request("GET", "/v1/keys/default", None).unwrap();
    assert_eq!(k.json()["latest_version"], 2);
    let rw = post(
        &c,
        "/v1/keys/default/rewrap",
        json!({"ciphertext": g.json()["ciphertext"]}),
    );
    assert_eq!(
        (rw.status, rw.json()["key_version"].clone()),
        (200, json!(2)),
        "{:?}",
        rw.json()
    );
    let d = post(
        &c,
        "/v1/keys/default/decrypt",
        json!({"ciphertext": rw.json()["ciphertext"]}),
    );
    assert_eq!(d.json()["plaintext"], g.json()["plaintext"]);
}

#[test]
fn namespace_header_is_sent() {
    let bao = Bao::start(true);
    bao.ok(&["namespace", "create", "eng"]);
    bao.ok_ns(Some("eng"), &["secrets", "enable", "transit"]);
    bao.ok_ns(Some("eng"), &["write", "-f", "transit/keys/kms"]);
    bao.policy(Some("eng"), "kms-app", SEED_POLICY);
    let token = bao.token(Some("eng"), "kms-app", &[]);
    let s = site(&bao, &token, "kms.hsm.vault.namespace=eng");
    let node = Node::start_bin(BIN, &s);
    assert!(
        wait_ready(&node, Duration::from_secs(10)),
        "{:?}",
        node.log.lock().unwrap()
    );
    let c = node.connect(&s, "backend");
    let e = post(
        &c,
        "/v1/keys/default/encrypt",
        json!({"plaintext": b64(b"ns")}),
    );
    assert_eq!(e.status, 200, "{:?}", e.json());
    let d = post(
        &c,
        "/v1/keys/default/decrypt",
        json!({"ciphertext": e.json()["ciphertext"]}),
    );
    assert_eq!(d.json()["plaintext"], b64(b"ns"));
}

#[test]
fn short_ttl_token_is_renewed_then_expiry_fails_readiness() {
    let bao = Bao::start(true);
    bao.policy(None, "kms-app", SEED_POLICY);
    // ttl 4 s, at most 14 s in all: renewed for real, then it cannot be.
    let token = bao.token(
        None,
        "kms-app",
        &["-ttl=4s", "-explicit-max-ttl=14s", "-renewable=true"],
    );
    let s = site(&bao, &token, "kms.hsm.vault.auth.renew-before-expiry=2");
    let node = Node::start_bin(BIN, &s);
    assert!(wait_ready(&node, Duration::from_secs(10)));
    let c = node.connect(&s, "backend");
    let start = Instant::now();
    let (_, m) = node.admin_get("/metrics");
    promtool_check(&m);
    let left: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("keybroker_vault_token_expiry_seconds "))
        .unwrap_or_else(|| panic!("no token expiry in\n{m}"))
        .parse()
        .unwrap();
    assert!(left > 0.0 && left <= 4.0, "token ttl 4 s, {left} s left");
    // Past the first TTL: only renewal keeps this working.
    while start.elapsed() < Duration::from_secs(7) {
        let e = post(
            &c,
            "/v1/keys/default/encrypt",
            json!({"plaintext": b64(b"x")}),
        );
        assert_eq!(e.status, 200, "at {:?}: {:?}", start.elapsed(), e.json());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        node.wait_log("CANNOT BE RENEWED", Duration::from_secs(8)),
        "{:?}",
        node.log.lock().unwrap()
    );
    // Readiness fails before the token's end (14 s), not after.
    let end = Instant::now() + Duration::from_secs(10);
    while node.admin_get("/readyz").0 == 200 {
        assert!(Instant::now() < end, "readiness never failed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        start.elapsed() < Duration::from_secs(14),
        "readiness failed only at {:?}",
        start.elapsed()
    );
    std::thread::sleep(
        Duration::from_secs(14).saturating_sub(start.elapsed()) + Duration::from_secs(1),
    );
    let e = post(
        &c,
        "/v1/keys/default/encrypt",
        json!({"plaintext": b64(b"x")}),
    );
    assert!(
        e.status == 503 || e.status == 504,
        "{} {:?}",
        e.status,
        e.json()
    );
    assert_no_secret(&node, &[&token]);
}

#[test]
fn sealed_mid_run_is_503_then_back_after_unseal() {
    let bao = Bao::start(true);
    bao.policy(None, "kms-app", SEED_POLICY);
    let token = bao.token(None, "kms-app", &[]);
    let s = site(&bao, &token, "");
    let node = Node::start_bin(BIN, &s);
    assert!(wait_ready(&node, Duration::from_secs(10)));
    let c = node.connect(&s, "backend");
    let e = post(
        &c,
        "/v1/keys/default/encrypt",
        json!({"plaintext": b64(b"x")}),
    );
    assert_eq!(e.status, 200);
    bao.ok(&["operator", "seal"]);
    let e2 = post(
        &c,
        "/v1/keys/default/encrypt",
        json!({"plaintext": b64(b"x")}),
    );
    assert_eq!(e2.status, 503, "{:?}", e2.json());
    assert!(e2.header("retry-after").is_some());
    assert!(e2.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sealed"));
    assert_eq!(node.admin_get("/readyz").0, 503);
    bao.ok(&["operator", "unseal", &bao.unseal_key]);
    assert!(
        wait_ready(&node, Duration::from_secs(15)),
        "not ready after unseal"
    );
    let d = post(
        &c,
        "/v1/keys/default/decrypt",
        json!({"ciphertext": e.json()["ciphertext"]}),
    );
    assert_eq!(
        (d.status, d.json()["plaintext"].clone()),
        (200, json!(b64(b"x")))
    );
}

#[test]
fn azure_login_through_jwt_auth_and_imds_double() {
    let bao = Bao::start(true);
    bao.policy(None, "kms-app", SEED_POLICY);
    let imds = Imds::start("kms-vm-identity");
    bao.ok(&["auth", "enable", "jwt"]);
    let key_file = bao.dir.join("imds.pub.pem");
    std::fs::write(&key_file, &imds.public_key_pem).unwrap();
    bao.ok(&[
        "write",
        "auth/jwt/config",
        &format!("jwt_validation_pubkeys=@{}", key_file.display()),
    ]);
    bao.ok(&[
        "write",
        "auth/jwt/role/kms",
        "role_type=jwt",
        "bound_audiences=https://vault.hashicorp.com/",
        "user_claim=sub",
        "policies=kms-app",
        "token_ttl=5s",
        "token_max_ttl=9s",
    ]);
    let s = site(
        &bao,
        "unused",
        &format!(
            "kms.hsm.vault.auth=azure\nkms.hsm.vault.auth.azure.role=kms\nkms.hsm.vault.auth.azure.path=/v1/auth/jwt/login\n\
             kms.hsm.vault.auth.renew-before-expiry=2\nkeybroker.vault.azure.imds-url={}",
            imds.url()
        ),
    );
    let node = Node::start_bin(BIN, &s);
    assert!(
        wait_ready(&node, Duration::from_secs(10)),
        "{:?}",
        node.log.lock().unwrap()
    );
    let c = node.connect(&s, "backend");
    let start = Instant::now();
    // 9 s max TTL: renewals, then re-login; every request keeps working meanwhile.
    while start.elapsed() < Duration::from_secs(16) {
        let e = post(&c, "/v1/keys/default/generate", json!({"bytes": 32}));
        assert_eq!(
            e.status,
            200,
            "at {:?}: {:?} {:?}",
            start.elapsed(),
            e.json(),
            node.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(
        imds.token_requests
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2,
        "logged in again"
    );
    assert!(imds
        .seen
        .lock()
        .unwrap()
        .iter()
        .all(|l| l.ends_with("metadata=true")));
}

/// The IMDS double answers Azure's shapes and refuses requests without `Metadata: true`.
#[test]
fn imds_double_follows_azure_api() {
    use std::io::{Read, Write};
    let imds = Imds::start("id");
    let get = |path: &str, meta: bool| {
        let mut s = std::net::TcpStream::connect(imds.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let m = if meta { "Metadata: true\r\n" } else { "" };
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\n{m}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let t = get("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.hashicorp.com%2F", true);
    assert!(t.starts_with("HTTP/1.1 200"), "{t}");
    let body: Value = serde_json::from_str(t.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["resource"], "https://vault.hashicorp.com/");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_string());
    assert!(get("/metadata/instance?api-version=2021-02-01", false).starts_with("HTTP/1.1 400"));
    let i = get("/metadata/instance?api-version=2021-02-01", true);
    assert!(i.contains("\"subscriptionId\""), "{i}");
}

/// Measurement, not a check (`--ignored`): decrypts/s over one connection for 3 s, through
/// keybroker vs straight to OpenBao, both over TLS on this machine.
#[test]
#[ignore]
fn measure_decrypt_throughput() {
    let bao = Bao::start(true);
    bao.policy(None, "kms-app", SEED_POLICY);
    let token = bao.token(None, "kms-app", &[]);
    let s = site(&bao, &token, "");
    let node = Node::start_bin(BIN, &s);
    assert!(wait_ready(&node, Duration::from_secs(10)));
    let c = node.connect(&s, "backend");
    let e = post(
        &c,
        "/v1/keys/default/encrypt",
        json!({"plaintext": b64(&[7; 32])}),
    );
    let body = json!({"ciphertext": e.json()["ciphertext"]});
    let span = Duration::from_secs(3);
    let (start, mut n) = (Instant::now(), 0u32);
    while start.elapsed() < span {
        assert_eq!(
            post(&c, "/v1/keys/default/decrypt", body.clone()).status,
            200
        );
        n += 1;
    }
    let via = n as f64 / start.elapsed().as_secs_f64();
    // direct: the same transit decrypt (no AAD) on one keep-alive TLS connection
    let ca = std::fs::read(bao.ca()).unwrap();
    let cfg = common::raw::config(&ca, None).unwrap();
    let mut d = Conn::connect(&format!("127.0.0.1:{}", bao.port), "localhost", cfg).unwrap();
    let enc = format!("{{\"plaintext\":\"{}\"}}", b64(&[7; 32]));
    let raw = |path: &str, body: &str| {
        format!("POST {path} HTTP/1.1\r\nhost: localhost\r\nx-vault-token: {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len())
    };
    d.send_raw(raw("/v1/transit/encrypt/kms", &enc).as_bytes())
        .unwrap();
    let ct = d.read_answer().unwrap().json()["data"]["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let req = raw(
        "/v1/transit/decrypt/kms",
        &format!("{{\"ciphertext\":\"{ct}\"}}"),
    );
    let (start, mut m) = (Instant::now(), 0u32);
    while start.elapsed() < span {
        d.send_raw(req.as_bytes()).unwrap();
        assert_eq!(d.read_answer().unwrap().status, 200);
        m += 1;
    }
    let direct = m as f64 / start.elapsed().as_secs_f64();
    eprintln!(
        "MEASURE decrypt/s on 1 connection: via keybroker {via:.0}, direct to OpenBao {direct:.0}"
    );
}
