//! The read-only JSON API: `GET /api/resources?category=&since=` and
//! `GET /api/resources/{id}`, in the shapes of `views` (same as the CLI's `--json`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::{AppState, WebError};
use crate::model::{CategorySlug, ResourceId};
use crate::store::ResourceFilter;
use crate::views::{ResourceDetailJson, ResourceJson, RevisionJson};

/// Query of `GET /api/resources`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    category: Option<String>,
    since: Option<String>,
}

/// `GET /api/resources`.
pub async fn list(
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
pub async fn show(
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
