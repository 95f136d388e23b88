//! Test helper: builds the seed's keystores for real with openssl and keytool, once per test
//! binary, in a temporary directory. Missing tools make the tests fail, not skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The store password the seed uses for `kmsKeystore.jks`.
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

/// The directory with everything; files are named as in seed 001.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!(
            "keybroker-keystore-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
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

/// Seed 001's commands, with -subj instead of prompts and a root + intermediate CA.
const SCRIPT: &str = r#"
set -e
command -v openssl >/dev/null || { echo "openssl is missing"; exit 1; }
command -v keytool >/dev/null || { echo "keytool is missing (install default-jdk-headless)"; exit 1; }
S="/C=US/ST=Massachusetts/L=Boston/O=AcmeXYZ"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > ca.ext
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' > leaf.ext
openssl genrsa -out rootCA.key 2048 2>/dev/null
openssl req -x509 -new -sha256 -key rootCA.key -subj "$S/CN=AcmeXYZ Root CA" -days 3650 -out rootCA.crt
openssl genrsa -out interCA.key 2048 2>/dev/null
openssl req -new -sha256 -key interCA.key -subj "$S/CN=AcmeXYZ Intermediate CA" -out interCA.csr
openssl x509 -req -in interCA.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -days 3650 -sha256 -extfile ca.ext -out interCA.crt 2>/dev/null
openssl genrsa -out kmipSigningCA.key 2048 2>/dev/null
openssl req -x509 -new -sha256 -key kmipSigningCA.key -subj "/C=US/O=HSM Vendor/CN=KMIP Signing CA" -days 3650 -out kmipSigningCA.crt
for keyName in kmsServer kmsClient; do
  openssl genrsa -out $keyName.key 2048 2>/dev/null
  openssl req -new -sha256 -key $keyName.key -subj "$S/CN=$keyName.AcmeXYZ.com" -out $keyName.csr
  openssl x509 -req -in $keyName.csr -CA interCA.crt -CAkey interCA.key -CAcreateserial -days 825 -sha256 -extfile leaf.ext -out $keyName.crt 2>/dev/null
  cp $keyName.crt ${keyName}CertChain.crt
  cat interCA.crt >> ${keyName}CertChain.crt
done
for keyName in cmxBackend cmxDevice cmxDevice20190512; do
  openssl genrsa -out $keyName.key 2048 2>/dev/null
  openssl req -new -sha256 -key $keyName.key -subj "$S/CN=$keyName.AcmeXYZ.com" -out $keyName.csr
  openssl x509 -req -in $keyName.csr -CA rootCA.crt -CAkey rootCA.key -CAcreateserial -days 825 -sha256 -extfile leaf.ext -out $keyName.crt 2>/dev/null
done
build() {
  variant=$1; legacy=$2; desttype=$3; jopt=$4
  mkdir $variant
  for keyName in kmsServer kmsClient; do
    openssl pkcs12 -export $legacy -inkey $keyName.key -in ${keyName}CertChain.crt -name "$keyName" -out $variant/$keyName.p12 -passout pass:${keyName}Pwd
  done
  cd $variant
  for keyName in kmsClient kmsServer; do
    keytool $jopt -importkeystore -srckeystore $keyName.p12 -srcstoretype PKCS12 \
      -srckeypass ${keyName}Pwd -srcstorepass ${keyName}Pwd -alias $keyName \
      -deststorepass kmsKeystorePwd -destkeypass kmsKeystorePwd \
      -destkeystore kmsKeystore.jks $desttype -noprompt >/dev/null 2>&1 || {
        echo "keytool -importkeystore $keyName failed"; exit 1; }
  done
  keytool $jopt -import -trustcacerts -alias kmipSigningCA -file ../kmipSigningCA.crt \
    -keystore kmsKeystore.jks -storepass kmsKeystorePwd -noprompt >/dev/null 2>&1
  keytool $jopt -import -alias cmxBackend -file ../cmxBackend.crt -keystore \
    kmsKeystore.jks -storepass kmsKeystorePwd -noprompt >/dev/null 2>&1
  keytool $jopt -import -alias cmxDevice -file ../cmxDevice.crt -keystore kmsKeystore.jks \
    -storepass kmsKeystorePwd -noprompt >/dev/null 2>&1
  keytool $jopt -import -alias cmxDevice20190512 -file ../cmxDevice20190512.crt -keystore kmsKeystore.jks \
    -storepass kmsKeystorePwd -noprompt >/dev/null 2>&1
  cd ..
}
build pkcs12 "" "" ""
build jks "" "-deststoretype JKS" ""
build openssl-legacy "-legacy" "" ""
build java-legacy "-legacy" "" "-J-Dkeystore.pkcs12.legacy"
# The PEM form openssl prints (-nodes), from the Java 17 PKCS12 keystore.
openssl pkcs12 -in pkcs12/kmsKeystore.jks -nodes -passin pass:kmsKeystorePwd -out kmsKeystore.pem 2>/dev/null
"#;

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
