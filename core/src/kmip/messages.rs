//! The KMIP requests keybroker sends to an HSM, and the parser of the responses.
//!
//! A [`Request`] holds a protocol version and one or more [`BatchItem`]s; the operation
//! builders ([`discover_versions`], [`query`], [`locate_by_name`], [`create_aes256`],
//! [`activate`], [`get_attributes`], [`encrypt`], [`decrypt`], [`revoke`], [`destroy`]) make
//! batch items. Attributes are written the KMIP 1.x way (`TemplateAttribute` / `Attribute` with
//! `AttributeName` and `AttributeValue`) for versions below 2.0 and the KMIP 2.0 way
//! (`Attributes` holding the attributes by tag) from 2.0 on.
//!
//! [`parse_response`] turns a decoded `ResponseMessage` into a [`Response`]: result status,
//! reason and message per batch item, plus accessors for the payload fields keybroker reads.

use core::fmt;

use super::tags::{self, tag};
use super::ttlv::{Item, Value};
use crate::secret::Secret;

/// Operation enumeration values used by keybroker (KMIP 1.0–2.0 `Operation`).
pub mod op {
    /// Create (0x01).
    pub const CREATE: u32 = 0x01;
    /// Locate (0x08).
    pub const LOCATE: u32 = 0x08;
    /// Get Attributes (0x0B).
    pub const GET_ATTRIBUTES: u32 = 0x0B;
    /// Activate (0x12).
    pub const ACTIVATE: u32 = 0x12;
    /// Revoke (0x13).
    pub const REVOKE: u32 = 0x13;
    /// Destroy (0x14).
    pub const DESTROY: u32 = 0x14;
    /// Query (0x18).
    pub const QUERY: u32 = 0x18;
    /// Discover Versions (0x1E, KMIP 1.1).
    pub const DISCOVER_VERSIONS: u32 = 0x1E;
    /// Encrypt (0x1F, KMIP 1.2).
    pub const ENCRYPT: u32 = 0x1F;
    /// Decrypt (0x20, KMIP 1.2).
    pub const DECRYPT: u32 = 0x20;
}

/// Result Status values.
pub mod status {
    /// Success (0).
    pub const SUCCESS: u32 = 0;
    /// Operation Failed (1).
    pub const OPERATION_FAILED: u32 = 1;
    /// Operation Pending (2).
    pub const OPERATION_PENDING: u32 = 2;
    /// Operation Undone (3).
    pub const OPERATION_UNDONE: u32 = 3;
}

/// Query Function values.
pub mod query_fn {
    /// Query Operations (1).
    pub const OPERATIONS: u32 = 1;
    /// Query Objects (2).
    pub const OBJECTS: u32 = 2;
    /// Query Server Information (3).
    pub const SERVER_INFORMATION: u32 = 3;
}

/// Revocation Reason Code values.
pub mod revocation {
    /// Unspecified (1).
    pub const UNSPECIFIED: u32 = 1;
    /// Key Compromise (2).
    pub const KEY_COMPROMISE: u32 = 2;
    /// Superseded (4).
    pub const SUPERSEDED: u32 = 4;
    /// Cessation of Operation (5).
    pub const CESSATION_OF_OPERATION: u32 = 5;
}

const OBJECT_TYPE_SYMMETRIC_KEY: u32 = 2;
const ALGORITHM_AES: u32 = 3;
const NAME_TYPE_TEXT: u32 = 1;
const USAGE_ENCRYPT: i32 = 0x04;
const USAGE_DECRYPT: i32 = 0x08;
const MODE_CBC: u32 = 1;
const MODE_GCM: u32 = 9;
const PADDING_PKCS5: u32 = 3;

/// A KMIP protocol version (major.minor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Major version (1 or 2).
    pub major: i32,
    /// Minor version.
    pub minor: i32,
}

