//! The core stays sans-IO: no sockets, files, threads, clocks or OS randomness in its source,
//! and no async runtime or HTTP client in its dependency tree.
//! (Integration tests may use files; only `core/src` is bound by `clippy.toml`.)
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
use std::path::Path;
use std::process::Command;

const FORBIDDEN_SOURCE: &[&str] = &[
    "std::net",
    "std::fs",
    "std::thread",
    "std::process",
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "OsRng",
    "getrandom",
    "rand::",
    "std::env",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn core_source_has_no_io_clock_or_rng() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 5, "scanned too few files: {files:?}");
    let mut hits = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for bad in FORBIDDEN_SOURCE {
                if line.contains(bad) {
                    hits.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(hits.is_empty(), "core must stay pure:\n{}", hits.join("\n"));
}

#[test]
fn core_depends_on_no_runtime_or_network_crate() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "keybroker-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"keybroker-core"),
        "unexpected tree output: {tree}"
    );
    // getrandom is allowed transitively (p12-keystore's writer salts with it); the source scan
    // above and clippy.toml keep the core itself from calling it.
    for bad in [
        "smol",
        "async-io",
        "async-net",
        "ureq",
        "mio",
        "tokio",
        "socket2",
        "rustls",
        "polling",
    ] {
        assert!(
            !crates.contains(&bad),
            "keybroker-core must not depend on {bad}:\n{tree}"
        );
    }
}
