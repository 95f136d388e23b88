//! The tamper-evident audit chain: every line carries a sequence number and an HMAC-SHA-256
//! over the previous line's MAC and its own bytes, so a line edited, deleted, inserted or
//! moved breaks the chain, and whoever can write the file but lacks the key cannot mend it.
//!
//! A sealed line is the record's JSON object with `"seq"` first and `"mac"` last:
//!
//! ```text
//! {"seq":42,"time":"2026-01-02T03:04:05.678Z",…,"mac":"<64 hex digits>"}
//! ```
//!
//! The MAC covers the 32-byte MAC of the line before (zeros before the first line of a chain)
//! followed by every byte of the line up to, not including, `,"mac":"`. A chain starts at
//! `seq` 1; a node that finds its audit file empty at start begins a new chain there.
//!
//! The key is derived with HKDF-SHA-256 from the server's private key (the keystore's
//! `keybroker.server.alias` entry), which every node of a site already holds: see
//! [`key_from_keystore`]. Pure: no file, no clock (the shell passes the time in).
use crate::config::keystore::{EntryKind, Keystore};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The bytes between a line's body and its MAC.
const MAC_MARK: &str = ",\"mac\":\"";

/// The HMAC key of the audit chain.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl Drop for AuditKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl AuditKey {
    /// Derives the audit key from key material (the server's PKCS#8 private key).
    pub fn derive(ikm: &[u8]) -> AuditKey {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"keybroker audit chain v1"), ikm);
        let mut k = [0u8; 32];
        hk.expand(b"hmac-sha256 key for audit lines", &mut k)
            .expect("32 bytes");
        AuditKey(k)
    }

    fn mac(&self, prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        m.update(prev);
        m.update(body);
        m.finalize().into_bytes().into()
    }
}

/// The audit key of a node whose TLS server entry is `server_alias` in `keystore`; `None` when
/// that entry is missing or holds no private key.
pub fn key_from_keystore(keystore: &Keystore, server_alias: &str) -> Option<AuditKey> {
    match &keystore.get(server_alias)?.kind {
        EntryKind::PrivateKey { key_pkcs8, .. } => Some(AuditKey::derive(key_pkcs8.expose())),
        _ => None,
    }
}

/// Where a chain stands: the last line's sequence number and MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChainState {
    /// The last sealed line's `seq` (0: nothing sealed yet).
    pub seq: u64,
    /// The last sealed line's MAC (zeros before the first line).
    pub mac: [u8; 32],
}

impl ChainState {
    /// Where a chain stands after `line` (a sealed line as found at the end of a file), if
    /// the line has the sealed shape. The MAC is not checked here: that is `verify`'s job.
    pub fn after_line(line: &str) -> Option<ChainState> {
        let (_, mac, seq) = split(line)?;
        Some(ChainState { seq, mac })
    }
}

/// Seals audit records into chained lines.
pub struct AuditChain {
    key: AuditKey,
    state: ChainState,
}

impl AuditChain {
    /// A chain keyed with `key`, continuing after `state`.
    pub fn new(key: AuditKey, state: ChainState) -> AuditChain {
        AuditChain { key, state }
    }

    /// Where the chain stands.
    pub fn state(&self) -> ChainState {
        self.state
    }

    /// Seals one record (a JSON object, as [`crate::Effect::Audit`] carries) into a line
    /// (without newline): `seq` and `time` (RFC 3339, from the shell) first, then the
    /// record's fields but its `ts`, then the MAC. A record that is not a JSON object is
    /// kept whole under `"record"`.
    pub fn seal(&mut self, time_rfc3339: &str, record: &str) -> String {
        let seq = self.state.seq + 1;
        let mut body = format!(
            "{{\"seq\":{seq},\"time\":{}",
            serde_json::Value::from(time_rfc3339)
        );
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(record) {
            Ok(fields) => {
                for (k, v) in fields {
                    if k == "ts" || k == "seq" || k == "time" || k == "mac" {
                        continue;
                    }
                    body.push(',');
                    body.push_str(&serde_json::Value::from(k).to_string());
                    body.push(':');
                    body.push_str(&v.to_string());
                }
            }
            Err(_) => {
                body.push_str(",\"record\":");
                body.push_str(&serde_json::Value::from(record).to_string());
            }
        }
        let mac = self.key.mac(&self.state.mac, body.as_bytes());
        self.state = ChainState { seq, mac };
        format!("{body}{MAC_MARK}{}\"}}", hex(&mac))
    }
}

