//! The operator commands both servers answer the same way: `check-config`, `keystore list`,
//! `ttlv decode|encode` (docs/cli.md).
use crate::files;
use crate::tls;
use keybroker_core::authz::CertInfo;
use keybroker_core::config::endpoint::Endpoint;
use keybroker_core::config::keystore::EntryKind;
use keybroker_core::config::load;
use keybroker_core::config::{Protocol, Settings};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One row of `keystore list` / `check-config`.
pub(crate) struct Row {
    pub(crate) alias: String,
    kind: &'static str,
    pub(crate) role: String,
    pub(crate) info: Option<CertInfo>,
}

/// The keystore's entries with the role keybroker gives each.
pub(crate) fn rows(cfg: &load::NodeConfig) -> Vec<Row> {
    cfg.keystore
        .entries
        .iter()
        .map(|e| {
            let (kind, der) = match &e.kind {
                EntryKind::PrivateKey { chain, .. } => ("PrivateKeyEntry", chain.first()),
                EntryKind::TrustedCert { cert } => ("trustedCertEntry", Some(cert)),
            };
            let s = &cfg.settings;
            let role = if e.alias.eq_ignore_ascii_case(&s.server_alias) {
                "server (TLS)".to_owned()
            } else if e.alias.eq_ignore_ascii_case(&s.client_alias) {
                "server (HSM client)".to_owned()
            } else {
                match s.roles.role_of(&e.alias) {
                    Some(r) => r.name().to_owned(),
                    None if s
                        .roles
                        .server_aliases
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(&e.alias)) =>
                    {
                        "server (CA)".to_owned()
                    }
                    None => "none".to_owned(),
                }
            };
            Row {
                alias: e.alias.clone(),
                kind,
                role,
                info: der.and_then(|d| CertInfo::parse(d)),
            }
        })
        .collect()
}

/// Reads and checks a kms.properties and its keystore, as `serve` would.
pub fn load_config(config: &str) -> Result<load::NodeConfig, String> {
    let bytes = std::fs::read(config).map_err(|e| format!("{config}: {e}"))?;
    load::load(config, &bytes, &mut files::read).map_err(|e| e.to_string())
}

/// `keybroker audit verify --config PATH FILE…`: the files, in order (oldest rotated file
/// first), as one audit chain; the key is derived from the configuration's keystore.
pub fn audit_verify(config: &str, files: &[String]) -> i32 {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keybroker: {e}");
            return 1;
        }
    };
    let Some(key) =
        keybroker_core::audit::key_from_keystore(&cfg.keystore, &cfg.settings.server_alias)
    else {
        eprintln!(
            "keybroker: {}: no private-key entry {} to derive the audit key from",
            cfg.keystore_path, cfg.settings.server_alias
        );
        return 1;
    };
    crate::audit::verify(key, files)
}

/// `keybroker keystore list --config PATH`.
pub fn keystore_list(config: &str) -> i32 {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keybroker: {e}");
            return 1;
        }
    };
    println!("Keystore type: {:?}", cfg.keystore.format);
    println!("Keystore file: {}", cfg.keystore_path);
    println!(
        "Your keystore contains {} entries\n",
        cfg.keystore.entries.len()
    );
    let now = unix_now();
    for r in rows(&cfg) {
        println!("Alias name: {}", r.alias);
        println!("Entry type: {}", r.kind);
        println!("Role: {}", r.role);
        if let Some(i) = &r.info {
            println!("Certificate fingerprint (SHA-256): {}", i.fingerprint_hex());
            println!("Subject: {}", i.subject);
            println!(
                "Not after: {} (unix {}), {} days left",
                fmt_date(i.not_after),
                i.not_after,
                (i.not_after - now).div_euclid(86_400)
            );
        }
        println!();
    }
    0
}