impl ProtocolVersion {
    /// KMIP 1.0.
    pub const V1_0: ProtocolVersion = ProtocolVersion { major: 1, minor: 0 };
    /// KMIP 1.1.
    pub const V1_1: ProtocolVersion = ProtocolVersion { major: 1, minor: 1 };
    /// KMIP 1.2.
    pub const V1_2: ProtocolVersion = ProtocolVersion { major: 1, minor: 2 };
    /// KMIP 1.3.
    pub const V1_3: ProtocolVersion = ProtocolVersion { major: 1, minor: 3 };
    /// KMIP 1.4.
    pub const V1_4: ProtocolVersion = ProtocolVersion { major: 1, minor: 4 };
    /// KMIP 2.0.
    pub const V2_0: ProtocolVersion = ProtocolVersion { major: 2, minor: 0 };

    /// The `ProtocolVersion` structure for this version.
    pub fn to_item(self) -> Item {
        Item::structure(
            tag::PROTOCOL_VERSION,
            vec![
                Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(self.major)),
                Item::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(self.minor)),
            ],
        )
    }

    /// Reads a `ProtocolVersion` structure.
    pub fn from_item(item: &Item) -> Option<ProtocolVersion> {
        Some(ProtocolVersion {
            major: int(item.child(tag::PROTOCOL_VERSION_MAJOR)?)?,
            minor: int(item.child(tag::PROTOCOL_VERSION_MINOR)?)?,
        })
    }

    /// Whether attributes use the KMIP 2.0 encoding (`Attributes` by tag).
    pub fn is_v2(self) -> bool {
        self.major >= 2
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One operation of a request: its Operation value, optional batch id and payload fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchItem {
    /// Operation enumeration value (see [`op`]).
    pub operation: u32,
    /// Unique Batch Item ID; [`Request::to_item`] numbers items of multi-item batches when unset.
    pub id: Option<Vec<u8>>,
    /// Children of the `RequestPayload` structure.
    pub payload: Vec<Item>,
}

/// A Username and Password Credential (Credential Type 1), sent in the request header's
/// Authentication structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// Username text.
    pub username: String,
    /// Password text, optional from KMIP 1.1 on; redacted in Debug output.
    pub password: Option<Secret<String>>,
}

/// Credential Type value of a Username and Password credential.
pub const CREDENTIAL_USERNAME_AND_PASSWORD: u32 = 0x01;

impl Credential {
    /// The `Authentication` structure holding this credential.
    pub fn to_item(&self) -> Item {
        let mut value = vec![text(tag::USERNAME, &self.username)];
        if let Some(p) = &self.password {
            value.push(text(tag::PASSWORD, p.expose()));
        }
        Item::structure(
            tag::AUTHENTICATION,
            vec![Item::structure(
                tag::CREDENTIAL,
                vec![
                    enumeration(tag::CREDENTIAL_TYPE, CREDENTIAL_USERNAME_AND_PASSWORD),
                    Item::structure(tag::CREDENTIAL_VALUE, value),
                ],
            )],
        )
    }
}

/// A request message under construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Protocol version put in the header (and deciding the attribute encoding).
    pub version: ProtocolVersion,
    /// Maximum Response Size header field, if any.
    pub max_response_size: Option<i32>,
    /// Authentication header field, if any.
    pub credential: Option<Credential>,
    /// The batch, in order.
    pub items: Vec<BatchItem>,
}

impl Request {
    /// An empty request for protocol `version`.
    pub fn new(version: ProtocolVersion) -> Request {
        Request {
            version,
            max_response_size: None,
            credential: None,
            items: Vec::new(),
        }
    }

    /// A request holding the single batch item `item`.
    pub fn single(version: ProtocolVersion, item: BatchItem) -> Request {
        let mut r = Request::new(version);
        r.items.push(item);
        r
    }

    /// Appends a batch item.
    pub fn push(&mut self, item: BatchItem) -> &mut Request {
        self.items.push(item);
        self
    }

