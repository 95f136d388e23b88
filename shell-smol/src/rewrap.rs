//! `keybroker rewrap`: moves a file of stored `kb1:` tokens to the key's latest version.
//!
//! The tool runs the node in-process from the site's kms.properties ([`Embedded`]), so it
//! needs no listener and no client key: it acts as a backend-role alias of the keystore,
//! and every batch is an ordinary `POST /v1/keys/{key}/rewrap` through the broker (the audit
//! log records it under that alias). Input lines are `TOKEN` or `TOKEN<TAB>CONTEXT_BASE64`;
//! the output has one line per input line, in order, with the context kept. Tokens already
//! at the latest version and blank lines are copied unchanged.
//!
//! Its audit lines go to `keybroker.audit.file` + `.rewrap`, a chain of its own that
//! `keybroker audit verify` checks, so a node serving beside it keeps an unbroken one.
//!
//! Resuming: the output's complete lines say how far a run got; a line cut short by an
//! interruption is dropped and redone. Each batch's lines are appended with one write and
//! synced before the next batch, so the output never holds a partial line that a later run
//! would trust.
use crate::embedded::Embedded;
use keybroker_core::authz::Role;
use keybroker_core::config::keystore::EntryKind;
use keybroker_core::envelope::Envelope;
use keybroker_core::Listener;
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

/// What `keybroker rewrap` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The node's kms.properties.
    pub config: String,
    /// Input file of tokens.
    pub input: String,
    /// Output file (appended to when resuming).
    pub output: String,
    /// API key name (`default` or a name in `keybroker.keys`).
    pub key: String,
    /// Keystore alias with the backend role to act as (the first one when `None`).
    pub alias: Option<String>,
    /// Tokens per batch request (1–1000).
    pub batch: usize,
    /// Most tokens per second sent for rewrapping (0: no limit).
    pub rate: u32,
    /// Copy tokens the backend refuses unchanged (and list them) instead of stopping.
    pub keep_failed: bool,
}

/// The tool's audit lines go to `keybroker.audit.file` with this suffix (a chain of its own).
pub const AUDIT_SUFFIX: &str = ".rewrap";

/// How long one batch may take before the run stops.
const BATCH_DEADLINE: Duration = Duration::from_secs(120);

/// Runs the command; the exit code.
pub fn run(o: &Options) -> i32 {
    match rewrap(o) {
        Ok(0) => 0,
        Ok(_) => 1,
        Err(e) => {
            eprintln!("keybroker rewrap: {e}");
            1
        }
    }
}

