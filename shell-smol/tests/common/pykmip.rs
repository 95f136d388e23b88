//! A real PyKMIP 0.11 server (from `.venv`, made by scripts/provision) on a reserved loopback
//! port, with an ECDSA P-256 server certificate from the site's CA (rustls needs a GCM suite,
//! which PyKMIP only offers with an ECDSA certificate), TLS client auth against that CA, and
//! a sqlite database (two servers may share one: a two-node "HSM cluster"). It is ready when
//! it answers a KMIP DiscoverVersions over mutual TLS.
//!
//! [`PyKmip::start_requiring`] runs the same server with one check added in front of PyKMIP's
//! own authentication (`KmipSession.authenticate`), as an HSM with "Password Authentication:
//! Required" has: a request whose header lacks the expected Username and Password Credential
//! is answered with PyKMIP's own Authentication Not Successful error. PyKMIP parses the
//! Credential itself (and refuses a malformed one); it does not check passwords on its own.
//!
//! [`Options::tls10_only`] runs PyKMIP's `Basic` authentication suite, which speaks only TLS 1.0
//! (`ssl.PROTOCOL_TLSv1`) with its own CBC suites, as an HSM limited to TLS 1.0 does. Python
//! (3.10+) sets OpenSSL security level 2 on every context it makes, and OpenSSL 3 refuses TLS
//! 1.0 above level 0, so the entry point appends `@SECLEVEL=0` to the suite's cipher string —
//! nothing else changes (an `OPENSSL_CONF` cannot do it: Python's own cipher string overrides it).
#![allow(dead_code)]
use super::peers::{signal_group, Peer};
use super::Site;
use keybroker::demo::Usage;
use keybroker_core::kmip::messages::{self, Credential, ProtocolVersion, Request};
use keybroker_core::secret::Secret;
use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The venv's `pykmip-server`, or a panic saying how to get it.
pub fn server_bin() -> PathBuf {
    let p = super::venv().join("bin/pykmip-server");
    assert!(
        p.exists(),
        "{} is missing: run scripts/provision (python3-venv + pip install pykmip)",
        p.display()
    );
    p
}

/// One running `pykmip-server`, killed (whole process group) on drop.
pub struct PyKmip {
    pub port: u16,
    pub dir: PathBuf,
    peer: Peer,
}

/// How a server is set up beyond the defaults.
#[derive(Default)]
pub struct Options<'a> {
    /// Every request must carry this (username, password) Credential in its header.
    pub credential: Option<(&'a str, &'a str)>,
    /// The server's certificate and key (PEM) instead of a fresh ECDSA certificate with a
    /// subjectAltName for 127.0.0.1; the readiness probe then dials `localhost`.
    pub server_cert: Option<(String, String)>,
    /// PyKMIP's `tls_cipher_suites` (space-separated IANA names) instead of its defaults.
    pub cipher_suites: Option<&'a str>,
    /// Probe readiness over OpenSSL (an RSA server certificate: CBC suites only).
    pub openssl_probe: bool,
    /// Speak only TLS 1.0 (PyKMIP's `Basic` suite at OpenSSL security level 0); needs an RSA
    /// server certificate and the OpenSSL probe.
    pub tls10_only: bool,
}

/// A check of the request header's Credential in front of PyKMIP's authentication.
const REQUIRE_CREDENTIAL_PY: &str = r#"
import os
from kmip.core import enums, exceptions
from kmip.services.server import session

WANT = (os.environ["KB_TEST_KMIP_USERNAME"], os.environ["KB_TEST_KMIP_PASSWORD"])
pykmip_authenticate = session.KmipSession.authenticate

def authenticate(self, certificate, request):
    auth = request.request_header.authentication
    sent = [
        (c.credential_value.username, c.credential_value.password)
        for c in (auth.credentials if auth is not None else [])
        if c.credential_type == enums.CredentialType.USERNAME_AND_PASSWORD
    ]
    if WANT not in sent:
        self._logger.warning("credential refused: usernames sent %r", [u for u, _ in sent])
        raise exceptions.PermissionDenied("no valid Username and Password Credential")
    return pykmip_authenticate(self, certificate, request)

session.KmipSession.authenticate = authenticate
"#;

/// PyKMIP's `Basic` suite (TLS 1.0 only) at OpenSSL security level 0, which TLS 1.0 needs.
const TLS10_AT_SECLEVEL_0_PY: &str = r#"
from kmip.services import auth

