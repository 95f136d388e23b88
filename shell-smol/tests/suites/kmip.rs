// The `kmip1` backend against real PyKMIP 0.11 servers: the whole HTTP API, rotation,
// tampering, an HSM killed under load, and a black-holed first endpoint.
//
// One suite, two shells: `include!`d by shell-smol/tests/kmip.rs (BIN = keybroker) and
// shell-blocking/tests/kmip.rs (BIN = keybroker-lite), each declaring `mod common` and `BIN`.

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine;
use common::pykmip::{BlackHole, PyKmip};
use common::{promtool_check, Node, Site};
use keybroker_client::Client;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

fn site(urls: &[String], extra: &str) -> Site {
    Site::with_kms_client(&format!(
        "kms.hsm.protocol=kmip1\nkms.hsm.server.url={}\n{extra}",
        urls.join(", ")
    ))
}

/// Appends the HSM endpoints (the last kms.hsm.server.url wins) and more lines.
fn add_urls(site: &Site, urls: &[String], extra: &str) {
    let props = std::fs::read_to_string(site.properties()).unwrap();
    std::fs::write(
        site.properties(),
        props + &format!("kms.hsm.server.url={}\n{extra}", urls.join(", ")),
    )
    .unwrap();
}

fn ready(node: &Node) {
    assert!(
        node.wait_log("kmip: ready", Duration::from_secs(30)),
        "not ready: {:?}",
        node.log.lock().unwrap()
    );
    assert_eq!(node.admin_get("/readyz").0, 200);
}

/// Encrypts `plaintext` and decrypts the token back to it through `c`; the token.
fn round_trip(c: &Client, plaintext: &[u8]) -> Value {
    let (s, e) = post(
        c,
        "/v1/keys/default/encrypt",
        json!({"plaintext": b64(plaintext)}),
    );
    assert_eq!(s, 200, "{e}");
    let (s, d) = post(
        c,
        "/v1/keys/default/decrypt",
        json!({"ciphertext": e["ciphertext"]}),
    );
    assert_eq!(
        (s, d["plaintext"].as_str()),
        (200, Some(b64(plaintext).as_str()))
    );
    e["ciphertext"].clone()
}

fn post(c: &Client, path: &str, body: Value) -> (u16, Value) {
    let a = c.request("POST", path, Some(&body)).unwrap();
    (a.status, a.json())
}

#[test]
fn whole_api_against_pykmip() {
    let site = site(&[], "keybroker.hsm.key.auto-create=true\n");
    let hsm = PyKmip::start(&site, "a", &site.dir.join("pykmip.db"));
    add_urls(&site, &[hsm.url()], "");
    let node = Node::start_bin(BIN, &site);
    ready(&node);
    assert!(node.wait_log("negotiated KMIP 1.4 (AES-GCM)", Duration::from_secs(1)));
    let c = node.connect(&site, "backend");
    common::walk::whole_api(&c, "kmip");

    // A device may encrypt but not rotate.
    let dev = node.connect(&site, "device");
    assert!(dev.encrypt("default", b"x", b"").is_ok());
    assert_eq!(dev.rotate("default").unwrap_err().status(), Some(403));
    drop(hsm);
}

