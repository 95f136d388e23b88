//! TTLV (Tag, Type, Length, Value): the KMIP 1.0–2.0 binary encoding.
//!
//! Every item starts with an 8-byte header: a 3-byte tag, a 1-byte type and a 4-byte big-endian
//! length of the value. The value follows and is padded with bytes up to the next multiple of 8.
//! Structures hold a sequence of items; their length is the sum of the (padded) children.
//!
//! Decoding rules, in this order of precedence:
//! - **Unknown tags** are never an error: the tag number is kept and re-encoded as is.
//! - **Unknown types** (not 0x01–0x0B) are an error: their value cannot be interpreted.
//! - **Fixed lengths** are enforced: Integer, Enumeration and Interval must be 4, LongInteger,
//!   Boolean, DateTime and DateTimeExtended must be 8; a BigInteger's length must be a multiple
//!   of 8 (KMIP sign-extends it). A Boolean's value must be 0 or 1. A TextString must be UTF-8.
//! - **Padding**: the spec says padding bytes are zero. Some implementations leave garbage there,
//!   so the decoder *accepts* nonzero padding and keeps it in [`Item::padding`] so that the
//!   encoder reproduces the input byte for byte. All-zero padding is canonical and stored as an
//!   empty `padding`.
//! - **Limits**: nesting deeper than [`Limits::max_depth`] Structures or a message longer than
//!   [`Limits::max_len`] bytes is an error, checked from the headers before reading values.
//! - Every error names the byte offset of the item (or field) at fault, see [`DecodeError`].
//!
//! For streams, [`frame_len`] reads an 8-byte header and says how many bytes the whole message
//! occupies, so a shell can read exactly one message before calling [`decode`].

use core::fmt;

use nom::number::complete::{be_u24, be_u32, be_u8};
use nom::{IResult, Parser};

/// The type byte of a TTLV item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemType {
    /// 0x01: a sequence of items.
    Structure,
    /// 0x02: signed 32-bit integer.
    Integer,
    /// 0x03: signed 64-bit integer.
    LongInteger,
    /// 0x04: two's-complement big-endian integer, length a multiple of 8.
    BigInteger,
    /// 0x05: unsigned 32-bit enumeration value.
    Enumeration,
    /// 0x06: boolean stored in 8 bytes.
    Boolean,
    /// 0x07: UTF-8 text.
    TextString,
    /// 0x08: opaque bytes.
    ByteString,
    /// 0x09: seconds since the Unix epoch, signed 64-bit.
    DateTime,
    /// 0x0A: unsigned 32-bit number of seconds.
    Interval,
    /// 0x0B: microseconds since the Unix epoch, signed 64-bit (KMIP 2.0).
    DateTimeExtended,
}

impl ItemType {
    /// All item types in type-byte order.
    pub const ALL: [ItemType; 11] = [
        ItemType::Structure,
        ItemType::Integer,
        ItemType::LongInteger,
        ItemType::BigInteger,
        ItemType::Enumeration,
        ItemType::Boolean,
        ItemType::TextString,
        ItemType::ByteString,
        ItemType::DateTime,
        ItemType::Interval,
        ItemType::DateTimeExtended,
    ];

    /// The type for a wire type byte, if it is one of KMIP's.
    pub fn from_byte(b: u8) -> Option<ItemType> {
        match b {
            0x01..=0x0B => Some(Self::ALL[usize::from(b - 1)]),
            _ => None,
        }
    }

    /// The wire type byte.
    pub fn byte(self) -> u8 {
        self as u8 + 1
    }

    /// The type's name as written in the KMIP spec without spaces (`LongInteger`).
    pub fn name(self) -> &'static str {
        match self {
            ItemType::Structure => "Structure",
            ItemType::Integer => "Integer",
            ItemType::LongInteger => "LongInteger",
            ItemType::BigInteger => "BigInteger",
            ItemType::Enumeration => "Enumeration",
            ItemType::Boolean => "Boolean",
            ItemType::TextString => "TextString",
            ItemType::ByteString => "ByteString",
            ItemType::DateTime => "DateTime",
            ItemType::Interval => "Interval",
            ItemType::DateTimeExtended => "DateTimeExtended",
        }
    }

    /// The type whose [`name`](Self::name) is `s`.
    pub fn from_name(s: &str) -> Option<ItemType> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Number of padding bytes that follow a value of `len` bytes of this type.
    pub fn padding_len(self, len: usize) -> usize {
        match self {
            ItemType::Structure => 0,
            _ => (8 - len % 8) % 8,
        }
    }
}

