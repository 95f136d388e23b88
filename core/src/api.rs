//! The JSON API of docs/api.md: routes, request bodies, answers and the error shape.
use crate::authz::Operation;
use crate::backend::{BackendError, Op, Reply, MAX_GENERATE_BYTES};
use crate::envelope::Envelope;
use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Most items in one batch call.
pub const MAX_BATCH: usize = 1000;

/// An error answer: status, snake_case code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// snake_case code.
    pub code: &'static str,
    /// Human sentence (never a secret).
    pub message: String,
    /// For 429/503: seconds to wait.
    pub retry_after: Option<Duration>,
    /// For 405: the allowed methods.
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }
    /// A 400 with this code.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(400, code, message)
    }
    /// The `{"code","message"}` object (plus request_id when given).
    pub fn to_json(&self, request_id: Option<&str>) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), json!(self.code));
        m.insert("message".into(), json!(self.message));
        if let Some(id) = request_id {
            m.insert("request_id".into(), json!(id));
        }
        json!({ "error": Value::Object(m) })
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        let msg = e.to_string();
        match e {
            BackendError::UnknownKey(_) => ApiError::new(404, "unknown_key", msg),
            BackendError::BadCiphertext(_) => ApiError::bad("bad_ciphertext", msg),
            BackendError::BadRequest(_) => ApiError::bad("bad_request", msg),
            BackendError::Unavailable { retry_after, .. } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(503, "backend_unavailable", msg)
            },
            // Every 5xx says when to retry: a client must be able to tell "try again" from
            // "your request is wrong" without knowing the backend.
            BackendError::Failed(_) => ApiError {
                retry_after: Some(Duration::from_secs(1)),
                ..ApiError::new(502, "backend_error", msg)
            },
            BackendError::NotPersisted(_) => ApiError {
                retry_after: Some(Duration::from_secs(1)),
                ..ApiError::new(500, "persist_failed", msg)
            },
            BackendError::VersionRetired { .. } => ApiError::bad("key_version_retired", msg),
            BackendError::Timeout => ApiError {
                retry_after: Some(Duration::from_secs(1)),
                ..ApiError::new(504, "backend_timeout", msg)
            },
        }
    }
}

/// What a request target names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `{key}` as it appears in the path.
    pub key: String,
    /// The operation.
    pub op: Operation,
}

/// Maps method and target to an operation, or 404/405.
pub fn route(method: &str, target: &str) -> Result<Route, ApiError> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let rest = path
        .strip_prefix("/v1/keys/")
        .ok_or_else(|| ApiError::new(404, "not_found", "no such endpoint"))?;
    let mut parts = rest.split('/');
    let key = parts.next().unwrap_or("");
    let action = parts.next();
    if key.is_empty()
        || parts.next().is_some()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::new(404, "not_found", "no such endpoint"));
    }
    let (op, allow) = match action {
        None => (Operation::Describe, "GET"),
        Some("generate") => (Operation::Generate, "POST"),
        Some("encrypt") => (Operation::Encrypt, "POST"),
        Some("decrypt") => (Operation::Decrypt, "POST"),
        Some("rewrap") => (Operation::Rewrap, "POST"),
        Some("rotate") => (Operation::Rotate, "POST"),
        Some(_) => return Err(ApiError::new(404, "not_found", "no such endpoint")),
    };
    if method != allow {
        return Err(ApiError {
            allow: Some(allow),
            ..ApiError::new(
                405,
                "method_not_allowed",
                format!("use {allow} for this endpoint"),
            )
        });
    }
    Ok(Route {
        key: key.to_owned(),
        op,
    })
}

/// One parsed item of a request, before the key is resolved.
#[derive(Debug)]
pub enum Item {
    /// Encrypt these bytes.
    Encrypt {
        /// The data.
        plaintext: Secret<Vec<u8>>,
        /// Context.
        context: Vec<u8>,
    },
    /// Decrypt (or rewrap) this token.
    Unwrap {
        /// Parsed token.
        envelope: Envelope,
        /// Context.
        context: Vec<u8>,
    },
    /// Generate a data key.
    Generate {
        /// Length.
        bytes: usize,
        /// Context.
        context: Vec<u8>,
    },
    /// Rotate / describe: no fields.
    Empty,
}

impl Item {
    /// The backend operation for this item on backend key `key`.
    pub fn into_op(self, op: Operation, key: String) -> Op {
        match (op, self) {
            (Operation::Encrypt, Item::Encrypt { plaintext, context }) => Op::Encrypt {
                key,
                plaintext,
                context,
            },
            (Operation::Decrypt, Item::Unwrap { envelope, context }) => Op::Decrypt {
                key,
                envelope,
                context,
            },
            (Operation::Rewrap, Item::Unwrap { envelope, context }) => Op::Rewrap {
                key,
                envelope,
                context,
            },
            (Operation::Generate, Item::Generate { bytes, context }) => Op::Generate {
                key,
                bytes,
                context,
            },
            (Operation::Rotate, _) => Op::Rotate { key },
            (_, _) => Op::Describe { key },
        }
    }
}

