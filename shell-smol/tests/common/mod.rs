//! Test harness: a site (CA, certificates, PKCS12 keystore, kms.properties) and a real
//! `keybroker serve` process on loopback, stopped when dropped. Every directory a test makes
//! lives under [`tmp::root`], removed when the test process ends.
#![allow(dead_code)]
pub mod peers;
pub mod ports;
pub mod raw;
#[path = "../../../core/tests/common/tmp.rs"]
pub mod tmp;
pub mod walk;
use keybroker::demo::{pkcs12_keystore_with_keys, Issued, Pki, Usage};
use keybroker_client::{Client, Identity};
use raw::Conn;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "kmsKeystorePwd";

/// Client identities every site has.
pub const WHO: &[&str] = &[
    "backend", "device", "device2", "stranger", "expired", "server",
];

pub struct Site {
    pub dir: PathBuf,
    pub pki: Pki,
    pub certs: Vec<(String, Issued)>,
}

/// The checkout's Python virtualenv (PyKMIP, OpenBao), made by `scripts/provision`.
pub fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv")
}

impl Site {
    /// A fresh site; `extra` lines are appended to kms.properties.
    pub fn new(extra: &str) -> Site {
        Self::build(extra, false)
    }

    /// A site whose keystore also holds the `kmsClient` private-key entry (EKU clientAuth,
    /// CN kmsClient) that keybroker presents to a KMIP HSM, as the Connected-KMS installation
    /// guide makes it.
    pub fn with_kms_client(extra: &str) -> Site {
        Self::build(extra, true)
    }

    fn build(extra: &str, kms_client: bool) -> Site {
        let dir = tmp::dir("site");
        let pki = Pki::new().unwrap();
        let certs = vec![
            (
                "server".to_string(),
                pki.issue("localhost", Usage::Server, 2).unwrap(),
            ),
            (
                "backend".to_string(),
                pki.issue("cmxBackend.test", Usage::Client, 2).unwrap(),
            ),
            (
                "device".to_string(),
                pki.issue("cmxDevice.test", Usage::Client, 2).unwrap(),
            ),
            (
                "device2".to_string(),
                pki.issue("cmxDevice20190512.test", Usage::Client, 2)
                    .unwrap(),
            ),
            (
                "stranger".to_string(),
                pki.issue("stranger.test", Usage::Client, 2).unwrap(),
            ),
            (
                "expired".to_string(),
                pki.issue("cmxDeviceOld.test", Usage::Client, -1).unwrap(),
            ),
        ];
        let mut certs = certs;
        if kms_client {
            certs.push((
                "kmsClient".to_string(),
                pki.issue("kmsClient", Usage::Client, 2).unwrap(),
            ));
        }
        let site = Site { dir, pki, certs };
        site.write_keystore();
        std::fs::write(site.dir.join("ca.crt"), &site.pki.ca_issued.cert_pem).unwrap();
        let props = format!(
            "kms.keystore.file=kmsKeystore.p12\nkms.keystore.password={PASSWORD}\nkms.hsm.protocol=soft\n\
             keybroker.listen=127.0.0.1:0\nkeybroker.admin.listen=127.0.0.1:0\n\
             keybroker.audit.file=audit.log\n{extra}\n"
        );
        std::fs::write(site.properties(), props).unwrap();
        site
    }

    /// Replaces the `kmsClient` entry (the HSM client certificate) and rewrites the keystore.
    pub fn set_kms_client(&mut self, issued: Issued) {
        self.certs.retain(|(n, _)| n != "kmsClient");
        self.certs.push(("kmsClient".to_string(), issued));
        self.write_keystore();
    }

    fn write_keystore(&self) {
        let site = self;
        let kms_client = site.certs.iter().any(|(n, _)| n == "kmsClient");
        let keys: Vec<(&str, &Issued)> = if kms_client {
            vec![("kmsClient", site.cert("kmsClient"))]
        } else {
            vec![]
        };
        let ks = pkcs12_keystore_with_keys(
            PASSWORD,
            "kmsServer",
            site.cert("server"),
            &site.pki.ca_issued,
            &[
                ("kmipSigningCA", &site.pki.ca_issued),
                ("cmxBackend", site.cert("backend")),
                ("cmxDevice", site.cert("device")),
                ("cmxDevice20190512", site.cert("device2")),
                ("cmxDeviceOld", site.cert("expired")),
            ],
            &keys,
        )
        .unwrap();
        std::fs::write(site.dir.join("kmsKeystore.p12"), ks).unwrap();
    }

    pub fn properties(&self) -> PathBuf {
        self.dir.join("kms.properties")
    }

    pub fn cert(&self, who: &str) -> &Issued {
        &self.certs.iter().find(|(n, _)| n == who).unwrap().1
    }

