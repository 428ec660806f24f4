//! Conversions between rows and domain types, shared by the reads and the apply
//! transaction: the stored forms of links, summaries (JSON), dates and times.

use sqlx::Row;
use sqlx::any::AnyRow;
use url::Url;

use super::{format_time, parse_time};
use crate::model::{
    Category, ChangeEvent, ChangeKind, EntryDate, Resource, ResourceId, Revision, Summary,
};
use crate::reconcile::{FieldChange, Observed, StoredResource};

/// The columns `resource` and `stored` read, in a form `concat!` accepts.
macro_rules! resource_columns {
    () => {
        "id, source, identity, guid, title, link, summary, entry_date, category, download, \
         fingerprint, first_seen, updated, withdrawn_at, missing_runs"
    };
}
pub(super) use resource_columns;

/// The content columns of one version of a resource, ready to bind.
pub(super) struct Content {
    pub title: String,
    pub link: Option<String>,
    pub summary: String,
    pub entry_date: Option<String>,
    pub category: String,
    pub category_slug: String,
    pub download: Option<String>,
    pub fingerprint: String,
    /// The entry's own date as a time; `None` means "use first_seen".
    pub dated: Option<String>,
}

impl Content {
    /// The stored form of what was observed.
    pub(super) fn of(obs: &Observed) -> Self {
        let e = &obs.entry;
        Self {
            title: e.title.clone(),
            link: e.link.as_ref().map(Url::to_string),
            summary: serde_json::to_string(&e.summary)
                .expect("a Summary is strings and lists only, which always serialise"),
            entry_date: e.date.map(|d| d.to_string()),
            category: obs.category.name.clone(),
            category_slug: obs.category.slug.to_string(),
            download: e.download.as_ref().map(Url::to_string),
            fingerprint: obs.fingerprint.clone(),
            // Same rule as Resource::published: midnight UTC of the first day.
            dated: e
                .date
                .and_then(|d| d.first_day().and_hms_opt(0, 0, 0))
                .map(|t| format_time(t.and_utc())),
        }
    }
}

/// A decode error naming the column and the bad value.
fn bad(column: &str, value: &str, why: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("bad {column} {value:?}: {why}").into())
}

fn url_col(row: &AnyRow, column: &str) -> Result<Option<Url>, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| Url::parse(&t).map_err(|e| bad(column, &t, e)))
        .transpose()
}

fn summary_col(row: &AnyRow) -> Result<Summary, sqlx::Error> {
    let text: String = row.try_get("summary")?;
    serde_json::from_str(&text).map_err(|e| bad("summary", &text, e))
}

fn date_col(row: &AnyRow) -> Result<Option<EntryDate>, sqlx::Error> {
    let text: Option<String> = row.try_get("entry_date")?;
    text.map(|t| EntryDate::parse_stored(&t).ok_or_else(|| bad("entry_date", &t, "not a date")))
        .transpose()
}

pub(super) fn time_col(
    row: &AnyRow,
    column: &str,
) -> Result<chrono::DateTime<chrono::Utc>, sqlx::Error> {
    parse_time(&row.try_get::<String, _>(column)?)
}

fn opt_time_col(
    row: &AnyRow,
    column: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    text.as_deref().map(parse_time).transpose()
}

/// A resource from a row with `resource_columns!()`.
pub(super) fn resource(row: &AnyRow) -> Result<Resource, sqlx::Error> {
    Ok(Resource {
        id: ResourceId(row.try_get("id")?),
        source: row.try_get("source")?,
        identity: row.try_get("identity")?,
        guid: row.try_get("guid")?,
        title: row.try_get("title")?,
        link: url_col(row, "link")?,
        summary: summary_col(row)?,
        date: date_col(row)?,
        category: Category::new(row.try_get::<String, _>("category")?),
        download: url_col(row, "download")?,
        fingerprint: row.try_get("fingerprint")?,
        first_seen: time_col(row, "first_seen")?,
        updated: time_col(row, "updated")?,
        withdrawn_at: opt_time_col(row, "withdrawn_at")?,
    })
}

/// A resource with its missing-run count, from a row with `resource_columns!()`.
pub(super) fn stored(row: &AnyRow) -> Result<StoredResource, sqlx::Error> {
    let missing: i64 = row.try_get("missing_runs")?;
    Ok(StoredResource {
        resource: resource(row)?,
        missing_runs: u32::try_from(missing)
            .map_err(|e| bad("missing_runs", &missing.to_string(), e))?,
    })
}

/// A revision from a `revisions` row.
pub(super) fn revision(row: &AnyRow) -> Result<Revision, sqlx::Error> {
    Ok(Revision {
        seq: row.try_get("seq")?,
        seen_at: time_col(row, "seen_at")?,
        title: row.try_get("title")?,
        link: url_col(row, "link")?,
        summary: summary_col(row)?,
        date: date_col(row)?,
        category: Category::new(row.try_get::<String, _>("category")?),
        download: url_col(row, "download")?,
    })
}

/// A change event from a `change_events` row.
pub(super) fn event(row: &AnyRow) -> Result<ChangeEvent, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let fields: String = row.try_get("fields")?;
    Ok(ChangeEvent {
        id: row.try_get("id")?,
        resource_id: ResourceId(row.try_get("resource_id")?),
        source: row.try_get("source")?,
        kind: ChangeKind::parse(&kind).ok_or_else(|| bad("kind", &kind, "unknown kind"))?,
        fields: serde_json::from_str::<Vec<FieldChange>>(&fields)
            .map_err(|e| bad("fields", &fields, e))?,
        at: time_col(row, "at")?,
    })
}
