//! Endpoint URLs of the configuration, parsed once into typed values.
//!
//! Every place that dials a peer (the KMIP and Vault backends, the Redis cache, the Azure IMDS
//! login and `check-config --probe`) takes its host, port and TLS choice from here, so what the
//! probe dials is what the server dials.
//!
//! Rules shared by every kind: the scheme is matched without regard to case; the host is a DNS
//! name or IPv4 literal (`[A-Za-z0-9._-]`), or an IPv6 literal in brackets; a port is 1–65535;
//! a user part (`user:pass@`) is accepted only where the protocol carries a password (Redis).
use core::net::Ipv6Addr;
use std::fmt;

use crate::secret::Secret;

/// One TCP endpoint a link dials.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host name or IP literal, without brackets (also the TLS server name).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Which peer a URL names; decides the schemes, default port and what a path means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlKind {
    /// A KMIP HSM: `https://`, `kmip://`, `tls://` or a bare host; always TLS; port 5696; the
    /// URL's port wins over `kms.hsm.server.port`; a path is ignored.
    Kmip,
    /// A Vault node: `https://` or `http://`; port 443/80; `kms.hsm.server.port` wins over the
    /// URL's port; a path is ignored.
    Vault,
    /// Redis: `redis://[[user]:password@]host[:port][/db]`; plain TCP; port 6379.
    Redis,
    /// Azure IMDS base URL: `http://` or `https://`; port 80/443; a path is ignored.
    Imds,
}

/// Default KMIP port.
pub const KMIP_PORT: u16 = 5696;
/// Default Redis port.
pub const REDIS_PORT: u16 = 6379;

/// A parsed endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Whether the link runs TLS.
    pub tls: bool,
    /// Where to dial.
    pub endpoint: Endpoint,
    /// The password of the user part (Redis only).
    pub password: Option<Secret<String>>,
    /// The path after the authority, `""` when none (kept only for Redis: the database).
    pub path: String,
}

/// Parses one URL of `kind`; `port_setting` is `kms.hsm.server.port` where it applies.
pub fn parse(kind: UrlKind, url: &str, port_setting: Option<u16>) -> Result<Url, String> {
    let url = url.trim();
    let shown_url = redacted(url);
    let (scheme, rest) = match url.find("://") {
        Some(i) => (Some(url[..i].to_ascii_lowercase()), &url[i + 3..]),
        None => (None, url),
    };
    let tls = match (kind, scheme.as_deref()) {
        (UrlKind::Kmip, None | Some("https" | "kmip" | "tls")) => true,
        (UrlKind::Kmip, Some(_)) => {
            return Err(format!(
                "{shown_url:?}: a KMIP URL is https://host[:port] (or a bare host); KMIP links are always TLS"
            ))
        }
        (UrlKind::Vault | UrlKind::Imds, Some("https")) => true,
        (UrlKind::Vault | UrlKind::Imds, Some("http")) => false,
        (UrlKind::Vault | UrlKind::Imds, _) => {
            return Err(format!("{shown_url:?} must start with https:// or http://"))
        }
        (UrlKind::Redis, Some("redis")) => false,
        (UrlKind::Redis, _) => {
            return Err(format!(
                "{shown_url:?} must start with redis:// (rediss:// is not supported yet)"
            ))
        }
    };
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (hostport, path) = after.split_at(end);
    let password = match userinfo {
        None => None,
        Some(_) if kind != UrlKind::Redis => {
            return Err(format!(
                "{shown_url}: a user or password does not belong in this URL"
            ))
        }
        Some(u) => Some(u.split_once(':').map(|(_, p)| p).unwrap_or(u))
            .filter(|p| !p.is_empty())
            .map(|p| Secret::new(p.to_owned())),
    };
    let (host, url_port) = split_host_port(hostport).map_err(|e| format!("{shown_url:?}: {e}"))?;
    let default = match kind {
        UrlKind::Kmip => KMIP_PORT,
        UrlKind::Redis => REDIS_PORT,
        UrlKind::Vault | UrlKind::Imds if tls => 443,
        UrlKind::Vault | UrlKind::Imds => 80,
    };
    let port = match kind {
        UrlKind::Kmip => url_port.or(port_setting),
        UrlKind::Vault => port_setting.or(url_port),
        UrlKind::Redis | UrlKind::Imds => url_port,
    }
    .unwrap_or(default);
    Ok(Url {
        tls,
        endpoint: Endpoint { host, port },
        password,
        path: if kind == UrlKind::Redis {
            path.to_owned()
        } else {
            String::new()
        },
    })
}

