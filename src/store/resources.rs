//! Reading the store: resources for feeds, pages and the CLI; the state a
//! reconcile starts from; revisions, change events, categories, the feed version
//! and the last good run. Writing is `apply`'s.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use super::batch::Placeholders;
use super::rows::{self, resource_columns};
use super::upgrade::identity_digest;
use super::{Store, StoreError, format_time};
use crate::model::{Category, CategorySlug, ChangeEvent, Resource, ResourceId, Revision};
use crate::reconcile::StoredResource;

/// Identities looked up per query; well under every backend's bind-parameter limit.
const IDENTITY_CHUNK: usize = 500;

/// Which resources `Store::list_resources` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceFilter {
    /// Only this category.
    pub category: Option<CategorySlug>,
    /// Only resources updated at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Withdrawn resources too.
    pub include_withdrawn: bool,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

/// What a reconcile of one source starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileState {
    /// The source's resources (withdrawn included) and any other with an observed identity.
    pub stored: Vec<StoredResource>,
    /// The source's run counter when this was loaded; `Store::apply` checks it.
    pub run_seq: i64,
}

impl Store {
    /// Loads what reconciling `source` needs: its resources, any resource of
    /// another source whose identity is among `identities`, and its `run_seq`.
    ///
    /// `run_seq` is read first: a run committed in between makes `apply` refuse,
    /// never write from state older than the counter it checks.
    pub async fn stored_for_reconcile(
        &self,
        source: &str,
        identities: &[String],
    ) -> Result<ReconcileState, StoreError> {
        let action = || format!("load the stored state of source {source}");
        let run_seq = sqlx::query_scalar("SELECT run_seq FROM source_state WHERE source = $1")
            .bind(source)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(action()))?
            .unwrap_or(0);
        let sql = concat!(
            "SELECT ",
            resource_columns!(),
            " FROM resources WHERE source = $1"
        );
        let rows = sqlx::query(sql).bind(source).fetch_all(&self.pool).await;
        let mut stored = decode_all(rows, rows::stored).map_err(StoreError::db(action()))?;
        let known: std::collections::HashSet<&str> = stored
            .iter()
            .map(|s| s.resource.identity.as_str())
            .collect();
        let others: Vec<&String> = identities
            .iter()
            .filter(|i| !known.contains(i.as_str()))
            .collect();
        for chunk in others.chunks(IDENTITY_CHUNK) {
            let more = self.stored_by_identity(source, chunk).await;
            stored.extend(more.map_err(StoreError::db(action()))?);
        }
        Ok(ReconcileState { stored, run_seq })
    }

    /// Resources of other sources than `source` with one of `identities`.
    async fn stored_by_identity(
        &self,
        source: &str,
        identities: &[&String],
    ) -> Result<Vec<StoredResource>, sqlx::Error> {
        let mut p = Placeholders::new(self.backend);
        // Only generated placeholders are interpolated; every value is bound.
        let sql = format!(
            concat!(
                "SELECT ",
                resource_columns!(),
                " FROM resources WHERE source <> {} AND identity_digest IN ({})"
            ),
            p.next(),
            p.list(identities.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(source);
        for identity in identities {
            query = query.bind(identity_digest(identity));
        }
        decode_all(query.fetch_all(&self.pool).await, rows::stored)
    }

    /// Resources matching `filter`, newest first: by published date, then first seen, then id.
    pub async fn list_resources(
        &self,
        filter: &ResourceFilter,
    ) -> Result<Vec<Resource>, StoreError> {
        let sql = concat!(
            "SELECT ",
            resource_columns!(),
            " FROM resources WHERE ($1 IS NULL OR category_slug = $1)",
            " AND ($2 IS NULL OR updated >= $2) AND ($3 = 1 OR withdrawn_at IS NULL)",
            " ORDER BY published DESC, first_seen DESC, id DESC LIMIT $4"
        );
        let limit = filter
            .limit
            .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let rows = sqlx::query(sql)
            .bind(filter.category.as_ref().map(|c| c.as_str().to_owned()))
            .bind(filter.since.map(format_time))
            .bind(i64::from(filter.include_withdrawn))
            .bind(limit)
            .fetch_all(&self.pool)
            .await;
        decode_all(rows, rows::resource).map_err(StoreError::db("list resources"))
    }

    /// One resource, withdrawn or not.
    pub async fn resource(&self, id: &ResourceId) -> Result<Option<Resource>, StoreError> {
        let sql = concat!(
            "SELECT ",
            resource_columns!(),
            " FROM resources WHERE id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id.0.as_str())
            .fetch_optional(&self.pool)
            .await;
        row.and_then(|r| r.as_ref().map(rows::resource).transpose())
            .map_err(StoreError::db(format!("load resource {id}")))
    }

    /// A resource's revisions, oldest first; `NotFound` for an unknown id.
    pub async fn revisions(&self, id: &ResourceId) -> Result<Vec<Revision>, StoreError> {
        let sql = "SELECT seq, seen_at, title, link, summary, entry_date, category, download \
                   FROM revisions WHERE resource_id = $1 ORDER BY seq";
        let rows = sqlx::query(sql)
            .bind(id.0.as_str())
            .fetch_all(&self.pool)
            .await;
        let revisions = decode_all(rows, rows::revision)
            .map_err(StoreError::db(format!("load revisions of {id}")))?;
        if revisions.is_empty() {
            // Every resource has revision 1, so none means no such resource.
            return Err(StoreError::NotFound {
                what: format!("resource {id}"),
            });
        }
        Ok(revisions)
    }

    /// A resource's change events, oldest first.
    pub async fn events_for(&self, id: &ResourceId) -> Result<Vec<ChangeEvent>, StoreError> {
        let sql = "SELECT id, resource_id, source, kind, fields, at \
                   FROM change_events WHERE resource_id = $1 ORDER BY id";
        let rows = sqlx::query(sql)
            .bind(id.0.as_str())
            .fetch_all(&self.pool)
            .await;
        decode_all(rows, rows::event).map_err(StoreError::db(format!("load change events of {id}")))
    }

    /// A number that moves whenever an apply records a change; feeds re-render when it does.
    pub async fn feed_version(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT feed_version FROM store_meta WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("read the feed version"))
    }

    /// Categories of the resources that are not withdrawn, by slug.
    pub async fn categories_in_use(&self) -> Result<Vec<Category>, StoreError> {
        let sql = "SELECT MIN(category) FROM resources WHERE withdrawn_at IS NULL \
                   GROUP BY category_slug ORDER BY category_slug";
        let names: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("list categories in use"))?;
        Ok(names.into_iter().map(Category::new).collect())
    }

    /// Entries and time of the source's last successful run, for the
    /// "implausibly short snapshot" guard.
    pub async fn last_good_run(
        &self,
        source: &str,
    ) -> Result<Option<(usize, DateTime<Utc>)>, StoreError> {
        let sql = "SELECT last_good_entries, last_good_at FROM source_state \
                   WHERE source = $1 AND last_good_at IS NOT NULL";
        let row = sqlx::query(sql)
            .bind(source)
            .fetch_optional(&self.pool)
            .await;
        let decode = |row: &AnyRow| -> Result<(usize, DateTime<Utc>), sqlx::Error> {
            let entries: i64 = sqlx::Row::try_get(row, "last_good_entries")?;
            Ok((
                usize::try_from(entries).unwrap_or(0),
                rows::time_col(row, "last_good_at")?,
            ))
        };
        row.and_then(|r| r.as_ref().map(decode).transpose())
            .map_err(StoreError::db(format!(
                "load the last good run of source {source}"
            )))
    }
}

/// Decodes every row, failing on the first bad one.
fn decode_all<T>(
    rows: Result<Vec<AnyRow>, sqlx::Error>,
    decode: fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, sqlx::Error> {
    rows?.iter().map(decode).collect()
}