/// Rewraps; Ok(number of tokens copied unchanged because the backend refused them).
fn rewrap(o: &Options) -> Result<usize, String> {
    if !(1..=keybroker_core::api::MAX_BATCH).contains(&o.batch) {
        return Err(format!(
            "--batch must be 1 to {}",
            keybroker_core::api::MAX_BATCH
        ));
    }
    let (alias, cert) = backend_identity(&o.config, o.alias.as_deref())?;
    let input = File::open(&o.input).map_err(|e| format!("{}: {e}", o.input))?;
    let total = BufReader::new(&input).lines().count() as u64;
    let done = resume_point(&o.output)?;
    let mut out = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&o.output)
        .map_err(|e| format!("{}: {e}", o.output))?;
    let node = Embedded::start(&o.config, AUDIT_SUFFIX)?;
    wait_ready(&node)?;
    let client = Listener::Client {
        peer_cert: Some(cert),
    };
    let latest = latest_version(&node, &client, &o.key)?;
    eprintln!(
        "keybroker rewrap: key {} latest version {latest}, acting as {alias}; {done} of {total} lines already done{}",
        o.key,
        if done > 0 { ", resuming" } else { "" }
    );
    let bar = indicatif::ProgressBar::new(total).with_position(done);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} lines  {per_sec}  eta {eta}")
            .map_err(|e| e.to_string())?,
    );
    let mut lines = BufReader::new(File::open(&o.input).map_err(|e| e.to_string())?)
        .lines()
        .skip(done as usize);
    let mut line_no = done;
    let (mut refused, mut moved) = (0usize, 0u64);
    let started = Instant::now();
    loop {
        let mut chunk = Vec::new();
        for line in lines.by_ref().take(o.batch) {
            chunk.push(line.map_err(|e| format!("{}: {e}", o.input))?);
        }
        if chunk.is_empty() {
            break;
        }
        let mut rows: Vec<Row> = chunk.iter().map(|l| Row::parse(l, latest)).collect();
        let todo: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].send).collect();
        if !todo.is_empty() {
            if o.rate > 0 {
                // Paced on the tokens sent so far, so a resumed or slow run does not burst.
                let due =
                    Duration::from_secs_f64((moved + todo.len() as u64) as f64 / o.rate as f64);
                std::thread::sleep(due.saturating_sub(started.elapsed()));
            }
            let items: Vec<Value> = todo
                .iter()
                .map(|&i| match &rows[i].context {
                    Some(c) => json!({"ciphertext": rows[i].token, "context": c}),
                    None => json!({"ciphertext": rows[i].token}),
                })
                .collect();
            let answer = call(
                &node,
                &client,
                "POST",
                &format!("/v1/keys/{}/rewrap", o.key),
                Some(&json!({ "batch": items })),
            )?;
            let results = answer["batch"]
                .as_array()
                .filter(|r| r.len() == todo.len())
                .ok_or_else(|| format!("unexpected rewrap answer: {answer}"))?;
            for (&i, r) in todo.iter().zip(results) {
                match r["ciphertext"].as_str() {
                    Some(ct) => rows[i].token = ct.to_owned(),
                    None if o.keep_failed => {
                        refused += 1;
                        eprintln!(
                            "keybroker rewrap: line {}: kept unchanged: {}",
                            line_no + i as u64 + 1,
                            r["error"]
                        );
                    }
                    None => {
                        return Err(format!(
                            "line {}: {}; nothing of this batch was written (rerun to resume here, or pass --keep-failed)",
                            line_no + i as u64 + 1,
                            r["error"]
                        ))
                    }
                }
            }
            moved += todo.len() as u64;
        }
        let mut text = String::new();
        for r in &rows {
            text.push_str(&r.line());
            text.push('\n');
        }
        out.write_all(text.as_bytes())
            .and_then(|()| out.sync_data())
            .map_err(|e| format!("{}: {e}", o.output))?;
        line_no += rows.len() as u64;
        bar.set_position(line_no);
    }
    bar.finish_and_clear();
    eprintln!(
        "keybroker rewrap: {line_no} lines written to {}; {moved} tokens sent for rewrapping, {refused} kept unchanged",
        o.output
    );
    Ok(refused)
}

/// One input line.
struct Row {
    token: String,
    context: Option<String>,
    /// Whether it goes to the backend (a token below the latest version).
    send: bool,
}

impl Row {
    fn parse(line: &str, latest: u32) -> Row {
        let (token, context) = match line.split_once('\t') {
            Some((t, c)) => (t.trim().to_owned(), Some(c.trim().to_owned())),
            None => (line.trim().to_owned(), None),
        };
        // A token that does not decode goes to the broker, which says why it is refused.
        let send =
            !token.is_empty() && Envelope::decode(&token).map_or(true, |e| e.key_version < latest);
        Row {
            token,
            context,
            send,
        }
    }

    fn line(&self) -> String {
        match &self.context {
            Some(c) => format!("{}\t{c}", self.token),
            None => self.token.clone(),
        }
    }
}

/// How many complete lines `path` holds; a last line without its newline is cut off.
fn resume_point(path: &str) -> Result<u64, String> {
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{path}: {e}")),
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut bytes).map_err(|e| format!("{path}: {e}"))?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        eprintln!(
            "keybroker rewrap: {path}: dropping an unfinished last line ({} bytes)",
            bytes.len() - complete
        );
        f.set_len(complete as u64)
            .and_then(|()| f.seek(SeekFrom::End(0)).map(|_| ()))
            .and_then(|()| f.sync_data())
            .map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(bytes[..complete].iter().filter(|b| **b == b'\n').count() as u64)
}

