//! keybroker-lite stays runtime-free: no async crate anywhere in its dependency tree, neither
//! when built alone nor in a workspace build (where Cargo unifies features across members).
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

/// The first word of each line of `cargo tree ARGS --prefix none --format {p}`: crate names.
fn tree(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .arg("tree")
        .args(args)
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn blocking_shell_depends_on_no_async_runtime() {
    let names = tree(&["-p", "keybroker-blocking"]);
    assert!(
        names.iter().any(|n| n == "rustls"),
        "tree looks wrong: {names:?}"
    );
    assert!(
        names.iter().any(|n| n == "keybroker-host"),
        "tree looks wrong: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n == "keybroker"),
        "keybroker-lite depends on the smol server's crate: {names:?}"
    );
    let bad: Vec<&String> = names
        .iter()
        .filter(|n| FORBIDDEN.contains(&n.as_str()))
        .collect();
    assert!(
        bad.is_empty(),
        "async crates in keybroker-lite's tree: {bad:?}"
    );
}

#[test]
fn workspace_build_keeps_smol_out_of_lite_and_host() {
    // Everything that depends on smol in a workspace build: only the smol server may.
    let dependents = tree(&["--workspace", "-i", "smol"]);
    assert!(
        dependents.iter().any(|n| n == "keybroker"),
        "tree looks wrong: {dependents:?}"
    );
    for shared in ["keybroker-blocking", "keybroker-host"] {
        assert!(
            !dependents.iter().any(|n| n == shared),
            "{shared} reaches smol in a workspace build: {dependents:?}"
        );
    }
}
