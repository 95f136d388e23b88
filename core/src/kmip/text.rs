//! The text form of TTLV used by `keybroker ttlv decode` and `keybroker ttlv encode`.
//!
//! [`render`] turns an [`Item`] into text and [`parse`] is its exact inverse: for every item the
//! decoder accepts, `parse(render(decode(b)))` encodes back to `b` byte for byte (unknown tags,
//! unknown enumeration values and nonzero padding included).
//!
//! # Format
//!
//! One item per line, `\n`-terminated:
//!
//! ```text
//! INDENT TAG " " TYPE [" " VALUE] [" pad=0x" HEX]
//! ```
//!
//! - `INDENT` is two spaces per enclosing Structure; a Structure's children follow it on the
//!   next lines, indented one level deeper. Exactly one top-level item.
//! - `TAG` is the tag's name from [`tags`] (`RequestMessage`) or, for tags without
//!   a name, `0x` and six upper-case hex digits (`0x540001`). The parser accepts the hex form for
//!   named tags too.
//! - `TYPE` is one of `Structure Integer LongInteger BigInteger Enumeration Boolean TextString
//!   ByteString DateTime Interval DateTimeExtended`.
//! - `VALUE` by type:
//!   - Structure: none.
//!   - Integer, LongInteger, Interval: decimal (`-5`, `4096`).
//!   - BigInteger, ByteString: `0x` and the bytes as upper-case hex, two digits each (`0x` alone
//!     when empty). The parser accepts lower case too.
//!   - Enumeration: the value's name when the tag has a known enumeration and the value a name
//!     (`Operation Enumeration Encrypt`), else `0x` and eight hex digits (`0x8000000A`).
//!     Two tags take their enumeration from context: a KMIP 1.x `AttributeValue` uses the
//!     enumeration named by the nearest *preceding* `AttributeName` sibling (`"Cryptographic
//!     Algorithm"` → `AES`), and a KMIP 2.0 `AttributeReference` names a tag (`State`).
//!   - Boolean: `true` or `false`.
//!   - TextString: a double-quoted string; `"` `\` are escaped as `\"` `\\`, newline, carriage
//!     return and tab as `\n` `\r` `\t`, other control characters (U+0000–U+001F, U+007F) as
//!     `\u{XX}`; everything else is written as is (UTF-8).
//!   - DateTime: RFC 3339 UTC with seconds, then the seconds since the epoch in decimal
//!     (`2011-12-01T08:46:15Z 1322729175`). Outside years 0000–9999 only the number is written.
//!     The parser takes either or both (they must agree).
//!   - DateTimeExtended: the same with six fractional digits and microseconds
//!     (`2020-01-01T00:00:00.000001Z 1577836800000001`).
//! - `pad=0x…`: present only when the padding bytes after the value were not all zero; exactly as
//!   many bytes as the type's padding (`(8 - len % 8) % 8`, none for Structure).
//!
//! The parser also ignores blank lines and lines whose first non-space character is `#`, and
//! treats runs of spaces between fields as one. Errors name the line number.

use core::fmt;
use core::fmt::Write as _;

use super::tags;
use super::ttlv::{self, DecodeError, Item, ItemType, Limits, Value};

/// A text-form parse error on a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextError {
    /// 1-based line number (0 when the error concerns the whole text).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for TextError {}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, TextError> {
    Err(TextError {
        line,
        message: message.into(),
    })
}

/// Renders `item` in the text form, one line per item.
pub fn render(item: &Item) -> String {
    let mut out = String::new();
    render_into(item, 0, None, &mut out);
    out
}

/// Decodes TTLV bytes (with default limits) and renders them in the text form.
pub fn decode_to_text(bytes: &[u8]) -> Result<String, DecodeError> {
    ttlv::decode(bytes).map(|i| render(&i))
}

/// Parses the text form and encodes it to TTLV bytes.
pub fn encode(text: &str) -> Result<Vec<u8>, TextError> {
    parse(text).map(|i| i.encode())
}