impl fmt::Display for ItemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value of a TTLV item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Child items, in wire order.
    Structure(Vec<Item>),
    /// Signed 32-bit integer.
    Integer(i32),
    /// Signed 64-bit integer.
    LongInteger(i64),
    /// Big-endian two's-complement bytes as on the wire (length a multiple of 8).
    BigInteger(Vec<u8>),
    /// Enumeration value.
    Enumeration(u32),
    /// Boolean.
    Boolean(bool),
    /// UTF-8 text.
    TextString(String),
    /// Opaque bytes.
    ByteString(Vec<u8>),
    /// Seconds since 1970-01-01T00:00:00Z.
    DateTime(i64),
    /// Seconds.
    Interval(u32),
    /// Microseconds since 1970-01-01T00:00:00Z.
    DateTimeExtended(i64),
}

impl Value {
    /// The item type of this value.
    pub fn item_type(&self) -> ItemType {
        match self {
            Value::Structure(_) => ItemType::Structure,
            Value::Integer(_) => ItemType::Integer,
            Value::LongInteger(_) => ItemType::LongInteger,
            Value::BigInteger(_) => ItemType::BigInteger,
            Value::Enumeration(_) => ItemType::Enumeration,
            Value::Boolean(_) => ItemType::Boolean,
            Value::TextString(_) => ItemType::TextString,
            Value::ByteString(_) => ItemType::ByteString,
            Value::DateTime(_) => ItemType::DateTime,
            Value::Interval(_) => ItemType::Interval,
            Value::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }

    /// Length of the value on the wire, without padding (the header's length field).
    pub fn value_len(&self) -> usize {
        match self {
            Value::Structure(items) => items.iter().map(Item::encoded_len).sum(),
            Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
            Value::LongInteger(_)
            | Value::Boolean(_)
            | Value::DateTime(_)
            | Value::DateTimeExtended(_) => 8,
            Value::BigInteger(b) | Value::ByteString(b) => b.len(),
            Value::TextString(s) => s.len(),
        }
    }
}

/// One TTLV item: tag, value, and any nonzero padding seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The 24-bit tag (e.g. 0x420078 RequestMessage); only the low 24 bits are encoded.
    pub tag: u32,
    /// The typed value.
    pub value: Value,
    /// Padding bytes as received when they were not all zero; empty means zeros (canonical).
    /// The encoder writes these bytes, truncated or zero-extended to the required length.
    pub padding: Vec<u8>,
}

impl Item {
    /// An item with canonical (zero) padding.
    pub fn new(tag: u32, value: Value) -> Item {
        Item {
            tag,
            value,
            padding: Vec::new(),
        }
    }

    /// A Structure item holding `children`.
    pub fn structure(tag: u32, children: Vec<Item>) -> Item {
        Item::new(tag, Value::Structure(children))
    }

    /// The children of a Structure (empty for other types).
    pub fn children(&self) -> &[Item] {
        match &self.value {
            Value::Structure(c) => c,
            _ => &[],
        }
    }

    /// The first direct child with tag `tag`.
    pub fn child(&self, tag: u32) -> Option<&Item> {
        self.children().iter().find(|c| c.tag == tag)
    }

    /// Total bytes this item occupies on the wire: header, value and padding.
    pub fn encoded_len(&self) -> usize {
        let len = self.value.value_len();
        8 + len + self.value.item_type().padding_len(len)
    }

    /// Encodes this item (and its children) to TTLV bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends this item's TTLV encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let len = self.value.value_len();
        let ty = self.value.item_type();
        out.extend_from_slice(&self.tag.to_be_bytes()[1..]);
        out.push(ty.byte());
        // Values longer than u32::MAX cannot be expressed; the length field saturates and the
        // decoder will reject the result. keybroker never builds such messages.
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        match &self.value {
            Value::Structure(items) => items.iter().for_each(|i| i.encode_into(out)),
            Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
                out.extend_from_slice(&v.to_be_bytes())
            }
            Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Boolean(b) => out.extend_from_slice(&u64::from(*b).to_be_bytes()),
            Value::BigInteger(b) | Value::ByteString(b) => out.extend_from_slice(b),
            Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
        }
        let pad = ty.padding_len(len);
        for i in 0..pad {
            out.push(self.padding.get(i).copied().unwrap_or(0));
        }
    }
}

