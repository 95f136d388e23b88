//! Real peers for the multi-node tests: redis-server and haproxy from apt, each on a free
//! loopback port with its own configuration, in its own process group, killed on drop.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts on `port`.
pub fn wait_port(port: u16, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A child process in its own process group.
pub struct Peer {
    pub child: Child,
    pub port: u16,
    killed: bool,
}

impl Peer {
    fn spawn(cmd: &mut Command, port: u16, what: &str) -> Peer {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{what} does not start (scripts/provision installs it): {e}")
            });
        let p = Peer {
            child,
            port,
            killed: false,
        };
        assert!(
            wait_port(port, Duration::from_secs(10)),
            "{what} did not listen on {port}"
        );
        p
    }

    /// SIGKILL to the whole process group.
    pub fn kill(&mut self) {
        if std::mem::replace(&mut self.killed, true) {
            return;
        }
        // `--` matters: without it some kill(1)s read "-PGID" as an option, and `kill -KILL -1`
        // would signal every process.
        let pgid = self.child.id();
        assert!(pgid > 1, "refusing to signal process group {pgid}");
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// redis-server with a password, no persistence.
pub fn redis(password: &str) -> Peer {
    let port = free_port();
    Peer::spawn(
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
        port,
        "redis-server",
    )
}

/// Sends one command to Redis and returns the raw reply.
pub fn redis_cmd(port: u16, password: &str, args: &[&str]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let enc = |a: &[&str]| {
        let mut out = format!("*{}\r\n", a.len());
        for x in a {
            out.push_str(&format!("${}\r\n{x}\r\n", x.len()));
        }
        out
    };
    s.write_all(enc(&["AUTH", password]).as_bytes()).unwrap();
    s.write_all(enc(args).as_bytes()).unwrap();
    s.write_all(enc(&["QUIT"]).as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// haproxy in TCP mode in front of `nodes` (client port, admin port): mTLS ends at the nodes;
/// health checks hit each node's admin /readyz.
pub fn haproxy(dir: &Path, nodes: &[(u16, u16)]) -> Peer {
    let port = free_port();
    let mut cfg = format!(
        "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
         frontend kms\n  bind 127.0.0.1:{port}\n  default_backend nodes\n\
         backend nodes\n  balance roundrobin\n  retries 3\n  option redispatch\n  option httpchk GET /readyz\n  default-server inter 200ms fall 1 rise 1\n"
    );
    for (i, (client, admin)) in nodes.iter().enumerate() {
        cfg.push_str(&format!(
            "  server n{i} 127.0.0.1:{client} check port {admin}\n"
        ));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    Peer::spawn(
        Command::new("haproxy").arg("-db").arg("-f").arg(&path),
        port,
        "haproxy",
    )
}
