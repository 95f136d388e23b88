//! A real PyKMIP 0.11 server (from `.venv`, made by scripts/provision) on a reserved loopback
//! port, with an ECDSA P-256 server certificate from the site's CA (rustls needs a GCM suite,
//! which PyKMIP only offers with an ECDSA certificate), TLS client auth against that CA, and
//! a sqlite database (two servers may share one: a two-node "HSM cluster"). It is ready when
//! it answers a KMIP DiscoverVersions over mutual TLS.
#![allow(dead_code)]
use super::peers::{signal_group, Peer};
use super::Site;
use keybroker::demo::Usage;
use keybroker_core::kmip::messages::{self, ProtocolVersion, Request};
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

impl PyKmip {
    /// Starts a server for `site` named `name`, storing objects in `db` (shared if the same).
    pub fn start(site: &Site, name: &str, db: &Path) -> PyKmip {
        let dir = site.dir.join(format!("pykmip-{name}"));
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        let cert = site.pki.issue("127.0.0.1", Usage::Server, 2).unwrap();
        std::fs::write(dir.join("server.crt"), &cert.cert_pem).unwrap();
        std::fs::write(dir.join("server.key"), &cert.key_pem).unwrap();
        std::fs::write(dir.join("ca.crt"), &site.pki.ca_issued.cert_pem).unwrap();
        let ports = super::ports::one();
        let port = ports.get(0);
        let conf = format!(
            "[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={d}/server.crt\n\
             key_path={d}/server.key\nca_path={d}/ca.crt\nauth_suite=TLS1.2\n\
             policy_path={d}/policies\nenable_tls_client_auth=True\n\
             database_path={db}\nlogging_level=WARNING\n",
            d = dir.display(),
            db = db.display()
        );
        std::fs::write(dir.join("server.conf"), conf).unwrap();
        let mut peer = Peer::spawn(
            Command::new(server_bin())
                .arg("-f")
                .arg(dir.join("server.conf"))
                .arg("-l")
                .arg(dir.join("server.log")),
            &dir,
            ports,
            "pykmip-server",
        );
        let probe = site.pki.issue("readiness-probe", Usage::Client, 1).unwrap();
        let tls = super::raw::config(
            site.pki.ca_issued.cert_pem.as_bytes(),
            Some((probe.cert_pem.as_bytes(), probe.key_pem.as_bytes())),
        )
        .unwrap();
        peer.wait_ready(Duration::from_secs(60), |_| {
            discover_versions(port, tls.clone()).map(|_| ())
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

/// One KMIP DiscoverVersions round trip (a 1.1 operation) over mutual TLS: the versions the
/// server speaks.
pub fn discover_versions(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Vec<ProtocolVersion>, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(tls, name).map_err(|e| e.to_string())?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let req = Request::single(ProtocolVersion::V1_1, messages::discover_versions(&[]));
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
}

impl BlackHole {
    pub fn start() -> BlackHole {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().flatten() {
                held.push(s);
            }
        });
        BlackHole { port }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}
