//! The audit log file: chained lines ([`keybroker_core::audit`]), reopened when rotated away
//! or on SIGHUP, flushed to disk as `keybroker.audit.fsync` says; and `audit verify`.
use crate::node::log_as;
use crate::timefmt;
use keybroker_core::audit::{AuditChain, AuditKey, ChainState, Verifier};
use keybroker_core::config::AuditFsync;
use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often rotation is looked for and, with `interval`, the file synced.
const TICK: Duration = Duration::from_secs(1);

struct Inner {
    path: String,
    file: File,
    inode: (u64, u64),
    chain: AuditChain,
    fsync: AuditFsync,
    dirty: bool,
    failed: bool,
}

/// An open audit log, shared by the node and its flush thread.
#[derive(Clone)]
pub struct AuditLog(Arc<Mutex<Inner>>);

fn open_append(path: &str) -> std::io::Result<(File, (u64, u64))> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let m = f.metadata()?;
    Ok((f, (m.dev(), m.ino())))
}

/// Where the chain in `f` stands: its last complete line's seq and MAC. A file that ends in a
/// partial line (a crash mid-write) gets a newline so the next line starts clean; `verify`
/// then reports the partial line.
fn tail_state(f: &mut File) -> std::io::Result<ChainState> {
    let len = f.metadata()?.len();
    let from = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    if !buf.is_empty() && !buf.ends_with(b"\n") {
        f.write_all(b"\n")?;
    }
    let text = String::from_utf8_lossy(&buf);
    Ok(text
        .lines()
        .rev()
        .find_map(ChainState::after_line)
        .unwrap_or_default())
}

impl AuditLog {
    /// Opens (creating) `path` for appending, continuing the chain found at its end, and
    /// starts the thread that syncs it and notices rotation.
    pub fn open(path: &str, key: AuditKey, fsync: AuditFsync) -> Result<AuditLog, String> {
        let (mut file, inode) = open_append(path).map_err(|e| format!("{path}: {e}"))?;
        let state = tail_state(&mut file).map_err(|e| format!("{path}: {e}"))?;
        let log = AuditLog(Arc::new(Mutex::new(Inner {
            path: path.to_owned(),
            file,
            inode,
            chain: AuditChain::new(key, state),
            fsync,
            dirty: false,
            failed: false,
        })));
        let weak = Arc::downgrade(&log.0);
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || loop {
                std::thread::sleep(TICK);
                let Some(inner) = weak.upgrade() else { return };
                let mut i = inner.lock().expect("audit");
                i.reopen_if_rotated();
                if i.dirty && i.fsync == AuditFsync::Interval {
                    let _ = i.file.sync_data();
                    i.dirty = false;
                }
            })
            .map_err(|e| format!("audit thread: {e}"))?;
        Ok(log)
    }

    /// Seals `record` into the chain and appends it.
    pub fn write(&self, record: &str) {
        let mut i = self.0.lock().expect("audit");
        let mut line = i.chain.seal(&timefmt::now(), record);
        line.push('\n');
        // One write per line: `writeln!` on a File makes two syscalls (the line, then "\n").
        let result = i
            .file
            .write_all(line.as_bytes())
            .and_then(|()| match i.fsync {
                AuditFsync::Always => i.file.sync_data(),
                _ => Ok(()),
            });
        i.dirty = true;
        match result {
            Ok(()) => i.failed = false,
            Err(e) if !i.failed => {
                i.failed = true;
                log_as(
                    "audit",
                    "error",
                    &format!("keybroker.audit.file {}: {e}", i.path),
                );
            }
            Err(_) => {}
        }
    }

    /// Reopens the file by its name (SIGHUP): after logrotate moved it, lines go to the new one.
    pub fn reopen(&self) {
        self.0.lock().expect("audit").reopen();
    }
}

impl Inner {
    fn reopen_if_rotated(&mut self) {
        let now = std::fs::metadata(&self.path).map(|m| (m.dev(), m.ino()));
        if now.ok() != Some(self.inode) {
            self.reopen();
        }
    }

    fn reopen(&mut self) {
        let _ = self.file.sync_data();
        match open_append(&self.path) {
            Ok((f, inode)) => {
                self.file = f;
                self.inode = inode;
                self.dirty = false;
            }
            Err(e) => log_as(
                "audit",
                "error",
                &format!("keybroker.audit.file {}: reopen: {e}", self.path),
            ),
        }
    }
}

/// `audit verify`: checks `files`, in order, as one chain; prints the first broken line
/// (`FILE:LINE: why`) and returns 1, or a summary and 0.
pub fn verify(key: AuditKey, files: &[String]) -> i32 {
    let mut v = Verifier::new(key);
    for path in files {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("keybroker audit verify: {path}: {e}");
                return 1;
            }
        };
        for (n, line) in std::io::BufReader::new(f).split(b'\n').enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("keybroker audit verify: {path}: {e}");
                    return 1;
                }
            };
            if let Err(b) = v.line(&String::from_utf8_lossy(&line)) {
                println!("{path}:{}: {}", n + 1, b.why);
                return 1;
            }
        }
    }
    if v.lines == 0 {
        println!("no audit lines");
        return 0;
    }
    let first = v.first_seq().unwrap_or(1);
    let mut summary = format!("{} line(s) ok, seq {first} onwards", v.lines);
    if first > 1 {
        summary.push_str(" (earlier lines are in files not given)");
    }
    if v.restarts > 0 {
        summary.push_str(&format!(
            "; {} new chain(s) begun by a node starting on an empty file",
            v.restarts
        ));
    }
    println!("{summary}");
    0
}
