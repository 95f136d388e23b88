//! Temporary directories that leave nothing behind.
//!
//! Every directory a test process makes lives under one per-process root in the system temp
//! directory. When the root is first made, a small watcher process is started beside the test
//! binary: it waits for the test process to end — normally, by a panic, by `SIGKILL` — and then
//! removes the root. Statics are never dropped in Rust, so a `Drop` alone cannot clean up the
//! shared, built-once directories (keystores made by scripts/seed-site); the watcher can.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// This process's root: `$TMPDIR/keybroker-test-<pid>`, removed after the process ends.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let pid = std::process::id();
        let root = std::env::temp_dir().join(format!("keybroker-test-{pid}"));
        let _ = std::fs::remove_dir_all(&root); // a dead process's, with a recycled pid
        std::fs::create_dir_all(&root).expect("temp dir");
        // `tail --pid` returns once the process is gone. The watcher runs in the background of
        // a shell that exits at once (so it is nobody's zombie), with its standard streams
        // closed so that a pipe reading the test's output (`cargo test | tee`) is not held open.
        let watcher = r#"( tail --pid="$0" -f /dev/null 2>/dev/null || while kill -0 "$0" 2>/dev/null; do sleep 1; done; rm -rf -- "$1" ) </dev/null >/dev/null 2>&1 &"#;
        let started = Command::new("sh")
            .arg("-c")
            .arg(watcher)
            .arg(pid.to_string())
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("sh starts the temp-dir watcher");
        assert!(started.success(), "temp-dir watcher: {started}");
        root
    })
}

/// A new, empty directory under [`root`] whose name starts with `name`.
pub fn dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = root().join(format!("{name}-{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
