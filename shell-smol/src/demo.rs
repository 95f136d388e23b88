//! `keybroker demo`: dev certificates, a PKCS12 keystore, a soft master key, and a live server.
use crate::files;
use crate::node as serve;
use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::Path;
use std::time::SystemTime;

/// The demo keystore password (dev only; it is written in kms.properties anyway).
pub const DEMO_PASSWORD: &str = "keybroker-demo";

/// Options of `keybroker demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where certificates and config go.
    pub dir: String,
    /// Client listener port (admin listens on port + 1000, or any free port when 0).
    pub port: u16,
    /// Run the checks against itself and exit.
    pub self_test: bool,
}

/// One issued certificate and its key.
pub struct Issued {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Certificate, DER.
    pub cert_der: Vec<u8>,
    /// Private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

fn this_year() -> i32 {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    1970 + (secs / 31_556_952) as i32
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// TLS server (SAN localhost, 127.0.0.1, ::1).
    Server,
    /// TLS client.
    Client,
}

/// A throw-away CA that issues dev certificates (demo and tests).
pub struct Pki {
    ca_key: KeyPair,
    ca: rcgen::Certificate,
    /// The CA certificate itself.
    pub ca_issued: Issued,
}

impl Pki {
    /// A new CA.
    pub fn new() -> Result<Pki, String> {
        let ca_key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        p.distinguished_name
            .push(DnType::CommonName, "keybroker demo CA");
        p.distinguished_name
            .push(DnType::OrganizationName, "keybroker demo");
        let y = this_year();
        p.not_before = rcgen::date_time_ymd(y - 1, 1, 1);
        p.not_after = rcgen::date_time_ymd(y + 5, 1, 1);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = p.self_signed(&ca_key).map_err(|e| e.to_string())?;
        let ca_issued = Issued {
            cert_pem: ca.pem(),
            cert_der: ca.der().to_vec(),
            key_pem: ca_key.serialize_pem(),
            key_der: ca_key.serialize_der(),
        };
        Ok(Pki {
            ca_key,
            ca,
            ca_issued,
        })
    }

    /// Issues a certificate valid from yesterday until `days` days from now (negative:
    /// expired that many days ago), for testing expiry warnings.
    pub fn issue_days(&self, cn: &str, usage: Usage, days: i64) -> Result<Issued, String> {
        let now = time::OffsetDateTime::now_utc();
        self.issue_between(
            cn,
            usage,
            now - time::Duration::days(days.abs() + 1),
            now + time::Duration::days(days),
        )
    }

    /// Issues a certificate valid from Jan 1 of last year for `years` years (negative: expired).
    pub fn issue(&self, cn: &str, usage: Usage, years: i32) -> Result<Issued, String> {
        let y = this_year();
        if years >= 0 {
            self.issue_between(
                cn,
                usage,
                rcgen::date_time_ymd(y - 1, 1, 1),
                rcgen::date_time_ymd(y + years, 1, 1),
            )
        } else {
            self.issue_between(
                cn,
                usage,
                rcgen::date_time_ymd(y - 3, 1, 1),
                rcgen::date_time_ymd(y + years, 1, 1),
            )
        }
    }

    fn issue_between(
        &self,
        cn: &str,
        usage: Usage,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<Issued, String> {
        let e = |e: rcgen::Error| e.to_string();
        let key = KeyPair::generate().map_err(e)?;
        let sans: Vec<String> = if usage == Usage::Server {
            vec!["localhost".into()]
        } else {
            vec![]
        };
        let mut p = CertificateParams::new(sans).map_err(e)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationName, "keybroker demo");
        p.not_before = not_before;
        p.not_after = not_after;
        if usage == Usage::Server {
            p.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
            p.subject_alt_names
                .push(SanType::IpAddress("::1".parse().expect("ip")));
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).map_err(e)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        })
    }
}

/// A PKCS12 keystore as keytool would hold a site's: the server key entry, then trusted certs.
pub fn pkcs12_keystore(
    password: &str,
    server_alias: &str,
    server: &Issued,
    ca: &Issued,
    trusted: &[(&str, &Issued)],
) -> Result<Vec<u8>, String> {
    let pe = |e: p12_keystore::error::Error| e.to_string();
    keystore_of(server_alias, server, ca, trusted)?
        .writer(password)
        .write()
        .map_err(pe)
}