/// `keybroker check-config --config PATH [--probe]`.
pub fn check_config(config: &str, probe: bool) -> i32 {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keybroker: {e}");
            return 1;
        }
    };
    let mut errors = Vec::new();
    for w in &cfg.warnings {
        match w.line {
            Some(l) => println!("warning: {config}:{l}: {}", w.message),
            None => println!("warning: {}", w.message),
        }
    }
    let s = &cfg.settings;
    let now = unix_now();
    println!(
        "{:<24} {:<17} {:<20} {:>9}",
        "alias", "entry", "role", "days left"
    );
    for r in rows(&cfg) {
        let Some(i) = &r.info else {
            errors.push(format!("alias {}: certificate cannot be parsed", r.alias));
            continue;
        };
        let days = (i.not_after - now).div_euclid(86_400);
        println!("{:<24} {:<17} {:<20} {:>9}", r.alias, r.kind, r.role, days);
        if i.not_after < now {
            errors.push(format!(
                "alias {}: certificate expired on {}",
                r.alias,
                fmt_date(i.not_after)
            ));
        } else if let Some(t) = [15, 60, 90].into_iter().find(|t| days < *t) {
            println!(
                "warning: alias {}: certificate expires in {days} days (< {t})",
                r.alias
            );
        }
    }
    // The private-key entries the server uses: key matches certificate, chain links up.
    let mut key_entries = vec![(s.server_alias.as_str(), "keybroker.server.alias", true)];
    key_entries.push((
        s.client_alias.as_str(),
        "kms.keystore.alias",
        s.protocol == Protocol::Kmip,
    ));
    for (alias, key, required) in key_entries {
        match cfg.keystore.get(alias).map(|e| &e.kind) {
            Some(EntryKind::PrivateKey { key_pkcs8, chain }) => {
                match chain
                    .first()
                    .map(|leaf| tls::key_matches_cert(key_pkcs8.expose(), leaf))
                {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) => errors.push(format!(
                        "{key} {alias}: the private key does not match its certificate"
                    )),
                    Some(Err(e)) => errors.push(format!("{key} {alias}: {e}")),
                    None => errors.push(format!("{key} {alias}: no certificate chain")),
                }
                let infos: Vec<_> = chain.iter().filter_map(|c| CertInfo::parse(c)).collect();
                for pair in infos.windows(2) {
                    if pair[0].issuer != pair[1].subject {
                        errors.push(format!(
                            "{key} {alias}: chain is broken: {} is issued by {}, but the next certificate is {}",
                            pair[0].subject, pair[0].issuer, pair[1].subject
                        ));
                    }
                }
                if let Some(last) = infos.last() {
                    println!(
                        "{key} {alias}: chain of {} ending at {} (issuer {})",
                        infos.len(),
                        last.subject,
                        last.issuer
                    );
                }
            }
            Some(_) => errors.push(format!("{key} {alias}: not a private-key entry")),
            None if required => errors.push(format!(
                "{key} {alias}: no such entry in {}",
                cfg.keystore_path
            )),
            None => {}
        }
    }
    if s.protocol == Protocol::Kmip {
        let cas = cfg.keystore.entries.iter().filter(|e| match &e.kind {
            EntryKind::TrustedCert { cert } => CertInfo::parse(cert).is_some_and(|i| i.is_ca),
            _ => false,
        });
        if cas.count() == 0 {
            errors.push("no trusted CA entry for the HSM's server certificate (Connected-KMS sites import it as kmipSigningCA)".into());
        }
    }
    if s.tls_profile != keybroker_core::config::settings::TlsProfile::Default {
        println!(
            "TLS profile cnsa: TLS {}+, suites {}, key exchange P-384",
            match s.tls_min_version {
                keybroker_core::config::settings::TlsVersion::V1_2 => "1.2",
                keybroker_core::config::settings::TlsVersion::V1_3 => "1.3",
            },
            s.tls_cipher_suites.join(", ")
        );
    }
    errors.extend(crate::tls_profile::misfits(&cfg));
    if probe {
        probe_backends(&cfg, &mut errors);
    }
    for e in &errors {
        println!("error: {e}");
    }
    if errors.is_empty() {
        println!("configuration OK");
        0
    } else {
        println!("configuration has {} error(s)", errors.len());
        1
    }
}

