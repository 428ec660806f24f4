//! `WebError`: what a handler can fail with, mapped to a status and a body
//! that says nothing internal. The cause of a 5xx is logged here, inside the
//! request's span, and never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A handler's failure.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// No or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The request conflicts with what was done before.
    #[error("{0}")]
    Conflict(String),
    /// Something failed on our side; the message is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebError {
    /// An internal failure with its cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<crate::announce::AnnounceError> for WebError {
    fn from(e: crate::announce::AnnounceError) -> Self {
        use crate::announce::AnnounceError as E;
        match e {
            E::NotFound(_) => Self::NotFound(e.to_string()),
            E::AlreadyAnnounced { .. } => Self::Conflict(e.to_string()),
            E::MessageTooLong => Self::BadRequest(e.to_string()),
            E::Mail(_) | E::Store(_) => Self::internal(e),
        }
    }
}

impl From<minijinja::Error> for WebError {
    fn from(e: minijinja::Error) -> Self {
        Self::internal(format!("template: {e:#}"))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone()),
            Self::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}
