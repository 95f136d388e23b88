//! A loopback test double of the Azure Instance Metadata Service — not a real Azure peer
//! (none exists here). It follows Azure's published IMDS API to the byte: `GET
//! /metadata/identity/oauth2/token?api-version=…&resource=…` and `GET
//! /metadata/instance?api-version=…`, both requiring the header `Metadata: true` (else 400
//! with Azure's error JSON), answering Azure's documented JSON. The access token is an ES256
//! JWT signed with a key the test gives OpenBao's `jwt` auth as `jwt_validation_pubkeys`.
#![allow(dead_code)]
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

pub struct Imds {
    pub addr: SocketAddr,
    pub public_key_pem: String,
    pub token_requests: Arc<AtomicU32>,
    pub seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

pub const SUBSCRIPTION: &str = "11111111-2222-3333-4444-555555555555";
pub const RESOURCE_GROUP: &str = "kms-rg";
pub const VM_NAME: &str = "kms-vm-1";

impl Imds {
    /// Serves on 127.0.0.1; tokens carry `aud = resource` and `sub = subject`.
    pub fn start(subject: &str) -> Imds {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let public_key_pem = kp.public_key_pem();
        let pkcs8 = kp.serialize_der();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let token_requests = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, count, seen2, subject) = (
            stop.clone(),
            token_requests.clone(),
            seen.clone(),
            subject.to_owned(),
        );
        std::thread::spawn(move || {
            let rng = ring::rand::SystemRandom::new();
            let key = ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &pkcs8,
                &rng,
            )
            .unwrap();
            for s in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut metadata = false;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if h.to_ascii_lowercase().trim() == "metadata: true" {
                        metadata = true;
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                seen2
                    .lock()
                    .unwrap()
                    .push(format!("{} metadata={metadata}", line.trim()));
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let q = |k: &str| {
                    query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                        .map(pct_decode)
                };
                let (status, body) = if !metadata {
                    (400, r#"{"error":"bad_request","error_description":"Required metadata header not specified"}"#.to_owned())
                } else if q("api-version").is_none() {
                    (
                        400,
                        r#"{"error":"Bad request. api-version was not specified in the request"}"#
                            .to_owned(),
                    )
                } else if path == "/metadata/identity/oauth2/token" {
                    count.fetch_add(1, Ordering::Relaxed);
                    let resource = q("resource").unwrap_or_default();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
                    let claims = serde_json::json!({
                        "aud": resource, "iss": "https://sts.windows.net/tenant/", "iat": now,
                        "nbf": now, "exp": now + 3600, "sub": subject, "oid": subject,
                        "xms_mirid": format!("/subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/{VM_NAME}"),
                    });
                    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
                    let signing_input = format!("{header}.{payload}");
                    let sig = key.sign(&rng, signing_input.as_bytes()).unwrap();
                    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
                    (
                        200,
                        serde_json::json!({
                            "access_token": jwt,
                            "refresh_token": "",
                            "expires_in": "3599",
                            "expires_on": (now + 3599).to_string(),
                            "not_before": now.to_string(),
                            "resource": resource,
                            "token_type": "Bearer",
                        })
                        .to_string(),
                    )
                } else if path == "/metadata/instance" {
                    (
                        200,
                        serde_json::json!({"compute": {
                        "azEnvironment": "AzurePublicCloud", "location": "westeurope",
                        "name": VM_NAME, "resourceGroupName": RESOURCE_GROUP,
                        "subscriptionId": SUBSCRIPTION, "vmScaleSetName": "",
                        "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6", "osType": "Linux",
                    }, "network": {"interface": []}})
                        .to_string(),
                    )
                } else {
                    (404, r#"{"error":"Not found"}"#.to_owned())
                };
                let reason = match status {
                    200 => "OK",
                    400 => "Bad Request",
                    _ => "Not Found",
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\nServer: IMDS/150.870.65.684\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Imds {
            addr,
            public_key_pem,
            token_requests,
            seen,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for Imds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}
