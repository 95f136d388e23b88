//! The client side against a real `keybroker serve`: the keybroker-client library (every call
//! and batch, typed errors, failover past a dead server, `Retry-After` on an overloaded node),
//! the `keybroker client` commands, and the Java and Python examples of docs/clients.md run
//! over TLS 1.2 and TLS 1.3 with certificates made by scripts/seed-site.
mod common;

use common::{Node, Site};
use keybroker_client::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keybroker");

fn live_url(node: &Node) -> String {
    format!("https://localhost:{}", node.client.port())
}

/// A reserved port nothing listens on: connecting to it is refused.
fn dead_url() -> (common::ports::Ports, String) {
    let p = common::ports::one();
    let url = format!("https://localhost:{}", p.get(0));
    (p, url)
}

fn client(site: &Site, who: &str, urls: &[&str]) -> keybroker_client::Builder {
    let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
    site.client_builder(who, &urls)
}

#[test]
fn the_library_makes_every_call_and_types_every_error() {
    let site = Site::new("");
    let node = Node::start_bin(BIN, &site);
    let url = live_url(&node);
    let c = client(&site, "backend", &[&url]).build().unwrap();
    let walked = common::walk::whole_api(&c, "soft");
    let dk = c.generate("default", 16, b"").unwrap();
    assert_eq!(dk.plaintext.expose().len(), 16);
    assert!(
        format!("{dk:?}").contains("[redacted]"),
        "Debug hides the data key"
    );
    let e = c
        .decrypt("default", &walked.v1_token, b"tenant=8")
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("hello"), "{e:?}");

    let e = c.describe("nope").unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(404), Some("unknown_key")));
    assert!(matches!(c.describe("a/b"), Err(Error::Config(_))));

    // The caller's request id reaches the server and comes back in the error.
    let traced = client(&site, "backend", &[&url])
        .request_id("trace-42")
        .build()
        .unwrap();
    let e = traced.decrypt("default", "kb1:AAAA", b"").unwrap_err();
    assert_eq!(e.request_id(), Some("trace-42"));

    let dev = client(&site, "device", &[&url]).build().unwrap();
    let ctx = common::walk::CONTEXT;
    assert_eq!(
        dev.decrypt("default", &walked.v1_token, ctx)
            .unwrap()
            .expose(),
        common::walk::PLAINTEXT
    );
    let e = dev.rewrap("default", &walked.v1_token, ctx).unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), Some("forbidden")));
    let e = client(&site, "stranger", &[&url])
        .build()
        .unwrap()
        .describe("default")
        .unwrap_err();
    assert_eq!(e.code(), Some("unknown_client"));
}

