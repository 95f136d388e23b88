//! Java `.properties` files, read to the letter of `java.util.Properties.load(InputStream)`.
//!
//! The input is bytes, each byte one ISO-8859-1 character. A logical line is built as Java's
//! `LineReader` builds it (comments, blank lines, backslash continuations with the next line's
//! leading whitespace dropped), then split into key and value and unescaped as `load0` and
//! `loadConvert` do. `\uXXXX` escapes produce UTF-16 code units; a surrogate pair becomes one
//! character and a lone surrogate (which a Rust `String` cannot hold) becomes U+FFFD.

/// One key/value pair and the line it started on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// The key, with escapes resolved.
    pub key: String,
    /// The value, with escapes resolved.
    pub value: String,
    /// Line number (1-based) where the logical line starts.
    pub line: usize,
}

/// Parses a properties file (bytes read as ISO-8859-1, as `Properties.load(InputStream)` does).
///
/// Every property is returned in file order, duplicates included; as in Java, the last
/// occurrence of a key is the one that counts.
pub fn parse(bytes: &[u8]) -> Result<Vec<Property>, PropertiesError> {
    let mut reader = LineReader {
        bytes,
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    while let Some((buf, line)) = reader.read_line() {
        let (key, value) = split(&buf);
        let key = unescape(key).map_err(|message| PropertiesError { line, message })?;
        let value = unescape(value).map_err(|message| PropertiesError { line, message })?;
        out.push(Property { key, value, line });
    }
    Ok(out)
}

/// A malformed properties file (only a bad `\uXXXX` escape is an error in Java).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertiesError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for PropertiesError {}

/// Java's `Properties.LineReader` over a byte slice, counting natural lines.
struct LineReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The natural line (1-based) of the byte at `pos`.
    line: usize,
}

impl LineReader<'_> {
    /// Takes the next byte and advances the line counter past `\n`, `\r` or `\r\n`.
    fn next(&mut self) -> Option<u8> {
        let c = *self.bytes.get(self.pos)?;
        self.pos += 1;
        let crlf = c == b'\r' && self.bytes.get(self.pos) == Some(&b'\n');
        if (c == b'\n' || c == b'\r') && !crlf {
            self.line += 1;
        }
        Some(c)
    }

    /// The next logical line and the natural line it started on; `None` at end of input.
    fn read_line(&mut self) -> Option<(Vec<u8>, usize)> {
        let mut buf: Vec<u8> = Vec::new();
        let mut start_line = self.line;
        let mut skip_white_space = true;
        let mut appended_line_begin = false;
        let mut preceding_backslash = false;
        loop {
            let line_of_c = self.line;
            let Some(c) = self.next() else {
                if buf.is_empty() {
                    return None;
                }
                if preceding_backslash {
                    buf.pop();
                }
                return Some((buf, start_line));
            };
            if skip_white_space {
                if c == b' ' || c == b'\t' || c == 0x0c {
                    continue;
                }
                if !appended_line_begin && (c == b'\r' || c == b'\n') {
                    continue;
                }
                skip_white_space = false;
                appended_line_begin = false;
            }
            if buf.is_empty() {
                if c == b'#' || c == b'!' {
                    // A comment: consume the rest of the natural line, no continuations.
                    loop {
                        match self.next() {
                            None => return None,
                            Some(b'\r') | Some(b'\n') => break,
                            Some(_) => {}
                        }
                    }
                    skip_white_space = true;
                    continue;
                }
                start_line = line_of_c;
            }
            if c != b'\n' && c != b'\r' {
                buf.push(c);
                preceding_backslash = c == b'\\' && !preceding_backslash;
                continue;
            }
            // End of a natural line.
            if buf.is_empty() {
                skip_white_space = true;
                continue;
            }
            if self.pos >= self.bytes.len() {
                if preceding_backslash {
                    buf.pop();
                }
                return Some((buf, start_line));
            }
            if preceding_backslash {
                // The backslash joins the next natural line, minus its leading whitespace.
                buf.pop();
                skip_white_space = true;
                appended_line_begin = true;
                preceding_backslash = false;
                if c == b'\r' && self.bytes.get(self.pos) == Some(&b'\n') {
                    self.next();
                }
            } else {
                return Some((buf, start_line));
            }
        }
    }
}

/// Splits a logical line into raw key and raw value, as `Properties.load0` does.
fn split(line: &[u8]) -> (&[u8], &[u8]) {
    let limit = line.len();
    let mut key_len = 0;
    let mut value_start = limit;
    let mut has_sep = false;
    let mut preceding_backslash = false;
    while key_len < limit {
        let c = line[key_len];
        if (c == b'=' || c == b':') && !preceding_backslash {
            value_start = key_len + 1;
            has_sep = true;
            break;
        } else if (c == b' ' || c == b'\t' || c == 0x0c) && !preceding_backslash {
            value_start = key_len + 1;
            break;
        }
        preceding_backslash = c == b'\\' && !preceding_backslash;
        key_len += 1;
    }
    while value_start < limit {
        let c = line[value_start];
        if c != b' ' && c != b'\t' && c != 0x0c {
            if !has_sep && (c == b'=' || c == b':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (&line[..key_len], &line[value_start..])
}

/// Resolves escapes as `Properties.loadConvert` does, producing UTF-16 then a `String`.
fn unescape(raw: &[u8]) -> Result<String, String> {
    let mut out: Vec<u16> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if c != b'\\' {
            out.push(u16::from(c));
            continue;
        }
        // The line reader never leaves an unescaped backslash at the end; be safe anyway.
        let Some(&e) = raw.get(i) else {
            break;
        };
        i += 1;
        match e {
            b'u' => {
                let digits = raw
                    .get(i..i + 4)
                    .ok_or_else(|| "malformed \\uxxxx encoding".to_string())?;
                let mut value: u16 = 0;
                for &d in digits {
                    let v = (d as char)
                        .to_digit(16)
                        .ok_or_else(|| "malformed \\uxxxx encoding".to_string())?;
                    value = (value << 4) | v as u16;
                }
                i += 4;
                out.push(value);
            }
            b't' => out.push(u16::from(b'\t')),
            b'r' => out.push(u16::from(b'\r')),
            b'n' => out.push(u16::from(b'\n')),
            b'f' => out.push(0x0c),
            other => out.push(u16::from(other)),
        }
    }
    Ok(String::from_utf16_lossy(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(s: &str) -> Vec<(String, String)> {
        parse(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    #[test]
    fn separators() {
        assert_eq!(kv("a=b"), vec![("a".into(), "b".into())]);
        assert_eq!(kv("a b"), vec![("a".into(), "b".into())]);
        assert_eq!(kv("a : b"), vec![("a".into(), "b".into())]);
    }
}
