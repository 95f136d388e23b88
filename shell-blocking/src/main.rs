//! keybroker-lite: the same broker, config and API as `keybroker`, on std threads.
use keybroker::commands;
use keybroker::node;
use keybroker_blocking::serve::Server;
use std::time::Duration;

/// Usage text for `--help` and usage errors.
const USAGE: &str = "usage:
  keybroker-lite serve --config PATH/kms.properties
  keybroker-lite check-config --config PATH/kms.properties [--probe]
  keybroker-lite keystore list --config PATH/kms.properties
  (ttlv, demo: use `keybroker`)";

fn serve(config: &str) -> i32 {
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keybroker-lite: {e}");
            return 1;
        }
    };
    let (addr, admin) = server.addrs();
    // Always written, whatever keybroker.log.level: it says where the node serves.
    node::log_as(
        "serve",
        "notice",
        &format!("listening client={addr} admin={admin}"),
    );
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    let shared = server.shared();
    node::install_signals(
        move || {
            let _ = stop_tx.send(());
        },
        move || shared.reload(),
    );
    server.run(stop_rx, Duration::from_secs(30));
    0
}

fn run(args: &[String]) -> i32 {
    match args {
        [h] if h == "--help" || h == "-h" || h == "help" => {
            println!("{USAGE}");
            0
        }
        [v] if v == "--version" => {
            println!("keybroker-lite {}", env!("CARGO_PKG_VERSION"));
            0
        }
        [s, c, path] if s == "serve" && c == "--config" => serve(path),
        // The operator's config checks, shared with `keybroker` (runtime-free).
        [s, c, path] if s == "check-config" && c == "--config" => {
            commands::check_config(path, false)
        }
        [s, c, path, p] if s == "check-config" && c == "--config" && p == "--probe" => {
            commands::check_config(path, true)
        }
        [k, l, c, path] if k == "keystore" && l == "list" && c == "--config" => {
            commands::keystore_list(path)
        }
        [s, ..] if s == "serve" => {
            eprintln!("keybroker-lite: serve needs --config PATH\n{USAGE}");
            2
        }
        _ => {
            eprintln!("keybroker-lite: unknown command\n{USAGE}");
            2
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = run(&args);
    // Exit at once: accept threads are still blocked in accept().
    std::process::exit(code);
}
