//! A raw mTLS socket for the tests that must write bytes no HTTP client would send (malformed,
//! pipelined, partial or oversized requests) or hold one exact connection; every other call
//! goes through keybroker-client. It writes what it is given and reads an answer's status line,
//! header fields and Content-Length body, nothing more.
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

pub use keybroker_client::Answer;

/// TLS client settings: which CA to trust and which client certificate to present.
pub fn config(ca_pem: &[u8], client: Option<(&[u8], &[u8])>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for c in rustls_pki_types::pem::PemObject::pem_slice_iter(ca_pem) {
        let c: CertificateDer = c.map_err(|e| format!("CA PEM: {e:?}"))?;
        roots.add(c).map_err(|e| e.to_string())?;
    }
    let b = ClientConfig::builder_with_provider(keybroker::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let cfg = match client {
        Some((cert_pem, key_pem)) => {
            let certs: Vec<CertificateDer<'static>> =
                rustls_pki_types::pem::PemObject::pem_slice_iter(cert_pem)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("client cert PEM: {e:?}"))?;
            let key = <PrivateKeyDer as rustls_pki_types::pem::PemObject>::from_pem_slice(key_pem)
                .map_err(|e| format!("client key PEM: {e:?}"))?;
            b.with_client_auth_cert(certs, key)
                .map_err(|e| e.to_string())?
        }
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// One keep-alive connection to a keybroker.
pub struct Conn {
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl Conn {
    /// Connects and completes the TLS handshake.
    pub fn connect(addr: &str, server_name: &str, cfg: Arc<ClientConfig>) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let conn = ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
        let mut s = StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Conn {
            stream: BufReader::new(s),
        })
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let s = self.stream.get_mut();
        s.write_all(bytes)?;
        s.flush()
    }

    /// Sends a request with a JSON body and reads the answer.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> std::io::Result<Answer> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.send_raw(req.as_bytes())?;
        self.read_answer()
    }

    /// Reads one answer.
    pub fn read_answer(&mut self) -> std::io::Result<Answer> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.stream.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}
