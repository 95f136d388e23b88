//! What can go wrong with a call: the server's error answer, no server reachable, bad setup.
use crate::Answer;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error (`{"error":{"code","message","request_id"}}`).
    Api(ApiError),
    /// No server answered: every URL failed to connect, or the connection broke; says why per URL.
    Transport(String),
    /// The client's own setup is unusable (URL, CA, identity, key name); nothing was sent.
    Config(String),
    /// A server answered something that is not keybroker's API.
    Protocol(String),
}

impl Error {
    /// The API's snake_case `code`, for an error answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api(a) => Some(&a.code),
            _ => None,
        }
    }

    /// The `request_id` the server gave the failed request (quote it to the operator).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(a) => a.request_id.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(a) => Some(a.status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(a) => a.fmt(f),
            Error::Transport(why) => write!(f, "no server answered: {why}"),
            Error::Config(why) => write!(f, "client setup: {why}"),
            Error::Protocol(why) => write!(f, "unexpected answer: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// An error answer of the API (docs/api.md, "Errors").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// snake_case code, e.g. `bad_ciphertext`, `unknown_client`, `overloaded`.
    pub code: String,
    /// The server's sentence.
    pub message: String,
    /// The request's id, from the body or the `X-Request-Id` header.
    pub request_id: Option<String>,
    /// `Retry-After`, on 429/503.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// Reads an error answer; a body that is not the API's error shape still gives the status.
    pub fn from_answer(a: &Answer) -> ApiError {
        let v = a.json();
        let e = &v["error"];
        let s = |name: &str| e[name].as_str().map(str::to_owned);
        ApiError {
            status: a.status,
            code: s("code").unwrap_or_else(|| format!("http_{}", a.status)),
            message: s("message").unwrap_or_default(),
            request_id: s("request_id").or_else(|| a.request_id().map(str::to_owned)),
            retry_after: a
                .header("retry-after")
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_secs),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        Ok(())
    }
}

/// One failed item of a batch call (the call itself succeeded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// snake_case code, as for a whole call.
    pub code: String,
    /// The server's sentence.
    pub message: String,
}

impl ItemError {
    /// The item's error, if the answer item is `{"error":{…}}`.
    pub(crate) fn from_item(v: &Value) -> Option<ItemError> {
        let e = v.get("error")?;
        Some(ItemError {
            code: e["code"].as_str().unwrap_or("unknown").to_owned(),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ItemError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, headers: &[(&str, &str)]) -> Answer {
        Answer {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn an_error_answer_keeps_code_and_request_id() {
        let a = answer(
            503,
            r#"{"error":{"code":"overloaded","message":"busy","request_id":"r-1"}}"#,
            &[("retry-after", "1"), ("x-request-id", "r-1")],
        );
        let e = Error::Api(ApiError::from_answer(&a));
        assert_eq!(e.code(), Some("overloaded"));
        assert_eq!(e.request_id(), Some("r-1"));
        assert_eq!(e.status(), Some(503));
        assert_eq!(e.to_string(), "503 overloaded: busy (request r-1)");
        let Error::Api(api) = e else { unreachable!() };
        assert_eq!(api.retry_after, Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_foreign_error_body_still_gives_status_and_header_id() {
        let a = answer(502, "<html>bad gateway</html>", &[("x-request-id", "h-9")]);
        let e = ApiError::from_answer(&a);
        assert_eq!(e.code, "http_502");
        assert_eq!(e.request_id.as_deref(), Some("h-9"));
        assert_eq!(e.message, "");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any answer at all reads without a panic, and keeps its status.
        #[test]
        fn any_answer_reads(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..300),
                            retry in ".{0,12}", id in ".{0,20}") {
            let a = Answer {
                status,
                headers: vec![("retry-after".into(), retry), ("x-request-id".into(), id)],
                body,
            };
            let e = ApiError::from_answer(&a);
            prop_assert_eq!(e.status, status);
            prop_assert!(!e.code.is_empty());
            let _ = e.to_string();
        }

        /// The API's error shape comes back field for field.
        #[test]
        fn the_error_shape_round_trips(code in "[a-z_]{1,30}", message in ".{0,80}",
                                       id in "[A-Za-z0-9._:-]{1,64}", secs in 0u64..100_000) {
            let body = serde_json::json!({"error": {"code": code, "message": message, "request_id": id}});
            let a = Answer {
                status: 503,
                headers: vec![("retry-after".into(), secs.to_string())],
                body: body.to_string().into_bytes(),
            };
            let e = ApiError::from_answer(&a);
            prop_assert_eq!(&e.code, &code);
            prop_assert_eq!(&e.message, &message);
            prop_assert_eq!(e.request_id.as_deref(), Some(id.as_str()));
            prop_assert_eq!(e.retry_after, Some(Duration::from_secs(secs)));
        }
    }
}
