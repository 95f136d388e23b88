//! `keybroker rewrap` against a site whose node is serving: every token moves to the latest
//! version and still decrypts to its plaintext under its context; an interrupted output is
//! resumed; a refused token stops the run without writing its batch; the rate limit holds.
mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::{Node, Site};
use keybroker_core::envelope::Envelope;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keybroker");

/// (token, context as base64 if any, plaintext)
type Stored = (String, Option<String>, Vec<u8>);

fn encrypt_many(c: &keybroker_client::Client, n: usize, tag: &str) -> Vec<Stored> {
    let items: Vec<(Vec<u8>, Option<String>)> = (0..n)
        .map(|i| {
            let pt = format!("{tag} secret {i}").into_bytes();
            let ctx = (i % 3 == 0).then(|| B64.encode(format!("tenant-{i}")));
            (pt, ctx)
        })
        .collect();
    let batch: Vec<Value> = items
        .iter()
        .map(|(pt, ctx)| match ctx {
            Some(c) => json!({"plaintext": B64.encode(pt), "context": c}),
            None => json!({"plaintext": B64.encode(pt)}),
        })
        .collect();
    let a = c
        .request(
            "POST",
            "/v1/keys/default/encrypt",
            Some(&json!({ "batch": batch })),
        )
        .unwrap();
    assert_eq!(a.status, 200, "{:?}", a.json());
    let answers = a.json()["batch"].as_array().unwrap().clone();
    items
        .into_iter()
        .zip(answers)
        .map(|((pt, ctx), r)| (r["ciphertext"].as_str().unwrap().to_owned(), ctx, pt))
        .collect()
}

fn line(t: &str, ctx: &Option<String>) -> String {
    match ctx {
        Some(c) => format!("{t}\t{c}"),
        None => t.to_owned(),
    }
}

fn rewrap(site: &Site, input: &Path, output: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["rewrap", "--config"])
        .arg(site.properties())
        .arg("--in")
        .arg(input)
        .arg("--out")
        .arg(output)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every output line matches its stored input: same context, version `want`, same plaintext.
fn check_output(c: &keybroker_client::Client, stored: &[Stored], output: &Path, want: u32) {
    let text = std::fs::read_to_string(output).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), stored.len() + 1, "one line per input line");
    assert_eq!(lines[stored.len()], "", "the blank line is copied");
    for ((_, ctx, pt), l) in stored.iter().zip(&lines) {
        let (token, out_ctx) = match l.split_once('\t') {
            Some((t, c)) => (t, Some(c.to_owned())),
            None => (*l, None),
        };
        assert_eq!(&out_ctx, ctx, "the context column is kept");
        assert_eq!(Envelope::decode(token).unwrap().key_version, want, "{l}");
        let body = match ctx {
            Some(cx) => json!({"ciphertext": token, "context": cx}),
            None => json!({"ciphertext": token}),
        };
        let a = c
            .request("POST", "/v1/keys/default/decrypt", Some(&body))
            .unwrap();
        assert_eq!(a.status, 200, "{l}: {:?}", a.json());
        assert_eq!(
            B64.decode(a.json()["plaintext"].as_str().unwrap()).unwrap(),
            *pt
        );
    }
}

#[test]
fn a_token_file_moves_to_the_latest_version_resumably() {
    let site = Site::new("");
    let node = Node::start_bin(BIN, &site);
    let c = node.connect(&site, "backend");
    let mut stored = encrypt_many(&c, 120, "old");
    let r = c
        .request("POST", "/v1/keys/default/rotate", Some(&json!({})))
        .unwrap();
    assert_eq!(r.json()["key_version"], 2);
    let current = encrypt_many(&c, 5, "new");
    stored.extend(current.iter().cloned());
    let input = site.dir.join("tokens.txt");
    let mut text: String = stored.iter().map(|(t, x, _)| line(t, x) + "\n").collect();
    text.push('\n');
    std::fs::write(&input, &text).unwrap();

    let output = site.dir.join("tokens.v2.txt");
    let (ok, err) = rewrap(&site, &input, &output, &["--batch", "25", "--rate", "0"]);
    assert!(ok, "{err}");
    assert!(err.contains("120 tokens sent for rewrapping"), "{err}");
    check_output(&c, &stored, &output, 2);
    let out = std::fs::read_to_string(&output).unwrap();
    for (t, x, _) in &current {
        assert!(
            out.contains(&line(t, x)),
            "tokens already at the latest version are copied unchanged"
        );
    }
    // Its audit lines form a chain of their own beside the serving node's.
    let audit = site.dir.join("audit.log.rewrap");
    let rewrap_audit = std::fs::read_to_string(&audit).unwrap();
    assert!(rewrap_audit.contains("\"op\":\"rewrap\""), "{rewrap_audit}");
    assert_eq!(
        keybroker::commands::audit_verify(
            &site.properties().to_string_lossy(),
            &[audit.to_string_lossy().into_owned()]
        ),
        0
    );

    // Interrupted after 40 lines, in the middle of writing the 41st: resumed from line 41.
    let kept: String = out.lines().take(40).map(|l| format!("{l}\n")).collect();
    std::fs::write(&output, format!("{kept}kb1:AQEQa2V5YnJva2VyLW1h")).unwrap();
    let (ok, err) = rewrap(&site, &input, &output, &["--batch", "25", "--rate", "0"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("40 of 126 lines already done, resuming"),
        "{err}"
    );
    assert!(err.contains("dropping an unfinished last line"), "{err}");
    assert!(std::fs::read_to_string(&output).unwrap().starts_with(&kept));
    check_output(&c, &stored, &output, 2);

    // Paced: 120 tokens at 100 per second cannot finish in under a second.
    let paced = site.dir.join("paced.txt");
    let t = Instant::now();
    let (ok, err) = rewrap(&site, &input, &paced, &["--batch", "10", "--rate", "100"]);
    assert!(ok, "{err}");
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn a_refused_token_stops_its_batch_or_is_kept_when_asked() {
    let site = Site::new("");
    let node = Node::start_bin(BIN, &site);
    let c = node.connect(&site, "backend");
    let stored = encrypt_many(&c, 6, "x");
    c.request("POST", "/v1/keys/default/rotate", Some(&json!({})))
        .unwrap();
    // Line 3 is bound to a context but listed without it: the backend refuses it.
    assert!(stored[3].1.is_some());
    let lines: Vec<String> = stored
        .iter()
        .enumerate()
        .map(|(i, (t, x, _))| if i == 3 { t.clone() } else { line(t, x) })
        .collect();
    let input = site.dir.join("in.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let output = site.dir.join("out.txt");
    let (ok, err) = rewrap(&site, &input, &output, &["--rate", "0"]);
    assert!(!ok);
    assert!(
        err.contains("line 4") && err.contains("bad_ciphertext"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "",
        "nothing of that batch"
    );

    let (ok, err) = rewrap(&site, &input, &output, &["--rate", "0", "--keep-failed"]);
    assert!(!ok, "exit 1 while a token could not be moved");
    assert!(err.contains("line 4: kept unchanged"), "{err}");
    let out = std::fs::read_to_string(&output).unwrap();
    let out: Vec<&str> = out.lines().collect();
    assert_eq!(out.len(), 6);
    assert_eq!(out[3], lines[3], "kept as it was");
    for (i, l) in out.iter().enumerate().filter(|(i, _)| *i != 3) {
        let token = l.split('\t').next().unwrap();
        assert_eq!(Envelope::decode(token).unwrap().key_version, 2, "line {i}");
    }
}