/// The display name of tag `tag`: its KMIP name or `0xNNNNNN`.
pub fn tag_label(tag: u32) -> String {
    match tags::tag_name(tag) {
        Some(n) => n.to_owned(),
        None => format!("0x{:06X}", tag & 0xFF_FFFF),
    }
}

/// The name of Enumeration value `v` of an item tagged `tag`; `attr` is the text of the last
/// `AttributeName` sibling before it, which names the enumeration of a KMIP 1.x
/// `AttributeValue`. A KMIP 2.0 `AttributeReference` enumeration holds a tag.
fn enum_name(tag: u32, attr: Option<&str>, v: u32) -> Option<&'static str> {
    match (tag, attr) {
        (tags::tag::ATTRIBUTE_VALUE, Some(a)) => {
            let compact: String = a.split_whitespace().collect();
            tags::enum_value_name(tags::tag_by_name(&compact)?, v)
        }
        (tags::tag::ATTRIBUTE_REFERENCE, _) => tags::tag_name(v),
        _ => tags::enum_value_name(tag, v),
    }
}

/// The inverse of [`enum_name`].
fn enum_by_name(tag: u32, attr: Option<&str>, name: &str) -> Option<u32> {
    match (tag, attr) {
        (tags::tag::ATTRIBUTE_VALUE, Some(a)) => {
            let compact: String = a.split_whitespace().collect();
            tags::enum_value_by_name(tags::tag_by_name(&compact)?, name)
        }
        (tags::tag::ATTRIBUTE_REFERENCE, _) => tags::tag_by_name(name),
        _ => tags::enum_value_by_name(tag, name),
    }
}

/// The text of `item` if it is an `AttributeName` TextString.
fn attribute_name(item: &Item) -> Option<&str> {
    match &item.value {
        Value::TextString(s) if item.tag == tags::tag::ATTRIBUTE_NAME => Some(s),
        _ => None,
    }
}

fn render_into(item: &Item, depth: usize, attr: Option<&str>, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
    out.push_str(&tag_label(item.tag));
    out.push(' ');
    out.push_str(item.value.item_type().name());
    // Writing to a String cannot fail.
    let _ = match &item.value {
        Value::Structure(_) => Ok(()),
        Value::Integer(v) => write!(out, " {v}"),
        Value::LongInteger(v) => write!(out, " {v}"),
        Value::Interval(v) => write!(out, " {v}"),
        Value::BigInteger(b) | Value::ByteString(b) => write!(out, " 0x{}", bytes_to_hex(b)),
        Value::Enumeration(v) => match enum_name(item.tag, attr, *v) {
            Some(n) => write!(out, " {n}"),
            None => write!(out, " 0x{v:08X}"),
        },
        Value::Boolean(b) => write!(out, " {b}"),
        Value::TextString(s) => {
            out.push(' ');
            quote_into(s, out);
            Ok(())
        }
        Value::DateTime(t) => match rfc3339(*t, None) {
            Some(s) => write!(out, " {s} {t}"),
            None => write!(out, " {t}"),
        },
        Value::DateTimeExtended(t) => {
            let secs = t.div_euclid(1_000_000);
            let micros = t.rem_euclid(1_000_000) as u32;
            match rfc3339(secs, Some(micros)) {
                Some(s) => write!(out, " {s} {t}"),
                None => write!(out, " {t}"),
            }
        }
    };
    if !item.padding.is_empty() {
        let pad = item.value.item_type().padding_len(item.value.value_len());
        let mut p = item.padding.clone();
        p.resize(pad, 0);
        if p.iter().any(|&b| b != 0) {
            let _ = write!(out, " pad=0x{}", bytes_to_hex(&p));
        }
    }
    out.push('\n');
    let mut last_attr = None;
    for c in item.children() {
        render_into(c, depth + 1, last_attr, out);
        if let Some(a) = attribute_name(c) {
            last_attr = Some(a);
        }
    }
}

fn quote_into(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                let _ = write!(out, "\\u{{{:02X}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Upper-case hex of `b`, two digits per byte, no separators.
pub fn bytes_to_hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02X}");
    }
    s
}

