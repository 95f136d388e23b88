// Hostile clients against a real server process: what one client can make a node hold, how
// many sockets it can pin, and what a refused or revoked client gets.
//
// One suite, two shells: this file is `include!`d by shell-smol/tests/hostile.rs
// (BIN = keybroker) and shell-blocking/tests/hostile.rs (BIN = keybroker-lite). Every loop is
// bounded in count and time, and every socket is on 127.0.0.1.

use common::{Node, Site};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const DESCRIBE: &[u8] = b"GET /v1/keys/default HTTP/1.1\r\nhost: localhost\r\n\r\n";

/// A raw mTLS stream presenting `who`'s certificate, handshake done.
fn tls_stream(
    node: &Node,
    site: &Site,
    who: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(node.client).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(site.tls(Some(who)), name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).unwrap();
    }
    s
}

/// Writes `request` over and over on `s` for at most `for_how_long` (or until the server stops
/// taking bytes), never reading; returns the number of requests written.
fn pipeline_without_reading<W: Write>(s: &mut W, request: &[u8], for_how_long: Duration) -> usize {
    let batch: Vec<u8> = request.repeat(256);
    let end = Instant::now() + for_how_long;
    let mut n = 0;
    for _ in 0..100_000 {
        if Instant::now() > end || s.write_all(&batch).and_then(|_| s.flush()).is_err() {
            break;
        }
        n += 256;
    }
    n
}

fn alive(node: &mut Node) -> bool {
    node.child.try_wait().unwrap().is_none()
}

/// Peak resident set size of `pid` in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn refused_client_pipelining_does_not_crash_the_server() {
    let site = Site::new("");
    let mut node = Node::start_bin(BIN, &site);
    let mut s = tls_stream(&node, &site, "stranger");
    let sent = pipeline_without_reading(&mut s, DESCRIBE, Duration::from_secs(3));
    assert!(sent > 0);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        alive(&mut node),
        "server died: {:?}",
        node.log
            .lock()
            .unwrap()
            .iter()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
    );
    let c = node.connect(&site, "backend");
    assert_eq!(
        c.request("GET", "/v1/keys/default", None).unwrap().status,
        200
    );
}

/// The keystore of `site` with `trusted` as its client entries (the CA entry always kept).
fn write_keystore(site: &Site, trusted: &[(&str, &str)]) {
    let mut entries: Vec<(&str, &keybroker::demo::Issued)> =
        vec![("kmipSigningCA", &site.pki.ca_issued)];
    for (alias, who) in trusted {
        entries.push((alias, site.cert(who)));
    }
    let ks = keybroker::demo::pkcs12_keystore_with_keys(
        common::PASSWORD,
        "kmsServer",
        site.cert("server"),
        &site.pki.ca_issued,
        &entries,
        &[],
    )
    .unwrap();
    std::fs::write(site.dir.join("kmsKeystore.p12"), ks).unwrap();
}

/// GET on the admin listener within `within`, or None.
fn healthz_within(node: &Node, within: Duration) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&node.admin, within).ok()?;
    s.set_read_timeout(Some(within)).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the server closes `s` (EOF or reset) within `within`, reading and dropping bytes.
