//! A real PyKMIP 0.11 server (from `.venv`, made by scripts/provision) on a free loopback
//! port, with an ECDSA P-256 server certificate from the site's CA (rustls needs a GCM suite,
//! which PyKMIP only offers with an ECDSA certificate), TLS client auth against that CA, and
//! a sqlite database (two servers may share one: a two-node "HSM cluster").
#![allow(dead_code)]
use super::Site;
use keybroker::demo::Usage;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv's `pykmip-server`, or a panic saying how to get it.
pub fn server_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/pykmip-server");
    assert!(
        p.exists(),
        "{} is missing: run scripts/provision (python3-venv + pip install pykmip)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running `pykmip-server`, killed (whole process group) on drop.
pub struct PyKmip {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
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
        let port = free_port();
        let conf = format!(
            "[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={d}/server.crt\n\
             key_path={d}/server.key\nca_path={d}/ca.crt\nauth_suite=TLS1.2\n\
             policy_path={d}/policies\nenable_tls_client_auth=True\n\
             database_path={db}\nlogging_level=WARNING\n",
            d = dir.display(),
            db = db.display()
        );
        std::fs::write(dir.join("server.conf"), conf).unwrap();
        let mut child = Command::new(server_bin())
            .arg("-f")
            .arg(dir.join("server.conf"))
            .arg("-l")
            .arg(dir.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr.log")).unwrap(),
            ))
            .process_group(0)
            .spawn()
            .expect("pykmip-server starts");
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "pykmip-server exited ({st}): {}",
                    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < end,
                "pykmip-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        PyKmip {
            port,
            dir,
            child: Some(child),
        }
    }

    /// `https://127.0.0.1:PORT`, as kms.hsm.server.url lists it.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the server's process group (an HSM dying) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOPs the server's process group: connections stay open, nothing is answered.
    pub fn pause(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-STOP", "--", &format!("-{}", c.id())])
                .status();
        }
    }

    /// The server's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PyKmip {
    fn drop(&mut self) {
        self.kill();
    }
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