/// Dials every backend endpoint (TCP + TLS handshake) and reports each.
fn probe_backends(cfg: &load::NodeConfig, errors: &mut Vec<String>) {
    let s = &cfg.settings;
    if s.protocol == Protocol::Soft {
        println!("probe: the soft backend has nothing to dial");
        return;
    }
    let link_tls = tls::link_configs(cfg);
    let tls_cfg = match s.protocol {
        Protocol::Kmip => link_tls.kmip,
        _ => link_tls.vault,
    };
    let plan = match probe_plan(s) {
        Ok(p) => p,
        Err(e) => {
            errors.push(format!("probe: {e}"));
            return;
        }
    };
    for (ep, tls) in plan {
        match dial(&ep.host, ep.port, if tls { tls_cfg.clone() } else { None }) {
            Ok(()) => println!("probe: {ep}: ok"),
            Err(e) => errors.push(format!("probe: {ep}: {e}")),
        }
    }
}

/// What `--probe` dials: every endpoint the backend links to, and whether it runs TLS.
pub fn probe_plan(s: &Settings) -> Result<Vec<(Endpoint, bool)>, String> {
    let links = load::hsm_links(s).map_err(|e| e.to_string())?;
    Ok(links
        .endpoints
        .into_iter()
        .map(|ep| (ep, links.tls))
        .collect())
}

fn dial(host: &str, port: u16, tls_cfg: Option<Arc<rustls::ClientConfig>>) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .next()
        .ok_or("cannot resolve")?;
    let mut tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let Some(cfg) = tls_cfg else { return Ok(()) };
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(())
}

/// `keybroker ttlv decode [--hex HEX]`: hex (from the flag or stdin) to the text tree.
pub fn ttlv_decode(hex: Option<String>) -> i32 {
    use keybroker_core::kmip::text;
    let input = match hex {
        Some(h) => h,
        None => {
            let mut s = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
                eprintln!("keybroker ttlv decode: stdin: {e}");
                return 1;
            }
            s
        }
    };
    let bytes = match text::hex_to_bytes(&input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("keybroker ttlv decode: {e}");
            return 1;
        }
    };
    match text::decode_to_text(&bytes) {
        Ok(t) => {
            print!("{t}");
            0
        }
        Err(e) => {
            eprintln!("keybroker ttlv decode: {e}");
            1
        }
    }
}

/// `keybroker ttlv encode < tree`: the text tree from stdin to hex.
pub fn ttlv_encode() -> i32 {
    use keybroker_core::kmip::text;
    let mut s = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
        eprintln!("keybroker ttlv encode: stdin: {e}");
        return 1;
    }
    match text::encode(&s) {
        Ok(b) => {
            println!("{}", text::bytes_to_hex(&b));
            0
        }
        Err(e) => {
            eprintln!("keybroker ttlv encode: {e}");
            1
        }
    }
}

/// YYYY-MM-DD for a Unix time (UTC), without a date library.
pub fn fmt_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::fmt_date(0), "1970-01-01");
        assert_eq!(super::fmt_date(951_782_400), "2000-02-29");
        assert_eq!(super::fmt_date(1_798_761_600), "2027-01-01");
    }
}

#[cfg(test)]
mod probe_tests {
    use super::probe_plan;
    use keybroker_core::backend::{BackendOutput, LinkSecurity};
    use keybroker_core::config::keystore::{Entry, EntryKind, Format, Keystore};
    use keybroker_core::config::load::{self, NodeConfig};
    use keybroker_core::config::properties::Property;
    use keybroker_core::config::Settings;
    use keybroker_core::drbg::Drbg;
    use keybroker_core::secret::Secret;
    use keybroker_core::time::{Instant, Now};
    use std::collections::BTreeSet;
    use std::time::Duration;

