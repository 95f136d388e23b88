//! Vault / OpenBao requests as bytes and their answers as values.
//!
//! Every request keybroker sends to Vault (transit, token, login) or to the Azure Instance
//! Metadata Service is built here by a pure function, so each has an `insta` snapshot
//! (`render_masked`: the token masked). Answers are parsed here too; [`http`] frames them.
pub mod http;

use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::fmt;

/// Azure IMDS API version used for the managed-identity token.
pub const IMDS_TOKEN_API_VERSION: &str = "2018-02-01";
/// Azure IMDS API version used for instance metadata.
pub const IMDS_INSTANCE_API_VERSION: &str = "2021-02-01";

/// Whether a request carries `X-Vault-Token`, or goes to the IMDS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Needs a valid Vault token.
    Token,
    /// Vault, no token (login).
    None,
    /// Azure IMDS (`Metadata: true`, no Vault headers).
    Imds,
}

/// One HTTP request to Vault or the IMDS, before the token is added.
pub struct VaultRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query, starting with `/`.
    pub path: String,
    /// JSON body (may hold plaintext: secret).
    pub body: Option<Secret<Vec<u8>>>,
    /// What authentication the request carries.
    pub auth: Auth,
}

impl fmt::Debug for VaultRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

fn post(path: String, body: Value, auth: Auth) -> VaultRequest {
    VaultRequest {
        method: "POST",
        path,
        body: Some(Secret::new(serde_json::to_vec(&body).expect("json"))),
        auth,
    }
}

fn get(path: String, auth: Auth) -> VaultRequest {
    VaultRequest {
        method: "GET",
        path,
        body: None,
        auth,
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One item to wrap: plaintext and the associated data it is bound to.
pub struct EncryptItem<'a> {
    /// Data to wrap.
    pub plaintext: &'a [u8],
    /// AEAD associated data (`Envelope::aad`).
    pub aad: &'a [u8],
}

/// One item to unwrap: Vault's `vault:vN:` ciphertext and its associated data.
pub struct DecryptItem<'a> {
    /// Vault ciphertext string.
    pub ciphertext: &'a str,
    /// AEAD associated data (`Envelope::aad`).
    pub aad: &'a [u8],
}