/// The alias (given, or the first with the backend role) and its certificate.
fn backend_identity(config: &str, wanted: Option<&str>) -> Result<(String, Vec<u8>), String> {
    let cfg = keybroker_host::commands::load_config(config)?;
    let roles = &cfg.settings.roles;
    cfg.keystore
        .entries
        .iter()
        .filter(|e| wanted.is_none_or(|w| e.alias.eq_ignore_ascii_case(w)))
        .filter(|e| roles.role_of(&e.alias) == Some(Role::Backend))
        .find_map(|e| match &e.kind {
            EntryKind::TrustedCert { cert } => Some((e.alias.clone(), cert.clone())),
            EntryKind::PrivateKey { .. } => None,
        })
        .ok_or_else(|| match wanted {
            Some(w) => format!("{w}: no certificate entry with the backend role in the keystore"),
            None => "the keystore has no certificate entry with the backend role".into(),
        })
}

fn wait_ready(node: &Embedded) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = node
            .request(
                Listener::Admin,
                b"GET /readyz HTTP/1.1\r\nhost: keybroker\r\n\r\n",
                Duration::from_secs(5),
                |b| response(b).is_some(),
            )
            .and_then(|b| response(&b).map(|(status, _)| status == 200));
        if ready == Some(true) {
            return Ok(());
        }
        if Instant::now() > until {
            return Err("the backend did not become ready within 30 s (see the log above)".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn latest_version(node: &Embedded, client: &Listener, key: &str) -> Result<u32, String> {
    let v = call(node, client, "GET", &format!("/v1/keys/{key}"), None)?;
    v["latest_version"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("unexpected describe answer: {v}"))
}

/// One API call as the backend identity; the JSON answer of a 200, else the error.
fn call(
    node: &Embedded,
    client: &Listener,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: keybroker\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let bytes = node
        .request(client.clone(), request.as_bytes(), BATCH_DEADLINE, |b| {
            response(b).is_some()
        })
        .ok_or_else(|| format!("{method} {path}: no answer within {BATCH_DEADLINE:?}"))?;
    let (status, body) = response(&bytes).ok_or("incomplete answer")?;
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("{method} {path}: {e}"))?;
    if status != 200 {
        return Err(format!("{method} {path}: {status} {}", v["error"]));
    }
    Ok(v)
}

/// A complete HTTP/1.1 answer with a `content-length`: (status, body).
fn response(b: &[u8]) -> Option<(u16, &[u8])> {
    let head_end = b.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&b[..head_end]).ok()?;
    let status = head.get(9..12)?.parse().ok()?;
    let len: usize = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    b.get(head_end..head_end + len).map(|body| (status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_complete_only_with_their_whole_body() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(response(a), Some((200, &b"{}"[..])));
        assert_eq!(response(&a[..a.len() - 1]), None);
        assert_eq!(response(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(
            response(b"HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n"),
            None
        );
    }

    #[test]
    fn a_cut_last_line_is_dropped_and_complete_lines_counted() {
        let dir = std::env::temp_dir().join(format!("kb-rewrap-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out");
        let path = p.to_str().unwrap();
        assert_eq!(resume_point(path).unwrap(), 0, "no file yet");
        std::fs::write(&p, "a\nb\nc").unwrap();
        assert_eq!(resume_point(path).unwrap(), 2);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a\nb\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rows_keep_their_context_and_skip_what_is_current() {
        let r = Row::parse("kb1:not-a-token\tY3R4", 2);
        assert!(
            r.send,
            "undecodable tokens go to the broker, which says why"
        );
        assert_eq!(r.line(), "kb1:not-a-token\tY3R4");
        assert!(!Row::parse("", 2).send);
    }
}