/// Bytes from hex digits (either case); ASCII whitespace anywhere is ignored.
pub fn hex_to_bytes(s: &str) -> Result<Vec<u8>, TextError> {
    let mut out = Vec::with_capacity(s.len() / 2);
    let mut hi: Option<u8> = None;
    for (i, c) in s.char_indices() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let Some(d) = c.to_digit(16) else {
            return err(
                0,
                format!("character {c:?} at position {i} is not a hex digit"),
            );
        };
        let d = d as u8;
        match hi.take() {
            None => hi = Some(d),
            Some(h) => out.push(h << 4 | d),
        }
    }
    if hi.is_some() {
        return err(0, "odd number of hex digits");
    }
    Ok(out)
}

/// Parses the text form into an item (see the module documentation for the grammar).
pub fn parse(text: &str) -> Result<Item, TextError> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let content = raw.trim_start_matches(' ');
        if content.trim().is_empty() || content.starts_with('#') {
            continue;
        }
        if content.starts_with('\t') {
            return err(n, "indent with spaces, not tabs");
        }
        let indent = raw.len() - content.len();
        if indent % 2 != 0 {
            return err(
                n,
                format!("indent of {indent} spaces is not a multiple of 2"),
            );
        }
        lines.push((n, indent / 2, content.trim_end()));
    }
    if lines.is_empty() {
        return err(0, "no item in the text");
    }
    let mut idx = 0;
    let items = parse_level(&lines, &mut idx, 0)?;
    if idx < lines.len() {
        return err(lines[idx].0, "unexpected indentation");
    }
    let mut it = items.into_iter();
    match (it.next(), it.next()) {
        (Some(i), None) => Ok(i),
        _ => err(lines[0].0, "more than one top-level item"),
    }
}

type Line<'a> = (usize, usize, &'a str);

fn parse_level(lines: &[Line<'_>], idx: &mut usize, depth: usize) -> Result<Vec<Item>, TextError> {
    let mut items: Vec<Item> = Vec::new();
    let mut last_attr: Option<usize> = None;
    while let Some(&(n, indent, content)) = lines.get(*idx) {
        if indent < depth {
            break;
        }
        if indent > depth {
            return err(n, "indented deeper than a Structure's child");
        }
        *idx += 1;
        let attr = last_attr.and_then(|i| attribute_name(&items[i]));
        let mut item = parse_line(n, content, attr)?;
        if let Value::Structure(children) = &mut item.value {
            if depth + 1 > Limits::DEFAULT.max_depth {
                return err(
                    n,
                    format!(
                        "Structures nested deeper than {}",
                        Limits::DEFAULT.max_depth
                    ),
                );
            }
            *children = parse_level(lines, idx, depth + 1)?;
        } else if let Some(&(m, ind, _)) = lines.get(*idx) {
            if ind > depth {
                return err(m, "only a Structure can have indented children");
            }
        }
        if attribute_name(&item).is_some() {
            last_attr = Some(items.len());
        }
        items.push(item);
    }
    Ok(items)
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => (&s[..i], s[i..].trim_start_matches(' ')),
        None => (s, ""),
    }
}