    /// A keybroker-client builder presenting `who`'s certificate to `urls`, trusting the CA.
    pub fn client_builder(&self, who: &str, urls: &[String]) -> keybroker_client::Builder {
        let c = self.cert(who);
        let mut b = Client::builder()
            .ca_pem(self.pki.ca_issued.cert_pem.as_bytes())
            .unwrap()
            .identity(Identity::from_pem(c.cert_pem.as_bytes(), c.key_pem.as_bytes()).unwrap());
        for u in urls {
            b = b.url(u.clone());
        }
        b
    }

    /// A keybroker-client presenting `who`'s certificate to `urls`, without retries: tests
    /// see every status as the server sent it.
    pub fn client_to(&self, who: &str, urls: &[String]) -> Client {
        self.client_builder(who, urls)
            .max_retries(0)
            .build()
            .unwrap()
    }

    /// TLS client config presenting `who`'s certificate (None: no certificate).
    pub fn tls(&self, who: Option<&str>) -> Arc<rustls::ClientConfig> {
        let ca = self.pki.ca_issued.cert_pem.as_bytes();
        match who {
            Some(w) => {
                let c = self.cert(w);
                raw::config(ca, Some((c.cert_pem.as_bytes(), c.key_pem.as_bytes()))).unwrap()
            }
            None => raw::config(ca, None).unwrap(),
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A site made by scripts/seed-site (the Connected-KMS guide's openssl and keytool steps) in a
/// fresh directory named after `name`.
pub fn seed_site(name: &str) -> PathBuf {
    let dir = tmp::dir(name);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/seed-site");
    let out = Command::new("sh").arg(script).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "seed-site: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

pub struct Node {
    pub child: Child,
    pub client: SocketAddr,
    pub admin: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Starts `bin serve --config` with the site's properties.
    pub fn start_bin(bin: &str, site: &Site) -> Node {
        Self::start_with(bin, &site.properties())
    }

    /// Starts `bin serve --config properties`.
    pub fn start_with(bin: &str, properties: &std::path::Path) -> Node {
        Self::start_env(bin, properties, &[])
    }

    /// Starts `bin serve --config properties` with `env` added to its environment.
    pub fn start_env(bin: &str, properties: &std::path::Path, env: &[(&str, &str)]) -> Node {
        let mut child = Command::new(bin)
            .envs(env.iter().copied())
            .args(["serve", "--config"])
            .arg(properties)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("keybroker starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening client=").nth(1) {
                    let mut it = rest.split(" admin=");
                    let c: SocketAddr = it.next().unwrap().parse().unwrap();
                    // The line may be text or a JSON object (keybroker.log.format=json).
                    let a: SocketAddr = it
                        .next()
                        .unwrap()
                        .trim()
                        .trim_end_matches(['"', '}'])
                        .parse()
                        .unwrap();
                    let _ = tx.send((c, a));
                }
                log2.lock().unwrap().push(line);
            }
        });
        let (client, admin) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("keybroker did not start: {:?}", log.lock().unwrap()));
        // Ready when the admin listener answers in HTTP, not when a log line says so.
        let end = Instant::now() + Duration::from_secs(30);
        while peers::http_get_status(admin.port(), "/healthz") != Some(200) {
            assert!(
                Instant::now() < end,
                "keybroker does not answer /healthz on {admin}: {:?}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Node {
            child,
            client,
            admin,
            log,
        }
    }

    /// This node's client URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.client.port())
    }

    /// A keybroker-client for this node presenting `who`'s certificate.
    pub fn connect(&self, site: &Site, who: &str) -> Client {
        site.client_to(who, &[self.url()])
    }

    /// One raw TLS connection presenting `who`'s certificate (see [`raw`]).
    pub fn raw(&self, site: &Site, who: &str) -> Conn {
        Conn::connect(&self.client.to_string(), "localhost", site.tls(Some(who))).unwrap()
    }

    /// GET on the admin listener: (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
pub mod imds;
pub mod openbao;
pub mod pykmip;

/// Checks a `/metrics` exposition with Prometheus's own parser and linter (`promtool check
/// metrics`): `$KEYBROKER_PROMTOOL`, else the copy `scripts/provision` unpacks into
/// `target/tools/`, else `promtool` on PATH. Panics with promtool's complaints.
pub fn promtool_check(exposition: &str) {
    use std::io::Write;
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/promtool");
    let promtool = std::env::var_os("KEYBROKER_PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or(if local.exists() {
            local
        } else {
            PathBuf::from("promtool")
        });
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/provision)", promtool.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "promtool check metrics: {:?}\n{complaints}\n--- exposition:\n{exposition}",
        out.status
    );
}