#[test]
fn a_dead_first_server_fails_over_and_all_dead_is_a_transport_error() {
    let site = Site::new("");
    let node = Node::start_bin(BIN, &site);
    let (_d1, dead) = dead_url();
    let (_d2, dead2) = dead_url();
    let live = live_url(&node);
    let c = client(&site, "backend", &[&dead, &live]).build().unwrap();
    let s = c.encrypt("default", b"x", b"").unwrap();
    // Rotate is never repeated once sent, but a refused connection never sent it.
    assert_eq!(c.rotate("default").unwrap(), 2);
    // Nor did a server that is not TLS at all (the plain-HTTP admin listener).
    let not_tls = format!("https://127.0.0.1:{}", node.admin.port());
    let c2 = client(&site, "backend", &[&not_tls, &live])
        .build()
        .unwrap();
    assert_eq!(c2.rotate("default").unwrap(), 3);
    assert_eq!(
        c.decrypt("default", &s.ciphertext, b"").unwrap().expose(),
        b"x"
    );

    let none = client(&site, "backend", &[&dead, &dead2]).build().unwrap();
    match none.describe("default") {
        Err(Error::Transport(why)) => {
            assert!(why.contains(&dead) && why.contains(&dead2), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_overloaded_node_is_retried_after_retry_after() {
    let site = Site::new("keybroker.http.max-connections=1");
    let node = Node::start_bin(BIN, &site);
    let url = live_url(&node);
    // A client whose pooled keep-alive connection holds the node's only connection slot.
    let holder = client(&site, "backend", &[&url]).build().unwrap();
    holder.describe("default").unwrap();

    let once = client(&site, "backend", &[&url])
        .max_retries(0)
        .build()
        .unwrap();
    match once.describe("default") {
        Err(Error::Api(a)) => {
            assert_eq!((a.status, a.code.as_str()), (503, "overloaded"));
            assert_eq!(a.retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("{other:?}"),
    }
    let retrying = client(&site, "backend", &[&url]).build().unwrap();
    let t = Instant::now();
    let e = retrying.rotate("default").unwrap_err();
    assert_eq!(e.code(), Some("overloaded"), "rotate is not repeated");
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // Free the slot 1.5 s from now; the retries (1 s apart, as Retry-After says) then get in.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(holder);
    });
    let t = Instant::now();
    let k = retrying.describe("default").unwrap();
    let waited = t.elapsed();
    release.join().unwrap();
    assert_eq!(k.latest_version, 1);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
}

/// Runs `keybroker client ARGS` with `stdin`; the keystore password variable is unset
/// unless given in `env`.
fn kb(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("client")
        .args(args)
        .env_remove("KEYBROKER_KEYSTORE_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_client_commands_round_trip_fail_over_and_report_errors() {
    let site = Site::new("");
    let node = Node::start_bin(BIN, &site);
    let d = &site.dir;
    for who in ["backend", "stranger"] {
        let c = site.cert(who);
        std::fs::write(d.join(format!("{who}.crt")), &c.cert_pem).unwrap();
        std::fs::write(d.join(format!("{who}.key")), &c.key_pem).unwrap();
    }
    let (_dead_port, dead) = dead_url();
    let live = live_url(&node);
    let ca = d.join("ca.crt").to_string_lossy().into_owned();
    let pem_args = |who: &str| -> Vec<String> {
        [
            "--url",
            &dead,
            "--url",
            &live,
            "--ca",
            &ca,
            "--cert",
            &format!("{}/{who}.crt", d.display()),
            "--key",
            &format!("{}/{who}.key", d.display()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let backend = pem_args("backend");

    // The pipe of the documentation, through a shell, with a dead first server.
    let line = format!(
        "echo hi | {BIN} client encrypt {a} | {BIN} client decrypt {a}",
        a = backend.join(" ")
    );
    let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");

    let run = |op: &str, extra: &[&str], args: &[String], stdin: &[u8], env: &[(&str, &str)]| {
        let mut v: Vec<&str> = vec![op];
        v.extend(args.iter().map(String::as_str));
        v.extend(extra);
        kb(&v, stdin, env)
    };
    // Binary data, a context, base64 in and out, a named key.
    let data: Vec<u8> = (0..=255u8).collect();
    let tok = run(
        "encrypt",
        &["default", "--context", "user=1"],
        &backend,
        &data,
        &[],
    );
    assert!(tok.status.success(), "{}", text(&tok.stderr));
    let token = text(&tok.stdout);
    assert!(token.starts_with("kb1:") && token.ends_with('\n'));
    let back = run(
        "decrypt",
        &["--context-base64", "dXNlcj0x"],
        &backend,
        token.as_bytes(),
        &[],
    );
    assert_eq!(back.stdout, data, "{}", text(&back.stderr));
    let b64 = run(
        "decrypt",
        &["--context", "user=1", "--base64"],
        &backend,
        token.as_bytes(),
        &[],
    );
    assert_eq!(text(&b64.stdout).trim_end(), {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&data)
    });
    let tok2 = run("encrypt", &["--base64"], &backend, b"aGk=\n", &[]);
    let back2 = run("decrypt", &[], &backend, &tok2.stdout, &[]);
    assert_eq!(back2.stdout, b"hi");
    let rw = run(
        "rewrap",
        &["--context", "user=1"],
        &backend,
        token.as_bytes(),
        &[],
    );
    assert!(text(&rw.stdout).starts_with("kb1:"), "{}", text(&rw.stderr));
    let back3 = run(
        "decrypt",
        &["--context", "user=1"],
        &backend,
        &rw.stdout,
        &[],
    );
    assert_eq!(back3.stdout, data);
    let g = run("generate", &["--bytes", "24"], &backend, b"", &[]);
    let gj: serde_json::Value = serde_json::from_slice(&g.stdout).unwrap();
    assert_eq!(
        gj["plaintext"].as_str().unwrap().len(),
        32,
        "24 bytes in base64"
    );
    let dk = run(
        "decrypt",
        &["--base64"],
        &backend,
        gj["ciphertext"].as_str().unwrap().as_bytes(),
        &[],
    );
    assert_eq!(
        text(&dk.stdout).trim_end(),
        gj["plaintext"].as_str().unwrap()
    );
    let desc = run("describe", &[], &backend, b"", &[]);
    let dj: serde_json::Value = serde_json::from_slice(&desc.stdout).unwrap();
    assert_eq!(dj["backend"], "soft");

    // Errors: exit 1, the server's status, code and request id on stderr, nothing on stdout.
    let wrong = run(
        "decrypt",
        &["--context", "user=2", "--request-id", "cli-test-1"],
        &backend,
        token.as_bytes(),
        &[],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(wrong.stdout.is_empty());
    let err = text(&wrong.stderr);
    assert!(
        err.contains("400 bad_ciphertext") && err.contains("request_id cli-test-1"),
        "{err}"
    );
    let stranger = run("describe", &[], &pem_args("stranger"), b"", &[]);
    assert_eq!(stranger.status.code(), Some(1));
    let err = text(&stranger.stderr);
    let id = err
        .split("request_id ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or("");
    assert!(err.contains("403 unknown_client") && id.len() >= 8, "{err}");
    let all_dead = kb(
        &[
            "describe",
            "--url",
            &dead,
            "--ca",
            &ca,
            "--cert",
            &backend[7],
            "--key",
            &backend[9],
        ],
        b"",
        &[],
    );
    assert_eq!(all_dead.status.code(), Some(1));
    assert!(
        text(&all_dead.stderr).contains("no server answered"),
        "{}",
        text(&all_dead.stderr)
    );
    let usage = kb(&["encrypt", "--url", &live, "--ca", &ca], b"", &[]);
    assert_eq!(usage.status.code(), Some(2), "an identity is required");

    // Keystores made with openssl and keytool; the password from a file or the environment.
    sh(
        d,
        "openssl pkcs12 -export -inkey backend.key -in backend.crt -name cmxBackend \
           -out backend.p12 -passout pass:backendPwd1 && \
           keytool -importkeystore -srckeystore backend.p12 -srcstoretype PKCS12 \
           -srcstorepass backendPwd1 -destkeystore backend.jks -deststoretype JKS \
           -deststorepass backendPwd2 -destkeypass backendPwd2 -noprompt >/dev/null 2>&1",
    );
    std::fs::write(d.join("pw"), "backendPwd1\n").unwrap();
    let ks = |file: &str| -> Vec<String> {
        [
            "--url",
            &dead,
            "--url",
            &live,
            "--ca",
            &ca,
            "--keystore",
            &format!("{}/{file}", d.display()),
            "--alias",
            "cmxbackend",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut p12 = ks("backend.p12");
    p12.extend(["--password-file".to_string(), format!("{}/pw", d.display())]);
    let t = run("encrypt", &[], &p12, b"from p12", &[]);
    assert!(t.status.success(), "{}", text(&t.stderr));
    let jks = ks("backend.jks");
    let env = [("KEYBROKER_KEYSTORE_PASSWORD", "backendPwd2")];
    let o = run("decrypt", &[], &jks, &t.stdout, &env);
    assert_eq!(o.stdout, b"from p12", "{}", text(&o.stderr));
    let nopw = run("decrypt", &[], &jks, &t.stdout, &[]);
    assert_eq!(nopw.status.code(), Some(1));
    assert!(text(&nopw.stderr).contains("KEYBROKER_KEYSTORE_PASSWORD"));
    let badpw = run(
        "decrypt",
        &[],
        &jks,
        &t.stdout,
        &[("KEYBROKER_KEYSTORE_PASSWORD", "wrongPwd99")],
    );
    assert_eq!(badpw.status.code(), Some(1));
    let err = text(&badpw.stderr);
    assert!(
        err.contains("password is wrong") && !err.contains("wrongPwd99"),
        "{err}"
    );
}

/// A seed site serving from its Java 17 PKCS12 keystore, and the backend's own `.p12` made
/// with the guide's `openssl pkcs12 -export` step.
fn seed_node() -> (PathBuf, Node) {
    let seed = common::seed_site("clients-seed");
    std::fs::copy(
        seed.join("pkcs12/kmsKeystore.jks"),
        seed.join("kmsKeystore.jks"),
    )
    .unwrap();
    std::fs::write(
        seed.join("kms.properties"),
        "kms.keystore.file=kmsKeystore.jks\nkms.keystore.password=kmsKeystorePwd\n\
         kms.keystore.alias=kmsClient\nkms.hsm.protocol=soft\n\
         keybroker.listen=127.0.0.1:0\nkeybroker.admin.listen=127.0.0.1:0\n",
    )
    .unwrap();
    sh(
        &seed,
        "openssl pkcs12 -export -inkey cmxBackend.key -in cmxBackend.crt \
               -name cmxBackend -out cmxBackend.p12 -passout pass:cmxBackendPwd",
    );
    let node = Node::start_with(BIN, &seed.join("kms.properties"));
    (seed, node)
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The example's output: every step done, over `version`, and the refusal with its id.
fn check_example(who: &str, version: &str, out: &Output) {
    let o = text(&out.stdout);
    assert!(
        out.status.success(),
        "{who} {version}: {o}{}",
        text(&out.stderr)
    );
    assert!(o.contains(&format!("tls {version}\n")), "{who}: {o}");
    assert!(o.contains("encrypt ok kb1:"), "{who}: {o}");
    assert!(
        o.contains(&format!("decrypt ok hello from {who}\n")),
        "{who}: {o}"
    );
    let refused = o
        .lines()
        .find_map(|l| l.strip_prefix("wrong context refused: 400 bad_ciphertext request_id "))
        .unwrap_or_else(|| panic!("{who}: {o}"));
    assert!(
        refused.len() >= 8 && refused != "null" && refused != "None",
        "{o}"
    );
}

#[test]
fn the_java_and_python_examples_run_over_tls_1_2_and_1_3() {
    let (seed, node) = seed_node();
    let url = format!("https://127.0.0.1:{}", node.client.port());
    let classes = common::tmp::dir("java-classes");
    let javac = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(examples().join("java/KeybrokerExample.java"))
        .output()
        .unwrap();
    assert!(javac.status.success(), "{}", text(&javac.stderr));
    let ca = seed.join("rootCA.crt");
    for version in ["TLSv1.2", "TLSv1.3"] {
        let java = Command::new("java")
            .arg("-cp")
            .arg(&classes)
            .arg("KeybrokerExample")
            .arg(&url)
            .arg(seed.join("cmxBackend.p12"))
            .arg(&ca)
            .arg(version)
            .env("KEYBROKER_KEYSTORE_PASSWORD", "cmxBackendPwd")
            .output()
            .unwrap();
        check_example("java", version, &java);
        let py = Command::new("python3")
            .arg(examples().join("python/keybroker_example.py"))
            .arg(&url)
            .arg(seed.join("cmxBackend.crt"))
            .arg(seed.join("cmxBackend.key"))
            .arg(&ca)
            .arg(version)
            .output()
            .unwrap();
        check_example("python", version, &py);
    }
    // The server's own identity is refused as a client: the error code reaches Java.
    let java = Command::new("java")
        .arg("-cp")
        .arg(&classes)
        .arg("KeybrokerExample")
        .arg(&url)
        .arg(seed.join("pkcs12/kmsServer.p12"))
        .arg(&ca)
        .env("KEYBROKER_KEYSTORE_PASSWORD", "kmsServerPwd")
        .output()
        .unwrap();
    let err = text(&java.stderr);
    assert!(!java.status.success());
    assert!(
        err.contains("encrypt answered 403") && err.contains("server_identity"),
        "{err}"
    );
}

/// Kills the demo when the test ends, whatever happens.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_pipe_the_demo_prints_round_trips_against_the_demo() {
    use std::io::BufRead;
    let dir = common::tmp::dir("client-demo");
    let mut demo = Demo(
        Command::new(BIN)
            .args(["demo", "--port", "0", "--dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Read the demo's stdout to its end on a thread: a closed pipe would end the demo.
    let out = std::io::BufReader::new(demo.0.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut kb, mut pipe) = (None, None);
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        if let Some(v) = line.strip_prefix("KB=") {
            kb = Some(v.trim_matches('"').to_owned());
        }
        if line.contains("| keybroker client decrypt") {
            pipe = Some(line);
            break;
        }
    }
    let (kb, pipe) = (
        kb.expect("the demo prints KB="),
        pipe.expect("and the pipe"),
    );
    // The demo prints `keybroker`; run this build's binary.
    let script = format!(
        "KB=\"{kb}\"\n{}",
        pipe.replace("keybroker client", &format!("{BIN} client"))
    );
    let o = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "{script}\n{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "hello keybroker\n");
}