/// Bounds the decoder enforces before allocating or recursing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of Structures (the outermost Structure is depth 1).
    pub max_depth: usize,
    /// Maximum total message length in bytes, header included.
    pub max_len: usize,
}

impl Limits {
    /// 32 levels of Structure, 16 MiB per message.
    pub const DEFAULT: Limits = Limits {
        max_depth: 32,
        max_len: 16 * 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why decoding failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Input ended: `needed` bytes were required from the offset, only `have` remain.
    Truncated {
        /// What was being read (`header`, `Integer value`, ...).
        what: &'static str,
        /// Bytes needed from the offset.
        needed: usize,
        /// Bytes available from the offset.
        have: usize,
    },
    /// The type byte is not a KMIP item type.
    UnknownType(u8),
    /// A fixed-size type carries the wrong length.
    BadLength {
        /// The item's type.
        ty: ItemType,
        /// The length field.
        len: u32,
        /// What it must be (`4`, `8`, `a multiple of 8`).
        expected: &'static str,
    },
    /// A Boolean's value is neither 0 nor 1.
    BadBoolean(u64),
    /// A TextString is not valid UTF-8 (`valid_up_to` bytes were).
    InvalidUtf8 {
        /// Bytes of valid UTF-8 before the error.
        valid_up_to: usize,
    },
    /// An item's padded length runs past the end of its enclosing Structure.
    Overrun {
        /// The item's type.
        ty: ItemType,
        /// Bytes the item needs including padding.
        needed: usize,
        /// Bytes left in the enclosing Structure.
        room: usize,
    },
    /// Structures nest deeper than the limit.
    TooDeep {
        /// The configured maximum depth.
        max: usize,
    },
    /// The message is longer than the limit.
    TooLong {
        /// Message length from the header.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Bytes remain after the top-level item.
    TrailingBytes(usize),
}

/// A decoding failure at a byte offset from the start of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset of the item or field at fault.
    pub offset: usize,
    /// What is wrong there.
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offset {:#04x}: ", self.offset)?;
        match &self.kind {
            DecodeErrorKind::Truncated { what, needed, have } => {
                write!(f, "truncated {what}: needs {needed} bytes, {have} left")
            }
            DecodeErrorKind::UnknownType(b) => write!(f, "unknown item type {b:#04x}"),
            DecodeErrorKind::BadLength { ty, len, expected } => {
                write!(f, "length {len} of {ty} must be {expected}")
            }
            DecodeErrorKind::BadBoolean(v) => write!(f, "Boolean value {v:#x} must be 0 or 1"),
            DecodeErrorKind::InvalidUtf8 { valid_up_to } => {
                write!(f, "TextString is not UTF-8 after {valid_up_to} bytes")
            }
            DecodeErrorKind::Overrun { ty, needed, room } => write!(
                f,
                "{ty} needs {needed} bytes but its Structure has {room} left"
            ),
            DecodeErrorKind::TooDeep { max } => {
                write!(f, "Structures nested deeper than {max}")
            }
            DecodeErrorKind::TooLong { len, max } => {
                write!(f, "message length {len} exceeds the limit of {max}")
            }
            DecodeErrorKind::TrailingBytes(n) => {
                write!(f, "{n} trailing bytes after the message")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// A parsed 8-byte item header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// 24-bit tag.
    pub tag: u32,
    /// Raw type byte.
    pub type_byte: u8,
    /// Value length, without padding.
    pub len: u32,
}

fn header(input: &[u8]) -> IResult<&[u8], Header> {
    (be_u24, be_u8, be_u32)
        .map(|(tag, type_byte, len)| Header {
            tag,
            type_byte,
            len,
        })
        .parse(input)
}

/// Parses the 8-byte header at the start of `input` (`None` if fewer than 8 bytes).
pub fn parse_header(input: &[u8]) -> Option<Header> {
    header(input).ok().map(|(_, h)| h)
}

/// How many bytes the message starting at `input` occupies (header, value and padding).
///
/// `Ok(None)` means fewer than 8 bytes are available yet; read more. An unknown type or a
/// length above `limits.max_len` is an error at offset 0, so a shell can drop the connection
/// without buffering an attacker-chosen amount.
pub fn frame_len(input: &[u8], limits: &Limits) -> Result<Option<usize>, DecodeError> {
    let Some(h) = parse_header(input) else {
        return Ok(None);
    };
    let ty = ItemType::from_byte(h.type_byte).ok_or(DecodeError {
        offset: 0,
        kind: DecodeErrorKind::UnknownType(h.type_byte),
    })?;
    let len = h.len as usize;
    let total = 8 + len + ty.padding_len(len);
    if total > limits.max_len {
        return Err(DecodeError {
            offset: 0,
            kind: DecodeErrorKind::TooLong {
                len: total,
                max: limits.max_len,
            },
        });
    }
    Ok(Some(total))
}

/// Decodes exactly one TTLV item filling `input`, with [`Limits::DEFAULT`].
pub fn decode(input: &[u8]) -> Result<Item, DecodeError> {
    decode_with(input, &Limits::DEFAULT)
}

/// Decodes exactly one TTLV item filling `input`; trailing bytes are an error.
pub fn decode_with(input: &[u8], limits: &Limits) -> Result<Item, DecodeError> {
    let (item, used) = decode_prefix(input, limits)?;
    if used != input.len() {
        return Err(DecodeError {
            offset: used,
            kind: DecodeErrorKind::TrailingBytes(input.len() - used),
        });
    }
    Ok(item)
}

/// Decodes the first TTLV item of `input`; returns it and the number of bytes it used.
pub fn decode_prefix(input: &[u8], limits: &Limits) -> Result<(Item, usize), DecodeError> {
    if let Some(total) = frame_len(input, limits)? {
        if total > input.len() {
            return Err(DecodeError {
                offset: 0,
                kind: DecodeErrorKind::Truncated {
                    what: "message",
                    needed: total,
                    have: input.len(),
                },
            });
        }
    }
    let d = Decoder { limits };
    let (rest, item) = d.item(
        At {
            bytes: input,
            pos: 0,
        },
        0,
    )?;
    Ok((item, rest.pos))
}

struct Decoder<'b> {
    limits: &'b Limits,
}

/// A slice of the input and the absolute offset of its first byte.
#[derive(Clone, Copy)]
struct At<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> At<'a> {
    fn skip(self, n: usize) -> At<'a> {
        At {
            bytes: &self.bytes[n..],
            pos: self.pos + n,
        }
    }
}

impl Decoder<'_> {
    fn err(&self, at: At<'_>, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset: at.pos,
            kind,
        }
    }

    /// Decodes one item from `input`, which ends where the enclosing Structure (or the whole
    /// message) ends. `depth` counts enclosing Structures.
    fn item<'a>(&self, input: At<'a>, depth: usize) -> Result<(At<'a>, Item), DecodeError> {
        let Ok((_, h)) = header(input.bytes) else {
            return Err(self.err(
                input,
                DecodeErrorKind::Truncated {
                    what: "header",
                    needed: 8,
                    have: input.bytes.len(),
                },
            ));
        };
        let body = input.skip(8);
        let ty = ItemType::from_byte(h.type_byte)
            .ok_or_else(|| self.err(input, DecodeErrorKind::UnknownType(h.type_byte)))?;
        let len = h.len as usize;
        let bad_len = |expected| {
            self.err(
                input,
                DecodeErrorKind::BadLength {
                    ty,
                    len: h.len,
                    expected,
                },
            )
        };
        match ty {
            ItemType::Integer | ItemType::Enumeration | ItemType::Interval if len != 4 => {
                return Err(bad_len("4"))
            }
            ItemType::LongInteger
            | ItemType::Boolean
            | ItemType::DateTime
            | ItemType::DateTimeExtended
                if len != 8 =>
            {
                return Err(bad_len("8"))
            }
            ItemType::BigInteger if !len.is_multiple_of(8) => {
                return Err(bad_len("a multiple of 8"))
            }
            _ => {}
        }
        let pad = ty.padding_len(len);
        let needed = 8 + len + pad;
        if needed > input.bytes.len() {
            return Err(self.err(
                input,
                if depth == 0 {
                    DecodeErrorKind::Truncated {
                        what: ty.name(),
                        needed,
                        have: input.bytes.len(),
                    }
                } else {
                    DecodeErrorKind::Overrun {
                        ty,
                        needed,
                        room: input.bytes.len(),
                    }
                },
            ));
        }
        let raw = &body.bytes[..len];
        let pad_bytes = &body.bytes[len..len + pad];
        let rest = body.skip(len + pad);
        let value = match ty {
            ItemType::Structure => {
                if depth + 1 > self.limits.max_depth {
                    return Err(self.err(
                        input,
                        DecodeErrorKind::TooDeep {
                            max: self.limits.max_depth,
                        },
                    ));
                }
                let mut children = Vec::new();
                let mut cur = At {
                    bytes: raw,
                    pos: body.pos,
                };
                while !cur.bytes.is_empty() {
                    let (next, child) = self.item(cur, depth + 1)?;
                    children.push(child);
                    cur = next;
                }
                Value::Structure(children)
            }
            ItemType::Integer => Value::Integer(i32::from_be_bytes(arr(raw))),
            ItemType::Enumeration => Value::Enumeration(u32::from_be_bytes(arr(raw))),
            ItemType::Interval => Value::Interval(u32::from_be_bytes(arr(raw))),
            ItemType::LongInteger => Value::LongInteger(i64::from_be_bytes(arr(raw))),
            ItemType::DateTime => Value::DateTime(i64::from_be_bytes(arr(raw))),
            ItemType::DateTimeExtended => Value::DateTimeExtended(i64::from_be_bytes(arr(raw))),
            ItemType::Boolean => match u64::from_be_bytes(arr(raw)) {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                v => return Err(self.err(body, DecodeErrorKind::BadBoolean(v))),
            },
            ItemType::BigInteger => Value::BigInteger(raw.to_vec()),
            ItemType::ByteString => Value::ByteString(raw.to_vec()),
            ItemType::TextString => match core::str::from_utf8(raw) {
                Ok(s) => Value::TextString(s.to_owned()),
                Err(e) => {
                    return Err(DecodeError {
                        offset: body.pos + e.valid_up_to(),
                        kind: DecodeErrorKind::InvalidUtf8 {
                            valid_up_to: e.valid_up_to(),
                        },
                    })
                }
            },
        };
        let padding = if pad_bytes.iter().all(|&b| b == 0) {
            Vec::new()
        } else {
            pad_bytes.to_vec()
        };
        Ok((
            rest,
            Item {
                tag: h.tag,
                value,
                padding,
            },
        ))
    }
}

