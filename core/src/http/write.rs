//! HTTP/1.1 response writing.

/// A response to serialize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra header fields (Content-Length and Date are not added here).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Appends the serialized response (status line, headers, Content-Length, body) to `out`.
pub fn write_response(resp: &Response, out: &mut Vec<u8>) {
    let _ = (resp, out);
}