/// Splits a sealed line into (body, mac, seq).
fn split(line: &str) -> Option<(&str, [u8; 32], u64)> {
    let at = line.rfind(MAC_MARK)?;
    let (body, rest) = line.split_at(at);
    let hexmac = rest[MAC_MARK.len()..].strip_suffix("\"}")?;
    let mac = unhex32(hexmac)?;
    let seq = body
        .strip_prefix("{\"seq\":")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((body, mac, seq))
}

/// The first line at which a sequence of audit lines stops verifying.
#[derive(Debug, PartialEq, Eq)]
pub struct Broken {
    /// The index of the offending line in the sequence given to [`Verifier::line`] (0-based).
    pub index: u64,
    /// Why, in words.
    pub why: String,
}

/// Checks audit lines one at a time, in order, across as many files as they span.
pub struct Verifier {
    key: AuditKey,
    state: Option<ChainState>,
    index: u64,
    /// Lines checked so far.
    pub lines: u64,
    /// Chains (re)started at `seq` 1 after the first line: a node that began a new file at start.
    pub restarts: u64,
    first_seq: Option<u64>,
}

impl Verifier {
    /// A verifier with the audit key.
    pub fn new(key: AuditKey) -> Verifier {
        Verifier {
            key,
            state: None,
            index: 0,
            lines: 0,
            restarts: 0,
            first_seq: None,
        }
    }

    /// The `seq` of the first line checked, if any: above 1 means earlier lines are in files
    /// not given (rotated away), which cannot be checked here.
    pub fn first_seq(&self) -> Option<u64> {
        self.first_seq
    }

    /// Checks the next line. The first line given is taken on trust for its predecessor
    /// (earlier files may have been rotated away), every later one must follow it.
    pub fn line(&mut self, line: &str) -> Result<(), Broken> {
        let index = self.index;
        self.index += 1;
        let broken = |why: String| Err(Broken { index, why });
        let Some((body, mac, seq)) = split(line) else {
            return broken("not a sealed audit line (no seq or mac)".into());
        };
        let prev = match self.state {
            None => {
                self.first_seq = Some(seq);
                if seq == 1 {
                    [0u8; 32]
                } else {
                    // Its predecessor is not given: check the line against itself only
                    // through the lines that follow.
                    self.state = Some(ChainState { seq, mac });
                    self.lines += 1;
                    return Ok(());
                }
            }
            Some(_) if seq == 1 => {
                // A new chain: only valid from zeros (a node restarted on a fresh file).
                self.restarts += 1;
                [0u8; 32]
            }
            Some(s) if seq == s.seq + 1 => s.mac,
            Some(s) if seq <= s.seq => {
                return broken(format!(
                    "seq {seq} after seq {}: a line moved or repeated",
                    s.seq
                ));
            }
            Some(s) => {
                return broken(format!(
                    "seq {seq} after seq {}: {} line(s) missing",
                    s.seq,
                    seq - s.seq - 1
                ));
            }
        };
        if self.key.mac(&prev, body.as_bytes()) != mac {
            return broken(format!(
                "seq {seq}: MAC does not match (line edited, or not chained to the line before)"
            ));
        }
        self.state = Some(ChainState { seq, mac });
        self.lines += 1;
        Ok(())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::derive(b"server private key bytes")
    }