fn parse_line(n: usize, content: &str, attr: Option<&str>) -> Result<Item, TextError> {
    let (tag_s, rest) = split_word(content);
    let tag = parse_tag(n, tag_s)?;
    let (ty_s, rest) = split_word(rest);
    if ty_s.is_empty() {
        return err(n, format!("{tag_s}: missing type"));
    }
    let Some(ty) = ItemType::from_name(ty_s) else {
        return err(n, format!("unknown type {ty_s:?}"));
    };
    // Split off the value tokens and an optional trailing pad=.
    let (value_part, pad_s) = if ty == ItemType::TextString {
        let (s, after) = unquote(n, rest)?;
        let after = after.trim_start_matches(' ');
        let (pad, extra) = split_word(after);
        if !extra.is_empty() || !(pad.is_empty() || pad.starts_with("pad=")) {
            return err(n, format!("unexpected text after the string: {after:?}"));
        }
        (ValuePart::Str(s), pad.strip_prefix("pad="))
    } else {
        let mut toks: Vec<&str> = rest.split(' ').filter(|t| !t.is_empty()).collect();
        let pad = match toks.last() {
            Some(t) if t.starts_with("pad=") => toks.pop().and_then(|t| t.strip_prefix("pad=")),
            _ => None,
        };
        (ValuePart::Tokens(toks), pad)
    };
    let value = match (ty, value_part) {
        (ItemType::TextString, ValuePart::Str(s)) => Value::TextString(s),
        (_, ValuePart::Str(_)) => unreachable!("only TextString is quoted"),
        (ty, ValuePart::Tokens(toks)) => parse_value(n, tag, attr, ty, &toks)?,
    };
    let mut padding = Vec::new();
    if let Some(p) = pad_s {
        let want = ty.padding_len(value.value_len());
        let Some(hex) = p.strip_prefix("0x") else {
            return err(n, "pad= must be followed by 0x and hex digits");
        };
        let bytes = hex_to_bytes(hex).map_err(|e| TextError {
            line: n,
            message: format!("pad: {}", e.message),
        })?;
        if bytes.len() != want {
            return err(
                n,
                format!(
                    "pad has {} bytes but a {ty} of this length has {want}",
                    bytes.len()
                ),
            );
        }
        if bytes.iter().any(|&b| b != 0) {
            padding = bytes;
        }
    }
    Ok(Item {
        tag,
        value,
        padding,
    })
}

enum ValuePart<'a> {
    Str(String),
    Tokens(Vec<&'a str>),
}

fn parse_tag(n: usize, s: &str) -> Result<u32, TextError> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || h.len() > 6 {
            return err(n, format!("tag {s} must be 0x and 1 to 6 hex digits"));
        }
        return u32::from_str_radix(h, 16).or_else(|_| err(n, format!("bad hex tag {s}")));
    }
    tags::tag_by_name(s).map_or_else(|| err(n, format!("unknown tag name {s:?}")), Ok)
}

fn one<'a>(n: usize, ty: ItemType, toks: &[&'a str]) -> Result<&'a str, TextError> {
    match toks {
        [t] => Ok(t),
        [] => err(n, format!("{ty} needs a value")),
        _ => err(n, format!("{ty} takes one value, got {}", toks.len())),
    }
}

fn num<T: core::str::FromStr>(n: usize, ty: ItemType, s: &str) -> Result<T, TextError> {
    s.parse()
        .or_else(|_| err(n, format!("{s:?} is not a valid {ty} value")))
}

fn hex_value(n: usize, ty: ItemType, s: &str) -> Result<Vec<u8>, TextError> {
    let Some(h) = s.strip_prefix("0x") else {
        return err(n, format!("{ty} value must start with 0x"));
    };
    hex_to_bytes(h).map_err(|e| TextError {
        line: n,
        message: format!("{ty}: {}", e.message),
    })
}

fn parse_value(
    n: usize,
    tag: u32,
    attr: Option<&str>,
    ty: ItemType,
    toks: &[&str],
) -> Result<Value, TextError> {
    Ok(match ty {
        ItemType::Structure => {
            if !toks.is_empty() {
                return err(n, "a Structure has no value on its line");
            }
            Value::Structure(Vec::new())
        }
        ItemType::Integer => Value::Integer(num(n, ty, one(n, ty, toks)?)?),
        ItemType::LongInteger => Value::LongInteger(num(n, ty, one(n, ty, toks)?)?),
        ItemType::Interval => Value::Interval(num(n, ty, one(n, ty, toks)?)?),
        ItemType::BigInteger => {
            let b = hex_value(n, ty, one(n, ty, toks)?)?;
            if b.len() % 8 != 0 {
                return err(n, "a BigInteger must be a multiple of 8 bytes");
            }
            Value::BigInteger(b)
        }
        ItemType::ByteString => Value::ByteString(hex_value(n, ty, one(n, ty, toks)?)?),
        ItemType::Boolean => match one(n, ty, toks)? {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            s => return err(n, format!("{s:?} is not true or false")),
        },
        ItemType::Enumeration => {
            let s = one(n, ty, toks)?;
            let v = if let Some(h) = s.strip_prefix("0x") {
                if h.is_empty() || h.len() > 8 {
                    return err(
                        n,
                        format!("enumeration value {s} must be 0x and 1 to 8 hex digits"),
                    );
                }
                u32::from_str_radix(h, 16)
                    .or_else(|_| err(n, format!("bad hex enumeration value {s}")))?
            } else {
                match enum_by_name(tag, attr, s) {
                    Some(v) => v,
                    None => {
                        return err(
                            n,
                            format!("{s:?} is not a known value of {}", tag_label(tag)),
                        )
                    }
                }
            };
            Value::Enumeration(v)
        }
        ItemType::TextString => unreachable!("TextString is parsed by unquote"),
        ItemType::DateTime => Value::DateTime(parse_time(n, ty, toks, false)?),
        ItemType::DateTimeExtended => Value::DateTimeExtended(parse_time(n, ty, toks, true)?),
    })
}

