//! What a Vault answer means: a node that cannot serve, or the error a client gets.

use super::*;

/// Why a Vault answer means its node cannot serve now (sealed, standby, 5xx), and whether
/// Vault certainly did nothing with the request.
pub(super) fn node_failure(resp: &HttpResponse) -> Option<(String, bool)> {
    let msg = vault::errors(&resp.body);
    let lower = msg.to_ascii_lowercase();
    let s = resp.status;
    match s {
        _ if s >= 500 && lower.contains("sealed") => Some(("Vault is sealed".into(), true)),
        429 | 473 | 503 => Some((
            format!("Vault node is a standby or unavailable ({s} {msg})"),
            true,
        )),
        307 | 308 => Some((
            format!("Vault node is a standby: it redirects ({s}) to the active node"),
            true,
        )),
        500..=599 => Some((format!("Vault answered {s}: {msg}"), false)),
        _ => None,
    }
}

/// A decrypt refused because its key version is below `min_decryption_version`.
pub(super) fn retired(item: &DecItem, min: Option<u32>) -> BackendError {
    BackendError::VersionRetired {
        key: item.key.clone(),
        version: item.version,
        min,
    }
}

pub(super) fn status_ok(s: u16) -> bool {
    (200..300).contains(&s)
}

/// A 400 to a batch that still carries per-item `batch_results` (some items failed).
pub(super) fn partial_batch_failure(resp: &HttpResponse, items: usize) -> bool {
    resp.status == 400 && items > 1 && resp.body.windows(13).any(|w| w == b"batch_results")
}

impl VaultBackend {
    pub(super) fn map_error(
        &self,
        req: &VaultRequest,
        resp: &HttpResponse,
        decrypting: bool,
        key: &str,
    ) -> BackendError {
        let msg = vault::errors(&resp.body);
        let path = req
            .path
            .trim_start_matches("/v1/")
            .split('?')
            .next()
            .unwrap_or("")
            .to_owned();
        let lower = msg.to_ascii_lowercase();
        match resp.status {
            403 if lower.contains("permission denied") => {
                let cap = if req.method == "GET" {
                    "read"
                } else {
                    "update"
                };
                let ns = self
                    .cfg
                    .namespace
                    .as_deref()
                    .map(|n| format!(" in namespace {n:?}"))
                    .unwrap_or_default();
                BackendError::Failed(format!(
                    "Vault denied {} {}: permission denied; the token's policy needs {cap:?} on path \"{path}\"{ns}",
                    req.method, req.path
                ))
            }
            503 | 429 | 473 | 307 | 308 | 500
                if resp.status != 500 || lower.contains("sealed") || lower.contains("standby") =>
            {
                let ra = resp
                    .header("retry-after")
                    .and_then(|s| s.parse().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(RETRY_AFTER);
                let reason = if lower.contains("sealed") {
                    "Vault is sealed".to_owned()
                } else if lower.contains("standby") || matches!(resp.status, 307 | 308 | 429 | 473)
                {
                    "Vault node is a standby".to_owned()
                } else {
                    format!("Vault answered {}: {msg}", resp.status)
                };
                BackendError::Unavailable {
                    reason,
                    retry_after: ra,
                }
            }
            404 => BackendError::UnknownKey(key.to_owned()),
            400 if decrypting => bad_ciphertext(),
            400 if lower.contains("not found") || lower.contains("no existing key") => {
                BackendError::UnknownKey(key.to_owned())
            }
            400 => BackendError::BadRequest(format!(
                "Vault refused {} {}: {msg}",
                req.method, req.path
            )),
            s => BackendError::Failed(format!(
                "Vault answered {s} to {} {}: {msg}",
                req.method, req.path
            )),
        }
    }
}