    /// The `RequestMessage` TTLV tree. Items of a batch with more than one item get a Unique
    /// Batch Item ID (their 1-based index as 4 big-endian bytes) unless they carry one.
    pub fn to_item(&self) -> Item {
        let mut header = vec![self.version.to_item()];
        if let Some(m) = self.max_response_size {
            header.push(Item::new(tag::MAXIMUM_RESPONSE_SIZE, Value::Integer(m)));
        }
        if let Some(c) = &self.credential {
            header.push(c.to_item());
        }
        let count = i32::try_from(self.items.len()).unwrap_or(i32::MAX);
        header.push(Item::new(tag::BATCH_COUNT, Value::Integer(count)));
        let mut children = vec![Item::structure(tag::REQUEST_HEADER, header)];
        let numbered = self.items.len() > 1;
        for (i, b) in self.items.iter().enumerate() {
            let mut fields = vec![Item::new(tag::OPERATION, Value::Enumeration(b.operation))];
            let id = b.id.clone().or_else(|| {
                numbered.then(|| {
                    u32::try_from(i + 1)
                        .unwrap_or(u32::MAX)
                        .to_be_bytes()
                        .to_vec()
                })
            });
            if let Some(id) = id {
                fields.push(Item::new(tag::UNIQUE_BATCH_ITEM_ID, Value::ByteString(id)));
            }
            fields.push(Item::structure(tag::REQUEST_PAYLOAD, b.payload.clone()));
            children.push(Item::structure(tag::BATCH_ITEM, fields));
        }
        Item::structure(tag::REQUEST_MESSAGE, children)
    }

    /// The request's TTLV bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_item().encode()
    }
}

fn text(tag: u32, s: &str) -> Item {
    Item::new(tag, Value::TextString(s.to_owned()))
}

fn bytes(tag: u32, b: &[u8]) -> Item {
    Item::new(tag, Value::ByteString(b.to_vec()))
}

fn enumeration(tag: u32, v: u32) -> Item {
    Item::new(tag, Value::Enumeration(v))
}

fn uid(id: &str) -> Item {
    text(tag::UNIQUE_IDENTIFIER, id)
}

fn name_item(name: &str) -> Item {
    Item::structure(
        tag::NAME,
        vec![
            text(tag::NAME_VALUE, name),
            enumeration(tag::NAME_TYPE, NAME_TYPE_TEXT),
        ],
    )
}

/// Spec name of each attribute keybroker sets, for the KMIP 1.x `AttributeName`.
fn attribute_name(tag: u32) -> &'static str {
    match tag {
        tag::CRYPTOGRAPHIC_ALGORITHM => "Cryptographic Algorithm",
        tag::CRYPTOGRAPHIC_LENGTH => "Cryptographic Length",
        tag::CRYPTOGRAPHIC_USAGE_MASK => "Cryptographic Usage Mask",
        tag::OBJECT_TYPE => "Object Type",
        tag::NAME => "Name",
        _ => "",
    }
}

/// Wraps attributes (each an item tagged with the attribute's own tag) for `version`:
/// 1.x: `Attribute { AttributeName, AttributeValue }` each; 2.0: the items themselves.
fn attributes_1x(attrs: Vec<Item>) -> Vec<Item> {
    attrs
        .into_iter()
        .map(|a| {
            let name = attribute_name(a.tag);
            Item::structure(
                tag::ATTRIBUTE,
                vec![
                    text(tag::ATTRIBUTE_NAME, name),
                    Item {
                        tag: tag::ATTRIBUTE_VALUE,
                        ..a
                    },
                ],
            )
        })
        .collect()
}

/// Discover Versions, listing the versions the client speaks (newest first); empty asks for all.
pub fn discover_versions(versions: &[ProtocolVersion]) -> BatchItem {
    BatchItem {
        operation: op::DISCOVER_VERSIONS,
        id: None,
        payload: versions.iter().map(|v| v.to_item()).collect(),
    }
}

/// Query for the given Query Function values (see [`query_fn`]).
pub fn query(functions: &[u32]) -> BatchItem {
    BatchItem {
        operation: op::QUERY,
        id: None,
        payload: functions
            .iter()
            .map(|&f| enumeration(tag::QUERY_FUNCTION, f))
            .collect(),
    }
}