/// `POST /v1/{mount}/encrypt/{key}`; more than one item goes as `batch_input`.
pub fn encrypt(
    mount: &str,
    key: &str,
    key_version: u32,
    items: &[EncryptItem<'_>],
) -> VaultRequest {
    let item = |i: &EncryptItem<'_>| json!({"plaintext": B64.encode(i.plaintext), "associated_data": B64.encode(i.aad)});
    let body = if items.len() == 1 {
        let mut v = item(&items[0]);
        v["key_version"] = json!(key_version);
        v
    } else {
        json!({
            "batch_input": items.iter().map(item).collect::<Vec<_>>(),
            "key_version": key_version,
            "partial_failure_response_code": 200,
        })
    };
    post(format!("/v1/{mount}/encrypt/{key}"), body, Auth::Token)
}

/// `POST /v1/{mount}/decrypt/{key}`; more than one item goes as `batch_input`.
pub fn decrypt(mount: &str, key: &str, items: &[DecryptItem<'_>]) -> VaultRequest {
    let item = |i: &DecryptItem<'_>| json!({"ciphertext": i.ciphertext, "associated_data": B64.encode(i.aad)});
    let body = if items.len() == 1 {
        item(&items[0])
    } else {
        json!({
            "batch_input": items.iter().map(item).collect::<Vec<_>>(),
            "partial_failure_response_code": 200,
        })
    };
    post(format!("/v1/{mount}/decrypt/{key}"), body, Auth::Token)
}

/// `GET /v1/{mount}/keys/{key}`: versions of a key.
pub fn read_key(mount: &str, key: &str) -> VaultRequest {
    get(format!("/v1/{mount}/keys/{key}"), Auth::Token)
}

/// `POST /v1/{mount}/keys/{key}`: create an AES-256-GCM key.
pub fn create_key(mount: &str, key: &str) -> VaultRequest {
    post(
        format!("/v1/{mount}/keys/{key}"),
        json!({"type": "aes256-gcm96"}),
        Auth::Token,
    )
}

/// `POST /v1/{mount}/keys/{key}/rotate`.
pub fn rotate_key(mount: &str, key: &str) -> VaultRequest {
    post(
        format!("/v1/{mount}/keys/{key}/rotate"),
        json!({}),
        Auth::Token,
    )
}

/// `GET /v1/auth/token/lookup-self`.
pub fn lookup_self() -> VaultRequest {
    get("/v1/auth/token/lookup-self".into(), Auth::Token)
}

/// `POST /v1/auth/token/renew-self`.
pub fn renew_self() -> VaultRequest {
    post("/v1/auth/token/renew-self".into(), json!({}), Auth::Token)
}

/// What the IMDS says about this VM (the fields Azure login needs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceMeta {
    /// `compute.subscriptionId`
    pub subscription_id: String,
    /// `compute.resourceGroupName`
    pub resource_group_name: String,
    /// `compute.name`
    pub vm_name: String,
    /// `compute.vmScaleSetName` (empty when not in a scale set)
    pub vmss_name: String,
}

/// `POST {path}` (default `/v1/auth/azure/login`) with the vault-plugin-auth-azure login body.
pub fn azure_login(path: &str, role: &str, jwt: &str, meta: &InstanceMeta) -> VaultRequest {
    let mut body = json!({
        "role": role,
        "jwt": jwt,
        "subscription_id": meta.subscription_id,
        "resource_group_name": meta.resource_group_name,
    });
    if meta.vmss_name.is_empty() {
        body["vm_name"] = json!(meta.vm_name);
    } else {
        body["vmss_name"] = json!(meta.vmss_name);
    }
    post(path.to_owned(), body, Auth::None)
}

/// `GET /metadata/identity/oauth2/token?api-version=…&resource=…` on the IMDS.
pub fn imds_token(resource: &str) -> VaultRequest {
    get(
        format!(
            "/metadata/identity/oauth2/token?api-version={IMDS_TOKEN_API_VERSION}&resource={}",
            url_encode(resource)
        ),
        Auth::Imds,
    )
}

/// `GET /metadata/instance?api-version=…` on the IMDS.
pub fn imds_instance() -> VaultRequest {
    get(
        format!("/metadata/instance?api-version={IMDS_INSTANCE_API_VERSION}"),
        Auth::Imds,
    )
}

/// Where requests go and what headers every Vault request carries.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    /// `Host` header value.
    pub host: &'a str,
    /// `X-Vault-Namespace`, if configured.
    pub namespace: Option<&'a str>,
}

impl VaultRequest {
    fn head(&self, h: &Headers<'_>, token: Option<&str>) -> String {
        let mut s = format!(
            "{} {} HTTP/1.1\r\nhost: {}\r\n",
            self.method, self.path, h.host
        );
        match self.auth {
            Auth::Imds => s.push_str("metadata: true\r\nconnection: close\r\n"),
            Auth::Token | Auth::None => {
                if self.auth == Auth::Token {
                    s.push_str(&format!("x-vault-token: {}\r\n", token.unwrap_or("")));
                }
                if let Some(ns) = h.namespace {
                    s.push_str(&format!("x-vault-namespace: {ns}\r\n"));
                }
                s.push_str("x-vault-request: true\r\n");
            }
        }
        s.push_str("user-agent: keybroker\r\naccept: application/json\r\n");
        if let Some(b) = &self.body {
            s.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                b.expose().len()
            ));
        }
        s.push_str("\r\n");
        s
    }

    /// The bytes on the wire; `token` is required for [`Auth::Token`] requests.
    pub fn render(&self, h: &Headers<'_>, token: Option<&str>) -> Vec<u8> {
        let mut out = self.head(h, token).into_bytes();
        if let Some(b) = &self.body {
            out.extend_from_slice(b.expose());
        }
        out
    }

    /// A readable rendering for snapshots and logs: token masked, JSON pretty-printed.
    pub fn render_masked(&self, h: &Headers<'_>) -> String {
        let mut s = self.head(h, Some("***")).replace("\r\n", "\n");
        if let Some(b) = &self.body {
            let v: Value = serde_json::from_slice(b.expose()).expect("we wrote JSON");
            s.push_str(&serde_json::to_string_pretty(&v).expect("json"));
            s.push('\n');
        }
        s
    }
}

