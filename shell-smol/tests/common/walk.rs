//! The whole key API through keybroker-client's typed calls, as one sequence every backend
//! suite runs against its own backend: generate, encrypt, decrypt (also with another context
//! and with tampered tokens), rotate, rewrap, describe, and batches with a bad item.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keybroker_client::Client;

/// What the walk saw, for a suite's own further checks.
pub struct Walked {
    /// A token of version 1 (from encrypt, with [`CONTEXT`]) that still decrypts.
    pub v1_token: String,
}

/// The context the walk binds its tokens to.
pub const CONTEXT: &[u8] = b"tenant=7";
/// The plaintext the walk encrypts (its base64 begins `aGVsbG8`).
pub const PLAINTEXT: &[u8] = b"hello from the walk";

/// Runs the walk as `c` (a backend identity) on key `default` of a node whose key is at
/// version 1, served by `backend` (`soft`, `kmip`, `vault`); leaves the key at version 2.
pub fn whole_api(c: &Client, backend: &str) -> Walked {
    let dk = c.generate("default", 32, CONTEXT).unwrap();
    assert_eq!((dk.plaintext.expose().len(), dk.key_version), (32, 1));
    assert_eq!(
        c.decrypt("default", &dk.ciphertext, CONTEXT)
            .unwrap()
            .expose(),
        dk.plaintext.expose(),
        "a generated key's token decrypts to the key"
    );

    let s = c.encrypt("default", PLAINTEXT, CONTEXT).unwrap();
    assert!(
        s.ciphertext.starts_with("kb1:") && s.key_version == 1,
        "{s:?}"
    );
    assert_eq!(
        c.decrypt("default", &s.ciphertext, CONTEXT)
            .unwrap()
            .expose(),
        PLAINTEXT
    );

    // Another context, and bytes of the token flipped: refused, never other bytes.
    let e = c
        .decrypt("default", &s.ciphertext, b"tenant=8")
        .unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(400), Some("bad_ciphertext")),
        "{e}"
    );
    assert!(e.request_id().is_some());
    let raw = URL_SAFE_NO_PAD.decode(&s.ciphertext[4..]).unwrap();
    for i in (0..raw.len()).step_by(3) {
        let mut t = raw.clone();
        t[i] ^= 0x01;
        let tok = format!("kb1:{}", URL_SAFE_NO_PAD.encode(&t));
        match c.decrypt("default", &tok, CONTEXT) {
            Err(e) => assert!(matches!(e.status(), Some(400 | 404)), "byte {i}: {e}"),
            Ok(_) => panic!("byte {i} flipped still decrypts"),
        }
    }

    // Rotate: version 2; the old token still decrypts; rewrap moves it to version 2.
    assert_eq!(c.rotate("default").unwrap(), 2);
    assert_eq!(
        c.decrypt("default", &s.ciphertext, CONTEXT)
            .unwrap()
            .expose(),
        PLAINTEXT
    );
    let w = c.rewrap("default", &s.ciphertext, CONTEXT).unwrap();
    assert_eq!(w.key_version, 2);
    assert_eq!(
        c.decrypt("default", &w.ciphertext, CONTEXT)
            .unwrap()
            .expose(),
        PLAINTEXT
    );
    assert_eq!(c.encrypt("default", b"x", b"").unwrap().key_version, 2);
    let k = c.describe("default").unwrap();
    assert_eq!(
        (k.backend.as_str(), k.latest_version, k.versions.as_slice()),
        (backend, 2, &[1, 2][..])
    );

    // Batches: one answer per item, in order; a bad item does not spoil the others.
    let plains: Vec<Vec<u8>> = (0..20).map(|i| format!("item {i}").into_bytes()).collect();
    let items: Vec<(&[u8], &[u8])> = plains.iter().map(|p| (p.as_slice(), &b""[..])).collect();
    let sealed: Vec<String> = c
        .encrypt_batch("default", &items)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().ciphertext)
        .collect();
    let mut tokens: Vec<(&str, &[u8])> = sealed.iter().map(|t| (t.as_str(), &b""[..])).collect();
    tokens[3] = (&s.ciphertext, b""); // bound to CONTEXT, sent without it
    let out = c.decrypt_batch("default", &tokens).unwrap();
    for (i, r) in out.iter().enumerate() {
        match (i, r) {
            (3, Err(e)) => assert_eq!(e.code, "bad_ciphertext"),
            (_, Ok(p)) => assert_eq!(p.expose(), &plains[i]),
            (_, other) => panic!("item {i}: {other:?}"),
        }
    }
    let rw = c
        .rewrap_batch("default", &[(&s.ciphertext, CONTEXT)])
        .unwrap();
    assert_eq!(rw[0].as_ref().unwrap().key_version, 2);
    Walked {
        v1_token: s.ciphertext,
    }
}
