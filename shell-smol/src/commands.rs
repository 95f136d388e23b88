//! The command line of CONTRACT §3 (except `demo`, in its own module).
use crate::files;
use keybroker_core::authz::CertInfo;
use keybroker_core::config::keystore::EntryKind;
use keybroker_core::config::load;
use std::time::SystemTime;

/// Usage text for `--help` and usage errors.
pub const USAGE: &str = "usage:
  keybroker demo [--dir DIR] [--port N] [--self-test]
  keybroker serve --config PATH/kms.properties
  keybroker check-config --config PATH [--probe]
  keybroker keystore list --config PATH
  keybroker ttlv decode [--hex HEX | < stdin]
  keybroker ttlv encode < tree";

/// `keybroker serve --config PATH`.
#[cfg(feature = "server")]
pub fn serve(config: &str) -> i32 {
    use crate::serve::{self, Server};
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keybroker: {e}");
            return 1;
        }
    };
    let (addr, admin) = server.addrs();
    serve::log("info", &format!("listening client={addr} admin={admin}"));
    let (stop_tx, stop_rx) = smol::channel::bounded(1);
    let shared = server.shared();
    crate::node::install_signals(
        move || {
            let _ = stop_tx.send_blocking(());
        },
        move || shared.reload(),
    );
    server.run(stop_rx, std::time::Duration::from_secs(30));
    0
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One row of `keystore list` / `check-config`.
struct Row {
    alias: String,
    kind: &'static str,
    role: String,
    info: Option<CertInfo>,
}

fn rows(cfg: &load::NodeConfig) -> Vec<Row> {
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

fn load_config(config: &str) -> Result<load::NodeConfig, String> {
    let bytes = std::fs::read(config).map_err(|e| format!("{config}: {e}"))?;
    load::load(config, &bytes, &mut files::read).map_err(|e| e.to_string())
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
    let mut errors = 0;
    for w in &cfg.warnings {
        match w.line {
            Some(l) => println!("warning: {config}:{l}: {}", w.message),
            None => println!("warning: {}", w.message),
        }
    }
    let now = unix_now();
    for r in rows(&cfg) {
        let Some(i) = &r.info else {
            println!("error: alias {}: certificate cannot be parsed", r.alias);
            errors += 1;
            continue;
        };
        let days = (i.not_after - now).div_euclid(86_400);
        println!(
            "{:<24} {:<17} {:<20} {:>6} days left",
            r.alias, r.kind, r.role, days
        );
        if i.not_after < now {
            println!(
                "error: alias {}: certificate expired on {}",
                r.alias,
                fmt_date(i.not_after)
            );
            errors += 1;
        } else if let Some(t) = [15, 60, 90].into_iter().find(|t| days < *t) {
            println!(
                "warning: alias {}: certificate expires in {days} days (< {t})",
                r.alias
            );
        }
    }
    if probe {
        println!("note: --probe dials backends; the soft backend has nothing to dial");
    }
    if errors == 0 {
        println!("configuration OK");
        0
    } else {
        println!("configuration has {errors} error(s)");
        1
    }
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
