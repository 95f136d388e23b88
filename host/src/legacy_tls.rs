//! The legacy HSM link profile (`keybroker.hsm.tls=legacy`, cargo feature `legacy-hsm-tls`):
//! HSM links over OpenSSL, for HSMs that rustls cannot reach — ones that offer only CBC suites
//! with RSA key exchange (PyKMIP with an RSA certificate) or only TLS 1.0 (ESKM in FIPS mode).
//!
//! TLS 1.0 and up, every suite but the null, anonymous, export, RC4, DES and MD5 ones, at
//! OpenSSL security level 0 (which TLS 1.0 and 1.1 need). The server is verified against the
//! keystore's trusted certificates, and its name by OpenSSL's host check, which like Java
//! falls back to the subject CN when the certificate has no DNS subjectAltName. The client
//! certificate is the `kms.keystore.alias` entry. A link is one thread moving bytes, as in
//! keybroker-lite, in both servers; each logs the TLS version and suite it negotiated.
use crate::driver::{Host, LinkRequest, Runtime};
use keybroker_core::config::keystore::EntryKind;
use keybroker_core::config::load::NodeConfig;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::X509;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::Duration;

pub use openssl;

/// The cipher list of the legacy profile.
pub const CIPHERS: &str = "ALL:!aNULL:!eNULL:!EXPORT:!RC4:!DES:!3DES:!MD5:@SECLEVEL=0";

/// How long a link's read waits before it looks for bytes to write.
const POLL: Duration = Duration::from_millis(20);

/// An OpenSSL client context for HSM links.
pub struct Legacy(SslConnector);

impl std::fmt::Debug for Legacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Legacy(OpenSSL)")
    }
}

/// The start-up warning of the legacy profile.
pub fn warning() -> String {
    format!(
        "keybroker.hsm.tls=legacy: HSM links use {} with TLS 1.0+ and CBC suites ({CIPHERS}); use it only for an HSM that offers nothing better",
        openssl::version::version()
    )
}

/// The OpenSSL context for `cfg`'s HSM links: trusted certificates as roots, the
/// `kms.keystore.alias` entry as client certificate.
pub fn connector(cfg: &NodeConfig) -> Result<Legacy, String> {
    fn e(what: &str) -> impl Fn(openssl::error::ErrorStack) -> String + '_ {
        move |err| format!("{what}: {err}")
    }
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(e("OpenSSL"))?;
    b.set_min_proto_version(Some(SslVersion::TLS1))
        .map_err(e("TLS 1.0"))?;
    b.set_cipher_list(CIPHERS).map_err(e("cipher list"))?;
    for entry in &cfg.keystore.entries {
        if let EntryKind::TrustedCert { cert } = &entry.kind {
            let x = X509::from_der(cert).map_err(e(&format!("alias {}", entry.alias)))?;
            b.cert_store_mut()
                .add_cert(x)
                .map_err(e(&format!("alias {}", entry.alias)))?;
        }
    }
    let alias = &cfg.settings.client_alias;
    let Some(EntryKind::PrivateKey { key_pkcs8, chain }) = cfg.keystore.get(alias).map(|e| &e.kind)
    else {
        return Err(format!(
            "kms.keystore.alias {alias}: no private-key entry to present to the HSM"
        ));
    };
    let mut certs = chain.iter();
    let leaf = certs
        .next()
        .ok_or_else(|| format!("kms.keystore.alias {alias}: no certificate"))?;
    let leaf = X509::from_der(leaf).map_err(e(alias))?;
    b.set_certificate(&leaf).map_err(e(alias))?;
    for c in certs {
        b.add_extra_chain_cert(X509::from_der(c).map_err(e(alias))?)
            .map_err(e(alias))?;
    }
    let key = PKey::private_key_from_pkcs8(key_pkcs8.expose()).map_err(e(alias))?;
    b.set_private_key(&key).map_err(e(alias))?;
    b.check_private_key().map_err(e(alias))?;
    b.set_verify(SslVerifyMode::PEER);
    Ok(Legacy(b.build()))
}

/// What the broker has for a link next.
pub enum Next {
    /// Bytes to write.
    Data(Vec<u8>),
    /// Close the link (asked for, or the broker is gone).
    Close,
    /// Nothing now.
    Empty,
}

/// Runs one HSM link over OpenSSL until it ends: connect to every address in turn, handshake,
/// then write what `next` hands over and report what arrives.
pub fn run<R: Runtime>(
    host: &Arc<Host<R>>,
    req: LinkRequest,
    legacy: &Legacy,
    mut next: impl FnMut() -> Next,
) {
    let link = req.link;
    let authority = req.authority();
    let tcp = match req.connect_blocking() {
        Ok(t) => t,
        Err(e) => return host.link_closed(link, e),
    };
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(req.connect_timeout));
    let _ = tcp.set_write_timeout(Some(req.connect_timeout));
    let config = match legacy.0.configure() {
        Ok(c) => c,
        Err(e) => return host.link_closed(link, format!("TLS with {authority}: {e}")),
    };
    let mut s = match config.connect(&req.host, tcp) {
        Ok(s) => s,
        Err(e) => return host.link_closed(link, format!("TLS handshake with {authority}: {e}")),
    };
    let _ = s.get_ref().set_read_timeout(Some(POLL));
    let cipher = s.ssl().current_cipher().map_or("?", |c| c.name());
    crate::node::log_as(
        "kmip",
        "info",
        &format!(
            "HSM link to {authority} over OpenSSL: {}, {cipher}",
            s.ssl().version_str()
        ),
    );
    host.link_connected(link);
    let mut buf = vec![0u8; 16 * 1024];
    let reason = loop {
        let mut wrote = false;
        loop {
            match next() {
                Next::Data(bytes) => {
                    wrote = true;
                    if let Err(e) = s.write_all(&bytes) {
                        host.link_closed(link, format!("write: {e}"));
                        return;
                    }
                }
                Next::Close => {
                    let _ = s.shutdown();
                    return; // closed at the backend's request: no event
                }
                Next::Empty => break,
            }
        }
        if wrote {
            let _ = s.flush();
        }
        match s.read(&mut buf) {
            Ok(0) => break "closed by peer".to_string(),
            Ok(n) => host.link_received(link, &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => break e.to_string(),
        }
    };
    host.link_closed(link, reason);
}
