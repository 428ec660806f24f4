//! The JSON API for scripts: `GET /api/resources?category=&since=` and
//! `GET /api/resources/{id}`, in the shapes of `views` (same as the CLI's
//! `--json`), and `POST /api/announcements` behind the admin bearer token.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::announce::Request;
use crate::model::{CategorySlug, ResourceId, Route};

use super::{AppState, WebError};
use crate::store::ResourceFilter;
use crate::views::{ResourceDetailJson, ResourceJson, RevisionJson};

/// Query of `GET /api/resources`.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    category: Option<String>,
    since: Option<String>,
}

/// `GET /api/resources`.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<ResourceJson>>, WebError> {
    let since = query.since.as_deref().map(parse_since).transpose()?;
    let filter = ResourceFilter {
        category: query.category.as_deref().map(CategorySlug::from_name),
        since,
        ..ResourceFilter::default()
    };
    let resources = state.store.list_resources(&filter).await?;
    Ok(Json(resources.iter().map(ResourceJson::from).collect()))
}

/// `GET /api/resources/{id}`: the resource with its revisions.
pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ResourceDetailJson>, WebError> {
    let id = ResourceId(id);
    let resource = state
        .store
        .resource(&id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no resource with id {id}")))?;
    let revisions = state.store.revisions(&id).await?;
    Ok(Json(ResourceDetailJson {
        resource: ResourceJson::from(&resource),
        revisions: revisions.iter().map(RevisionJson::from).collect(),
    }))
}

/// Body of `POST /api/announcements`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnounceBody {
    resource_id: String,
    message: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/announcements`: 404 while `TIDINGS_ADMIN_TOKEN` is unset (the API
/// is off), 401 without the right bearer token, 400 for a bad body, 404 for an
/// unknown resource, 409 when announced before (unless `force`), 200 with the
/// rendered email for `dry_run`, else 202 once queued.
pub(super) async fn announce(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(expected) = state.config.admin.token.as_deref() else {
        return Err(WebError::NotFound("not found".to_owned()));
    };
    if !bearer_matches(&headers, expected) {
        let body = Json(json!({ "error": "missing or wrong bearer token" }));
        let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
        return Ok((StatusCode::UNAUTHORIZED, challenge, body).into_response());
    }
    let body: AnnounceBody = serde_json::from_slice(&body)
        .map_err(|e| WebError::BadRequest(format!("body is not an announcement request: {e}")))?;
    let id = ResourceId(body.resource_id);
    if body.dry_run {
        let preview = state
            .announcer
            .preview(&id, body.message.as_deref())
            .await?;
        let json = json!({
            "resource_id": id.0, "subject": preview.subject, "text": preview.text,
            "html": preview.html, "recipients": preview.recipients,
            "announced_before": !preview.previous.is_empty(),
        });
        return Ok((StatusCode::OK, Json(json)).into_response());
    }
    let request = Request {
        resource: &id,
        message: body.message.as_deref(),
        route: Route::Api,
        force: body.force,
    };
    let announced = state.announcer.announce(request, state.clock.now()).await?;
    state.wake.notify_one();
    let json = json!({
        "resource_id": id.0, "announcement_id": announced.id, "recipients": announced.recipients,
    });
    Ok((StatusCode::ACCEPTED, Json(json)).into_response())
}

/// True when `Authorization: Bearer {expected}` was sent (the scheme in any
/// case, RFC 9110 §11.1); the token is compared in constant time.
fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    else {
        return false;
    };
    // Hash both sides so the comparison takes the same time whatever the lengths.
    use sha2::{Digest, Sha256};
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

/// The token of a `Bearer` credential: the scheme matched without regard
/// to case, then one or more spaces.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// `since` is RFC 3339, or a date meaning its midnight UTC.
fn parse_since(text: &str) -> Result<DateTime<Utc>, WebError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
        .ok_or_else(|| {
            WebError::BadRequest(format!(
                "since must be an RFC 3339 time or a YYYY-MM-DD date, not {text:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER  t0k", "bEaReR t0k"] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value}");
        }
        assert_eq!(bearer_token("Basic t0k"), None);
        assert_eq!(bearer_token("Bearert0k"), None);
    }

    #[test]
    fn since_accepts_times_and_dates_and_refuses_the_rest() {
        assert_eq!(
            parse_since("2024-01-02").unwrap().to_rfc3339(),
            "2024-01-02T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2024-01-02T10:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2024-01-02T09:00:00+00:00"
        );
        assert!(matches!(
            parse_since("yesterday"),
            Err(WebError::BadRequest(_))
        ));
        assert!(matches!(
            parse_since("2024-13-01"),
            Err(WebError::BadRequest(_))
        ));
    }
}