fn keystore_of(
    server_alias: &str,
    server: &Issued,
    ca: &Issued,
    trusted: &[(&str, &Issued)],
) -> Result<KeyStore, String> {
    let pe = |e: p12_keystore::error::Error| e.to_string();
    let mut ks = KeyStore::new();
    ks.add_entry(
        server_alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
            server_alias.as_bytes(),
            PrivateKey::from_der(&server.key_der).map_err(pe)?,
            [
                Certificate::from_der(&server.cert_der).map_err(pe)?,
                Certificate::from_der(&ca.cert_der).map_err(pe)?,
            ],
        )),
    );
    for (alias, who) in trusted {
        ks.add_entry(
            alias,
            KeyStoreEntry::Certificate(Certificate::from_der(&who.cert_der).map_err(pe)?),
        );
    }
    Ok(ks)
}

/// Like [`pkcs12_keystore`], plus more private-key entries (alias, issued; chain leaf + CA),
/// e.g. the `kmsClient` entry keybroker presents to a KMIP HSM.
pub fn pkcs12_keystore_with_keys(
    password: &str,
    server_alias: &str,
    server: &Issued,
    ca: &Issued,
    trusted: &[(&str, &Issued)],
    keys: &[(&str, &Issued)],
) -> Result<Vec<u8>, String> {
    let pe = |e: p12_keystore::error::Error| e.to_string();
    let mut ks = keystore_of(server_alias, server, ca, trusted)?;
    for (alias, who) in keys {
        ks.add_entry(
            alias,
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                alias.as_bytes(),
                PrivateKey::from_der(&who.key_der).map_err(pe)?,
                [
                    Certificate::from_der(&who.cert_der).map_err(pe)?,
                    Certificate::from_der(&ca.cert_der).map_err(pe)?,
                ],
            )),
        );
    }
    ks.writer(password).write().map_err(pe)
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> Result<(), String> {
    let p = dir.join(name);
    files::write_atomic(&p.to_string_lossy(), contents).map_err(|e| format!("{}: {e}", p.display()))
}

/// Creates certificates, keystore and kms.properties in `dir` (keeps existing ones).
pub fn provision(dir: &Path, port: u16, admin_port: u16) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !dir.join("kmsKeystore.p12").exists() {
        let pki = Pki::new()?;
        let server = pki.issue("localhost", Usage::Server, 2)?;
        let backend = pki.issue("cmxBackend.demo.keybroker", Usage::Client, 2)?;
        let device = pki.issue("cmxDevice.demo.keybroker", Usage::Client, 2)?;
        let stranger = pki.issue("stranger.demo.keybroker", Usage::Client, 2)?;
        write(dir, "ca.crt", pki.ca_issued.cert_pem.as_bytes())?;
        for (name, i) in [
            ("server", &server),
            ("backend", &backend),
            ("device", &device),
            ("stranger", &stranger),
        ] {
            write(dir, &format!("{name}.crt"), i.cert_pem.as_bytes())?;
            write(dir, &format!("{name}.key"), i.key_pem.as_bytes())?;
        }
        let ks = pkcs12_keystore(
            DEMO_PASSWORD,
            "kmsserver",
            &server,
            &pki.ca_issued,
            &[
                ("kmipsigningca", &pki.ca_issued),
                ("cmxbackend", &backend),
                ("cmxdevice", &device),
            ],
        )?;
        write(dir, "kmsKeystore.p12", &ks)?;
    }
    let props = format!(
        "# keybroker demo configuration (dev only: soft master key, demo certificates)\n\
         kms.keystore.file=kmsKeystore.p12\n\
         kms.keystore.password={DEMO_PASSWORD}\n\
         kms.hsm.protocol=soft\n\
         keybroker.soft.key-file=soft-keys.json\n\
         keybroker.listen=127.0.0.1:{port}\n\
         keybroker.admin.listen=127.0.0.1:{admin_port}\n\
         keybroker.audit.file=audit.log\n"
    );
    write(dir, "kms.properties", props.as_bytes())?;
    Ok(dir.join("kms.properties").to_string_lossy().into_owned())
}

