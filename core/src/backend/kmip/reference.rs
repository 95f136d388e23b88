//! The kb1 reference a KMIP ciphertext travels in: mode, Unique Identifier, IV, tag, ciphertext.

pub(super) const MODE_GCM: u8 = 1;
pub(super) const MODE_CBC: u8 = 2;
pub(super) const GCM_IV: usize = 12;
pub(super) const GCM_TAG: usize = 16;
pub(super) const CBC_IV: usize = 16;
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
/// The parts of a kb1 reference made by this backend.
pub(super) struct Reference<'a> {
    pub(super) gcm: bool,
    pub(super) uid: &'a str,
    pub(super) iv: &'a [u8],
    pub(super) tag: &'a [u8],
    pub(super) ct: &'a [u8],
}
pub(super) fn encode_reference(gcm: bool, uid: &str, iv: &[u8], tag: &[u8], ct: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(2 + uid.len() + iv.len() + tag.len() + ct.len());
    r.push(if gcm { MODE_GCM } else { MODE_CBC });
    r.push(uid.len() as u8);
    r.extend_from_slice(uid.as_bytes());
    r.extend_from_slice(iv);
    r.extend_from_slice(tag);
    r.extend_from_slice(ct);
    r
}
pub(super) fn decode_reference(r: &[u8]) -> Option<Reference<'_>> {
    let (&mode, rest) = r.split_first()?;
    let (&n, rest) = rest.split_first()?;
    if n == 0 || rest.len() < n as usize {
        return None;
    }
    let (uid, rest) = rest.split_at(n as usize);
    let uid = std::str::from_utf8(uid).ok()?;
    match mode {
        MODE_GCM if rest.len() >= GCM_IV + GCM_TAG => {
            let (iv, rest) = rest.split_at(GCM_IV);
            let (tag, ct) = rest.split_at(GCM_TAG);
            Some(Reference {
                gcm: true,
                uid,
                iv,
                tag,
                ct,
            })
        }
        MODE_CBC if rest.len() >= CBC_IV + 16 && (rest.len() - CBC_IV).is_multiple_of(16) => {
            let (iv, ct) = rest.split_at(CBC_IV);
            Some(Reference {
                gcm: false,
                uid,
                iv,
                tag: &[],
                ct,
            })
        }
        _ => None,
    }
}