/// Vault's `{"errors":[…]}` messages, joined (empty if none).
pub fn errors(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| {
                    s.replace("\n\t*", ";")
                        .replace(['\n', '\t'], " ")
                        .trim()
                        .to_owned()
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn json_of(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|_| "Vault's answer is not JSON".to_owned())
}

fn results(v: &Value, n: usize) -> Result<Vec<Value>, String> {
    let d = &v["data"];
    if n == 1 && d.get("batch_results").is_none() {
        return Ok(vec![d.clone()]);
    }
    let r = d["batch_results"]
        .as_array()
        .ok_or("Vault's answer has no data.batch_results")?;
    if r.len() != n {
        return Err(format!("Vault answered {} results for {n} items", r.len()));
    }
    Ok(r.clone())
}

fn item_error(item: &Value) -> Option<String> {
    item["error"]
        .as_str()
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
}

/// One batch item's outcome: a value or Vault's per-item error.
pub type ItemResult<T> = Result<T, String>;

/// Per-item `(ciphertext, key_version)` of an encrypt answer.
pub fn parse_encrypt(body: &[u8], n: usize) -> Result<Vec<ItemResult<(String, u32)>>, String> {
    let v = json_of(body)?;
    Ok(results(&v, n)?
        .iter()
        .map(|i| {
            if let Some(e) = item_error(i) {
                return Err(e);
            }
            let ct = i["ciphertext"].as_str().ok_or("no ciphertext")?.to_owned();
            let ver = i["key_version"]
                .as_u64()
                .or_else(|| ciphertext_version(&ct).map(u64::from))
                .ok_or("no key_version")? as u32;
            Ok((ct, ver))
        })
        .collect())
}

/// Per-item plaintext of a decrypt answer.
pub fn parse_decrypt(body: &[u8], n: usize) -> Result<Vec<ItemResult<Secret<Vec<u8>>>>, String> {
    let v = Secret::new(body.to_vec());
    let v = json_of(v.expose())?;
    Ok(results(&v, n)?
        .iter()
        .map(|i| {
            if let Some(e) = item_error(i) {
                return Err(e);
            }
            let p = i["plaintext"].as_str().ok_or("no plaintext")?;
            B64.decode(p)
                .map(Secret::new)
                .map_err(|_| "plaintext is not base64".to_owned())
        })
        .collect())
}

/// Whether a transit error says the ciphertext's key version is below `min_decryption_version`
/// ("ciphertext or signature version is disallowed by policy (too old)").
pub fn is_version_too_old(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("disallowed by policy") && e.contains("too old")
}

/// The version in a `vault:vN:` ciphertext.
pub fn ciphertext_version(ct: &str) -> Option<u32> {
    let rest = ct.strip_prefix("vault:v")?;
    let (n, tail) = rest.split_once(':')?;
    if tail.is_empty() {
        return None;
    }
    n.parse().ok().filter(|v| *v > 0)
}

/// What `keys/{key}` says: latest version and versions that still decrypt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// `latest_version`
    pub latest: u32,
    /// Versions ≥ `min_decryption_version`, ascending.
    pub versions: Vec<u32>,
    /// `min_decryption_version`: older versions no longer decrypt.
    pub min_decryption: u32,
    /// Whether the key type supports `associated_data` (an AES-GCM/ChaCha key).
    pub aead: bool,
}