/// A parsed request body: one item or a batch (each item parsed separately).
#[derive(Debug)]
pub enum Body {
    /// A single call.
    Single(Item),
    /// A batch call; bad items answer per item.
    Batch(Vec<Result<Item, ApiError>>),
}

fn b64_field(
    obj: &Map<String, Value>,
    name: &str,
    required: bool,
) -> Result<Option<Vec<u8>>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(ApiError::bad(
            "missing_field",
            format!("field {name} is required"),
        )),
        Some(Value::String(s)) => B64.decode(s).map(Some).map_err(|_| {
            ApiError::bad("bad_base64", format!("field {name} is not standard base64"))
        }),
        Some(_) => Err(ApiError::bad(
            "bad_field",
            format!("field {name} must be a base64 string"),
        )),
    }
}

fn only_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad(
            "unknown_field",
            format!(
                "unknown field {:?}; expected {}",
                truncate(k),
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn parse_item(op: Operation, v: &Value) -> Result<Item, ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad("bad_json", "expected a JSON object"))?;
    match op {
        Operation::Encrypt => {
            only_fields(obj, &["plaintext", "context"])?;
            let plaintext = Secret::new(b64_field(obj, "plaintext", true)?.unwrap_or_default());
            let context = b64_field(obj, "context", false)?.unwrap_or_default();
            Ok(Item::Encrypt { plaintext, context })
        }
        Operation::Decrypt | Operation::Rewrap => {
            only_fields(obj, &["ciphertext", "context"])?;
            let token = match obj.get("ciphertext") {
                Some(Value::String(s)) => s,
                None | Some(Value::Null) => {
                    return Err(ApiError::bad(
                        "missing_field",
                        "field ciphertext is required",
                    ))
                }
                Some(_) => {
                    return Err(ApiError::bad(
                        "bad_field",
                        "field ciphertext must be a kb1: string",
                    ))
                }
            };
            let envelope = Envelope::decode(token)
                .map_err(|e| ApiError::bad("bad_ciphertext", e.to_string()))?;
            let context = b64_field(obj, "context", false)?.unwrap_or_default();
            Ok(Item::Unwrap { envelope, context })
        }
        Operation::Generate => {
            only_fields(obj, &["bytes", "context"])?;
            let bytes = match obj.get("bytes") {
                None | Some(Value::Null) => 32,
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=MAX_GENERATE_BYTES as u64).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad(
                            "bad_field",
                            format!("bytes must be a whole number from 1 to {MAX_GENERATE_BYTES}"),
                        )
                    })? as usize,
            };
            let context = b64_field(obj, "context", false)?.unwrap_or_default();
            Ok(Item::Generate { bytes, context })
        }
        Operation::Rotate | Operation::Describe => {
            only_fields(obj, &[])?;
            Ok(Item::Empty)
        }
    }
}

/// Parses and validates the body of a request for `op`.
pub fn parse_body(
    op: Operation,
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<Body, ApiError> {
    if op == Operation::Describe {
        return Ok(Body::Single(Item::Empty));
    }
    if let Some(ct) = content_type {
        let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::new(
                415,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ));
        }
    }
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) && op == Operation::Rotate {
        json!({})
    } else {
        strict_json(body)?
    };
    if let Some(batch) = v.as_object().and_then(|o| o.get("batch")) {
        if !matches!(
            op,
            Operation::Encrypt | Operation::Decrypt | Operation::Rewrap
        ) {
            return Err(ApiError::bad(
                "batch_not_supported",
                format!("{} does not take a batch", op.name()),
            ));
        }
        if v.as_object().map(|o| o.len()) != Some(1) {
            return Err(ApiError::bad(
                "unknown_field",
                "a batch body has only the field batch",
            ));
        }
        let items = batch
            .as_array()
            .ok_or_else(|| ApiError::bad("bad_field", "batch must be an array"))?;
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(ApiError::bad(
                "bad_batch_size",
                format!("a batch holds 1 to {MAX_BATCH} items"),
            ));
        }
        return Ok(Body::Batch(
            items.iter().map(|i| parse_item(op, i)).collect(),
        ));
    }
    parse_item(op, &v).map(Body::Single)
}

/// Parses JSON, refusing an object that names the same member twice (400 `bad_json`): which
/// of the two would win is exactly what a client must not have to guess.
pub fn strict_json(body: &[u8]) -> Result<Value, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = serde::de::DeserializeSeed::deserialize(Strict, &mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            let why = if e.to_string().starts_with(DUPLICATE) {
                format!(
                    "body names the member {}",
                    truncate(&e.to_string()[DUPLICATE.len()..])
                )
            } else {
                format!("body is not valid JSON: {}", e.classify_name())
            };
            ApiError::bad("bad_json", why)
        })?;
    Ok(v)
}

const DUPLICATE: &str = "duplicate member: ";

/// Builds a [`Value`] like serde_json does, but fails on a repeated object member.
#[derive(Clone, Copy)]
struct Strict;

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element_seed(Strict)? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = a.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE}{k:?}")));
            }
            let v = a.next_value_seed(Strict)?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "it ends too early",
        }
    }
}