/// Locate the symmetric keys named `name`.
pub fn locate_by_name(version: ProtocolVersion, name: &str) -> BatchItem {
    let attrs = vec![
        enumeration(tag::OBJECT_TYPE, OBJECT_TYPE_SYMMETRIC_KEY),
        name_item(name),
    ];
    let payload = if version.is_v2() {
        vec![Item::structure(tag::ATTRIBUTES, attrs)]
    } else {
        attributes_1x(attrs)
    };
    BatchItem {
        operation: op::LOCATE,
        id: None,
        payload,
    }
}

/// Create an AES-256 symmetric key usable for Encrypt and Decrypt, named `name` if given.
pub fn create_aes256(version: ProtocolVersion, name: Option<&str>) -> BatchItem {
    let mut attrs = vec![
        enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, ALGORITHM_AES),
        Item::new(tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
        Item::new(
            tag::CRYPTOGRAPHIC_USAGE_MASK,
            Value::Integer(USAGE_ENCRYPT | USAGE_DECRYPT),
        ),
    ];
    if let Some(n) = name {
        attrs.push(name_item(n));
    }
    let object_type = enumeration(tag::OBJECT_TYPE, OBJECT_TYPE_SYMMETRIC_KEY);
    let payload = if version.is_v2() {
        vec![object_type, Item::structure(tag::ATTRIBUTES, attrs)]
    } else {
        vec![
            object_type,
            Item::structure(tag::TEMPLATE_ATTRIBUTE, attributes_1x(attrs)),
        ]
    };
    BatchItem {
        operation: op::CREATE,
        id: None,
        payload,
    }
}

/// Activate the object `id`.
pub fn activate(id: &str) -> BatchItem {
    BatchItem {
        operation: op::ACTIVATE,
        id: None,
        payload: vec![uid(id)],
    }
}

/// Get Attributes of object `id`; `names` are spec attribute names (`"State"`,
/// `"Cryptographic Algorithm"`); KMIP 2.0 sends them as `AttributeReference` tags when known.
pub fn get_attributes(version: ProtocolVersion, id: &str, names: &[&str]) -> BatchItem {
    let mut payload = vec![uid(id)];
    for n in names {
        if version.is_v2() {
            let compact: String = n.split_whitespace().collect();
            payload.push(match tags::tag_by_name(&compact) {
                Some(t) => enumeration(tag::ATTRIBUTE_REFERENCE, t),
                None => Item::structure(
                    tag::ATTRIBUTE_REFERENCE,
                    vec![
                        text(tag::VENDOR_IDENTIFICATION, ""),
                        text(tag::ATTRIBUTE_NAME, n),
                    ],
                ),
            });
        } else {
            payload.push(text(tag::ATTRIBUTE_NAME, n));
        }
    }
    BatchItem {
        operation: op::GET_ATTRIBUTES,
        id: None,
        payload,
    }
}

/// Cryptographic Parameters for Encrypt/Decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CryptoParams {
    /// Block Cipher Mode value.
    pub mode: u32,
    /// Padding Method value, if any.
    pub padding: Option<u32>,
    /// Tag Length in bytes (AEAD modes).
    pub tag_length: Option<i32>,
}

impl CryptoParams {
    /// AES-GCM with a 16-byte tag (KMIP ≥ 1.4 servers).
    pub const GCM: CryptoParams = CryptoParams {
        mode: MODE_GCM,
        padding: None,
        tag_length: Some(16),
    };
    /// AES-CBC with PKCS#5 padding (older servers).
    pub const CBC_PKCS5: CryptoParams = CryptoParams {
        mode: MODE_CBC,
        padding: Some(PADDING_PKCS5),
        tag_length: None,
    };

    /// The `CryptographicParameters` structure.
    pub fn to_item(self) -> Item {
        let mut c = vec![enumeration(tag::BLOCK_CIPHER_MODE, self.mode)];
        if let Some(p) = self.padding {
            c.push(enumeration(tag::PADDING_METHOD, p));
        }
        c.push(enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, ALGORITHM_AES));
        if let Some(t) = self.tag_length {
            c.push(Item::new(tag::TAG_LENGTH, Value::Integer(t)));
        }
        Item::structure(tag::CRYPTOGRAPHIC_PARAMETERS, c)
    }
}

