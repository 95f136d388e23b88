//! keybroker-lite stays runtime-free: no async crate anywhere in its dependency tree.
use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "smol",
    "async-io",
    "async-executor",
    "futures-rustls",
    "futures-lite",
    "tokio",
    "mio",
];

#[test]
fn blocking_shell_depends_on_no_async_runtime() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "keybroker-blocking",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"rustls"), "tree looks wrong: {tree}");
    assert!(names.contains(&"keybroker"), "tree looks wrong: {tree}");
    let bad: Vec<&&str> = names.iter().filter(|n| FORBIDDEN.contains(n)).collect();
    assert!(
        bad.is_empty(),
        "async crates in keybroker-lite's tree: {bad:?}"
    );
}