/// The HSM links of `kms.hsm.server.url`: one endpoint per URL, and whether they run TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmLinks {
    /// Whether every link runs TLS.
    pub tls: bool,
    /// The endpoints, in the configured order.
    pub endpoints: Vec<Endpoint>,
}

/// Parses every URL of `kms.hsm.server.url` for `kind` (`Kmip` or `Vault`); Vault URLs must
/// share one scheme.
pub fn hsm_links(kind: UrlKind, urls: &[String], port: Option<u16>) -> Result<HsmLinks, String> {
    let mut tls = None;
    let mut endpoints = Vec::with_capacity(urls.len());
    for url in urls {
        let u = parse(kind, url, port)?;
        if tls.is_some_and(|first| first != u.tls) {
            return Err(format!(
                "{:?}: every Vault URL must use the same scheme (all https:// or all http://)",
                redacted(url)
            ));
        }
        tls = Some(u.tls);
        endpoints.push(u.endpoint);
    }
    match tls {
        Some(tls) => Ok(HsmLinks { tls, endpoints }),
        None => Err("no HSM endpoint configured".into()),
    }
}

/// `host[:port]` or `[v6][:port]` into the host (brackets off) and the port, if any.
fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, tail) = v6.split_once(']').ok_or("unclosed [ in an IPv6 address")?;
        h.parse::<Ipv6Addr>()
            .map_err(|_| format!("{h:?} is not an IPv6 address"))?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or("junk after ] (want ]:port)")?),
        };
        (h, port)
    } else {
        let (h, p) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if p.is_some_and(|p| p.contains(':')) {
            return Err("an IPv6 address goes in brackets: [::1]:port".into());
        }
        if let Some(c) = h
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(format!("{c:?} cannot be in a host name"));
        }
        (h, p)
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|n| *n > 0 && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("bad port {p:?} (want 1-65535)"))?,
        ),
    };
    Ok((host.to_owned(), port))
}