basic_ciphers = auth.BasicAuthenticationSuite.ciphers
auth.BasicAuthenticationSuite.ciphers = property(
    lambda self: basic_ciphers.fget(self) + ":@SECLEVEL=0"
)
"#;

/// PyKMIP's server entry point, run after the checks and settings above that apply.
const RUN_SERVER_PY: &str = r#"
import sys
from kmip.services.server import server
sys.exit(server.main())
"#;

impl PyKmip {
    /// Starts a server for `site` named `name`, storing objects in `db` (shared if the same).
    pub fn start(site: &Site, name: &str, db: &Path) -> PyKmip {
        Self::start_requiring(site, name, db, None)
    }

    /// Like [`PyKmip::start`]; with `credential` (username, password), every request must
    /// carry that Username and Password Credential in its header.
    pub fn start_requiring(
        site: &Site,
        name: &str,
        db: &Path,
        credential: Option<(&str, &str)>,
    ) -> PyKmip {
        Self::start_with(
            site,
            name,
            db,
            &Options {
                credential,
                ..Options::default()
            },
        )
    }

    /// Starts a server set up as `opts` says.
    pub fn start_with(site: &Site, name: &str, db: &Path, opts: &Options<'_>) -> PyKmip {
        let credential = opts.credential;
        let dir = site.dir.join(format!("pykmip-{name}"));
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        let (cert_pem, key_pem) = opts.server_cert.clone().unwrap_or_else(|| {
            let cert = site.pki.issue("127.0.0.1", Usage::Server, 2).unwrap();
            (cert.cert_pem, cert.key_pem)
        });
        std::fs::write(dir.join("server.crt"), cert_pem).unwrap();
        std::fs::write(dir.join("server.key"), key_pem).unwrap();
        std::fs::write(dir.join("ca.crt"), &site.pki.ca_issued.cert_pem).unwrap();
        let ports = super::ports::one();
        let port = ports.get(0);
        let conf = format!(
            "[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={d}/server.crt\n\
             key_path={d}/server.key\nca_path={d}/ca.crt\nauth_suite={auth_suite}\n\
             policy_path={d}/policies\nenable_tls_client_auth=True\n\
             database_path={db}\nlogging_level=WARNING\n{suites}",
            d = dir.display(),
            db = db.display(),
            auth_suite = if opts.tls10_only { "Basic" } else { "TLS1.2" },
            suites = opts
                .cipher_suites
                .map(|c| format!("tls_cipher_suites={c}\n"))
                .unwrap_or_default()
        );
        std::fs::write(dir.join("server.conf"), conf).unwrap();
        let mut cmd = if credential.is_none() && !opts.tls10_only {
            Command::new(server_bin())
        } else {
            let mut entry = String::new();
            let mut c = Command::new(server_bin().with_file_name("python3"));
            if let Some((user, password)) = credential {
                entry += REQUIRE_CREDENTIAL_PY;
                c.env("KB_TEST_KMIP_USERNAME", user)
                    .env("KB_TEST_KMIP_PASSWORD", password);
            }
            if opts.tls10_only {
                entry += TLS10_AT_SECLEVEL_0_PY;
            }
            entry += RUN_SERVER_PY;
            std::fs::write(dir.join("pykmip_entry.py"), entry).unwrap();
            c.arg(dir.join("pykmip_entry.py"));
            c
        };
        cmd.arg("-f")
            .arg(dir.join("server.conf"))
            .arg("-l")
            .arg(dir.join("server.log"));
        let mut peer = Peer::spawn(&mut cmd, &dir, ports, "pykmip-server");
        let probe_credential = credential.map(|(user, password)| Credential {
            username: user.to_owned(),
            password: Some(Secret::new(password.to_owned())),
        });
        let tls = probe_tls(site);
        let host = if opts.server_cert.is_some() {
            "localhost"
        } else {
            "127.0.0.1"
        };
        let openssl_probe = opts.openssl_probe;
        #[cfg(feature = "legacy-hsm-tls")]
        let only = opts.tls10_only.then_some(Tls::V1_0);
        peer.wait_ready(Duration::from_secs(60), |_| {
            if openssl_probe {
                #[cfg(feature = "legacy-hsm-tls")]
                return discover_versions_openssl(site, host, port, only).map(|_| ());
                #[cfg(not(feature = "legacy-hsm-tls"))]
                panic!("an OpenSSL probe needs the legacy-hsm-tls feature");
            }
            discover_versions(host, port, tls.clone(), probe_credential.as_ref()).map(|_| ())
        });
        PyKmip { port, dir, peer }
    }