    fn settings(protocol: &str, urls: &str, port: Option<&str>) -> Result<Settings, String> {
        let mut pairs = vec![
            ("kms.keystore.file", "ks"),
            ("kms.keystore.password", "pw"),
            ("kms.hsm.protocol", protocol),
            ("kms.hsm.server.url", urls),
        ];
        if let Some(p) = port {
            pairs.push(("kms.hsm.server.port", p));
        }
        let props: Vec<Property> = pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Property {
                key: k.to_string(),
                value: v.to_string(),
                line: i + 1,
            })
            .collect();
        Settings::from_properties(&props)
            .map(|(s, _)| s)
            .map_err(|e| e.to_string())
    }

    /// `(host, port, TLS)` of one link.
    type Dial = (String, u16, bool);

    /// What the server's backend, built as at start, dials: its endpoint names and the
    /// `(host, port, TLS)` of every link it opens at start.
    fn server_plan(s: Settings) -> Result<(Vec<String>, BTreeSet<Dial>), String> {
        let cfg = NodeConfig {
            keystore: Keystore {
                format: Format::Pem,
                entries: vec![Entry {
                    alias: s.client_alias.clone(),
                    kind: EntryKind::PrivateKey {
                        key_pkcs8: Secret::new(vec![1]),
                        chain: vec![vec![2]],
                    },
                }],
            },
            settings: s,
            warnings: Vec::new(),
            server_chain: Vec::new(),
            server_key: Secret::new(Vec::new()),
            keystore_path: "ks".into(),
        };
        let mut rng = Drbg::new();
        let env = |k: &str| (k == "VAULT_TOKEN").then(|| "t0ken".to_owned());
        let (mut backend, _) = load::backend(
            &cfg,
            ".",
            &mut |_: &str| Err("no files here".to_owned()),
            &env,
            &mut rng,
        )
        .map_err(|e| e.to_string())?;
        let names = backend.endpoints().into_iter().map(|e| e.name).collect();
        let now = Now {
            mono: Instant::from_epoch(Duration::from_secs(1)),
            unix_secs: 1_800_000_000,
        };
        backend.start(now, &mut rng);
        let mut dialed = BTreeSet::new();
        while let Some(out) = backend.poll_output() {
            if let BackendOutput::Connect {
                host,
                port,
                security,
                ..
            } = out
            {
                dialed.insert((host, port, security != LinkSecurity::Plain));
            }
        }
        Ok((names, dialed))
    }

    /// For every URL form sites write, `--probe` dials exactly the hosts, ports and TLS choice
    /// the backend does; a form the server refuses, the probe refuses too.
    #[test]
    fn probe_dials_what_the_server_dials() {
        let forms = [
            ("kmip1", "https://kmshsm.myCorp.com", Some("5696")),
            ("kmip1", "kmshsm.myCorp.com", None),
            (
                "kmip1",
                "https://a.example:7000/kmip, b.example",
                Some("5697"),
            ),
            ("kmip1", "kmip://[::1]:5697, tls://[fe80::1]", None),
            ("kmip1", "HTTPS://H.example:1", Some("2")),
            ("VAULT", "https://vault.example.com", None),
            (
                "VAULT",
                "http://127.0.0.1:8200/, http://127.0.0.1:8201",
                None,
            ),
            ("VAULT", "https://v1:8201, https://[::1]", Some("8200")),
            ("VAULT", "http://v1, https://v2", None),
            ("VAULT", "v1.example:8200", None),
            ("kmip1", "http://hsm.example", None),
            ("kmip1", "::1", None),
            ("kmip1", "hsm:0", None),
        ];
        let mut agreed_ok = 0;
        for (protocol, urls, port) in forms {
            let s = settings(protocol, urls, port).unwrap();
            let probe = probe_plan(&s);
            let server = server_plan(s);
            match (probe, server) {
                (Ok(probe), Ok((names, dialed))) => {
                    let probe_names: Vec<String> =
                        probe.iter().map(|(ep, _)| ep.to_string()).collect();
                    assert_eq!(probe_names, names, "{urls}");
                    let probe_set: BTreeSet<Dial> = probe
                        .iter()
                        .map(|(ep, tls)| (ep.host.clone(), ep.port, *tls))
                        .collect();
                    assert!(!dialed.is_empty(), "{urls}: the backend dialed nothing");
                    assert!(
                        dialed.is_subset(&probe_set),
                        "{urls}: {dialed:?} vs {probe_set:?}"
                    );
                    if protocol == "kmip1" {
                        // The KMIP backend opens a link to every HSM at start.
                        assert_eq!(dialed, probe_set, "{urls}");
                    }
                    agreed_ok += 1;
                }
                (Err(_), Err(_)) => {}
                (p, s) => panic!("{urls}: probe {p:?} but server {:?}", s.map(|_| ())),
            }
        }
        assert_eq!(agreed_ok, 8);
    }
}