    fn lines(n: u64) -> Vec<String> {
        let mut c = AuditChain::new(key(), ChainState::default());
        (0..n)
            .map(|i| {
                c.seal(
                    "2026-01-02T03:04:05.000Z",
                    &format!(
                        r#"{{"ts":1,"request_id":"r{i}","op":"encrypt","status":200,"alias":"cmxDevice"}}"#
                    ),
                )
            })
            .collect()
    }

    fn verify(ls: &[String]) -> Result<(u64, Option<u64>, u64), Broken> {
        let mut v = Verifier::new(key());
        for l in ls {
            v.line(l)?;
        }
        Ok((v.lines, v.first_seq(), v.restarts))
    }

    #[test]
    fn sealed_lines_are_json_with_seq_first_and_mac_last() {
        let ls = lines(2);
        let v: serde_json::Value = serde_json::from_str(&ls[1]).unwrap();
        assert_eq!(v["seq"], 2);
        assert_eq!(v["time"], "2026-01-02T03:04:05.000Z");
        assert_eq!(v["request_id"], "r1");
        assert!(v.get("ts").is_none());
        assert!(ls[1].starts_with("{\"seq\":2,"));
        assert_eq!(v["mac"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&lines(5)).unwrap().0, 5);
    }

    #[test]
    fn an_edited_line_is_caught() {
        let mut ls = lines(5);
        ls[2] = ls[2].replace("\"status\":200", "\"status\":403");
        assert_eq!(verify(&ls).unwrap_err().index, 2);
    }

    #[test]
    fn a_deleted_line_is_caught() {
        let mut ls = lines(5);
        ls.remove(2);
        let b = verify(&ls).unwrap_err();
        assert_eq!(b.index, 2);
        assert!(b.why.contains("missing"), "{}", b.why);
    }

    #[test]
    fn reordered_lines_are_caught() {
        let mut ls = lines(5);
        ls.swap(1, 2);
        assert_eq!(verify(&ls).unwrap_err().index, 1);
    }

    #[test]
    fn a_renumbered_line_is_caught_by_its_mac() {
        // Delete line 3 and renumber the rest: the MACs no longer chain.
        let mut ls = lines(5);
        ls.remove(2);
        ls[2] = ls[2].replacen("\"seq\":4", "\"seq\":3", 1);
        assert_eq!(verify(&ls).unwrap_err().index, 2);
    }

    #[test]
    fn another_key_does_not_verify() {
        let ls = lines(2);
        let mut v = Verifier::new(AuditKey::derive(b"another key"));
        assert!(v.line(&ls[0]).is_err());
    }

    #[test]
    fn a_chain_continues_from_where_it_stood() {
        let ls = lines(3);
        let state = ChainState::after_line(&ls[2]).unwrap();
        let mut c = AuditChain::new(key(), state);
        let next = c.seal("2026-01-02T03:04:06.000Z", r#"{"op":"decrypt"}"#);
        let mut all = ls.clone();
        all.push(next);
        assert_eq!(verify(&all).unwrap().0, 4);
    }

    #[test]
    fn verifying_from_a_later_file_trusts_its_first_line_only() {
        let ls = lines(6);
        let (n, first, _) = verify(&ls[3..]).unwrap();
        assert_eq!((n, first), (3, Some(4)));
        let mut tail = ls[3..].to_vec();
        tail[1] = tail[1].replace("encrypt", "decrypt");
        assert_eq!(verify(&tail).unwrap_err().index, 1);
    }

    #[test]
    fn a_restarted_chain_is_counted() {
        let mut ls = lines(2);
        ls.extend(lines(2));
        let (n, _, restarts) = verify(&ls).unwrap();
        assert_eq!((n, restarts), (4, 1));
    }

    #[test]
    fn garbage_is_broken() {
        assert!(verify(&["hello".into()]).is_err());
        assert!(verify(&[r#"{"seq":1,"mac":"zz"}"#.into()]).is_err());
    }
}
