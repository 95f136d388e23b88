//! Test helper: builds a Connected-KMS site's keystores for real with openssl and keytool, once
//! per test binary, in a temporary directory removed when the test process ends. Missing tools make the tests fail, not skip.
#![allow(dead_code)]

pub mod tmp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The store password the Connected-KMS installation guide uses for `kmsKeystore.jks`.
pub const STORE_PASSWORD: &str = "kmsKeystorePwd";

/// The private-key entries (alias, signed by the intermediate CA).
pub const KEY_ALIASES: [&str; 2] = ["kmsServer", "kmsClient"];
/// The trusted-certificate entries.
pub const CERT_ALIASES: [&str; 4] = [
    "kmipSigningCA",
    "cmxBackend",
    "cmxDevice",
    "cmxDevice20190512",
];

/// The variants built from the same certificates.
pub const VARIANTS: [&str; 4] = ["pkcs12", "jks", "openssl-legacy", "java-legacy"];

/// The directory with everything; files are named as on a Connected-KMS site.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmp::dir("keystores");
        run(&dir, SCRIPT);
        dir
    })
}

/// The keystore file of a variant.
pub fn keystore(variant: &str) -> PathBuf {
    dir().join(variant).join("kmsKeystore.jks")
}

/// Reads a file of the generated set.
pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The DER of a PEM certificate file of the generated set (first block).
pub fn cert_der(name: &str) -> Vec<u8> {
    let pem = read(&format!("{name}.crt"));
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    pem.contents
}

/// Runs a shell script in `dir`, failing the test with its output if it fails.
pub fn run(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("sh must run; the keystore tests need openssl and keytool (default-jdk-headless)");
    assert!(
        out.status.success(),
        "script failed (openssl and keytool are required):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Connected-KMS installation guide's openssl + keytool commands (scripts/seed-site), run in
/// the test directory.
const SCRIPT: &str = concat!("sh ", env!("CARGO_MANIFEST_DIR"), "/../scripts/seed-site .");

/// The big-endian RSA modulus inside a PKCS#8 RSA private key, leading zeros stripped.
pub fn pkcs8_rsa_modulus(pkcs8: &[u8]) -> Vec<u8> {
    let (seq, _) = tlv(pkcs8);
    assert_eq!(seq.0, 0x30);
    let (_version, rest) = tlv(seq.1);
    let (_alg, rest) = tlv(rest);
    let (octets, _) = tlv(rest);
    assert_eq!(octets.0, 0x04);
    let (rsa, _) = tlv(octets.1);
    let (_v, rest) = tlv(rsa.1);
    let (modulus, _) = tlv(rest);
    strip(modulus.1)
}

/// The RSA modulus of a certificate's public key, leading zeros stripped.
pub fn cert_rsa_modulus(cert: &[u8]) -> Vec<u8> {
    let (_, c) = x509_parser::parse_x509_certificate(cert).unwrap();
    match c.public_key().parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(rsa) => strip(rsa.modulus),
        other => panic!("not RSA: {other:?}"),
    }
}

fn strip(b: &[u8]) -> Vec<u8> {
    b.iter().copied().skip_while(|&x| x == 0).collect()
}

/// A minimal DER reader for the tests: ((tag, body), rest).
fn tlv(input: &[u8]) -> ((u8, &[u8]), &[u8]) {
    let tag = input[0];
    let first = input[1];
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        (
            input[2..2 + n]
                .iter()
                .fold(0, |a, &b| (a << 8) | b as usize),
            2 + n,
        )
    };
    ((tag, &input[hdr..hdr + len]), &input[hdr + len..])
}