/// Encrypt `data` under key `id` with IV/nonce `iv` (random, from the caller) and optional AAD.
pub fn encrypt(
    id: &str,
    params: CryptoParams,
    data: &[u8],
    iv: &[u8],
    aad: Option<&[u8]>,
) -> BatchItem {
    let mut payload = vec![uid(id), params.to_item(), bytes(tag::DATA, data)];
    payload.push(bytes(tag::IV_COUNTER_NONCE, iv));
    if let Some(a) = aad {
        payload.push(bytes(tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, a));
    }
    BatchItem {
        operation: op::ENCRYPT,
        id: None,
        payload,
    }
}

/// Decrypt `data` under key `id` with its IV, optional AAD and optional authentication tag.
pub fn decrypt(
    id: &str,
    params: CryptoParams,
    data: &[u8],
    iv: &[u8],
    aad: Option<&[u8]>,
    auth_tag: Option<&[u8]>,
) -> BatchItem {
    let mut payload = vec![uid(id), params.to_item(), bytes(tag::DATA, data)];
    payload.push(bytes(tag::IV_COUNTER_NONCE, iv));
    if let Some(a) = aad {
        payload.push(bytes(tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, a));
    }
    if let Some(t) = auth_tag {
        payload.push(bytes(tag::AUTHENTICATED_ENCRYPTION_TAG, t));
    }
    BatchItem {
        operation: op::DECRYPT,
        id: None,
        payload,
    }
}

/// Revoke key `id` for `reason` (see [`revocation`]) with an optional message; a compromise
/// reason needs `compromise_date` (seconds since the epoch, supplied by the shell's clock).
pub fn revoke(
    id: &str,
    reason: u32,
    message: Option<&str>,
    compromise_date: Option<i64>,
) -> BatchItem {
    let mut r = vec![enumeration(tag::REVOCATION_REASON_CODE, reason)];
    if let Some(m) = message {
        r.push(text(tag::REVOCATION_MESSAGE, m));
    }
    let mut payload = vec![uid(id), Item::structure(tag::REVOCATION_REASON, r)];
    if let Some(d) = compromise_date {
        payload.push(Item::new(
            tag::COMPROMISE_OCCURRENCE_DATE,
            Value::DateTime(d),
        ));
    }
    BatchItem {
        operation: op::REVOKE,
        id: None,
        payload,
    }
}

/// Destroy object `id`.
pub fn destroy(id: &str) -> BatchItem {
    BatchItem {
        operation: op::DESTROY,
        id: None,
        payload: vec![uid(id)],
    }
}

/// The outcome of one batch item of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchResult {
    /// Operation value, when the server echoed it.
    pub operation: Option<u32>,
    /// Unique Batch Item ID, when present.
    pub id: Option<Vec<u8>>,
    /// Result Status value (see [`status`]).
    pub status: u32,
    /// Result Reason value, present on failure.
    pub reason: Option<u32>,
    /// Result Message, present on failure.
    pub message: Option<String>,
    /// The `ResponsePayload` structure, if any.
    pub payload: Option<Item>,
}

impl BatchResult {
    /// Whether the status is Success.
    pub fn is_success(&self) -> bool {
        self.status == status::SUCCESS
    }

    /// Status, reason and message as one human line (`OperationFailed/ItemNotFound: no key`).
    pub fn describe(&self) -> String {
        let mut s = name_or_hex(tag::RESULT_STATUS, self.status);
        if let Some(r) = self.reason {
            s.push('/');
            s.push_str(&name_or_hex(tag::RESULT_REASON, r));
        }
        if let Some(m) = &self.message {
            s.push_str(": ");
            s.push_str(m);
        }
        s
    }

    fn payload_children(&self) -> &[Item] {
        self.payload.as_ref().map_or(&[], |p| p.children())
    }

    /// The first `UniqueIdentifier` TextString of the payload (Create, Activate, Destroy, ...).
    pub fn unique_identifier(&self) -> Option<&str> {
        self.unique_identifiers().into_iter().next()
    }

