//! The server's one error type, and the one place it becomes an HTTP answer.
//!
//! Services return [`Error`] with a kind that says what went wrong in the
//! domain's terms (a caller's mistake, something missing, a refusal, a
//! conflict, or a fault of the server); [`IntoResponse`] below maps each
//! kind to its status and the `{"error": …}` body. Faults are logged in full
//! (the same message repeated within ten seconds is counted, not logged
//! again) and answered briefly; a storage fault also marks the store as
//! failing ([`crate::health`]).

use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tend_model::diag::Diagnostics;
use tend_model::wire::ApiError;

use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or names something it may not (400).
    #[error("{0}")]
    BadRequest(String),
    /// No credentials, or credentials that are not valid (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials without the right role or scope (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such thing, or not visible to the caller (404).
    #[error("{0}")]
    NotFound(String),
    /// The thing is not in a state that allows this (409).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but the values do not fit (422).
    #[error("{0}")]
    Unprocessable(String),
    /// A recipe or document that does not validate: located diagnostics (422).
    #[error("{0}")]
    Invalid(Box<Diagnostics>),
    /// A body over its limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A body that did not arrive in time (408; the connection is closed).
    #[error("{0}")]
    BodyTimeout(String),
    /// Too busy for requests of this kind; retry after a few seconds (503).
    #[error("{0}")]
    Busy(String),
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else the server itself got wrong (500).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn bad_request(m: impl Into<String>) -> Error {
        Error::BadRequest(m.into())
    }
    pub fn unauthenticated(m: impl Into<String>) -> Error {
        Error::Unauthenticated(m.into())
    }
    pub fn forbidden(m: impl Into<String>) -> Error {
        Error::Forbidden(m.into())
    }
    pub fn not_found(m: impl Into<String>) -> Error {
        Error::NotFound(m.into())
    }
    pub fn conflict(m: impl Into<String>) -> Error {
        Error::Conflict(m.into())
    }
    pub fn unprocessable(m: impl Into<String>) -> Error {
        Error::Unprocessable(m.into())
    }
    pub fn too_large(m: impl Into<String>) -> Error {
        Error::TooLarge(m.into())
    }
    /// A fault of the server, from any error.
    pub fn internal(e: impl std::fmt::Display) -> Error {
        Error::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unprocessable(_) | Error::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Internal(format!("JSON: {e}"))
    }
}

impl From<crate::pki::PkiError> for Error {
    fn from(e: crate::pki::PkiError) -> Error {
        Error::internal(e)
    }
}

impl From<crate::secrets::SecretsError> for Error {
    fn from(e: crate::secrets::SecretsError) -> Error {
        Error::internal(e)
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Error {
        Error::internal(e)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            Error::Invalid(d) => (status, Json(*d)).into_response(),
            Error::Store(e) => {
                crate::health::note(&e);
                log_fault(&e.to_string());
                brief_fault()
            }
            Error::Internal(m) => {
                log_fault(&m);
                brief_fault()
            }
            Error::Busy(m) => {
                let mut r = json_error(status, m);
                r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
                r
            }
            Error::BodyTimeout(m) => {
                let mut r = json_error(status, m);
                r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
                r
            }
            other => json_error(status, other.to_string()),
        }
    }
}

/// `{"error": message}` with `status`.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ApiError { error: message.into() })).into_response()
}

fn brief_fault() -> Response {
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log")
}

/// Logs a fault, once for a run of the same message within ten seconds.
fn log_fault(msg: &str) {
    static LAST: std::sync::Mutex<Option<(Instant, String, u64)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    match last.as_mut() {
        Some((at, m, repeated)) if m == msg && at.elapsed() < Duration::from_secs(10) => *repeated += 1,
        _ => {
            let repeated = last.as_ref().map_or(0, |l| l.2);
            tracing::error!(error = %msg, earlier_error_repeated = repeated, "request failed");
            *last = Some((Instant::now(), msg.to_string(), 0));
        }
    }
}