/// A PyKMIP that, like an HSM with password authentication required, refuses requests without
/// this Username and Password Credential: keybroker sends it in every request header, with
/// the password from the environment or from a file. (ASCII: PyKMIP 0.11 decodes a
/// TextString byte by byte, so it refuses any multi-byte UTF-8 character.)
#[test]
fn credential_accepted_by_pykmip_requiring_it() {
    let site = site(
        &[],
        "keybroker.hsm.key.auto-create=true\n\
         keybroker.hsm.kmip.username=kbuser\n\
         keybroker.hsm.kmip.password-env=KB_HSM_PASSWORD\n",
    );
    let hsm = PyKmip::start_requiring(
        &site,
        "a",
        &site.dir.join("pykmip.db"),
        Some(("kbuser", "Hsm pa55 w0rd!")),
    );
    add_urls(&site, &[hsm.url()], "");
    let node = Node::start_env(
        BIN,
        &site.properties(),
        &[("KB_HSM_PASSWORD", "Hsm pa55 w0rd!")],
    );
    ready(&node);
    let token = round_trip(&node.connect(&site, "backend"), b"with credential");
    assert!(!hsm.log().contains("credential refused"), "{}", hsm.log());
    drop(node);

    // The same password from a file (its line break dropped).
    std::fs::write(site.dir.join("hsm.pw"), "Hsm pa55 w0rd!\n").unwrap();
    let props = std::fs::read_to_string(site.properties()).unwrap().replace(
        "keybroker.hsm.kmip.password-env=KB_HSM_PASSWORD",
        "keybroker.hsm.kmip.password-file=hsm.pw",
    );
    std::fs::write(site.properties(), props).unwrap();
    let node = Node::start_bin(BIN, &site);
    ready(&node);
    let c = node.connect(&site, "backend");
    let (s, d) = post(&c, "/v1/keys/default/decrypt", json!({"ciphertext": token}));
    assert_eq!(s, 200, "{d}");
    drop(node);

    // A wrong password: PyKMIP refuses, keybroker says which settings to check and never
    // logs the password.
    std::fs::write(site.dir.join("hsm.pw"), "wrong-Pa55\n").unwrap();
    let node = Node::start_bin(BIN, &site);
    assert!(
        node.wait_log(
            "keybroker.hsm.kmip.username and password",
            Duration::from_secs(30)
        ),
        "{:?}",
        node.log.lock().unwrap()
    );
    assert_eq!(node.admin_get("/readyz").0, 503);
    assert!(hsm.log().contains("credential refused"), "{}", hsm.log());
    let log = node.log.lock().unwrap().join("\n");
    assert!(
        !log.contains("wrong-Pa55") && !log.contains("pa55 w"),
        "{log}"
    );
}

/// An HSM whose certificate has a CN and no subjectAltName (made with openssl as the site
/// guide's CSR steps make it): reached by the DNS name in its CN, with a warning saying so;
/// reached by IP address, refused, as Java clients refuse it.
#[test]
fn hsm_certificate_without_subject_alt_name_is_matched_on_its_cn() {
    let site = site(&[], "keybroker.hsm.key.auto-create=true\n");
    let opts = common::pykmip::Options {
        server_cert: Some(common::pykmip::cn_only_cert(&site, "localhost")),
        ..Default::default()
    };
    let hsm = PyKmip::start_with(&site, "a", &site.dir.join("pykmip.db"), &opts);
    add_urls(&site, &[format!("https://localhost:{}", hsm.port)], "");
    let node = Node::start_bin(BIN, &site);
    ready(&node);
    assert!(
        node.wait_log(
            "the HSM certificate for localhost has no subjectAltName; matched on its subject CN \"localhost\"",
            Duration::from_secs(1)
        ),
        "{:?}",
        node.log.lock().unwrap()
    );
    round_trip(&node.connect(&site, "backend"), b"cn only");
    let warned = node
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("no subjectAltName"))
        .count();
    assert_eq!(warned, 1, "logged once per certificate");
    drop(node);

    add_urls(&site, &[hsm.url()], "");
    let node = Node::start_bin(BIN, &site);
    assert!(
        node.wait_log(
            "has no subjectAltName and its subject CN \"localhost\" does not name 127.0.0.1",
            Duration::from_secs(30)
        ),
        "{:?}",
        node.log.lock().unwrap()
    );
    assert_eq!(node.admin_get("/readyz").0, 503);
}

