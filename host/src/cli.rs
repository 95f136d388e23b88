//! The command line, declared once: the commands `keybroker` and `keybroker-lite` share are
//! [`NodeCommand`]; `keybroker` adds its own around them (src/main.rs). Every command has a
//! description and an example in its `--help`; a usage error exits 2 with the usage text.
use clap::{Args, Subcommand};

/// `--config PATH`.
#[derive(Args, Debug, Clone)]
pub struct Config {
    /// The node's kms.properties (its keystore and settings)
    #[arg(long, value_name = "PATH")]
    pub config: String,
}

/// The commands of both `keybroker` and `keybroker-lite`.
#[derive(Subcommand, Debug, Clone)]
pub enum NodeCommand {
    /// Serve the key API over mutual TLS, and /healthz, /readyz, /metrics on the admin listener
    ///
    /// Loads kms.properties and its keystore, binds keybroker.listen and
    /// keybroker.admin.listen and logs `listening client=ADDR admin=ADDR`. SIGHUP reopens the
    /// audit log and reloads the keystore; SIGTERM/SIGINT answer what has arrived, then exit 0.
    #[command(after_help = "Example:\n  keybroker serve --config /etc/keybroker/kms.properties")]
    Serve(Config),
    /// Validate a configuration and its keystore without serving
    ///
    /// Prints the configuration's warnings, one row per keystore entry (alias, type, role,
    /// days left), the server entries' chains, and errors; exit 0 when it would serve.
    #[command(
        after_help = "Example:\n  keybroker check-config --config /etc/keybroker/kms.properties --probe"
    )]
    CheckConfig {
        /// `--config PATH`
        #[command(flatten)]
        config: Config,
        /// Also dial every backend endpoint (TCP, then TLS as `serve` would)
        #[arg(long)]
        probe: bool,
    },
    /// Inspect the keystore named by a configuration
    #[command(subcommand)]
    Keystore(KeystoreCommand),
}

/// `keystore …`.
#[derive(Subcommand, Debug, Clone)]
pub enum KeystoreCommand {
    /// List the keystore like `keytool -list -v`: alias, entry type, role, fingerprint, subject, not-after
    #[command(
        after_help = "Example:\n  keybroker keystore list --config /etc/keybroker/kms.properties"
    )]
    List(Config),
}

impl NodeCommand {
    /// Runs a shared command other than `serve` (the shell serves).
    pub fn run_offline(&self) -> Option<i32> {
        match self {
            NodeCommand::Serve(_) => None,
            NodeCommand::CheckConfig { config, probe } => {
                Some(crate::commands::check_config(&config.config, *probe))
            }
            NodeCommand::Keystore(KeystoreCommand::List(c)) => {
                Some(crate::commands::keystore_list(&c.config))
            }
        }
    }
}

/// `cmd` with `keybroker ` in its and its subcommands' examples replaced by `bin ` (for
/// `keybroker-lite`, which shares the definitions).
pub fn examples_for(cmd: clap::Command, bin: &'static str) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    let mut cmd = cmd;
    if let Some(h) = cmd.get_after_help().map(|h| h.to_string()) {
        cmd = cmd.after_help(h.replace("keybroker ", &format!("{bin} ")));
    }
    for n in names {
        cmd = cmd.mut_subcommand(n, |s| examples_for(s, bin));
    }
    cmd
}

/// Ends the process for a parse outcome that is not a command to run: help and version exit 0
/// on stdout; a usage error prints the problem, then the usage (when clap's message lacks it),
/// and exits 2.
pub fn exit_with(e: clap::Error, cmd: &mut clap::Command) -> ! {
    if !e.use_stderr() {
        e.exit();
    }
    let text = e.render().to_string();
    eprint!("{text}");
    if !text.contains("Usage:") {
        eprintln!("\n{}", cmd.render_usage());
    }
    std::process::exit(2);
}

