//! The little DER needed around keystores: reading TLVs and wrapping keys as PKCS#8.
use super::KeystoreError;

/// One DER element: its tag, its contents, and its whole encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    /// The (single-byte) tag.
    pub tag: u8,
    /// The contents octets.
    pub body: &'a [u8],
    /// Tag, length and contents together.
    pub full: &'a [u8],
}

/// Tag of SEQUENCE.
pub(crate) const SEQUENCE: u8 = 0x30;
/// Tag of INTEGER.
pub(crate) const INTEGER: u8 = 0x02;
/// Tag of OCTET STRING.
pub(crate) const OCTET_STRING: u8 = 0x04;
/// Tag of OBJECT IDENTIFIER.
pub(crate) const OID: u8 = 0x06;

/// Reads one definite-length DER element from the front of `input`; returns it and the rest.
pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), KeystoreError> {
    let bad = |what: &str| KeystoreError::Malformed(format!("bad DER: {what}"));
    let (&tag, rest) = input.split_first().ok_or_else(|| bad("truncated tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(bad("multi-byte tag"));
    }
    let (&first, rest) = rest.split_first().ok_or_else(|| bad("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad("unsupported or truncated length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad("truncated contents"));
    }
    let header = input.len() - rest.len();
    Ok((
        Tlv {
            tag,
            body: &rest[..len],
            full: &input[..header + len],
        },
        &rest[len..],
    ))
}

/// Reads one element and checks its tag.
pub(crate) fn expect(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8]), KeystoreError> {
    let (tlv, rest) = read(input)?;
    if tlv.tag != tag {
        return Err(KeystoreError::Malformed(format!(
            "bad DER: expected tag {tag:#04x}, found {:#04x}",
            tlv.tag
        )));
    }
    Ok((tlv, rest))
}

/// Encodes one element with a definite length.
pub(crate) fn encode(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(tag);
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(body);
    out
}

/// DER of OID 1.2.840.113549.1.1.1 (rsaEncryption), tag and length included.
const RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
/// DER of OID 1.2.840.10045.2.1 (id-ecPublicKey), tag and length included.
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// Wraps a PKCS#1 `RSAPrivateKey` as an unencrypted PKCS#8 `PrivateKeyInfo`.
pub(crate) fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Result<Vec<u8>, KeystoreError> {
    let (seq, _) = expect(pkcs1, SEQUENCE)?;
    let mut alg = RSA_ENCRYPTION.to_vec();
    alg.extend_from_slice(&[0x05, 0x00]);
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend(encode(SEQUENCE, &alg));
    body.extend(encode(OCTET_STRING, seq.full));
    Ok(encode(SEQUENCE, &body))
}

/// Wraps a SEC1 `ECPrivateKey` (which must name its curve) as a PKCS#8 `PrivateKeyInfo`.
pub(crate) fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, KeystoreError> {
    let (seq, _) = expect(sec1, SEQUENCE)?;
    let (_version, rest) = expect(seq.body, INTEGER)?;
    let (_key, mut rest) = expect(rest, OCTET_STRING)?;
    let mut curve = None;
    while !rest.is_empty() {
        let (field, more) = read(rest)?;
        if field.tag == 0xa0 {
            let (oid, _) = expect(field.body, OID)?;
            curve = Some(oid.full);
        }
        rest = more;
    }
    let curve = curve.ok_or_else(|| {
        KeystoreError::Malformed(
            "EC private key does not name its curve; write it with openssl ec -param_enc named_curve"
                .into(),
        )
    })?;
    let mut alg = EC_PUBLIC_KEY.to_vec();
    alg.extend_from_slice(curve);
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend(encode(SEQUENCE, &alg));
    body.extend(encode(OCTET_STRING, seq.full));
    Ok(encode(SEQUENCE, &body))
}

/// Checks that `bytes` is one PKCS#8 `PrivateKeyInfo` (version, algorithm, key), nothing after.
pub(crate) fn check_pkcs8(bytes: &[u8]) -> Result<(), KeystoreError> {
    let (seq, rest) = expect(bytes, SEQUENCE)?;
    if !rest.is_empty() {
        return Err(KeystoreError::Malformed(
            "trailing bytes after private key".into(),
        ));
    }
    let (_v, rest) = expect(seq.body, INTEGER)?;
    let (_alg, rest) = expect(rest, SEQUENCE)?;
    expect(rest, OCTET_STRING)?;
    Ok(())
}
