//! `WebError`: what a handler can fail with, mapped to a status and a body
//! that says nothing internal. The cause of a 5xx is logged here, inside the
//! request's span (`request{method, matched_path, ...}`, opened by `trace`
//! around every handler), and never sent to the client. A database that cannot be
//! reached is a 503 with `Retry-After`, not a 500. The body is JSON; pages
//! for people turn it into an HTML page (`html_errors`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// Seconds a client is asked to wait when the database is unreachable.
const DATABASE_RETRY_AFTER_S: u32 = 10;

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
    /// Something this request needs is not available now; try again later.
    #[error("{message}")]
    Unavailable {
        /// Sent as `Retry-After`.
        retry_after_s: u32,
        /// What the client is told.
        message: String,
    },
    /// Something failed on our side; the message is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebError {
    /// An internal failure with its cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The database could not be reached; the cause is logged.
    fn database_unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "database unavailable; answering 503");
        Self::Unavailable {
            retry_after_s: DATABASE_RETRY_AFTER_S,
            message: "The service cannot reach its database just now. Try again in a minute."
                .to_owned(),
        }
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            Self::database_unavailable(e)
        } else {
            Self::internal(e)
        }
    }
}

impl From<crate::announce::AnnounceError> for WebError {
    fn from(e: crate::announce::AnnounceError) -> Self {
        use crate::announce::AnnounceError as E;
        match e {
            E::NotFound(_) => Self::NotFound(e.to_string()),
            E::AlreadyAnnounced { .. } => Self::Conflict(e.to_string()),
            E::MessageTooLong => Self::BadRequest(e.to_string()),
            E::Store(store) => store.into(),
            E::Mail(_) => Self::internal(e),
        }
    }
}

impl From<minijinja::Error> for WebError {
    fn from(e: minijinja::Error) -> Self {
        Self::internal(format!("template: {e:#}"))
    }
}

/// What a failed response was, kept on it so `html_errors` can show it as a page.
#[derive(Debug, Clone)]
struct Failure {
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone()),
            Self::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            Self::Unavailable { message, .. } => (StatusCode::SERVICE_UNAVAILABLE, message.clone()),
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if let Self::Unavailable { retry_after_s, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        response.extensions_mut().insert(Failure { message });
        response
    }
}

/// Middleware for pages people read: a `WebError`'s JSON body becomes an
/// HTML page with the same status and headers (`Retry-After` included).
pub async fn html_errors(State(state): State<Arc<AppState>>, response: Response) -> Response {
    let Some(failure) = response.extensions().get::<Failure>().cloned() else {
        return response;
    };
    let status = response.status();
    let (heading, message) = match status {
        StatusCode::INTERNAL_SERVER_ERROR => (
            "Something went wrong",
            "This page could not be shown. Try again in a few minutes.".to_owned(),
        ),
        StatusCode::SERVICE_UNAVAILABLE => ("Briefly unavailable", failure.message),
        StatusCode::NOT_FOUND => ("Page not found", failure.message),
        _ => ("This request cannot be answered", failure.message),
    };
    let Ok(page) = super::pages::error_page(&state, status, heading, &message) else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    let (page_parts, body) = page.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &page_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}