    /// `https://127.0.0.1:PORT`, as kms.hsm.server.url lists it.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the server's process group (an HSM dying) and reaps it.
    pub fn kill(&mut self) {
        self.peer.kill();
    }

    /// SIGSTOPs the server's process group: connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal_group(self.peer.child.id(), "STOP");
    }

    /// The server's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// The readiness probe's TLS client: a certificate from the site's CA, and the server
/// verified the way keybroker verifies HSMs (a CN-only certificate is matched on its CN).
fn probe_tls(site: &Site) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let probe = site.pki.issue("readiness-probe", Usage::Client, 1).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(site.pki.ca_issued.cert_der.clone()))
        .unwrap();
    let provider = keybroker_host::tls::provider();
    let verifier =
        keybroker_host::hsm_verify::HsmServerVerifier::new(roots, provider.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(
                vec![CertificateDer::from(probe.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(probe.key_der.clone())),
            )
            .unwrap(),
    )
}

/// An HSM server certificate made as the site guide's CSR steps make one: a key, a CSR with
/// only a subject (`openssl req -new -sha256 -subj …/CN=cn`), signed by the site's CA with
/// `openssl x509 -req` and the leaf extensions scripts/seed-site uses (no subjectAltName).
/// The key is ECDSA P-256 rather than the guide's RSA-2048: PyKMIP offers rustls a GCM suite
/// only with an ECDSA certificate. Returns (certificate PEM, key PEM).
pub fn cn_only_cert(site: &Site, cn: &str) -> (String, String) {
    openssl_cert(site, cn, "prime256v1", "sha256", None)
}

/// An HSM server certificate made exactly as the site guide's steps make one: an RSA-2048
/// key (`openssl genrsa`), a CSR with only a subject, signed by the site's CA without a
/// subjectAltName. PyKMIP offers only CBC suites with RSA key exchange for it.
pub fn rsa_cn_only_cert(site: &Site, cn: &str) -> (String, String) {
    openssl_cert(site, cn, "rsa2048", "sha256", None)
}

/// The same steps with a P-384 key, a SHA-384 signature and a subjectAltName naming
/// `localhost` and 127.0.0.1: a certificate that fits the CNSA profile.
pub fn p384_cert(site: &Site, cn: &str) -> (String, String) {
    openssl_cert(
        site,
        cn,
        "secp384r1",
        "sha384",
        Some("DNS:localhost,IP:127.0.0.1"),
    )
}