/// The TLS profile holds for HSM links too: a PyKMIP offering only AES-128-GCM is reached
/// under the default profile and refused under cnsa; one offering AES-256-GCM/SHA-384 with a
/// P-384 certificate is reached under cnsa (ECDHE on P-384), one with a P-256 certificate is
/// not (TLS 1.2 servers pick only certificates on a curve the client offers).
#[test]
fn cnsa_profile_applies_to_hsm_links() {
    for (profile, suite, p384, reached) in [
        (
            "default",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            false,
            true,
        ),
        (
            "cnsa",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            true,
            false,
        ),
        (
            "cnsa",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            false,
            false,
        ),
        (
            "cnsa",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            true,
            true,
        ),
    ] {
        let mut site = site(
            &[],
            &format!("keybroker.hsm.key.auto-create=true\nkeybroker.tls.profile={profile}\n"),
        );
        if p384 {
            // TLS 1.2 servers also check the client certificate's curve against the groups
            // the client offers: under CNSA that is P-384 only.
            let client = common::pykmip::p384_client(&site, "kmsClient");
            site.set_kms_client(client);
        }
        let opts = common::pykmip::Options {
            cipher_suites: Some(suite),
            server_cert: p384.then(|| common::pykmip::p384_cert(&site, "localhost")),
            ..Default::default()
        };
        let hsm = PyKmip::start_with(&site, "a", &site.dir.join("pykmip.db"), &opts);
        add_urls(&site, &[hsm.url()], "");
        let node = Node::start_bin(BIN, &site);
        if reached {
            ready(&node);
            let c = node.connect(&site, "backend");
            let (s, e) = post(
                &c,
                "/v1/keys/default/encrypt",
                json!({"plaintext": b64(b"profile")}),
            );
            assert_eq!(s, 200, "{profile} {suite} p384={p384}: {e}");
        } else {
            assert!(
                node.wait_log("TLS handshake", Duration::from_secs(30)),
                "{profile} {suite} p384={p384}: {:?}",
                node.log.lock().unwrap()
            );
            assert_eq!(node.admin_get("/readyz").0, 503);
        }
    }
}

/// A PyKMIP with an RSA certificate made as the site guide makes it (RSA-2048, CN only) and its
/// default suites (CBC with RSA key exchange): rustls cannot reach it; the legacy HSM link
/// profile (OpenSSL) can, warning at start, over TLS 1.2.
#[cfg(feature = "legacy-hsm-tls")]
#[test]
fn legacy_hsm_tls_reaches_pykmip_with_an_rsa_certificate() {
    let site = site(&[], "keybroker.hsm.key.auto-create=true\n");
    let opts = common::pykmip::Options {
        server_cert: Some(common::pykmip::rsa_cn_only_cert(&site, "localhost")),
        openssl_probe: true,
        ..Default::default()
    };
    let hsm = PyKmip::start_with(&site, "a", &site.dir.join("pykmip.db"), &opts);
    rustls_fails_where_legacy_works(&site, &hsm, "TLSv1.2", b"over openssl");
}

/// A PyKMIP that speaks only TLS 1.0, as an ESKM in FIPS mode does by default: PyKMIP's own
/// `Basic` suite (`ssl.PROTOCOL_TLSv1`, CBC suites) with an RSA CN-only certificate, its
/// cipher string lowered to OpenSSL security level 0 by the harness's entry point (Python
/// holds every context at level 2, where OpenSSL 3 refuses TLS 1.0). OpenSSL clients held to
/// TLS 1.1 or 1.2 are refused and rustls cannot connect; the legacy profile negotiates TLS 1.0
/// (its link says so in the log) and encrypts and decrypts through it.
#[cfg(feature = "legacy-hsm-tls")]
#[test]
fn legacy_hsm_tls_reaches_a_pykmip_that_speaks_only_tls_1_0() {
    use common::pykmip::{discover_versions_openssl, Tls};
    let site = site(&[], "keybroker.hsm.key.auto-create=true\n");
    let opts = common::pykmip::Options {
        server_cert: Some(common::pykmip::rsa_cn_only_cert(&site, "localhost")),
        openssl_probe: true,
        tls10_only: true,
        ..Default::default()
    };
    let hsm = PyKmip::start_with(&site, "a", &site.dir.join("pykmip.db"), &opts);
    for v in [Tls::V1_2, Tls::V1_1] {
        let e = discover_versions_openssl(&site, "localhost", hsm.port, Some(v)).unwrap_err();
        assert!(e.contains("unsupported protocol"), "{v:?}: {e}");
    }
    let versions = discover_versions_openssl(&site, "localhost", hsm.port, Some(Tls::V1_0));
    assert!(!versions.unwrap().is_empty());
    rustls_fails_where_legacy_works(&site, &hsm, "TLSv1", b"over TLS 1.0");
}