/// `url` with any user part replaced by `***`, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}***{}", &url[..s + 3], &url[a..]),
        (None, Some(a)) => format!("***{}", &url[a..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ep(kind: UrlKind, url: &str, port: Option<u16>) -> (bool, String, u16) {
        let u = parse(kind, url, port).unwrap();
        (u.tls, u.endpoint.host, u.endpoint.port)
    }

    #[test]
    fn kmip_forms() {
        use UrlKind::Kmip;
        let t = |h: &str, p| (true, h.to_owned(), p);
        assert_eq!(ep(Kmip, "hsm.example", None), t("hsm.example", 5696));
        assert_eq!(ep(Kmip, "hsm.example", Some(5697)), t("hsm.example", 5697));
        assert_eq!(ep(Kmip, "https://h:7000/x?y", Some(5697)), t("h", 7000));
        assert_eq!(ep(Kmip, "KMIP://h", None), t("h", 5696));
        assert_eq!(ep(Kmip, "tls://[::1]:5697", None), t("::1", 5697));
        assert_eq!(ep(Kmip, "[::1]", None), t("::1", 5696));
        assert!(parse(Kmip, "http://h", None).is_err());
        assert!(parse(Kmip, "::1", None).is_err());
        assert!(parse(Kmip, "h:0", None).is_err());
        assert!(parse(Kmip, "h:", None).is_err());
        assert!(parse(Kmip, "h:+5", None).is_err());
        assert!(parse(Kmip, "h:70000", None).is_err());
        assert!(parse(Kmip, "[::1", None).is_err());
        assert!(parse(Kmip, "[nothex]:1", None).is_err());
        assert!(parse(Kmip, "[::1]x", None).is_err());
        assert!(parse(Kmip, "https://", None).is_err());
        assert!(parse(Kmip, "h h", None).is_err());
    }

    #[test]
    fn vault_forms() {
        use UrlKind::Vault;
        assert_eq!(
            ep(Vault, "https://v.example", None),
            (true, "v.example".into(), 443)
        );
        assert_eq!(ep(Vault, "http://v", None), (false, "v".into(), 80));
        assert_eq!(ep(Vault, "http://v:8200/", None), (false, "v".into(), 8200));
        // kms.hsm.server.port is for every Vault URL.
        assert_eq!(
            ep(Vault, "https://v:8201", Some(8200)),
            (true, "v".into(), 8200)
        );
        assert!(parse(Vault, "v.example:8200", None).is_err());
        assert!(parse(Vault, "ftp://v", None).is_err());
        let e = parse(Vault, "https://root:s3cret@v", None).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let mixed = hsm_links(Vault, &["https://a".into(), "http://b".into()], None);
        assert!(mixed.is_err());
        assert!(hsm_links(Vault, &[], None).is_err());
    }

    #[test]
    fn redis_forms() {
        use UrlKind::Redis;
        let u = parse(Redis, "redis://:pw@r.example:6380/2", None).unwrap();
        assert_eq!(
            u.endpoint,
            Endpoint {
                host: "r.example".into(),
                port: 6380
            }
        );
        assert_eq!(u.password.as_ref().map(|p| p.expose().as_str()), Some("pw"));
        assert_eq!(u.path, "/2");
        let u = parse(Redis, "redis://[::1]", None).unwrap();
        assert_eq!((u.endpoint.host.as_str(), u.endpoint.port), ("::1", 6379));
        assert!(u.password.is_none());
        let e = parse(Redis, "redis://:pw@h:x", None).unwrap_err();
        assert!(!e.contains("pw@"), "{e}");
        assert!(parse(Redis, "rediss://h", None).is_err());
    }

    #[test]
    fn display_brackets_ipv6() {
        let e = Endpoint {
            host: "::1".into(),
            port: 5696,
        };
        assert_eq!(e.to_string(), "[::1]:5696");
        let e = Endpoint {
            host: "h".into(),
            port: 1,
        };
        assert_eq!(e.to_string(), "h:1");
    }

    fn kinds() -> impl Strategy<Value = UrlKind> {
        prop_oneof![
            Just(UrlKind::Kmip),
            Just(UrlKind::Vault),
            Just(UrlKind::Redis),
            Just(UrlKind::Imds)
        ]
    }

    proptest! {
        /// Any text gives a URL or an error, never a panic.
        #[test]
        fn never_panics(kind in kinds(), s in "\\PC{0,40}", port in proptest::option::of(1u16..)) {
            let _ = parse(kind, &s, port);
        }

        /// A URL printed from its parts parses back to those parts.
        #[test]
        fn round_trip(
            host in prop_oneof!["[a-z0-9][a-z0-9.-]{0,20}", Just("::1".to_owned()), Just("fe80::2".to_owned())],
            port in proptest::option::of(1u16..),
            https in any::<bool>(),
            path in "(/[a-z0-9]{0,6}){0,2}",
        ) {
            let authority = Endpoint { host: host.clone(), port: port.unwrap_or(1) }.to_string();
            let authority = if port.is_some() { authority } else { authority.rsplit_once(':').unwrap().0.to_owned() };
            let scheme = if https { "https" } else { "http" };
            let u = parse(UrlKind::Vault, &format!("{scheme}://{authority}{path}"), None).unwrap();
            prop_assert_eq!(u.tls, https);
            prop_assert_eq!(&u.endpoint.host, &host);
            prop_assert_eq!(u.endpoint.port, port.unwrap_or(if https { 443 } else { 80 }));
            let k = parse(UrlKind::Kmip, &format!("{authority}{path}"), None).unwrap();
            prop_assert_eq!(k.endpoint.host, host);
            prop_assert_eq!(k.endpoint.port, port.unwrap_or(KMIP_PORT));
        }

        /// A password never appears in an error.
        #[test]
        fn password_never_in_errors(pw in "[A-Za-z0-9]{6,12}", tail in "[^@]{0,12}") {
            for kind in [UrlKind::Kmip, UrlKind::Vault, UrlKind::Redis, UrlKind::Imds] {
                for url in [format!("https://u:{pw}@{tail}"), format!("redis://:{pw}@{tail}")] {
                    if let Err(e) = parse(kind, &url, None) {
                        prop_assert!(!e.contains(&pw), "{}", e);
                    }
                }
            }
        }
    }
}