/// The ready-to-paste curl commands the demo prints.
pub fn curl_lines(dir: &str, port: u16, admin: u16) -> String {
    let base = format!("https://localhost:{port}/v1/keys/default");
    let c = |who: &str| {
        format!("curl -sS --cacert {dir}/ca.crt --cert {dir}/{who}.crt --key {dir}/{who}.key -H 'Content-Type: application/json'")
    };
    format!(
        "# generate a data key (backend)\n{b} -d '{{\"bytes\":32}}' {base}/generate\n\
         # encrypt, keeping the ciphertext in $CT (backend)\n\
         CT=$({b} -d '{{\"plaintext\":\"aGVsbG8ga2V5YnJva2Vy\"}}' {base}/encrypt | sed -E 's/.*\"ciphertext\":\"([^\"]+)\".*/\\1/'); echo \"$CT\"\n\
         # decrypt it (backend)\n{b} -d \"{{\\\"ciphertext\\\":\\\"$CT\\\"}}\" {base}/decrypt\n\
         # decrypt it as a device\n{d} -d \"{{\\\"ciphertext\\\":\\\"$CT\\\"}}\" {base}/decrypt\n\
         # a device may not rewrap: 403\n{d} -d \"{{\\\"ciphertext\\\":\\\"$CT\\\"}}\" {base}/rewrap\n\
         # a certificate that is not in the keystore: 403\n{s} -d '{{\"plaintext\":\"aGk=\"}}' {base}/encrypt\n\
         # admin: health, readiness, metrics\ncurl -sS http://127.0.0.1:{admin}/readyz; curl -sS http://127.0.0.1:{admin}/metrics\n",
        b = c("backend"),
        d = c("device"),
        s = c("stranger"),
    )
}

/// The same calls with `keybroker client` (docs/cli.md), as the demo prints them.
pub fn client_lines(dir: &str, port: u16) -> String {
    format!(
        "# or with keybroker's own client (docs/cli.md): encrypt stdin, decrypt it back\n\
         KB=\"--url https://localhost:{port} --ca {dir}/ca.crt --cert {dir}/backend.crt --key {dir}/backend.key\"\n\
         echo hello keybroker | keybroker client encrypt $KB | keybroker client decrypt $KB\n"
    )
}

/// Runs `keybroker demo`; returns the process exit code.
pub fn run(opts: DemoOptions) -> i32 {
    let dir = Path::new(&opts.dir);
    let admin_port = if opts.port == 0 {
        0
    } else {
        opts.port.saturating_add(1000)
    };
    let props = match provision(dir, opts.port, admin_port) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("keybroker demo: {e}");
            return 1;
        }
    };
    use crate::serve::Server;
    let server = match Server::bind(&props) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keybroker demo: {e}");
            return 1;
        }
    };
    let (addr, admin) = server.addrs();
    let dir_abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir_s = dir_abs.to_string_lossy().into_owned();
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    if opts.self_test {
        let handle =
            std::thread::spawn(move || server.run(stop_rx, std::time::Duration::from_secs(5)));
        let ok = self_test(&dir_s, addr.port());
        let _ = stop_tx.send_blocking(());
        let _ = handle.join();
        return if ok { 0 } else { 1 };
    }
    println!(
        "keybroker demo serving on https://localhost:{} (admin http://127.0.0.1:{})",
        addr.port(),
        admin.port()
    );
    println!("files in {dir_s}; soft master key: NOT for production\n");
    println!("{}", curl_lines(&dir_s, addr.port(), admin.port()));
    println!("{}", client_lines(&dir_s, addr.port()));
    let shared = server.shared();
    crate::node::install_signals(
        move || {
            let _ = stop_tx.send_blocking(());
        },
        move || shared.reload(),
    );
    server.run(stop_rx, std::time::Duration::from_secs(10));
    0
}