fn closed_within<R: Read>(s: &mut R, within: Duration) -> bool {
    let end = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn never_reading_pipeliner_stays_under_64_mib() {
    let site = Site::new("");
    let mut node = Node::start_bin(BIN, &site);
    let pid = node.child.id();
    let before = peak_rss_kib(pid);
    let writers: Vec<_> = ["backend", "stranger"]
        .into_iter()
        .map(|who| {
            let mut s = tls_stream(&node, &site, who);
            std::thread::spawn(move || {
                let n = pipeline_without_reading(&mut s, DESCRIBE, Duration::from_secs(10));
                (n, s) // keep the connection open until the measurement is done
            })
        })
        .collect();
    let mut peak = before;
    let end = Instant::now() + Duration::from_secs(11);
    while Instant::now() < end {
        peak = peak.max(peak_rss_kib(pid));
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent: Vec<usize> = writers.into_iter().map(|w| w.join().unwrap().0).collect();
    eprintln!("VmHWM before {before} KiB, after {peak} KiB; requests written {sent:?}");
    assert!(sent[0] > 1000, "the backend client did pipeline: {sent:?}");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    assert!(alive(&mut node));
    let c = node.connect(&site, "backend");
    assert_eq!(
        c.request("GET", "/v1/keys/default", None).unwrap().status,
        200
    );
}

#[test]
fn never_reading_client_is_closed_at_the_write_deadline() {
    let site = Site::new("keybroker.http.write-timeout=2\n");
    let node = Node::start_bin(BIN, &site);
    let mut s = tls_stream(&node, &site, "backend");
    let start = Instant::now();
    pipeline_without_reading(&mut s, DESCRIBE, Duration::from_secs(15));
    let took = start.elapsed();
    // Writing stops being possible once the server closes (2 s without a read, plus the time
    // it takes to fill the buffers).
    assert!(took < Duration::from_secs(12), "still open after {took:?}");
    assert!(closed_within(&mut s.sock, Duration::from_secs(5)));
}

#[test]
fn silent_tcp_connections_do_not_lock_out_clients_or_the_admin_listener() {
    let site = Site::new(
        "keybroker.http.max-connections=20\nkeybroker.http.handshake-timeout=2\n\
         keybroker.http.overload-connections=4\n",
    );
    let node = Node::start_bin(BIN, &site);
    // 20 silent sockets fill the limit.
    let mut silent: Vec<TcpStream> = (0..20)
        .filter_map(|_| TcpStream::connect(node.client).ok())
        .collect();
    assert_eq!(silent.len(), 20);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(healthz_within(&node, Duration::from_secs(2)), Some(200));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "healthz took {:?}",
        t.elapsed()
    );
    // A legitimate client is told to retry (503), then served once the handshakes expire.
    let start = Instant::now();
    let mut served = None;
    let attempt = || {
        common::raw::Conn::connect(
            &node.client.to_string(),
            "localhost",
            site.tls(Some("backend")),
        )
        .and_then(|mut c| c.request("GET", "/v1/keys/default", None))
    };
    match attempt() {
        Ok(a) if a.status == 503 => {
            assert_eq!(a.header("retry-after"), Some("1"));
            assert_eq!(a.json()["error"]["code"], "overloaded");
        }
        other => panic!("over the limit: {other:?}"),
    }
    // 30 more silent sockets: the 4 of the overload allowance wait for a handshake, the
    // rest are closed at once.
    let more: Vec<TcpStream> = (0..30)
        .map(|_| TcpStream::connect(node.client).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut closed_at_once = 0;
    for mut s in more {
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        if closed_within(&mut s, Duration::from_millis(20)) {
            closed_at_once += 1;
        }
        silent.push(s);
    }
    assert!(closed_at_once >= 20, "closed at once: {closed_at_once}");
    assert_eq!(healthz_within(&node, Duration::from_secs(2)), Some(200));
    for _ in 0..100 {
        if start.elapsed() > Duration::from_secs(8) {
            break;
        }
        if let Ok(a) = attempt() {
            if a.status == 200 {
                served = Some(start.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let served = served.expect("served once the silent handshakes timed out");
    assert!(served < Duration::from_secs(5), "served after {served:?}");
    drop(silent);
}

#[test]
fn refused_clients_are_closed_after_one_answer() {
    let site = Site::new("keybroker.http.max-connections=10\n");
    let node = Node::start_bin(BIN, &site);
    let mut strangers = Vec::new();
    for _ in 0..10 {
        // One exact connection: the client library would open a fresh one for the retry.
        let mut c = node.raw(&site, "stranger");
        let a = c.request("GET", "/v1/keys/default", None).unwrap();
        assert_eq!(a.status, 403);
        assert_eq!(a.json()["error"]["code"], "unknown_client");
        assert_eq!(a.header("connection"), Some("close"));
        // The next request on it gets no answer: the connection is gone.
        let again = c.request("GET", "/v1/keys/default", None);
        assert!(again.is_err(), "refused connection still answers");
        strangers.push(c);
    }
    let c = node.connect(&site, "backend");
    assert_eq!(
        c.request("GET", "/v1/keys/default", None).unwrap().status,
        200
    );
    assert_eq!(healthz_within(&node, Duration::from_secs(2)), Some(200));
}

#[test]
fn revocation_reaches_an_open_connection() {
    let site = Site::new("");
    let node = Node::start_bin(BIN, &site);
    let mut c = node.raw(&site, "backend");
    let a = c.request(
        "POST",
        "/v1/keys/default/rotate",
        Some(&serde_json::json!({})),
    );
    assert_eq!(a.unwrap().status, 200);
    write_keystore(&site, &[("cmxDevice", "device")]);
    node.signal("HUP");
    assert!(node.wait_log("reloaded", Duration::from_secs(10)));
    let a = c
        .request(
            "POST",
            "/v1/keys/default/rotate",
            Some(&serde_json::json!({})),
        )
        .unwrap();
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["error"]["code"], "unknown_client");
    assert_eq!(a.header("connection"), Some("close"));
    assert!(c.request("GET", "/v1/keys/default", None).is_err());
    // The device, still in the keystore, keeps working on a new connection.
    let d = node.connect(&site, "device");
    let e = d.request(
        "POST",
        "/v1/keys/default/encrypt",
        Some(&serde_json::json!({"plaintext": "eA=="})),
    );
    assert_eq!(e.unwrap().status, 200);
}

#[test]
fn duplicate_json_members_are_bad_json() {
    let site = Site::new("");
    let node = Node::start_bin(BIN, &site);
    let mut c = node.raw(&site, "backend");
    for body in [
        r#"{"plaintext":"eA==","context":"WFhY","context":"Y3R4"}"#,
        r#"{"plaintext":"eA==","plaintext":"eQ=="}"#,
    ] {
        let req = format!(
            "POST /v1/keys/default/encrypt HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        c.send_raw(req.as_bytes()).unwrap();
        let a = c.read_answer().unwrap();
        assert_eq!(a.status, 400, "{body}");
        assert_eq!(a.json()["error"]["code"], "bad_json");
    }
}

#[test]
fn ambiguous_keystores_are_refused_at_load() {
    for (entries, a, b) in [
        (
            vec![("cmxDevice9", "backend"), ("cmxBackend9", "backend")],
            "cmxDevice9",
            "cmxBackend9",
        ),
        (
            vec![("cmxBackend", "backend"), ("cmxBackendSrv", "server")],
            "kmsServer",
            "cmxBackendSrv",
        ),
    ] {
        let site = Site::new("");
        write_keystore(&site, &entries);
        for args in [
            vec!["check-config", "--config"],
            vec!["keystore", "list", "--config"],
            vec!["serve", "--config"],
        ] {
            let out = std::process::Command::new(BIN)
                .args(&args)
                .arg(site.properties())
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success(), "{args:?} accepted it: {text}");
            assert!(
                text.to_lowercase().contains(&a.to_lowercase())
                    && text.to_lowercase().contains(&b.to_lowercase()),
                "{args:?} names both aliases: {text}"
            );
        }
    }
}

#[test]
fn soft_rotation_is_durable_before_it_answers() {
    let site = Site::new("");
    let mut node = Node::start_bin(BIN, &site);
    let key_file = site.dir.join("soft-keys.json");
    assert!(key_file.exists());
    let c = node.connect(&site, "backend");
    // A directory where the file goes: the rename fails, even for root.
    std::fs::remove_file(&key_file).unwrap();
    std::fs::create_dir_all(key_file.join("blocker")).unwrap();
    let a = c
        .request(
            "POST",
            "/v1/keys/default/rotate",
            Some(&serde_json::json!({})),
        )
        .unwrap();
    assert_eq!(a.status, 500);
    assert_eq!(a.json()["error"]["code"], "persist_failed");
    let d = c.request("GET", "/v1/keys/default", None).unwrap();
    assert_eq!(d.json()["latest_version"], 1, "nothing changed");
    std::fs::remove_dir_all(&key_file).unwrap();
    // Devices are not held up while rotations seal the file.
    let rotations = std::thread::spawn({
        let c = node.connect(&site, "backend");
        move || {
            (0..5)
                .map(|_| {
                    c.request(
                        "POST",
                        "/v1/keys/default/rotate",
                        Some(&serde_json::json!({})),
                    )
                    .unwrap()
                    .status
                })
                .collect::<Vec<u16>>()
        }
    });
    let dev = node.connect(&site, "device");
    let mut worst = Duration::ZERO;
    while !rotations.is_finished() {
        let t = Instant::now();
        let e = dev.request(
            "POST",
            "/v1/keys/default/encrypt",
            Some(&serde_json::json!({"plaintext": "eA=="})),
        );
        assert_eq!(e.unwrap().status, 200);
        worst = worst.max(t.elapsed());
    }
    assert_eq!(rotations.join().unwrap(), vec![200; 5]);
    // Printed, not asserted: a wall-clock bound here failed once on a loaded machine (2.07 s)
    // without anything being held up. That nothing waits for the file is proven without a
    // clock in core/tests/broker_limits.rs (other_clients_are_answered_while_a_rotation_is_being_stored).
    eprintln!("worst device latency during rotations: {worst:?}");
    // What was answered is on disk: a restart still has version 6.
    drop(node.child.kill());
    let _ = node.child.wait();
    let node = Node::start_bin(BIN, &site);
    let c = node.connect(&site, "backend");
    let d = c.request("GET", "/v1/keys/default", None).unwrap();
    assert_eq!(d.json()["latest_version"], 6);
}

#[test]
fn shutdown_answers_a_request_already_sent() {
    let site = Site::new("");
    let mut node = Node::start_bin(BIN, &site);
    let mut c = node.raw(&site, "backend");
    assert_eq!(
        c.request("GET", "/v1/keys/default", None).unwrap().status,
        200
    );
    c.send_raw(DESCRIBE).unwrap();
    node.signal("TERM");
    let a = c.read_answer().expect("the queued request is answered");
    assert_eq!(a.status, 200);
    // Then the connection closes (with `Connection: close` when the request was read after
    // the signal; a request read just before it is answered as usual).
    assert!(c.read_answer().is_err(), "closed after the answer");
    let end = Instant::now() + Duration::from_secs(10);
    while node.child.try_wait().unwrap().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(node.child.try_wait().unwrap().is_some_and(|s| s.success()));
}

#[test]
fn request_durations_are_a_histogram() {
    let site = Site::new("");
    let node = Node::start_bin(BIN, &site);
    let c = node.connect(&site, "backend");
    for _ in 0..5 {
        assert_eq!(
            c.request("GET", "/v1/keys/default", None).unwrap().status,
            200
        );
    }
    // The last answer is timed once its write is reported, just after the client has it.
    let mut m = String::new();
    for _ in 0..40 {
        m = node.admin_get("/metrics").1;
        if m.contains("keybroker_request_duration_seconds_count{op=\"describe\"} 5") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        m.contains("# TYPE keybroker_request_duration_seconds histogram"),
        "{m}"
    );
    assert!(
        m.contains("keybroker_request_duration_seconds_bucket{op=\"describe\",le=\"+Inf\"} 5"),
        "{m}"
    );
    assert!(
        m.contains("keybroker_request_duration_seconds_count{op=\"describe\"} 5"),
        "{m}"
    );
    let sum: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("keybroker_request_duration_seconds_sum{op=\"describe\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(sum > 0.0, "durations are measured: {sum}");
}