/// Parses a `keys/{key}` (or rotate) answer.
pub fn parse_key(body: &[u8]) -> Result<KeyInfo, String> {
    let v = json_of(body)?;
    let d = &v["data"];
    let latest = d["latest_version"].as_u64().ok_or("no latest_version")? as u32;
    let min = d["min_decryption_version"].as_u64().unwrap_or(1) as u32;
    let mut versions: Vec<u32> = d["keys"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.parse().ok())
                .filter(|k| *k >= min)
                .collect()
        })
        .unwrap_or_default();
    versions.sort_unstable();
    let ty = d["type"].as_str().unwrap_or("");
    Ok(KeyInfo {
        latest,
        versions,
        min_decryption: min,
        aead: ty.contains("gcm") || ty.contains("chacha20"),
    })
}

/// A token as a login or renewal hands it out.
pub struct TokenGrant {
    /// `auth.client_token`
    pub token: Secret<String>,
    /// `auth.lease_duration` (0: never expires).
    pub lease_secs: u64,
    /// `auth.renewable`
    pub renewable: bool,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenGrant(lease {}s, renewable {})",
            self.lease_secs, self.renewable
        )
    }
}

/// Parses the `auth` block of a login or renew-self answer.
pub fn parse_auth(body: &[u8]) -> Result<TokenGrant, String> {
    let v = Secret::new(body.to_vec());
    let v = json_of(v.expose())?;
    let a = &v["auth"];
    let token = a["client_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("Vault's answer has no auth.client_token")?;
    Ok(TokenGrant {
        token: Secret::new(token.to_owned()),
        lease_secs: a["lease_duration"].as_u64().unwrap_or(0),
        renewable: a["renewable"].as_bool().unwrap_or(false),
    })
}

/// `(ttl seconds, renewable)` from a lookup-self answer.
pub fn parse_lookup(body: &[u8]) -> Result<(u64, bool), String> {
    let v = json_of(body)?;
    let d = &v["data"];
    let ttl = d["ttl"]
        .as_u64()
        .ok_or("lookup-self answer has no data.ttl")?;
    // ttl 0 means "never expires" only without an expiry time (a root token); a token with an
    // `expire_time` and ttl 0 is in its last second, not eternal.
    if ttl == 0 && d["expire_time"].is_string() {
        return Err("the Vault token has expired (lookup-self: ttl 0)".into());
    }
    Ok((ttl, d["renewable"].as_bool().unwrap_or(false)))
}

/// `(access_token, expires_in seconds)` from the IMDS token answer.
pub fn parse_imds_token(body: &[u8]) -> Result<(Secret<String>, u64), String> {
    let v = Secret::new(body.to_vec());
    let v = json_of(v.expose())?;
    let t = v["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("IMDS answer has no access_token")?;
    // Azure sends expires_in as a string of seconds.
    let exp = match &v["expires_in"] {
        Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_u64().unwrap_or(0),
    };
    Ok((Secret::new(t.to_owned()), exp))
}

/// The login fields from the IMDS instance answer.
pub fn parse_imds_instance(body: &[u8]) -> Result<InstanceMeta, String> {
    let v = json_of(body)?;
    let c = &v["compute"];
    let s = |k: &str| c[k].as_str().unwrap_or("").to_owned();
    let m = InstanceMeta {
        subscription_id: s("subscriptionId"),
        resource_group_name: s("resourceGroupName"),
        vm_name: s("name"),
        vmss_name: s("vmScaleSetName"),
    };
    if m.subscription_id.is_empty() || m.resource_group_name.is_empty() {
        return Err("IMDS instance answer lacks compute.subscriptionId/resourceGroupName".into());
    }
    Ok(m)
}