/// A node with the default HSM link profile (rustls) fails the handshake with `hsm` and stays
/// not ready; one with `keybroker.hsm.tls=legacy` warns, becomes ready over `tls_version` (as
/// OpenSSL names it) and round-trips `plaintext`.
#[cfg(feature = "legacy-hsm-tls")]
fn rustls_fails_where_legacy_works(site: &Site, hsm: &PyKmip, tls_version: &str, plaintext: &[u8]) {
    let url = format!("https://localhost:{}", hsm.port);
    add_urls(site, std::slice::from_ref(&url), "");
    let node = Node::start_bin(BIN, site);
    assert!(
        node.wait_log("TLS handshake with", Duration::from_secs(30)),
        "{:?}",
        node.log.lock().unwrap()
    );
    assert_eq!(node.admin_get("/readyz").0, 503);
    drop(node);

    add_urls(site, &[url], "keybroker.hsm.tls=legacy\n");
    let node = Node::start_bin(BIN, site);
    assert!(
        node.wait_log(
            "keybroker.hsm.tls=legacy: HSM links use OpenSSL",
            Duration::from_secs(5)
        ),
        "{:?}",
        node.log.lock().unwrap()
    );
    ready(&node);
    let negotiated = format!(
        "HSM link to localhost:{} over OpenSSL: {tls_version}, ",
        hsm.port
    );
    assert!(
        node.wait_log(&negotiated, Duration::from_secs(5)),
        "{:?}",
        node.log.lock().unwrap()
    );
    round_trip(&node.connect(site, "backend"), plaintext);
}

/// Without the legacy-hsm-tls feature, keybroker.hsm.tls=legacy refuses to start, saying why.
#[cfg(not(feature = "legacy-hsm-tls"))]
#[test]
fn legacy_hsm_tls_needs_the_feature() {
    let site = site(
        &["https://localhost:5696".into()],
        "keybroker.hsm.tls=legacy\n",
    );
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(site.properties())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cargo feature legacy-hsm-tls"), "{err}");
}

#[test]
fn missing_key_without_auto_create_is_not_ready() {
    let site = site(&[], "");
    let hsm = PyKmip::start(&site, "a", &site.dir.join("pykmip.db"));
    let props = std::fs::read_to_string(site.properties()).unwrap();
    std::fs::write(
        site.properties(),
        props + &format!("kms.hsm.server.url={}\n", hsm.url()),
    )
    .unwrap();
    let node = Node::start_bin(BIN, &site);
    assert!(
        node.wait_log("not found on the HSM", Duration::from_secs(30)),
        "{:?}",
        node.log.lock().unwrap()
    );
    assert_eq!(node.admin_get("/readyz").0, 503);
    let c = node.connect(&site, "backend");
    let a = c
        .request(
            "POST",
            "/v1/keys/default/encrypt",
            Some(&json!({"plaintext": b64(b"x")})),
        )
        .unwrap();
    assert_eq!(a.status, 503);
    assert!(a.header("retry-after").is_some());
}

/// One request under load: start and end (since t0) and status (0 = transport error).
#[derive(Clone, Copy, Debug)]
struct Sample {
    start: Duration,
    end: Duration,
    status: u16,
}

type Samples = Arc<Mutex<Vec<Sample>>>;

/// `threads` clients encrypting in a loop until `stop`.
fn load(
    node: &Node,
    site: &Site,
    threads: usize,
    stop: Arc<AtomicBool>,
    t0: Instant,
) -> (Samples, Vec<std::thread::JoinHandle<()>>) {
    let samples: Samples = Arc::default();
    let handles = (0..threads)
        .map(|_| {
            // The client reconnects by itself after a failed call.
            let c = node.connect(site, "backend");
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let start = t0.elapsed();
                    let r = c.request(
                        "POST",
                        "/v1/keys/default/encrypt",
                        Some(&json!({"plaintext": "aGVsbG8="})),
                    );
                    let status = r.as_ref().map_or(0, |a| a.status);
                    samples.lock().unwrap().push(Sample {
                        start,
                        end: t0.elapsed(),
                        status,
                    });
                }
            })
        })
        .collect();
    (samples, handles)
}