/// Runs every demo check over real mTLS against `port`, through keybroker-client; prints one
/// line per check.
pub fn self_test(dir: &str, port: u16) -> bool {
    use keybroker_client::{Client, Error, Identity};
    let read = |n: &str| std::fs::read(Path::new(dir).join(n)).unwrap_or_default();
    let connect = |who: Option<&str>| -> Result<Client, String> {
        let mut b = Client::builder()
            .url(format!("https://localhost:{port}"))
            .ca_pem(&read("ca.crt"))
            .map_err(|e| e.to_string())?
            .max_retries(0);
        if let Some(w) = who {
            let id = Identity::from_pem(&read(&format!("{w}.crt")), &read(&format!("{w}.key")))
                .map_err(|e| e.to_string())?;
            b = b.identity(id);
        }
        b.build().map_err(|e| e.to_string())
    };
    let mut failures = 0;
    let mut check = |name: &str, r: Result<(), String>| match r {
        Ok(()) => println!("ok   {name}"),
        Err(e) => {
            failures += 1;
            println!("FAIL {name}: {e}");
        }
    };
    // A refusal with exactly this status; anything else is the failure.
    let refused = |r: Result<(), Error>, status: u16| match r {
        Err(e) if e.status() == Some(status) => Ok(()),
        Err(e) => Err(format!("want {status}, got {e}")),
        Ok(()) => Err(format!("want {status}, got 200")),
    };
    let plaintext = b"hello keybroker";
    let context = b"user=42";
    let mut ct = String::new();
    match connect(Some("backend")) {
        Err(e) => check("backend connects", Err(e)),
        Ok(b) => {
            check(
                "backend generate",
                b.generate("default", 32, b"")
                    .map_err(|e| e.to_string())
                    .and_then(|d| {
                        if d.plaintext.expose().len() == 32 && d.ciphertext.starts_with("kb1:") {
                            Ok(())
                        } else {
                            Err(format!("unexpected answer {d:?}"))
                        }
                    }),
            );
            check(
                "backend encrypt",
                b.encrypt("default", plaintext, context)
                    .map(|s| ct = s.ciphertext)
                    .map_err(|e| e.to_string()),
            );
            check(
                "backend decrypt",
                b.decrypt("default", &ct, context)
                    .map_err(|e| e.to_string())
                    .and_then(|p| {
                        if p.expose() == plaintext {
                            Ok(())
                        } else {
                            Err("another plaintext came back".into())
                        }
                    }),
            );
            check(
                "decrypt with the wrong context is refused (400)",
                refused(b.decrypt("default", &ct, b"user=43").map(|_| ()), 400),
            );
            check(
                "backend rewrap",
                b.rewrap("default", &ct, context)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        if s.ciphertext.starts_with("kb1:") && s.ciphertext != ct {
                            Ok(())
                        } else {
                            Err(format!("got {s:?}"))
                        }
                    }),
            );
        }
    }
    match connect(Some("device")) {
        Err(e) => check("device connects", Err(e)),
        Ok(d) => {
            check(
                "device decrypt",
                d.decrypt("default", &ct, context)
                    .map_err(|e| e.to_string())
                    .and_then(|p| {
                        if p.expose() == plaintext {
                            Ok(())
                        } else {
                            Err("another plaintext came back".into())
                        }
                    }),
            );
            check(
                "device rewrap is refused (403)",
                refused(d.rewrap("default", &ct, context).map(|_| ()), 403),
            );
        }
    }
    match connect(Some("stranger")) {
        Err(e) => check("stranger connects (and is then refused)", Err(e)),
        Ok(s) => check(
            "stranger is refused (403)",
            refused(s.encrypt("default", plaintext, b"").map(|_| ()), 403),
        ),
    }
    check(
        "no client certificate fails the TLS handshake",
        match connect(None).map(|c| c.describe("default")) {
            Ok(Ok(_)) => Err("answered 200".into()),
            Ok(Err(Error::Api(a))) => Err(format!("answered {}", a.status)),
            Ok(Err(_)) => Ok(()),
            Err(e) => Err(e),
        },
    );
    if failures == 0 {
        println!("self-test passed");
    } else {
        println!("self-test failed: {failures} check(s)");
    }
    serve::log("info", "self-test done");
    failures == 0
}
