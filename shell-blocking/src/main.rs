//! keybroker-lite: the same broker, config and API as `keybroker`, on std threads.
use clap::{CommandFactory, FromArgMatches, Parser};
use keybroker_blocking::serve::Server;
use keybroker_host::cli::{self, NodeCommand};
use keybroker_host::node;
use std::time::Duration;

/// keybroker-lite: the keybroker server on plain threads, smallest footprint (`demo`, `ttlv`
/// and `audit`: use `keybroker`).
#[derive(Parser, Debug)]
#[command(
    name = "keybroker-lite",
    version = keybroker_host::tls::VERSION,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "Example:\n  keybroker serve --config /etc/keybroker/kms.properties\n\nExit codes: 0 ok, 1 failure, 2 usage error. `keybroker-lite COMMAND --help` describes each command."
)]
struct Cli {
    #[command(subcommand)]
    command: NodeCommand,
}

fn serve(config: &str) -> i32 {
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keybroker-lite: {e}");
            return 1;
        }
    };
    let (addr, admin) = server.addrs();
    node::log_listening(addr, admin);
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    let host = server.shared();
    node::install_signals(
        move || {
            let _ = stop_tx.send(());
        },
        move || host.reload(),
    );
    server.run(stop_rx, Duration::from_secs(30));
    0
}

fn main() {
    let mut command = cli::examples_for(Cli::command(), "keybroker-lite");
    let cli = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|m| Cli::from_arg_matches(&m))
        .unwrap_or_else(|e| cli::exit_with(e, &mut command));
    let code = match cli.command {
        NodeCommand::Serve(c) => serve(&c.config),
        other => other.run_offline().unwrap_or(2),
    };
    // Exit at once: accept threads are still blocked in accept().
    std::process::exit(code);
}