/// Two PyKMIP servers sharing one database (a two-node cluster) behind one keybroker node.
fn cluster(extra: &str) -> (Site, PyKmip, PyKmip, Node) {
    let site = site(&[], "");
    let db = site.dir.join("cluster.db");
    let a = PyKmip::start(&site, "a", &db);
    let b = PyKmip::start(&site, "b", &db);
    add_urls(
        &site,
        &[a.url(), b.url()],
        &format!("keybroker.hsm.key.auto-create=true\nkeybroker.hsm.request-timeout=2\n{extra}"),
    );
    let node = Node::start_bin(BIN, &site);
    ready(&node);
    (site, a, b, node)
}

/// Runs load, applies `fault` after 1.5 s, keeps loading 4 s; prints and checks the outcome.
fn fault_under_load(what: &str, node: &Node, site: &Site, fault: impl FnOnce()) {
    let threads = 8;
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let (samples, handles) = load(node, site, threads, stop.clone(), t0);
    std::thread::sleep(Duration::from_millis(1500));
    let at = t0.elapsed();
    fault();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let s = samples.lock().unwrap();
    let before = s.iter().filter(|x| x.end < at).count();
    let failed: Vec<Sample> = s.iter().filter(|x| x.status != 200).copied().collect();
    let after_ok = s.iter().filter(|x| x.start > at && x.status == 200).count();
    let rel = |d: Duration| d.saturating_sub(at);
    // Failover time: after this, every request that starts succeeds.
    let failover = failed
        .iter()
        .map(|x| rel(x.start))
        .max()
        .unwrap_or_default();
    let last_answer = failed.iter().map(|x| rel(x.end)).max().unwrap_or_default();
    let slowest_new = s
        .iter()
        .filter(|x| x.start > at + Duration::from_secs(2))
        .map(|x| x.end - x.start)
        .max()
        .unwrap_or_default();
    let in_flight_done = s
        .iter()
        .filter(|x| x.start < at && x.end > at)
        .map(|x| rel(x.end))
        .max()
        .unwrap_or_default();
    println!(
        "FAILOVER ({what}): requests in flight at the fault all answered within {in_flight_done:?}; {before} ok before, {after_ok} ok after, {} failed {:?}; \
         failing requests started up to {failover:?} after the fault (then all succeeded), \
         last failure answered {last_answer:?} after; slowest request started > 2 s after: {slowest_new:?}",
        failed.len(),
        failed.iter().map(|x| x.status).collect::<Vec<_>>(),
    );
    assert!(before > 20, "load was running before the fault");
    assert!(after_ok > 20, "load continued on the other HSM");
    assert!(
        failed.len() <= threads,
        "at most the requests in flight fail: {failed:?}"
    );
    assert!(failed.iter().all(|x| x.end >= at));
    assert!(failover <= Duration::from_secs(2), "{failed:?}");
    assert!(slowest_new <= Duration::from_secs(2), "{slowest_new:?}");
    assert!(
        failed.iter().all(|x| [502, 503, 504].contains(&x.status)),
        "{failed:?}"
    );
}

#[test]
fn failover_when_an_hsm_is_killed_under_load() {
    let (site, mut a, b, node) = cluster("");
    let dead = a.url();
    fault_under_load("HSM killed", &node, &site, || a.kill());
    // /metrics shows the dead HSM down with its breaker tripped, the other up.
    let (_, m) = node.admin_get("/metrics");
    promtool_check(&m);
    let series = |name: &str, url: &str| {
        let endpoint = url.trim_start_matches("https://");
        m.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "{name}{{backend=\"kmip\",endpoint=\"{endpoint}\"}} "
                ))
            })
            .unwrap_or_else(|| panic!("no {name} for {endpoint} in\n{m}"))
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(series("keybroker_backend_endpoint_up", &dead), 0);
    assert!(series("keybroker_backend_endpoint_failovers_total", &dead) >= 1);
    assert_eq!(series("keybroker_backend_endpoint_up", &b.url()), 1);
    drop(b);
}

