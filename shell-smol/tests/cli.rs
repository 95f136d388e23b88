//! The command line of docs/cli.md: exit codes, one-line errors, ttlv round trips,
//! check-config and keystore list on a real site.
mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn kb(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keybroker"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["serve"],
        &["serve", "--config"],
        &["demo", "--port", "x"],
        &["check-config", "--bogus", "1"],
    ] {
        let o = kb(args, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("Usage: keybroker"), "{args:?}");
    }
    assert_eq!(kb(&["--help"], "").status.code(), Some(0));
}

/// Runs one of the three binaries with `args`.
fn bin(path: &str, args: &[&str]) -> Output {
    Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

const KEYBROKER: &str = env!("CARGO_BIN_EXE_keybroker");
const LITE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/debug/keybroker-lite"
);
const SIM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/keybroker-sim");

/// Every command of every binary answers `--help` with a description, its usage and an
/// example, exit 0; `--version` prints the version and a newline; an unknown option is a
/// usage error (exit 2, usage on stderr).
#[test]
fn every_command_has_help_version_and_unknown_options_exit_2() {
    let keybroker: &[&[&str]] = &[
        &[],
        &["serve"],
        &["check-config"],
        &["keystore"],
        &["keystore", "list"],
        &["demo"],
        &["ttlv"],
        &["ttlv", "decode"],
        &["ttlv", "encode"],
        &["audit"],
        &["audit", "verify"],
        &["client"],
        &["client", "generate"],
        &["client", "encrypt"],
        &["client", "decrypt"],
        &["client", "rewrap"],
        &["client", "describe"],
    ];
    let lite: &[&[&str]] = &[
        &[],
        &["serve"],
        &["check-config"],
        &["keystore"],
        &["keystore", "list"],
    ];
    let sim: &[&[&str]] = &[&[]];
    let mut checked = 0;
    for (path, name, commands) in [
        (KEYBROKER, "keybroker", keybroker),
        (LITE, "keybroker-lite", lite),
        (SIM, "keybroker-sim", sim),
    ] {
        if !std::path::Path::new(path).exists() {
            // keybroker-lite and keybroker-sim are other packages: `cargo test --workspace`
            // builds them; a lone `cargo test -p keybroker` may not have.
            eprintln!("skipping {name}: not built at {path}");
            continue;
        }
        let o = bin(path, &["--version"]);
        assert_eq!(o.status.code(), Some(0), "{name}");
        // The servers also name their TLS provider (ring, aws-lc-rs, or its FIPS module).
        let version = match name {
            "keybroker-sim" => env!("CARGO_PKG_VERSION"),
            _ => keybroker::tls::VERSION,
        };
        assert_eq!(text(&o.stdout), format!("{name} {version}\n"));
        for cmd in commands {
            let mut args = cmd.to_vec();
            args.push("--help");
            let o = bin(path, &args);
            let out = text(&o.stdout);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{name} {args:?}: {}",
                text(&o.stderr)
            );
            let has_subcommands = out.contains("Commands:");
            assert!(out.contains("Usage: "), "{name} {args:?}: {out}");
            assert!(
                has_subcommands || out.contains("Example"),
                "{name} {args:?} has no example: {out}"
            );
            if !has_subcommands && !cmd.is_empty() {
                assert!(
                    out.contains(&format!("{name} {}", cmd.join(" "))),
                    "{name} {args:?}: the example names the binary and command: {out}"
                );
            }
            let mut args = cmd.to_vec();
            args.push("--no-such-option");
            let o = bin(path, &args);
            assert_eq!(o.status.code(), Some(2), "{name} {args:?}");
            let err = text(&o.stderr);
            assert!(
                err.contains("--no-such-option") && err.contains(&format!("Usage: {name}")),
                "{name} {args:?}: {err}"
            );
            checked += 1;
        }
    }
    assert!(checked >= keybroker.len(), "{checked}");
}

