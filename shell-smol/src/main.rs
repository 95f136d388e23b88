//! keybroker: the production server and its operator commands.
use keybroker::demo::{self, DemoOptions};
use keybroker::serve::{log, Server};
use keybroker_host::{commands, node};

/// Usage text for `--help` and usage errors.
const USAGE: &str = "usage:
  keybroker demo [--dir DIR] [--port N] [--self-test]
  keybroker serve --config PATH/kms.properties
  keybroker check-config --config PATH [--probe]
  keybroker keystore list --config PATH
  keybroker ttlv decode [--hex HEX | < stdin]
  keybroker ttlv encode < tree";

/// `keybroker serve --config PATH`.
fn serve(config: &str) -> i32 {
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keybroker: {e}");
            return 1;
        }
    };
    let (addr, admin) = server.addrs();
    log("info", &format!("listening client={addr} admin={admin}"));
    let (stop_tx, stop_rx) = smol::channel::bounded(1);
    let host = server.shared();
    node::install_signals(
        move || {
            let _ = stop_tx.send_blocking(());
        },
        move || host.reload(),
    );
    server.run(stop_rx, std::time::Duration::from_secs(30));
    0
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("keybroker: {msg}\n{USAGE}");
    2
}

fn value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn run(args: Vec<String>) -> i32 {
    let known = |allowed: &[&str]| -> Result<(), String> {
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a.starts_with("--") {
                if !allowed.contains(&a.as_str()) {
                    return Err(format!("unknown option {a}"));
                }
                if !matches!(a.as_str(), "--self-test" | "--probe") {
                    i += 1;
                    if i >= args.len() {
                        return Err(format!("{a} needs a value"));
                    }
                }
            }
            i += 1;
        }
        Ok(())
    };
    match args.first().map(String::as_str) {
        Some("--help") | Some("-h") | Some("help") => {
            println!("{USAGE}");
            0
        }
        Some("--version") => {
            println!("keybroker {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some("demo") => {
            if let Err(e) = known(&["--dir", "--port", "--self-test"]) {
                return usage_error(&e);
            }
            let port = match value(&args, "--port").map(|p| p.parse::<u16>()) {
                None => 8443,
                Some(Ok(p)) => p,
                Some(Err(_)) => return usage_error("--port takes a port number"),
            };
            demo::run(DemoOptions {
                dir: value(&args, "--dir").unwrap_or_else(|| "keybroker-demo".into()),
                port,
                self_test: args.iter().any(|a| a == "--self-test"),
            })
        }
        Some("serve") => match (known(&["--config"]), value(&args, "--config")) {
            (Ok(()), Some(c)) => serve(&c),
            (Err(e), _) => usage_error(&e),
            (_, None) => usage_error("serve needs --config PATH"),
        },
        Some("check-config") => match (known(&["--config", "--probe"]), value(&args, "--config")) {
            (Ok(()), Some(c)) => commands::check_config(&c, args.iter().any(|a| a == "--probe")),
            (Err(e), _) => usage_error(&e),
            (_, None) => usage_error("check-config needs --config PATH"),
        },
        Some("keystore") => match (
            args.get(1).map(String::as_str),
            known(&["--config"]),
            value(&args, "--config"),
        ) {
            (Some("list"), Ok(()), Some(c)) => commands::keystore_list(&c),
            (_, Err(e), _) => usage_error(&e),
            _ => usage_error("keystore list needs --config PATH"),
        },
        Some("ttlv") => match (args.get(1).map(String::as_str), known(&["--hex"])) {
            (_, Err(e)) => usage_error(&e),
            (Some("decode"), Ok(())) => commands::ttlv_decode(value(&args, "--hex")),
            (Some("encode"), Ok(())) if args.len() == 2 => commands::ttlv_encode(),
            _ => usage_error("ttlv decode [--hex HEX] | ttlv encode"),
        },
        Some(other) => usage_error(&format!("unknown command {other}")),
        None => usage_error("no command"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(run(args));
}