/// Where the servers are and who the client is: shared by every `client` command.
#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("identity").required(true).args(["cert", "keystore"])))]
pub struct ClientConnection {
    /// A server, `https://host:port`; repeat for failover (tried in order)
    #[arg(long = "url", value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// PEM file with the CA certificate(s) that sign the servers' certificates
    #[arg(long, value_name = "FILE")]
    pub ca: String,
    /// Client certificate (PEM; its issuers may follow)
    #[arg(long, value_name = "FILE", requires = "key_file")]
    pub cert: Option<String>,
    /// Private key of --cert (PEM)
    #[arg(long = "key", id = "key_file", value_name = "FILE", requires = "cert")]
    pub key_file: Option<String>,
    /// Client keystore instead of --cert/--key: PKCS12, JKS or PEM
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cert", "key_file"])]
    pub keystore: Option<String>,
    /// The private-key entry of --keystore to present (default: its only one)
    #[arg(long, value_name = "A", requires = "keystore")]
    pub alias: Option<String>,
    /// File whose first line is the keystore password (else $KEYBROKER_KEYSTORE_PASSWORD, else
    /// a prompt on the terminal)
    #[arg(long, value_name = "FILE", requires = "keystore")]
    pub password_file: Option<String>,
    /// Send this X-Request-Id (1-64 of A-Z a-z 0-9 - _ . :) so the server's logs can be matched
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

/// The key and connection of one `client` call.
#[derive(Args, Debug, Clone)]
pub struct ClientCall {
    /// The key name: `default` (the master key) or a name from keybroker.keys
    #[arg(value_name = "KEY", default_value = "default")]
    pub key: String,
    /// Servers and client identity
    #[command(flatten)]
    pub conn: ClientConnection,
}

/// The context a token is bound to.
#[derive(Args, Debug, Clone)]
pub struct ClientContext {
    /// Bind to this context (text); decrypt and rewrap need the same
    #[arg(long, value_name = "TEXT", conflicts_with = "context_base64")]
    pub context: Option<String>,
    /// Bind to this context, given in standard base64 (for binary contexts)
    #[arg(long, value_name = "B64")]
    pub context_base64: Option<String>,
}

/// `keybroker client …`: calls to running keybroker servers over mutual TLS.
#[derive(Subcommand, Debug, Clone)]
pub enum ClientCommand {
    /// Make a data key: prints {"plaintext","ciphertext","key_version"} (plaintext in base64)
    #[command(
        after_help = "Example:\n  keybroker client generate --url https://localhost:8443 --ca ca.crt --cert backend.crt --key backend.key --bytes 32"
    )]
    Generate {
        /// Key, servers, identity
        #[command(flatten)]
        call: ClientCall,
        /// Context
        #[command(flatten)]
        context: ClientContext,
        /// Length of the data key (1-1024)
        #[arg(long, value_name = "N", default_value_t = 32)]
        bytes: usize,
    },
    /// Encrypt stdin (raw bytes) and print the kb1: token
    #[command(
        after_help = "Example:\n  echo hi | keybroker client encrypt --url https://localhost:8443 --ca ca.crt --cert backend.crt --key backend.key > token"
    )]
    Encrypt {
        /// Key, servers, identity
        #[command(flatten)]
        call: ClientCall,
        /// Context
        #[command(flatten)]
        context: ClientContext,
        /// Read the plaintext as standard base64 instead of raw bytes
        #[arg(long)]
        base64: bool,
    },
    /// Decrypt the kb1: token on stdin and write the raw plaintext to stdout
    #[command(
        after_help = "Example:\n  keybroker client decrypt --url https://localhost:8443 --ca ca.crt --keystore backend.p12 --alias cmxbackend < token"
    )]
    Decrypt {
        /// Key, servers, identity
        #[command(flatten)]
        call: ClientCall,
        /// Context
        #[command(flatten)]
        context: ClientContext,
        /// Print the plaintext as standard base64 (and a newline) instead of raw bytes
        #[arg(long)]
        base64: bool,
    },
    /// Re-seal the kb1: token on stdin under the key's latest version; print the new token
    #[command(
        after_help = "Example:\n  keybroker client rewrap --url https://localhost:8443 --ca ca.crt --cert backend.crt --key backend.key < token"
    )]
    Rewrap {
        /// Key, servers, identity
        #[command(flatten)]
        call: ClientCall,
        /// Context
        #[command(flatten)]
        context: ClientContext,
    },
    /// Print the key's name, backend and versions as JSON
    #[command(
        after_help = "Example:\n  keybroker client describe --url https://localhost:8443 --ca ca.crt --cert backend.crt --key backend.key"
    )]
    Describe {
        /// Key, servers, identity
        #[command(flatten)]
        call: ClientCall,
    },
}

/// `keybroker-sim`: the deterministic simulator's command line.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "keybroker-sim",
    version,
    arg_required_else_help = true,
    about = "keybroker-sim: the deterministic simulator. Each seed drives clients, brokers, their backend peers (KMIP HSMs, Vault, Redis) and the network between them on a virtual clock with injected faults, and checks the invariants after every step.",
    after_help = "Examples:\n  keybroker-sim --seeds 1000\n  keybroker-sim --seeds 200 --backend kmip --cache distributed\n  keybroker-sim --seed 42 --backend vault --cache local --faults latency,restart\n\nA failing seed prints the broken invariant and the exact command that replays it.\nExit codes: 0 every seed ok, 1 a seed failed, 2 usage error."
)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["seeds", "seed"])))]
pub struct SimCli {
    /// Run seeds 0 to N-1 (or FROM to FROM+N-1) and print a summary
    #[arg(long, value_name = "N")]
    pub seeds: Option<u64>,
    /// With --seeds: the first seed
    #[arg(long, value_name = "FROM", default_value_t = 0, requires = "seeds")]
    pub from: u64,
    /// Replay one seed and print its trace hash
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Backend of the simulated nodes (default: each seed picks)
    #[arg(long, value_name = "BACKEND", value_parser = ["soft", "kmip", "vault"])]
    pub backend: Option<String>,
    /// Decrypt cache of the simulated nodes (default: each seed picks)
    #[arg(long, value_name = "CACHE", value_parser = ["none", "local", "distributed"])]
    pub cache: Option<String>,
    /// all, none, or a comma-separated list of faults: split, delay, duplicate, reset, clock,
    /// shutdown, malformed, slow, slow-reader, latency, link-reset, partial, black-hole,
    /// partition, slow-peer, restart, peer-errors (default: each seed picks its own)
    #[arg(long, value_name = "LIST")]
    pub faults: Option<String>,
}