/// A P-384 client certificate for `cn` from the site's CA, signed with SHA-384 (EKU
/// clientAuth), as the keystore's `kmsClient` entry wants it under CNSA.
pub fn p384_client(site: &Site, cn: &str) -> keybroker::demo::Issued {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let (cert_pem, _) = openssl_cert(site, cn, "secp384r1", "sha384", None);
    let dir = site.dir.join(format!("openssl-{cn}-secp384r1"));
    let out = Command::new("openssl")
        .args([
            "pkcs8", "-topk8", "-nocrypt", "-in", "hsm.key", "-out", "hsm.p8",
        ])
        .current_dir(&dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_pem = std::fs::read_to_string(dir.join("hsm.p8")).unwrap();
    keybroker::demo::Issued {
        cert_der: CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .unwrap()
            .to_vec(),
        key_der: PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
            .unwrap()
            .secret_pkcs8_der()
            .to_vec(),
        cert_pem,
        key_pem,
    }
}

fn openssl_cert(
    site: &Site,
    cn: &str,
    curve: &str,
    digest: &str,
    san: Option<&str>,
) -> (String, String) {
    let dir = site.dir.join(format!("openssl-{cn}-{curve}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.crt"), &site.pki.ca_issued.cert_pem).unwrap();
    std::fs::write(dir.join("ca.key"), &site.pki.ca_issued.key_pem).unwrap();
    let mut ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n".to_owned();
    if let Some(san) = san {
        ext += &format!("subjectAltName={san}\n");
    }
    std::fs::write(dir.join("leaf.ext"), ext).unwrap();
    let subj = format!("/C=US/O=HSM Vendor/CN={cn}");
    let digest = format!("-{digest}");
    for args in [
        if curve == "rsa2048" {
            vec!["genrsa", "-out", "hsm.key", "2048"]
        } else {
            vec![
                "ecparam", "-genkey", "-name", curve, "-noout", "-out", "hsm.key",
            ]
        },
        vec![
            "req", "-new", &digest, "-key", "hsm.key", "-subj", &subj, "-out", "hsm.csr",
        ],
        vec![
            "x509",
            "-req",
            "-in",
            "hsm.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "825",
            &digest,
            "-extfile",
            "leaf.ext",
            "-out",
            "hsm.crt",
        ],
    ] {
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (
        std::fs::read_to_string(dir.join("hsm.crt")).unwrap(),
        std::fs::read_to_string(dir.join("hsm.key")).unwrap(),
    )
}

/// One KMIP DiscoverVersions round trip (a 1.1 operation) over mutual TLS to `host`, with
/// `credential` in the header if given: the versions the server speaks.
pub fn discover_versions(
    host: &str,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    credential: Option<&Credential>,
) -> Result<Vec<ProtocolVersion>, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(tls, name).map_err(|e| e.to_string())?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    exchange(&mut s, credential)
}

/// A TLS version an OpenSSL probe can be held to.
#[cfg(feature = "legacy-hsm-tls")]
#[derive(Clone, Copy, Debug)]
pub enum Tls {
    V1_0,
    V1_1,
    V1_2,
}

/// DiscoverVersions over OpenSSL, with a client certificate from the site's CA and the server
/// verified against that CA and `host` (OpenSSL's host check, CN fallback included). With
/// `only`, the probe offers that TLS version alone, with the legacy profile's cipher list
/// (security level 0).
#[cfg(feature = "legacy-hsm-tls")]
pub fn discover_versions_openssl(
    site: &Site,
    host: &str,
    port: u16,
    only: Option<Tls>,
) -> Result<Vec<ProtocolVersion>, String> {
    use keybroker_host::legacy_tls::openssl::{pkey::PKey, ssl, x509::X509};
    let probe = site.pki.issue("readiness-probe", Usage::Client, 1).unwrap();
    let mut b = ssl::SslConnector::builder(ssl::SslMethod::tls_client()).unwrap();
    if let Some(v) = only {
        let v = match v {
            Tls::V1_0 => ssl::SslVersion::TLS1,
            Tls::V1_1 => ssl::SslVersion::TLS1_1,
            Tls::V1_2 => ssl::SslVersion::TLS1_2,
        };
        b.set_min_proto_version(Some(v)).unwrap();
        b.set_max_proto_version(Some(v)).unwrap();
        b.set_cipher_list(keybroker_host::legacy_tls::CIPHERS)
            .unwrap();
    }
    b.cert_store_mut()
        .add_cert(X509::from_der(&site.pki.ca_issued.cert_der).unwrap())
        .unwrap();
    b.set_certificate(&X509::from_der(&probe.cert_der).unwrap())
        .unwrap();
    b.set_private_key(&PKey::private_key_from_der(&probe.key_der).unwrap())
        .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut s = b.build().connect(host, tcp).map_err(|e| e.to_string())?;
    exchange(&mut s, None)
}

/// Sends a DiscoverVersions on `s` and reads the answer.
fn exchange<S: Read + Write>(
    s: &mut S,
    credential: Option<&Credential>,
) -> Result<Vec<ProtocolVersion>, String> {
    let mut req = Request::single(ProtocolVersion::V1_1, messages::discover_versions(&[]));
    req.credential = credential.cloned();
    s.write_all(&req.encode()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let limits = keybroker_core::kmip::Limits::DEFAULT;
    loop {
        if let Some(total) =
            keybroker_core::kmip::frame_len(&buf, &limits).map_err(|e| e.to_string())?
        {
            if buf.len() >= total {
                break;
            }
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before a whole answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let item = keybroker_core::kmip::ttlv::decode_prefix(&buf, &limits)
        .map_err(|e| e.to_string())?
        .0;
    let resp = messages::parse_response(&item).map_err(|e| e.to_string())?;
    let first = resp.items.first().ok_or("no batch item")?;
    if !first.is_success() {
        return Err(first.describe());
    }
    Ok(first
        .payload
        .as_ref()
        .map(|p| {
            p.children()
                .iter()
                .filter_map(ProtocolVersion::from_item)
                .collect()
        })
        .unwrap_or_default())
}

/// A loopback listener that accepts TCP connections and never answers (a black-holed HSM).
pub struct BlackHole {
    pub port: u16,
    _reserved: super::ports::Ports,
}

impl BlackHole {
    pub fn start() -> BlackHole {
        let reserved = super::ports::one();
        let port = reserved.get(0);
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().flatten() {
                held.push(s);
            }
        });
        BlackHole {
            port,
            _reserved: reserved,
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}
