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
        assert!(text(&o.stderr).contains("usage:"), "{args:?}");
    }
    assert_eq!(kb(&["--help"], "").status.code(), Some(0));
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