    /// All `UniqueIdentifier` TextStrings of the payload (Locate).
    pub fn unique_identifiers(&self) -> Vec<&str> {
        self.payload_children()
            .iter()
            .filter(|i| i.tag == tag::UNIQUE_IDENTIFIER)
            .filter_map(|i| match &i.value {
                Value::TextString(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The payload's ByteString with tag `tag` (`Data`, `IVCounterNonce`, `AuthenticatedEncryptionTag`).
    pub fn bytes(&self, tag: u32) -> Option<&[u8]> {
        self.payload_children()
            .iter()
            .find(|i| i.tag == tag)
            .and_then(|i| match &i.value {
                Value::ByteString(b) => Some(b.as_slice()),
                _ => None,
            })
    }

    /// The `ProtocolVersion`s of a Discover Versions payload, in the server's order.
    pub fn protocol_versions(&self) -> Vec<ProtocolVersion> {
        self.payload_children()
            .iter()
            .filter(|i| i.tag == tag::PROTOCOL_VERSION)
            .filter_map(ProtocolVersion::from_item)
            .collect()
    }
}

fn name_or_hex(tag: u32, v: u32) -> String {
    tags::enum_value_name(tag, v).map_or_else(|| format!("{v:#x}"), str::to_owned)
}

/// A parsed `ResponseMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Protocol version of the response header.
    pub version: ProtocolVersion,
    /// Time Stamp of the response header (seconds since the epoch).
    pub timestamp: i64,
    /// One result per batch item, in order.
    pub items: Vec<BatchResult>,
}

/// Why a decoded TTLV tree is not a usable `ResponseMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseError(pub String);

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad KMIP response: {}", self.0)
    }
}

impl std::error::Error for ResponseError {}

fn int(i: &Item) -> Option<i32> {
    match i.value {
        Value::Integer(v) => Some(v),
        _ => None,
    }
}

fn enum_of(i: &Item) -> Option<u32> {
    match i.value {
        Value::Enumeration(v) => Some(v),
        _ => None,
    }
}

/// Parses a decoded `ResponseMessage` into per-batch-item results.
pub fn parse_response(msg: &Item) -> Result<Response, ResponseError> {
    let bad = |s: &str| ResponseError(s.to_owned());
    if msg.tag != tag::RESPONSE_MESSAGE || !matches!(msg.value, Value::Structure(_)) {
        return Err(bad("top-level item is not a ResponseMessage Structure"));
    }
    let header = msg
        .child(tag::RESPONSE_HEADER)
        .ok_or_else(|| bad("no ResponseHeader"))?;
    let version = header
        .child(tag::PROTOCOL_VERSION)
        .and_then(ProtocolVersion::from_item)
        .ok_or_else(|| bad("no ProtocolVersion in ResponseHeader"))?;
    let timestamp = match header.child(tag::TIME_STAMP).map(|t| &t.value) {
        Some(Value::DateTime(t)) => *t,
        _ => return Err(bad("no TimeStamp DateTime in ResponseHeader")),
    };
    let count = header
        .child(tag::BATCH_COUNT)
        .and_then(int)
        .ok_or_else(|| bad("no BatchCount in ResponseHeader"))?;
    let mut items = Vec::new();
    for b in msg.children().iter().filter(|c| c.tag == tag::BATCH_ITEM) {
        let status = b
            .child(tag::RESULT_STATUS)
            .and_then(enum_of)
            .ok_or_else(|| bad("BatchItem without ResultStatus"))?;
        items.push(BatchResult {
            operation: b.child(tag::OPERATION).and_then(enum_of),
            id: b
                .child(tag::UNIQUE_BATCH_ITEM_ID)
                .and_then(|i| match &i.value {
                    Value::ByteString(v) => Some(v.clone()),
                    _ => None,
                }),
            status,
            reason: b.child(tag::RESULT_REASON).and_then(enum_of),
            message: b.child(tag::RESULT_MESSAGE).and_then(|i| match &i.value {
                Value::TextString(s) => Some(s.clone()),
                _ => None,
            }),
            payload: b.child(tag::RESPONSE_PAYLOAD).cloned(),
        });
    }
    if usize::try_from(count).ok() != Some(items.len()) {
        return Err(ResponseError(format!(
            "BatchCount {count} but {} BatchItems",
            items.len()
        )));
    }
    Ok(Response {
        version,
        timestamp,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmip::{text, ttlv};

    const KEY: &str = "6f2bd9a4-3c1e-4e8b-9a57-0d3c2b1a4f5e";

    fn snap(r: &Request) -> String {
        let bytes = r.encode();
        // Every request must decode back to itself.
        assert_eq!(ttlv::decode(&bytes).unwrap(), r.to_item());
        text::render(&r.to_item())
    }

    #[test]
    fn requests_render() {
        let v14 = ProtocolVersion::V1_4;
        let cases: Vec<(&str, Request)> = vec![
            (
                "discover_versions",
                Request::single(
                    ProtocolVersion::V1_1,
                    discover_versions(&[
                        ProtocolVersion::V2_0,
                        ProtocolVersion::V1_4,
                        ProtocolVersion::V1_2,
                    ]),
                ),
            ),
            (
                "query",
                Request::single(
                    v14,
                    query(&[
                        query_fn::OPERATIONS,
                        query_fn::OBJECTS,
                        query_fn::SERVER_INFORMATION,
                    ]),
                ),
            ),
            (
                "locate_by_name_v14",
                Request::single(v14, locate_by_name(v14, "keybroker-master")),
            ),
            (
                "locate_by_name_v20",
                Request::single(
                    ProtocolVersion::V2_0,
                    locate_by_name(ProtocolVersion::V2_0, "keybroker-master"),
                ),
            ),
            (
                "create_aes256_v14",
                Request::single(v14, create_aes256(v14, Some("keybroker-master"))),
            ),
            (
                "create_aes256_v20",
                Request::single(
                    ProtocolVersion::V2_0,
                    create_aes256(ProtocolVersion::V2_0, Some("keybroker-master")),
                ),
            ),
            ("activate", Request::single(v14, activate(KEY))),
            (
                "get_attributes_v14",
                Request::single(
                    v14,
                    get_attributes(v14, KEY, &["State", "Cryptographic Algorithm"]),
                ),
            ),
            (
                "get_attributes_v20",
                Request::single(
                    ProtocolVersion::V2_0,
                    get_attributes(ProtocolVersion::V2_0, KEY, &["State", "x-Custom Thing"]),
                ),
            ),
            (
                "encrypt_gcm",
                Request::single(
                    v14,
                    encrypt(
                        KEY,
                        CryptoParams::GCM,
                        b"data key bytes",
                        &[0x11; 12],
                        Some(b"ctx"),
                    ),
                ),
            ),
            (
                "encrypt_cbc",
                Request::single(
                    ProtocolVersion::V1_2,
                    encrypt(
                        KEY,
                        CryptoParams::CBC_PKCS5,
                        b"data key bytes",
                        &[0x22; 16],
                        None,
                    ),
                ),
            ),
            (
                "decrypt_gcm",
                Request::single(
                    v14,
                    decrypt(
                        KEY,
                        CryptoParams::GCM,
                        &[0xC0; 14],
                        &[0x11; 12],
                        Some(b"ctx"),
                        Some(&[0x7A; 16]),
                    ),
                ),
            ),
            (
                "revoke",
                Request::single(
                    v14,
                    revoke(
                        KEY,
                        revocation::KEY_COMPROMISE,
                        Some("rotated after incident"),
                        Some(1_700_000_000),
                    ),
                ),
            ),
            ("destroy", Request::single(v14, destroy(KEY))),
            ("batch_encrypt_two", {
                let mut r = Request::new(v14);
                r.max_response_size = Some(1 << 20);
                r.push(encrypt(KEY, CryptoParams::GCM, b"one", &[1; 12], None))
                    .push(encrypt(KEY, CryptoParams::GCM, b"two", &[2; 12], None));
                r
            }),
        ];
        for (name, req) in cases {
            insta::assert_snapshot!(name, snap(&req));
        }
    }

    fn fred() -> Credential {
        Credential {
            username: "Fred".into(),
            password: Some(Secret::new("password1".into())),
        }
    }

    /// The request header with a Username and Password credential, as text and as bytes.
    #[test]
    fn credential_in_request_header() {
        let mut r = Request::single(ProtocolVersion::V1_4, activate(KEY));
        r.credential = Some(fred());
        insta::assert_snapshot!("activate_with_credential", snap(&r));
        let hex: Vec<String> = r
            .encode()
            .chunks(8)
            .map(|c| c.iter().map(|b| format!("{b:02X}")).collect())
            .collect();
        insta::assert_snapshot!("activate_with_credential_bytes", hex.join("\n"));
        let mut no_password = r.clone();
        no_password.credential = Some(Credential {
            username: "Fred".into(),
            password: None,
        });
        insta::assert_snapshot!("activate_with_username_only", snap(&no_password));
    }

    /// The header of the OASIS KMIP 1.0 Use Cases, 11.1 (Credential, Operation Policy,
    /// Destroy Date), step 1: Username "Fred", Password "password1", byte for byte.
    #[test]
    fn credential_header_matches_oasis_use_case_11_1() {
        let oasis = "42007701000000884200690100000020\
                     42006A02000000040000000100000000\
                     42006B02000000040000000000000000\
                     42000C01000000484200230100000040\
                     42002405000000040000000100000000\
                     42002501000000284200990700000004\
                     46726564000000004200A10700000009\
                     70617373776F72643100000000000000\
                     42000D02000000040000000100000000";
        let mut r = Request::single(ProtocolVersion::V1_0, activate(KEY));
        r.credential = Some(fred());
        let bytes = r.encode();
        let header: String = bytes[8..8 + 8 + 0x88]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(header, oasis);
    }

    #[test]
    fn password_never_in_debug() {
        let mut r = Request::single(ProtocolVersion::V1_4, activate(KEY));
        r.credential = Some(fred());
        let dbg = format!("{r:?}");
        assert!(dbg.contains("Fred"), "{dbg}");
        assert!(!dbg.contains("password1"), "{dbg}");
    }

    #[test]
    fn parses_success_and_failure() {
        let ok = Item::structure(
            tag::RESPONSE_MESSAGE,
            vec![
                Item::structure(
                    tag::RESPONSE_HEADER,
                    vec![
                        ProtocolVersion::V1_4.to_item(),
                        Item::new(tag::TIME_STAMP, Value::DateTime(1_700_000_000)),
                        Item::new(tag::BATCH_COUNT, Value::Integer(2)),
                    ],
                ),
                Item::structure(
                    tag::BATCH_ITEM,
                    vec![
                        enumeration(tag::OPERATION, op::CREATE),
                        enumeration(tag::RESULT_STATUS, status::SUCCESS),
                        Item::structure(
                            tag::RESPONSE_PAYLOAD,
                            vec![enumeration(tag::OBJECT_TYPE, 2), uid(KEY)],
                        ),
                    ],
                ),
                Item::structure(
                    tag::BATCH_ITEM,
                    vec![
                        enumeration(tag::OPERATION, op::LOCATE),
                        enumeration(tag::RESULT_STATUS, status::OPERATION_FAILED),
                        enumeration(tag::RESULT_REASON, 1),
                        text(tag::RESULT_MESSAGE, "no such key"),
                    ],
                ),
            ],
        );
        let r = parse_response(&ok).unwrap();
        assert_eq!(r.version, ProtocolVersion::V1_4);
        assert!(r.items[0].is_success());
        assert_eq!(r.items[0].unique_identifier(), Some(KEY));
        assert!(!r.items[1].is_success());
        assert_eq!(
            r.items[1].describe(),
            "OperationFailed/ItemNotFound: no such key"
        );
        let mut bad = ok.clone();
        if let Value::Structure(c) = &mut bad.value {
            c.pop();
        }
        assert!(parse_response(&bad)
            .unwrap_err()
            .to_string()
            .contains("BatchCount 2 but 1"));
    }
}
