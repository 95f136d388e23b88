//! KMIP Result Reasons and how a failed answer becomes a [`BackendError`].
use super::*;

// Result Reason values (KMIP 1.0–2.0).
pub(super) const R_ITEM_NOT_FOUND: u32 = 0x01;
pub(super) const R_AUTHENTICATION: u32 = 0x03;
pub(super) const R_INVALID_MESSAGE: u32 = 0x04;
pub(super) const R_MISSING_DATA: u32 = 0x06;
pub(super) const R_INVALID_FIELD: u32 = 0x07;
pub(super) const R_CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;
pub(super) const R_PERMISSION_DENIED: u32 = 0x0C;
pub(super) const R_WRONG_KEY_LIFECYCLE_STATE: u32 = 0x43;
pub(super) const R_GENERAL_FAILURE: u32 = 0x100;
/// Maps a failed batch item to a clear error; Decrypt failures about the data become 400.
pub(super) fn hsm_error(op: &'static str, r: &BatchResult, credential: bool) -> BackendError {
    match r.reason {
        Some(R_AUTHENTICATION) => BackendError::Failed(format!(
            "the HSM refused keybroker's client certificate (kms.keystore.alias){} on {op}: {}",
            if credential {
                " or its credential (keybroker.hsm.kmip.username and password)"
            } else {
                ""
            },
            r.describe()
        )),
        Some(R_PERMISSION_DENIED) => {
            BackendError::Failed(format!("the HSM denied {op}: {}", r.describe()))
        }
        Some(
            R_ITEM_NOT_FOUND
            | R_CRYPTOGRAPHIC_FAILURE
            | R_GENERAL_FAILURE
            | R_INVALID_FIELD
            | R_INVALID_MESSAGE
            | R_MISSING_DATA,
        )
        | None
            if op == "Decrypt" =>
        {
            bad_ciphertext()
        }
        _ => BackendError::Failed(format!("the HSM answered {op} with {}", r.describe())),
    }
}
pub(super) fn unavailable(reason: impl Into<String>, retry_after: Duration) -> BackendError {
    BackendError::Unavailable {
        reason: reason.into(),
        retry_after: retry_after.max(Duration::from_secs(1)),
    }
}
