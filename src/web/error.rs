//! `WebError`: what a handler can fail with, mapped to a status and a body
//! that says nothing internal. The cause of a 5xx is logged here, inside the
//! request's span (`request{method, matched_path, ...}`, opened by `trace`
//! around every handler), and never sent to the client. A database that cannot be
//! reached is a 503 with `Retry-After`, not a 500. The body is JSON; pages
//! for people turn it into an HTML page (`html_errors`), and the API gives
//! errors the router answers itself (a method a route does not take) a JSON
//! body too (`json_errors`).

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
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
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

/// True for a failed response whose body is not of `content_type`: one the
/// router or an extractor answered (405, a rejected form) rather than a handler.
fn answered_bare(response: &Response, content_type: &str) -> bool {
    let status = response.status();
    let typed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(content_type));
    (status.is_client_error() || status.is_server_error()) && !typed
}

/// What a person is told about a failure that carries no message of its own.
fn plain_words(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => {
            "There is nothing at this address. It may have moved, or the link may be wrong."
        }
        StatusCode::METHOD_NOT_ALLOWED => "This address does not take that kind of request.",
        s if s.is_server_error() => "This page could not be shown. Try again in a few minutes.",
        _ => "The request could not be understood. Go back and try again.",
    }
}

/// Middleware for pages people read: a `WebError`'s JSON body, or a failure
/// the router answered without a page, becomes an HTML page with the same
/// status and headers (`Retry-After` and `Allow` included).
pub(super) async fn html_errors(
    State(state): State<Arc<AppState>>,
    response: Response,
) -> Response {
    let status = response.status();
    let message = match response.extensions().get::<Failure>() {
        Some(failure) => failure.message.clone(),
        None if answered_bare(&response, "text/html") => plain_words(status).to_owned(),
        None => return response,
    };
    let (heading, message) = match status {
        StatusCode::INTERNAL_SERVER_ERROR => (
            "Something went wrong",
            plain_words(StatusCode::INTERNAL_SERVER_ERROR).to_owned(),
        ),
        StatusCode::SERVICE_UNAVAILABLE => ("Briefly unavailable", message),
        StatusCode::NOT_FOUND => ("Page not found", message),
        _ => ("This request cannot be answered", message),
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

/// Middleware for the API: a failure the router answered without a body (a
/// method the route does not take) gets the API's JSON shape,
/// `{"error": "method not allowed"}`, with the same status and headers.
pub(super) async fn json_errors(response: Response) -> Response {
    if !answered_bare(&response, "application/json") {
        return response;
    }
    let reason = response
        .status()
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    let (mut parts, _) = response.into_parts();
    let (json_parts, body) = Json(json!({ "error": reason }))
        .into_response()
        .into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &json_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}

/// Any path under `/api/` that names nothing: the API's 404, in JSON.
pub(super) async fn api_not_found() -> WebError {
    WebError::NotFound("not found".to_owned())
}
