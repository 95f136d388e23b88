//! RESP2, the Redis wire protocol: command encoding and an incremental reply parser.

/// Largest bulk string accepted from Redis.
pub const MAX_BULK: usize = 16 * 1024 * 1024;

/// One Redis reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR …`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n` bulk string, `None` for the null bulk `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*n` array, `None` for `*-1`.
    Array(Option<Vec<Value>>),
}

/// Encodes a command as an array of bulk strings.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A reply that is not RESP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RespError(pub String);

fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

fn number(s: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RespError("bad number in reply".into()))
}

/// Parses one reply from the front of `buf`: `Ok(None)` if more bytes are needed, else the
/// value and how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, RespError> {
    parse_depth(buf, 0)
}

fn parse_depth(buf: &[u8], depth: usize) -> Result<Option<(Value, usize)>, RespError> {
    if depth > 8 {
        return Err(RespError("reply nested too deeply".into()));
    }
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let Some((head, used)) = line(&buf[1..]) else {
        if buf.len() > 64 * 1024 {
            return Err(RespError("reply line too long".into()));
        }
        return Ok(None);
    };
    let used = used + 1;
    let text = || String::from_utf8_lossy(head).into_owned();
    match kind {
        b'+' => Ok(Some((Value::Simple(text()), used))),
        b'-' => Ok(Some((Value::Error(text()), used))),
        b':' => Ok(Some((Value::Int(number(head)?), used))),
        b'$' => {
            let n = number(head)?;
            if n < 0 {
                return Ok(Some((Value::Bulk(None), used)));
            }
            let n = n as usize;
            if n > MAX_BULK {
                return Err(RespError("bulk reply too large".into()));
            }
            if buf.len() < used + n + 2 {
                return Ok(None);
            }
            if &buf[used + n..used + n + 2] != b"\r\n" {
                return Err(RespError("bulk reply not terminated".into()));
            }
            Ok(Some((
                Value::Bulk(Some(buf[used..used + n].to_vec())),
                used + n + 2,
            )))
        }
        b'*' => {
            let n = number(head)?;
            if n < 0 {
                return Ok(Some((Value::Array(None), used)));
            }
            if n > 1024 {
                return Err(RespError("array reply too large".into()));
            }
            let mut items = Vec::with_capacity(n as usize);
            let mut at = used;
            for _ in 0..n {
                match parse_depth(&buf[at..], depth + 1)? {
                    Some((v, u)) => {
                        items.push(v);
                        at += u;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Value::Array(Some(items)), at)))
        }
        _ => Err(RespError(
            "reply does not start with a RESP type byte".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_commands() {
        assert_eq!(command(&[b"GET", b"k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[test]
    fn parses_each_kind_and_waits_for_more() {
        assert_eq!(
            parse(b"+OK\r\n").unwrap(),
            Some((Value::Simple("OK".into()), 5))
        );
        assert_eq!(
            parse(b"-ERR no\r\n").unwrap().unwrap().0,
            Value::Error("ERR no".into())
        );
        assert_eq!(parse(b":12\r\n").unwrap().unwrap().0, Value::Int(12));
        assert_eq!(parse(b"$-1\r\n").unwrap().unwrap().0, Value::Bulk(None));
        assert_eq!(
            parse(b"$3\r\nabc\r\n").unwrap(),
            Some((Value::Bulk(Some(b"abc".to_vec())), 9))
        );
        assert_eq!(parse(b"$3\r\nab").unwrap(), None);
        assert_eq!(
            parse(b"*2\r\n:1\r\n$1\r\nx\r\n").unwrap().unwrap().0,
            Value::Array(Some(vec![Value::Int(1), Value::Bulk(Some(b"x".to_vec()))]))
        );
        assert_eq!(parse(b"*2\r\n:1\r\n").unwrap(), None);
        assert!(parse(b"?\r\n").is_err());
        assert!(parse(b"$3\r\nabcd\r\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&b);
        }

        #[test]
        fn bulk_round_trip_in_pieces(v in proptest::collection::vec(any::<u8>(), 0..100), cut in 0usize..120) {
            let mut wire = format!("${}\r\n", v.len()).into_bytes();
            wire.extend_from_slice(&v);
            wire.extend_from_slice(b"\r\n");
            let cut = cut.min(wire.len());
            if cut < wire.len() {
                prop_assert_eq!(parse(&wire[..cut]).unwrap(), None);
            }
            prop_assert_eq!(parse(&wire).unwrap(), Some((Value::Bulk(Some(v)), wire.len())));
        }
    }
}
