//! Real peers for the multi-node tests: redis-server and haproxy from apt. Each runs with its
//! own directory (working directory, HOME and TMPDIR) and configuration, on ports reserved by
//! [`super::ports`], in its own process group, and is killed with that group on drop. A peer
//! is ready when it answers in its own protocol, never after a sleep.
#![allow(dead_code)]
pub use super::ports::Ports;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process in its own process group, with the ports it was given.
pub struct Peer {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub ports: Ports,
    what: &'static str,
    killed: bool,
}

impl Peer {
    /// Starts `cmd` in `dir` (its working directory and HOME), output to `dir/<what>.log`.
    pub fn spawn(cmd: &mut Command, dir: &Path, ports: Ports, what: &'static str) -> Peer {
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join(format!("{what}.log"))).unwrap();
        let child = cmd
            .current_dir(dir)
            .env("HOME", dir)
            // PyKMIP's multiprocessing manager makes a pymp-* directory in TMPDIR and leaves it
            // behind when killed: keep it in the peer's own directory.
            .env("TMPDIR", dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{what} does not start (scripts/provision installs it): {e}")
            });
        Peer {
            child,
            port: ports.get(0),
            dir: dir.to_owned(),
            ports,
            what,
            killed: false,
        }
    }

    /// The peer's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.what))).unwrap_or_default()
    }

    /// Polls `probe` until it answers `Ok`; panics with the peer's log and the probe's last
    /// answer if the peer exits or `within` passes first.
    pub fn wait_ready(
        &mut self,
        within: Duration,
        mut probe: impl FnMut(&Peer) -> Result<(), String>,
    ) {
        let end = Instant::now() + within;
        loop {
            let last = match probe(self) {
                Ok(()) => return,
                Err(e) => e,
            };
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "{} exited ({st}) before it was ready ({last}):\n{}",
                    self.what,
                    self.log()
                );
            }
            assert!(
                Instant::now() < end,
                "{} was not ready within {within:?} ({last}):\n{}",
                self.what,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL to the whole process group.
    pub fn kill(&mut self) {
        if std::mem::replace(&mut self.killed, true) {
            return;
        }
        signal_group(self.child.id(), "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `sig` to the process group `pgid` (a child started by [`Peer::spawn`] leads one).
pub fn signal_group(pgid: u32, sig: &str) {
    // `--` matters: without it some kill(1)s read "-PGID" as an option, and `kill -KILL -1`
    // would signal every process.
    assert!(pgid > 1, "refusing to signal process group {pgid}");
    let _ = Command::new("kill")
        .args(["-s", sig, "--", &format!("-{pgid}")])
        .status();
}

/// redis-server with a password, no persistence, ready when it answers `PING` with `PONG`.
pub fn redis(password: &str) -> Peer {
    let ports = super::ports::one();
    let port = ports.get(0);
    let mut p = Peer::spawn(
        Command::new("redis-server").args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            password,
            "--daemonize",
            "no",
        ]),
        &super::tmp::dir("redis"),
        ports,
        "redis-server",
    );
    p.wait_ready(Duration::from_secs(10), |p| {
        let r = redis_cmd_checked(p.port, password, &["PING"]).map_err(|e| e.to_string())?;
        match r.starts_with(b"+OK\r\n+PONG\r\n") {
            true => Ok(()),
            false => Err(format!("AUTH + PING: {:?}", String::from_utf8_lossy(&r))),
        }
    });
    p
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len());
    for x in args {
        out.push_str(&format!("${}\r\n{x}\r\n", x.len()));
    }
    out.into_bytes()
}

fn redis_cmd_checked(port: u16, password: &str, args: &[&str]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(&resp(&["AUTH", password]))?;
    s.write_all(&resp(args))?;
    s.write_all(&resp(&["QUIT"]))?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(out)
}

/// Sends one command to Redis (after `AUTH`) and returns the raw replies.
pub fn redis_cmd(port: u16, password: &str, args: &[&str]) -> Vec<u8> {
    redis_cmd_checked(port, password, args).unwrap()
}

/// haproxy in TCP mode in front of `nodes` (client port, admin port): mTLS ends at the nodes;
/// health checks hit each node's admin /readyz. Ready when its monitor frontend (the second
/// reserved port) answers `GET /ready` with 200, which it does only once every node has
/// passed a health check.
pub fn haproxy(dir: &Path, nodes: &[(u16, u16)]) -> Peer {
    let ports = super::ports::reserve(2);
    let (port, monitor) = (ports.get(0), ports.get(1));
    let mut cfg = format!(
        "global\n  maxconn 4096\n\
         \x20 log stdout format raw local0\n\
         defaults\n  mode tcp\n  log global\n  option tcplog\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
         frontend kms\n  bind 127.0.0.1:{port}\n  default_backend nodes\n\
         frontend monitor\n  mode http\n  bind 127.0.0.1:{monitor}\n  monitor-uri /ready\n\
         \x20 monitor fail if {{ nbsrv(nodes) lt {n} }}\n\
         backend nodes\n  balance roundrobin\n  retries 3\n  option redispatch\n\
         \x20 option httpchk GET /readyz\n  default-server inter 200ms fall 1 rise 1\n",
        n = nodes.len()
    );
    for (i, (client, admin)) in nodes.iter().enumerate() {
        cfg.push_str(&format!(
            "  server n{i} 127.0.0.1:{client} check port {admin}\n"
        ));
    }
    let dir = dir.join(format!("haproxy-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let mut p = Peer::spawn(
        Command::new("haproxy").arg("-db").arg("-f").arg(&path),
        &dir,
        ports,
        "haproxy",
    );
    p.wait_ready(Duration::from_secs(10), |_| {
        match http_get_status(monitor, "/ready") {
            Some(200) => Ok(()),
            other => Err(format!("GET /ready: {other:?}")),
        }
    });
    p
}

/// `GET path` over plain HTTP on loopback: the status, or None if nothing answered.
pub fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace().nth(1)?.parse().ok()
}