/// Copies a slice whose length the caller checked into an array.
fn arr<const N: usize>(raw: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&raw[..N]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn integer_length_error_names_offset() {
        let b = hex("AAAAAA 01 00000018 BBBBBB 02 0000000C 00000001 00000000 00000000 00000000");
        let e = decode(&b).unwrap_err();
        assert_eq!(e.to_string(), "offset 0x08: length 12 of Integer must be 4");
    }

    #[test]
    fn nonzero_padding_is_kept() {
        let b = hex("BBBBBB 02 00000004 00000001 DEADBEEF");
        let i = decode(&b).unwrap();
        assert_eq!(i.padding, vec![0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(i.encode(), b);
    }

    #[test]
    fn frame_len_reads_header() {
        let b = hex("420078 01 00000060");
        assert_eq!(frame_len(&b[..7], &Limits::DEFAULT), Ok(None));
        assert_eq!(frame_len(&b, &Limits::DEFAULT), Ok(Some(0x68)));
        let t = hex("420078 07 00000003");
        assert_eq!(frame_len(&t, &Limits::DEFAULT), Ok(Some(16)));
        let big = hex("420078 01 7FFFFFF0");
        assert!(frame_len(&big, &Limits::DEFAULT).is_err());
    }

    #[test]
    fn depth_limit() {
        let mut item = Item::new(0x420001, Value::Integer(1));
        for _ in 0..33 {
            item = Item::structure(0x420002, vec![item]);
        }
        let e = decode(&item.encode()).unwrap_err();
        assert!(
            matches!(e.kind, DecodeErrorKind::TooDeep { max: 32 }),
            "{e}"
        );
        assert_eq!(e.offset, 32 * 8);
    }
}
