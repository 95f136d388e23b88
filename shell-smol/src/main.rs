//! keybroker: the production server and its operator commands.
use clap::{CommandFactory, Parser, Subcommand};
use keybroker::cli::{self, Config, NodeCommand};
use keybroker::demo::{self, DemoOptions};
use keybroker::serve::Server;
use keybroker_host::{commands, node};

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
    node::log_listening(addr, admin);
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

/// keybroker: a key-management server (mutual TLS in front of a KMIP HSM, Vault/OpenBao
/// transit, or a soft key), and its operator commands.
#[derive(Parser, Debug)]
#[command(
    name = "keybroker",
    version = keybroker_host::tls::VERSION,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "Example:\n  keybroker demo --self-test\n  keybroker serve --config /etc/keybroker/kms.properties\n\nExit codes: 0 ok, 1 failure, 2 usage error. `keybroker COMMAND --help` describes each command."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Node(NodeCommand),
    /// Everything embedded, for a first look: dev certificates, a soft master key, curl commands
    ///
    /// Makes a throw-away CA, server and client certificates, a PKCS12 keystore and a
    /// kms.properties in DIR, serves on 127.0.0.1:PORT (admin on PORT+1000) and prints
    /// ready-to-paste curl commands. Not for production.
    #[command(
        after_help = "Examples:\n  keybroker demo\n  keybroker demo --dir /tmp/kb --port 0 --self-test"
    )]
    Demo {
        /// Where the demo's files go (kept if already there)
        #[arg(long, value_name = "DIR", default_value = "keybroker-demo")]
        dir: String,
        /// Client port; the admin listener is PORT+1000 (0: free ports for both)
        #[arg(long, value_name = "N", default_value_t = 8443)]
        port: u16,
        /// Make the calls over real mTLS, print one line per check, exit 0 only if all pass
        #[arg(long)]
        self_test: bool,
    },
    /// KMIP TTLV debugging: hex to an indented tree and back
    #[command(subcommand)]
    Ttlv(Ttlv),
    /// Audit log tools
    #[command(subcommand)]
    Audit(Audit),
    /// Move a file of stored kb1: tokens to the key's latest version, resumably
    ///
    /// Runs the node in-process from its kms.properties (no listener, no client key) and sends
    /// the tokens through the broker as batch rewraps, acting as a backend-role alias of the
    /// keystore. Input lines are TOKEN or TOKEN<TAB>CONTEXT_BASE64; the output has one line per
    /// input line, in order. Tokens already at the latest version and blank lines are copied.
    /// Each batch is written whole and synced; rerun with the same files to resume after an
    /// interruption. Exit 1 if a token is refused (or, with --keep-failed, was kept unchanged).
    #[command(after_help = "Example:
  keybroker rewrap --config /etc/keybroker/kms.properties --in tokens.txt --out tokens.v2.txt --rate 2000")]
    Rewrap {
        #[command(flatten)]
        config: Config,
        /// File of tokens, one per line
        #[arg(long = "in", value_name = "FILE")]
        input: String,
        /// Where the rewrapped tokens go (appended to when resuming)
        #[arg(long = "out", value_name = "FILE")]
        output: String,
        /// Key name as in the API (`default` or a name in keybroker.keys)
        #[arg(long, value_name = "KEY", default_value = "default")]
        key: String,
        /// Keystore alias with the backend role to act as (default: the first one)
        #[arg(long, value_name = "ALIAS")]
        alias: Option<String>,
        /// Tokens per batch request (1-1000)
        #[arg(long, value_name = "N", default_value_t = 200)]
        batch: usize,
        /// Most tokens sent per second, to spare the HSM (0: no limit)
        #[arg(long, value_name = "N", default_value_t = 1000)]
        rate: u32,
        /// Copy tokens the backend refuses unchanged and list them, instead of stopping
        #[arg(long)]
        keep_failed: bool,
    },
    /// Call running keybroker servers: generate, encrypt, decrypt, rewrap, describe
    ///
    /// Data comes on stdin and goes to stdout (raw bytes, or base64 with --base64), so calls
    /// chain in a pipe. Several --url give failover. Errors print the server's status, code
    /// and request id to stderr and exit 1.
    #[command(subcommand)]
    Client(Box<cli::ClientCommand>),
}

#[derive(Subcommand, Debug)]
enum Ttlv {
    /// Decode a TTLV message (hex, whitespace ignored) into a tree, one item a line
    #[command(
        after_help = "Examples:\n  keybroker ttlv decode --hex 42007a0100000000\n  keybroker ttlv decode < message.hex"
    )]
    Decode {
        /// The message in hex; without it, read from stdin
        #[arg(long, value_name = "HEX")]
        hex: Option<String>,
    },
    /// Encode a tree (as `decode` prints it) from stdin back into hex, byte for byte
    #[command(after_help = "Example:\n  keybroker ttlv decode --hex … | keybroker ttlv encode")]
    Encode,
}

#[derive(Subcommand, Debug)]
enum Audit {
    /// Check the audit log's hash chain; print the first broken or missing line, exit 1
    ///
    /// Give rotated files oldest first: the chain continues across them. The chain's key is
    /// derived from the server's private key, so the node's configuration is needed.
    #[command(
        after_help = "Example:\n  keybroker audit verify --config /etc/keybroker/kms.properties audit.log.2 audit.log.1 audit.log"
    )]
    Verify {
        #[command(flatten)]
        config: Config,
        /// Audit files, oldest first
        #[arg(value_name = "FILE", required = true)]
        files: Vec<String>,
    },
}

fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Node(NodeCommand::Serve(c)) => serve(&c.config),
        Command::Node(other) => other.run_offline().unwrap_or(2),
        Command::Demo {
            dir,
            port,
            self_test,
        } => demo::run(DemoOptions {
            dir,
            port,
            self_test,
        }),
        Command::Ttlv(Ttlv::Decode { hex }) => commands::ttlv_decode(hex),
        Command::Ttlv(Ttlv::Encode) => commands::ttlv_encode(),
        Command::Rewrap {
            config,
            input,
            output,
            key,
            alias,
            batch,
            rate,
            keep_failed,
        } => keybroker::rewrap::run(&keybroker::rewrap::Options {
            config: config.config,
            input,
            output,
            key,
            alias,
            batch,
            rate,
            keep_failed,
        }),
        Command::Audit(Audit::Verify { config, files }) => {
            commands::audit_verify(&config.config, &files)
        }
        Command::Client(c) => keybroker::client_cli::run(*c),
    }
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| cli::exit_with(e, &mut Cli::command()));
    std::process::exit(run(cli));
}