#[test]
fn ttlv_decode_encode_round_trip_and_errors() {
    // The first ten valid public vectors (testvectors/kmip), through the real binary.
    let vectors = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testvectors/kmip/kmip-protocol.txt"
    ))
    .unwrap();
    let mut checked = 0;
    for block in vectors
        .split("\n\n")
        .filter(|b| b.starts_with("name:") && b.contains("\nexpect: ok"))
    {
        let hex: String = block
            .lines()
            .filter_map(|l| l.strip_prefix("hex: "))
            .collect();
        let tree = kb(&["ttlv", "decode"], &hex);
        assert_eq!(tree.status.code(), Some(0), "{}", text(&tree.stderr));
        let back = kb(&["ttlv", "encode"], &text(&tree.stdout));
        assert_eq!(back.status.code(), Some(0), "{}", text(&back.stderr));
        assert_eq!(
            text(&back.stdout).trim().to_ascii_uppercase(),
            hex.to_ascii_uppercase()
        );
        checked += 1;
        if checked == 10 {
            break;
        }
    }
    assert_eq!(checked, 10);
    let o = kb(&["ttlv", "decode", "--hex", "42000F0100000048"], "");
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("offset 0x00") && err.lines().count() == 1,
        "{err}"
    );
    let o = kb(&["ttlv", "encode"], "NoSuchTag Integer 1\n");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn check_config_and_keystore_list_on_a_site() {
    let site = common::Site::new("");
    let props = site.properties();
    let props = props.to_str().unwrap();
    let o = kb(&["keystore", "list", "--config", props], "");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for alias in [
        "kmsServer",
        "cmxBackend",
        "cmxDevice",
        "cmxDevice20190512",
        "kmipSigningCA",
        "cmxDeviceOld",
    ] {
        assert!(
            out.to_lowercase()
                .contains(&format!("alias name: {}", alias.to_lowercase())),
            "{alias} in {out}"
        );
    }
    assert!(
        out.contains("Role: device") && out.contains("Role: backend") && out.contains("SHA-256"),
        "{out}"
    );
    let o = kb(&["check-config", "--config", props], "");
    let out = text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the expired cmxDeviceOld is an error: {out}"
    );
    assert!(out.contains("certificate expired"), "{out}");

    std::fs::write(
        site.dir.join("kms.properties"),
        std::fs::read_to_string(site.properties())
            .unwrap()
            .replace("kmsKeystorePwd", "Wr0ngPassw0rd"),
    )
    .unwrap();
    let o = kb(&["check-config", "--config", props], "");
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("password") && err.lines().count() == 1 && !err.contains("Wr0ngPassw0rd"),
        "{err}"
    );
}

/// A node's audit log, rotated once by renaming (the node notices the new inode) and once more
/// with SIGHUP; `audit verify` accepts the files in order and names the first bad line of
/// each kind of tampering.
#[test]
fn audit_verify_checks_the_chain_across_rotation_and_catches_tampering() {
    use std::time::{Duration, Instant};
    let site = common::Site::new("");
    let props = site.properties();
    let props = props.to_str().unwrap();
    let node = common::Node::start_bin(env!("CARGO_BIN_EXE_keybroker"), &site);
    let dir = site.dir.clone();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let requests = |n: usize| {
        let c = node.connect(&site, "backend");
        for _ in 0..n {
            let a = c
                .request(
                    "POST",
                    "/v1/keys/default/encrypt",
                    Some(&serde_json::json!({"plaintext": "aGVsbG8="})),
                )
                .unwrap();
            assert_eq!(a.status, 200);
        }
    };
    let wait_for_file = |p: &str| {
        let end = Instant::now() + Duration::from_secs(10);
        while !std::path::Path::new(p).exists() {
            assert!(Instant::now() < end, "{p} was not reopened");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    requests(3);
    std::fs::rename(path("audit.log"), path("audit.log.2")).unwrap();
    wait_for_file(&path("audit.log"));
    requests(3);
    std::fs::rename(path("audit.log"), path("audit.log.1")).unwrap();
    node.signal("HUP");
    wait_for_file(&path("audit.log"));
    requests(3);
    drop(node);

    let verify = |files: &[&str]| {
        let mut args = vec!["audit", "verify", "--config", props];
        args.extend_from_slice(files);
        let o = kb(&args, "");
        (o.status.code(), text(&o.stdout) + &text(&o.stderr))
    };
    let (l2, l1, l0) = (path("audit.log.2"), path("audit.log.1"), path("audit.log"));
    let (code, out) = verify(&[&l2, &l1, &l0]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("9 line(s) ok, seq 1 onwards"), "{out}");
    // The newest pair alone verifies too: its first line's predecessor was rotated away.
    let (code, out) = verify(&[&l1, &l0]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("earlier lines are in files not given"),
        "{out}"
    );
    // Out of order: the chain breaks where the files meet.
    let (code, out) = verify(&[&l2, &l0, &l1]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with(&format!("{l0}:1: ")), "{out}");

    let lines: Vec<String> = std::fs::read_to_string(&l1)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 3);
    let tampered = path("tampered.log");
    let check = |ls: Vec<String>, line: usize, why: &str| {
        std::fs::write(&tampered, ls.join("\n") + "\n").unwrap();
        let (code, out) = verify(&[&l2, &tampered, &l0]);
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.starts_with(&format!("{tampered}:{line}: ")) && out.contains(why),
            "{why}: {out}"
        );
    };
    // An edited line: the status changed.
    let mut edited = lines.clone();
    edited[1] = edited[1].replace("\"status\":200", "\"status\":403");
    check(edited, 2, "MAC does not match");
    // A deleted line.
    let mut deleted = lines.clone();
    deleted.remove(1);
    check(deleted, 2, "missing");
    // Two lines swapped.
    let mut reordered = lines.clone();
    reordered.swap(0, 1);
    check(reordered, 1, "missing");

    // Without --config it is a usage error: the key comes from the keystore.
    let o = kb(&["audit", "verify", &l0], "");
    assert_eq!(o.status.code(), Some(2));
}
