//! Loopback ports reserved for the peers a test starts.
//!
//! Asking the kernel for a free port (`bind` to port 0) and handing the number to a peer is a
//! race: the port is free again the moment the listener closes, and any other `bind(:0)` or
//! outgoing connection on the machine may take it before the peer binds. Reserved ports come
//! instead from a band just below the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), which the kernel never hands out by itself, and
//! each one is held by an exclusive lock on `$TMPDIR/keybroker-test-ports/<port>.lock` for as
//! long as the [`Ports`] value lives, so test binaries running side by side (both shells'
//! suites, two checkouts on one machine) never get the same port. A port something is already
//! listening on is skipped.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A block of consecutive loopback ports, reserved until dropped.
#[derive(Debug)]
pub struct Ports {
    base: u16,
    count: u16,
    _locks: Vec<File>,
}

impl Ports {
    /// The `i`-th port of the block.
    pub fn get(&self, i: u16) -> u16 {
        assert!(i < self.count, "port {i} of a block of {}", self.count);
        self.base + i
    }
}

/// The band reserved ports come from: up to 12,000 ports below the ephemeral range.
fn band() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    assert!(
        ephemeral_low > 2048,
        "the ephemeral port range starts at {ephemeral_low}: no room below it for test ports"
    );
    (
        ephemeral_low.saturating_sub(12_000).max(1024),
        ephemeral_low,
    )
}

fn lock_dir() -> PathBuf {
    let d = std::env::temp_dir().join("keybroker-test-ports");
    std::fs::create_dir_all(&d).expect("port lock directory");
    d
}

/// Reserves `count` consecutive loopback ports.
pub fn reserve(count: u16) -> Ports {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (lo, hi) = band();
    let span = u32::from(hi - lo - count);
    let dir = lock_dir();
    // Start somewhere different in every process and for every call, so reservations spread
    // out and a port is rarely reused while a previous holder's sockets linger in TIME_WAIT.
    let start = std::process::id().wrapping_mul(7919) + NEXT.fetch_add(97, Ordering::Relaxed);
    'base: for step in 0..span {
        let base = lo + ((start + step) % span) as u16;
        let mut locks = Vec::with_capacity(count as usize);
        for port in base..base + count {
            let Ok(f) = File::create(dir.join(format!("{port}.lock"))) else {
                continue 'base;
            };
            if f.try_lock().is_err() || TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue 'base; // held by another test, or in use outside the tests
            }
            locks.push(f);
        }
        return Ports {
            base,
            count,
            _locks: locks,
        };
    }
    panic!("no {count} consecutive free loopback ports in {lo}..{hi}");
}

/// Reserves one port.
pub fn one() -> Ports {
    reserve(1)
}