fn parse_time(n: usize, ty: ItemType, toks: &[&str], micros: bool) -> Result<i64, TextError> {
    let mut from_text = None;
    let mut from_num = None;
    if toks.is_empty() || toks.len() > 2 {
        return err(n, format!("{ty} takes an RFC 3339 time, a number, or both"));
    }
    for t in toks {
        if t.contains('T') {
            let Some(v) = parse_rfc3339(t, micros) else {
                return err(
                    n,
                    format!("{t:?} is not an RFC 3339 UTC time (…Z) for {ty}"),
                );
            };
            from_text = Some(v);
        } else {
            from_num = Some(num::<i64>(n, ty, t)?);
        }
    }
    match (from_text, from_num) {
        (Some(a), Some(b)) if a != b => err(n, format!("{ty}: time {a} and number {b} disagree")),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => err(n, format!("{ty} takes one time and one number")),
    }
}

/// Parses a double-quoted string at the start of `s`; returns it and what follows.
fn unquote(n: usize, s: &str) -> Result<(String, &str), TextError> {
    let Some(body) = s.strip_prefix('"') else {
        return err(n, "a TextString value must be double-quoted");
    };
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((j, 'u')) => {
                    let rest = &body[j + 1..];
                    let Some(close) = rest.find('}').filter(|_| rest.starts_with('{')) else {
                        return err(n, "\\u must be followed by {HEX}");
                    };
                    let code = u32::from_str_radix(&rest[1..close], 16)
                        .ok()
                        .and_then(char::from_u32);
                    let Some(ch) = code else {
                        return err(n, format!("bad escape \\u{}", &rest[..=close]));
                    };
                    out.push(ch);
                    for _ in 0..close + 1 {
                        chars.next();
                    }
                }
                Some((_, e)) => return err(n, format!("unknown escape \\{e}")),
                None => break,
            },
            c => out.push(c),
        }
    }
    err(n, "unterminated string")
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// RFC 3339 UTC text of `secs` since the epoch (with 6 fractional digits if `micros`), or
/// `None` outside years 0000–9999.
fn rfc3339(secs: i64, micros: Option<u32>) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
    Some(match micros {
        None => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
        Some(us) => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{us:06}Z"),
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` into seconds (or microseconds if `micros`).
fn parse_rfc3339(s: &str, micros: bool) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let digits = |r: core::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, se) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let frac = &s[19..s.len() - 1];
    let us = if frac.is_empty() {
        0
    } else {
        let f = frac.strip_prefix('.')?;
        if f.is_empty() || f.len() > 6 || !f.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if !micros {
            return None;
        }
        f.parse::<i64>().ok()? * 10i64.pow(6 - f.len() as u32)
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se;
    Some(if micros { secs * 1_000_000 + us } else { secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for t in [
            0i64,
            1_322_729_175,
            -1,
            -62_167_219_200,
            253_402_300_799,
            951_782_400,
        ] {
            let s = rfc3339(t, None).unwrap();
            assert_eq!(parse_rfc3339(&s, false), Some(t), "{s}");
        }
        assert_eq!(
            rfc3339(1_322_729_175, None).unwrap(),
            "2011-12-01T08:46:15Z"
        );
        assert_eq!(rfc3339(253_402_300_800, None), None);
        assert_eq!(parse_rfc3339("2011-02-29T00:00:00Z", false), None);
    }

    #[test]
    fn render_and_parse_all_types() {
        let item = Item::structure(
            tags::tag::REQUEST_MESSAGE,
            vec![
                Item::new(tags::tag::BATCH_COUNT, Value::Integer(-3)),
                Item::new(tags::tag::OPERATION, Value::Enumeration(0x1F)),
                Item::new(tags::tag::OPERATION, Value::Enumeration(0x8000_0001)),
                Item::new(0x540001, Value::LongInteger(i64::MIN)),
                Item::new(0x540002, Value::BigInteger(vec![0xFF; 8])),
                Item::new(0x540003, Value::Boolean(true)),
                Item::new(0x540004, Value::TextString("a\"b\\c\n\u{1}é".into())),
                Item::new(0x540005, Value::ByteString(vec![])),
                Item::new(0x540006, Value::DateTime(1_322_729_175)),
                Item::new(0x540007, Value::Interval(u32::MAX)),
                Item::new(0x540008, Value::DateTimeExtended(-1)),
                Item::new(0x540009, Value::DateTime(i64::MAX)),
                Item {
                    tag: 0x54000A,
                    value: Value::ByteString(vec![1, 2, 3]),
                    padding: vec![0, 0, 0, 0, 9],
                },
                Item::structure(0x54000B, vec![]),
            ],
        );
        let text = render(&item);
        assert!(text.contains("  Operation Enumeration Encrypt\n"), "{text}");
        assert!(
            text.contains("  0x540004 TextString \"a\\\"b\\\\c\\n\\u{01}é\"\n"),
            "{text}"
        );
        assert!(text.contains("1969-12-31T23:59:59.999999Z -1"), "{text}");
        assert!(text.contains("pad=0x0000000009"), "{text}");
        let back = parse(&text).unwrap();
        assert_eq!(back, item);
        assert_eq!(encode(&text).unwrap(), item.encode());
    }

    #[test]
    fn attribute_values_take_their_enumeration_from_the_preceding_name() {
        let attr = |name: &str, v: u32| {
            vec![
                Item::new(tags::tag::ATTRIBUTE_NAME, Value::TextString(name.into())),
                Item::new(tags::tag::ATTRIBUTE_VALUE, Value::Enumeration(v)),
            ]
        };
        let mut children = attr("Cryptographic Algorithm", 3);
        children.extend(attr("Object Type", 2));
        children.extend(attr("No Such Attribute", 2));
        // A value before any name, and a name after its value, stay hex.
        children.insert(
            0,
            Item::new(tags::tag::ATTRIBUTE_VALUE, Value::Enumeration(3)),
        );
        children.push(Item::new(
            tags::tag::ATTRIBUTE_REFERENCE,
            Value::Enumeration(0x42008D),
        ));
        let item = Item::structure(tags::tag::ATTRIBUTE, children);
        let text = render(&item);
        assert_eq!(
            text,
            "Attribute Structure\n  AttributeValue Enumeration 0x00000003\n  \
             AttributeName TextString \"Cryptographic Algorithm\"\n  AttributeValue Enumeration AES\n  \
             AttributeName TextString \"Object Type\"\n  AttributeValue Enumeration SymmetricKey\n  \
             AttributeName TextString \"No Such Attribute\"\n  AttributeValue Enumeration 0x00000002\n  \
             AttributeReference Enumeration State\n"
        );
        assert_eq!(parse(&text).unwrap(), item);
        assert!(parse("AttributeValue Enumeration AES").is_err());
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = parse("RequestMessage Structure\n  BatchCount Integer x\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("BatchCount Integer 1\n  BatchCount Integer 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: only a Structure can have indented children"
        );
        assert!(parse("NoSuchTag Integer 1").is_err());
        assert!(parse("0x540001 TextString \"abc").is_err());
        assert!(parse("0x540001 ByteString 0x01 pad=0x00").is_err());
    }
}