#[test]
fn failover_when_an_hsm_stops_answering_under_load() {
    let (site, a, b, node) = cluster("");
    fault_under_load("HSM black-holed (SIGSTOP)", &node, &site, || a.pause());
    assert!(node.wait_log("circuit open", Duration::from_secs(1)));
    drop((a, b));
}

#[test]
fn black_hole_first_endpoint_is_skipped() {
    let site = site(&[], "");
    let hole = BlackHole::start();
    let b = PyKmip::start(&site, "b", &site.dir.join("pykmip.db"));
    let props = std::fs::read_to_string(site.properties()).unwrap();
    std::fs::write(
        site.properties(),
        props
            + &format!(
                "kms.hsm.server.url={}, {}\nkeybroker.hsm.key.auto-create=true\n",
                hole.url(),
                b.url()
            ),
    )
    .unwrap();
    let t0 = Instant::now();
    let node = Node::start_bin(BIN, &site);
    ready(&node);
    let to_ready = t0.elapsed();
    let c = node.connect(&site, "backend");
    let mut worst = Duration::ZERO;
    let t1 = Instant::now();
    while t1.elapsed() < Duration::from_secs(5) {
        let t = Instant::now();
        let (s, e) = post(
            &c,
            "/v1/keys/default/encrypt",
            json!({"plaintext": b64(b"x")}),
        );
        assert_eq!(s, 200, "{e}");
        worst = worst.max(t.elapsed());
    }
    println!(
        "BLACK HOLE first: ready after {to_ready:?}; slowest request over 5 s of use {worst:?}"
    );
    assert!(worst <= Duration::from_secs(2), "{worst:?}");
    assert!(
        node.wait_log("connect timed out", Duration::from_secs(5))
            || node.wait_log("failed (connect", Duration::from_secs(1))
    );
}

#[test]
fn cbc_with_digest_against_pykmip_pinned_to_1_2() {
    let site = site(&[], "");
    let hsm = PyKmip::start(&site, "a", &site.dir.join("pykmip.db"));
    add_urls(
        &site,
        &[hsm.url()],
        "keybroker.hsm.key.auto-create=true\nkeybroker.hsm.max-version=1.2\n",
    );
    let node = Node::start_bin(BIN, &site);
    ready(&node);
    assert!(node.wait_log("negotiated KMIP 1.2 (AES-CBC", Duration::from_secs(1)));
    let c = node.connect(&site, "backend");
    let ctx = b64(b"tenant=1");
    let (s, g) = post(
        &c,
        "/v1/keys/default/generate",
        json!({"bytes": 32, "context": ctx}),
    );
    assert_eq!(s, 200, "{g}");
    let ct = g["ciphertext"].as_str().unwrap().to_owned();
    let (s, d) = post(
        &c,
        "/v1/keys/default/decrypt",
        json!({"ciphertext": ct, "context": ctx}),
    );
    assert_eq!((s, &d["plaintext"]), (200, &g["plaintext"]));
    let (s, d) = post(
        &c,
        "/v1/keys/default/decrypt",
        json!({"ciphertext": ct, "context": b64(b"tenant=2")}),
    );
    assert_eq!(s, 400, "{d}");
    let raw = URL_SAFE_NO_PAD.decode(&ct[4..]).unwrap();
    for i in (0..raw.len()).step_by(5) {
        let mut t = raw.clone();
        t[i] ^= 0x80;
        let tok = format!("kb1:{}", URL_SAFE_NO_PAD.encode(&t));
        let (s, d) = post(
            &c,
            "/v1/keys/default/decrypt",
            json!({"ciphertext": tok, "context": ctx}),
        );
        assert!(s == 400 || s == 404, "byte {i}: {s} {d}");
    }
    let (s, r) = post(&c, "/v1/keys/default/rotate", json!({}));
    assert_eq!((s, &r["key_version"]), (200, &json!(2)), "{r}");
    let (s, d) = post(
        &c,
        "/v1/keys/default/decrypt",
        json!({"ciphertext": ct, "context": ctx}),
    );
    assert_eq!((s, &d["plaintext"]), (200, &g["plaintext"]));
    drop(hsm);
}