/// The JSON object for one successful reply.
pub fn reply_json(reply: &Reply, key_name: &str) -> Value {
    match reply {
        Reply::Ciphertext { token, key_version } => {
            json!({"ciphertext": token, "key_version": key_version})
        }
        Reply::Plaintext(p) => json!({"plaintext": B64.encode(p.expose())}),
        Reply::Generated {
            plaintext,
            token,
            key_version,
        } => json!({
            "plaintext": B64.encode(plaintext.expose()),
            "ciphertext": token,
            "key_version": key_version,
        }),
        Reply::Rotated { key_version } => json!({"key_version": key_version}),
        Reply::Described {
            backend,
            latest_version,
            versions,
        } => json!({
            "name": key_name,
            "backend": backend.name(),
            "latest_version": latest_version,
            "versions": versions,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_5xx_says_when_to_retry() {
        let all = [
            BackendError::UnknownKey("k".into()),
            BackendError::BadCiphertext("x".into()),
            BackendError::BadRequest("x".into()),
            BackendError::Unavailable {
                reason: "x".into(),
                retry_after: Duration::from_secs(5),
            },
            BackendError::Failed("x".into()),
            BackendError::Timeout,
            BackendError::NotPersisted("x".into()),
        ];
        for e in all {
            let a = ApiError::from(e.clone());
            assert_eq!(
                a.status >= 500,
                a.retry_after.is_some(),
                "{e:?} → {}",
                a.status
            );
        }
    }

    #[test]
    fn duplicate_members_are_bad_json_at_any_depth() {
        for body in [
            &br#"{"context":"WFhY","context":"Y3R4"}"#[..],
            br#"{"batch":[{"plaintext":"eA==","plaintext":"eQ=="}]}"#,
            br#"{"batch":[],"batch":[]}"#,
        ] {
            let e = parse_body(Operation::Encrypt, None, body).unwrap_err();
            assert_eq!((e.status, e.code), (400, "bad_json"), "{body:?}");
            assert!(e.message.contains("names the member"), "{}", e.message);
        }
        let e = parse_body(Operation::Encrypt, None, b"{\"a\":").unwrap_err();
        assert_eq!(e.code, "bad_json");
        assert!(e.message.contains("not valid JSON"));
        assert_eq!(
            strict_json(br#"{"a":[1,-2,3.5,true,null,{"b":"c"}],"b":{"a":1}}"#).unwrap(),
            serde_json::json!({"a":[1,-2,3.5,true,null,{"b":"c"}],"b":{"a":1}})
        );
        assert!(strict_json(b"{} x").is_err(), "trailing bytes");
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("POST", "/v1/keys/default/encrypt").unwrap().op,
            Operation::Encrypt
        );
        assert_eq!(
            route("GET", "/v1/keys/default?x=1").unwrap().op,
            Operation::Describe
        );
        let e = route("GET", "/v1/keys/default/encrypt").unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("POST")));
        assert_eq!(
            route("POST", "/v2/keys/default/encrypt")
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            route("POST", "/v1/keys/default/frobnicate")
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(route("POST", "/v1/keys//encrypt").unwrap_err().status, 404);
        assert_eq!(
            route("POST", "/v1/keys/a/encrypt/x").unwrap_err().status,
            404
        );
    }

    #[test]
    fn bodies() {
        let ok = parse_body(
            Operation::Encrypt,
            Some(b"application/json"),
            br#"{"plaintext":"aGk="}"#,
        )
        .unwrap();
        assert!(matches!(ok, Body::Single(Item::Encrypt { .. })));
        let e = parse_body(Operation::Encrypt, Some(b"text/plain"), b"{}").unwrap_err();
        assert_eq!(e.status, 415);
        let e = parse_body(Operation::Encrypt, None, b"{").unwrap_err();
        assert_eq!(e.code, "bad_json");
        let e = parse_body(Operation::Encrypt, None, br#"{"plaintext":"%%"}"#).unwrap_err();
        assert_eq!(e.code, "bad_base64");
        let e = parse_body(
            Operation::Encrypt,
            None,
            br#"{"plaintext":"aGk=","extra":1}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "unknown_field");
        let e = parse_body(Operation::Generate, None, br#"{"bytes":0}"#).unwrap_err();
        assert_eq!(e.code, "bad_field");
        let Body::Batch(items) = parse_body(
            Operation::Encrypt,
            None,
            br#"{"batch":[{"plaintext":"aGk="},{"plaintext":1}]}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert!(items[0].is_ok() && items[1].is_err());
        let big = format!(
            r#"{{"batch":[{}]}}"#,
            vec![r#"{"plaintext":""}"#; 1001].join(",")
        );
        assert_eq!(
            parse_body(Operation::Encrypt, None, big.as_bytes())
                .unwrap_err()
                .code,
            "bad_batch_size"
        );
        assert!(parse_body(Operation::Rotate, None, b"").is_ok());
    }
}
