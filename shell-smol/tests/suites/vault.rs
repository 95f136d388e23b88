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
use common::openbao::{Bao, BaoCluster, SEED_POLICY};
use common::raw::Conn;
use common::{promtool_check, Node, Site};
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
    let port = format!("kms.hsm.server.port={}\n{extra}", bao.port);
    site_at("https://127.0.0.1", &bao.ca(), token, &port)
}

/// A site whose kms.properties points at the Vault `urls` (comma-separated), trusting `ca`,
/// with `token` in a token file.
fn site_at(urls: &str, ca: &std::path::Path, token: &str, extra: &str) -> Site {
    let s = Site::new("");
    std::fs::write(s.dir.join("vault-token"), format!("{token}\n")).unwrap();
    let props = std::fs::read_to_string(s.properties()).unwrap();
    std::fs::write(
        s.properties(),
        format!(
            "{props}kms.hsm.protocol=VAULT\nkms.hsm.server.url={urls}\n\
             keybroker.vault.ca-file={}\nkeybroker.vault.token-file=vault-token\nkeybroker.vault.timeout=5\n{extra}\n",
            ca.display()
        ),
    )
    .unwrap();
    s
}

/// A real OpenBao with a token under `policy` (named `name`), and keybroker serving with it
/// and `extra` properties, ready.
fn serving(name: &str, policy: &str, extra: &str) -> (Bao, String, Site, Node) {
    let bao = Bao::start(true);
    bao.policy(None, name, policy);
    let token = bao.token(None, name, &[]);
    let s = site(&bao, &token, extra);
    let node = Node::start_bin(BIN, &s);
    assert!(
        wait_ready(&node, Duration::from_secs(10)),
        "{:?}",
        node.log.lock().unwrap()
    );
    (bao, token, s, node)
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
    let enc_only = "path \"transit/encrypt/*\" { capabilities = [\"update\"] }\n\
                    path \"transit/keys/*\" { capabilities = [\"read\"] }\n";
    let (_bao, _token, s, node) = serving("enc-only", enc_only, "");
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
    let (_bao, _token, s, node) = serving("kms-app", SEED_POLICY, "");
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

/// The key version inside a kb1 token: the Vault `vault:vN:` ciphertext it carries.
fn inner_vault_version(token: &str) -> u32 {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let raw = URL_SAFE_NO_PAD
        .decode(token.strip_prefix("kb1:").unwrap().trim_end_matches('='))
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    let at = text
        .find("vault:v")
        .expect("a vault: ciphertext inside the token");
    text[at + 7..].split(':').next().unwrap().parse().unwrap()
}

#[test]
fn versions_rotated_in_vault_are_used_and_retired_ones_refused() {
    let (bao, _token, s, node) =
        serving("kms-app", SEED_POLICY, "keybroker.vault.key-refresh=300ms");
    let c = node.connect(&s, "backend");
    let enc = |c: &Client, pt: &[u8]| {
        let e = post(c, "/v1/keys/default/encrypt", json!({"plaintext": b64(pt)}));
        assert_eq!(e.status, 200, "{:?}", e.json());
        let ct = e.json()["ciphertext"].as_str().unwrap().to_owned();
        (e.json()["key_version"].as_u64().unwrap() as u32, ct)
    };
    let (v, old) = enc(&c, b"old");
    assert_eq!((v, inner_vault_version(&old)), (1, 1));

    // Rotated in Vault, not through keybroker: new ciphertexts use version 2 once the key
    // configuration has been read again, with no API rotate or GET in between.
    bao.ok(&["write", "-f", "transit/keys/kms/rotate"]);
    let rotated_at = Instant::now();
    let end = rotated_at + Duration::from_secs(10);
    let new = loop {
        let (v, ct) = enc(&c, b"new");
        assert_eq!(v, inner_vault_version(&ct), "answer and token agree");
        if v == 2 {
            break ct;
        }
        assert!(
            Instant::now() < end,
            "version 2 not used: {:?}",
            node.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        rotated_at.elapsed() < Duration::from_secs(3),
        "picked up after {:?}, the refresh period is 300 ms",
        rotated_at.elapsed()
    );
    assert!(node.wait_log("latest version is now 2", Duration::from_secs(1)));
    let d = post(&c, "/v1/keys/default/decrypt", json!({"ciphertext": old}));
    assert_eq!(
        (d.status, d.json()["plaintext"].clone()),
        (200, json!(b64(b"old")))
    );

    // Version 1 retired in Vault: its tokens get a clear 400, whether Vault refuses them
    // (before the next read) or keybroker does (after it); version 2 still decrypts.
    bao.ok(&[
        "write",
        "transit/keys/kms/config",
        "min_decryption_version=2",
    ]);
    let retired = |c: &Client| {
        let d = post(c, "/v1/keys/default/decrypt", json!({"ciphertext": old}));
        assert_eq!(
            (d.status, d.json()["error"]["code"].clone()),
            (400, json!("key_version_retired")),
            "{:?}",
            d.json()
        );
        assert!(d.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 1"));
    };
    retired(&c);
    assert!(
        node.wait_log("min_decryption_version is 2", Duration::from_secs(5)),
        "{:?}",
        node.log.lock().unwrap()
    );
    retired(&c);
    let b = post(
        &c,
        "/v1/keys/default/decrypt",
        json!({"batch": [{"ciphertext": old}, {"ciphertext": new}]}),
    );
    assert_eq!(b.status, 200, "{:?}", b.json());
    assert_eq!(b.json()["batch"][0]["error"]["code"], "key_version_retired");
    assert_eq!(b.json()["batch"][1]["plaintext"], b64(b"new"));
    let rw = post(&c, "/v1/keys/default/rewrap", json!({"ciphertext": old}));
    assert_eq!(
        (rw.status, rw.json()["error"]["code"].clone()),
        (400, json!("key_version_retired"))
    );
    let k = c.request("GET", "/v1/keys/default", None).unwrap();
    assert_eq!(k.json()["versions"], json!([2]), "{:?}", k.json());
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
    let (bao, _token, s, node) = serving("kms-app", SEED_POLICY, "");
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

/// One answer seen by a load worker.
struct Seen {
    /// When the answer arrived, from the start of the load.
    at: Duration,
    status: u16,
    /// A 200 whose content was not what was asked for.
    wrong: bool,
}

/// A real 3-node OpenBao cluster with integrated storage (raft): keybroker is given every
/// node's URL, the active node first. Under load from four clients, the active node is
/// SIGKILLed; requests must go on through the other nodes within 2 s, and no answer may be wrong.
#[test]
fn raft_cluster_failover_when_the_active_node_is_killed() {
    let begun = Instant::now();
    let mut cluster = BaoCluster::start(3);
    let active = cluster.active().expect("an active node");
    let policy = cluster.nodes[active].dir.join("kms-app.hcl");
    std::fs::write(&policy, FULL_POLICY).unwrap();
    cluster.ok(
        active,
        &["policy", "write", "kms-app", policy.to_str().unwrap()],
    );
    let token = cluster
        .ok(
            active,
            &["token", "create", "-field=token", "-policy=kms-app"],
        )
        .trim()
        .to_owned();
    // The active node first, as a site lists its usual node first.
    let order: Vec<usize> = std::iter::once(active)
        .chain((0..3).filter(|i| *i != active))
        .collect();
    let urls: Vec<String> = order.iter().map(|i| cluster.addr(*i)).collect();
    let s = site_at(&urls.join(","), &cluster.ca, &token, "");
    let node = Node::start_bin(BIN, &s);
    assert!(
        wait_ready(&node, Duration::from_secs(10)),
        "{:?}",
        node.log.lock().unwrap()
    );
    let cluster_up = begun.elapsed();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let c = node.connect(&s, "backend");
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut made: Vec<(String, String)> = Vec::new();
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let pt = b64(format!("worker {w} item {i}").as_bytes());
                    // Encrypt, then decrypt something this worker encrypted before.
                    let e = post(&c, "/v1/keys/default/encrypt", json!({"plaintext": pt}));
                    let ct = e.json()["ciphertext"].as_str().map(str::to_owned);
                    seen.push(Seen {
                        at: t0.elapsed(),
                        status: e.status,
                        wrong: e.status == 200 && ct.is_none(),
                    });
                    if let Some(ct) = ct {
                        made.push((ct, pt));
                    }
                    if let Some((ct, pt)) = made.get(made.len().saturating_sub(1) / 2).cloned() {
                        let d = post(&c, "/v1/keys/default/decrypt", json!({"ciphertext": ct}));
                        seen.push(Seen {
                            at: t0.elapsed(),
                            status: d.status,
                            wrong: d.status == 200 && d.json()["plaintext"] != json!(pt),
                        });
                    }
                }
                (seen, made)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = t0.elapsed();
    cluster.kill(active);
    let watch = cluster.watch_for_active(Duration::from_secs(6));
    std::thread::sleep(Duration::from_secs(6));
    // How long OpenBao itself took to have an active node again (raft election, then the new
    // leader taking the HA lock), printed beside keybroker's gap.
    let own = watch.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen: Vec<Seen> = Vec::new();
    let mut made = Vec::new();
    for w in workers {
        let (s, m) = w.join().unwrap();
        seen.extend(s);
        made.extend(m);
    }
    seen.sort_by_key(|s| s.at);
    let wrong = seen.iter().filter(|s| s.wrong).count();
    let odd: Vec<u16> = seen
        .iter()
        .map(|s| s.status)
        .filter(|s| ![200, 503, 504].contains(s))
        .collect();
    let ok_times: Vec<Duration> = seen
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| s.at)
        .collect();
    // The longest time without a successful answer, from the kill on.
    let mut gap = Duration::ZERO;
    let mut last = killed_at;
    for t in ok_times.iter().filter(|t| **t > killed_at) {
        gap = gap.max(*t - last);
        last = *t;
    }
    gap = gap.max(
        t0.elapsed()
            .saturating_sub(last)
            .min(Duration::from_secs(6)),
    );
    let before = seen.iter().filter(|s| s.at <= killed_at).count();
    let after: Vec<&Seen> = seen.iter().filter(|s| s.at > killed_at).collect();
    let failed_after = after.iter().filter(|s| s.status != 200).count();
    eprintln!(
        "raft failover: cluster up in {cluster_up:?}; {before} answers before the kill, {} after \
         ({failed_after} not 200); longest time without a 200 after SIGKILL: {} ms; OpenBao's own \
         time to a new active node: {:?} ms; wrong answers: {wrong}",
        after.len(),
        gap.as_millis(),
        own.map(|d| d.as_millis())
    );
    assert_eq!(wrong, 0, "a 200 with wrong content");
    assert!(odd.is_empty(), "unexpected statuses: {odd:?}");
    assert!(
        before > 20 && after.len() > 20,
        "load ran: {before} / {}",
        after.len()
    );
    // OpenBao's standbys keep serving transit while the survivors elect a new leader (seen:
    // 3.6-4.5 s to a new active node, 5-28 ms without a 200), so the budget is keybroker's own.
    assert!(
        gap <= Duration::from_secs(2),
        "no answer for {gap:?} after the kill (OpenBao's own time to a new active node: \
         {own:?}): {:?}",
        node.log.lock().unwrap()
    );
    // A request lost with the dead node's links trips its breaker, which is logged. When the
    // kill found those links idle, the next requests went to a live node and nothing failed or
    // was logged (seen once in 18 runs); the answers above are what must hold either way.
    if failed_after > 0 {
        assert!(
            node.wait_log("requests go to the next node", Duration::from_secs(1)),
            "the dead node is logged: {:?}",
            node.log.lock().unwrap()
        );
    }
    // Everything encrypted, before and after the kill, still decrypts to what was given.
    let c = node.connect(&s, "backend");
    for (ct, pt) in made.iter().step_by((made.len() / 50).max(1)) {
        let d = post(&c, "/v1/keys/default/decrypt", json!({"ciphertext": ct}));
        assert_eq!((d.status, &d.json()["plaintext"]), (200, &json!(pt)));
    }
    // A write (rotate) reaches the new active node.
    let end = Instant::now() + Duration::from_secs(10);
    let mut tries = Vec::new();
    loop {
        let r = post(&c, "/v1/keys/default/rotate", json!({}));
        tries.push((r.status, r.json()));
        if r.status == 200 {
            assert_eq!(
                r.json()["key_version"],
                2,
                "{tries:?} {:?}",
                node.log.lock().unwrap()
            );
            break;
        }
        assert!(Instant::now() < end, "rotate after failover: {tries:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_no_secret(&node, &[&token]);
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
    let (bao, token, s, node) = serving("kms-app", SEED_POLICY, "");
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
