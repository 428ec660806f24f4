//! Reads and writes only the admin pages need: the resources list with
//! search, filters, sort and paging; announcements with their recorded
//! details; each announcement's delivery counted from its outbox rows
//! (`announcement/{key}/…`); and retrying an announcement's failed messages.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::rows::{self, resource_columns};
use super::{Store, StoreError, format_time, parse_time};
use crate::model::Resource;

/// How the admin resources list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminSort {
    /// Newest first by when Tidings first saw it (new old-dated leaflets first).
    #[default]
    FirstSeen,
    /// Newest first by the resource's own date.
    DocumentDate,
}

/// One page of the admin resources list.
#[derive(Debug, Clone, Default)]
pub struct AdminResourceQuery {
    /// Words to find in the title or summary, case-insensitive.
    pub search: Option<String>,
    /// Only this category (slug).
    pub category: Option<String>,
    /// Only this source (name).
    pub source: Option<String>,
    /// The order.
    pub sort: AdminSort,
    /// Rows per page.
    pub per_page: usize,
    /// Page number, from 1.
    pub page: usize,
}

/// An announcement as the admin pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementRecord {
    /// Row id.
    pub id: i64,
    /// Part of each of its outbox keys.
    pub key: String,
    /// The resource's id.
    pub resource_id: String,
    /// The resource's title (its id if it is gone).
    pub title: String,
    /// When it was queued.
    pub at: DateTime<Utc>,
    /// Who asked: `cli`, `api`, `admin` or `auto`.
    pub route: String,
    /// Messages queued.
    pub recipients: i64,
    /// The note from the comms team.
    pub message: Option<String>,
}

/// What became of an announcement's messages, from the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Delivery {
    /// Accepted by the mail server.
    pub sent: i64,
    /// Queued or being sent (including those waiting for a retry).
    pub waiting: i64,
    /// Given up.
    pub failed: i64,
    /// Handed over with no answer: maybe delivered.
    pub unconfirmed: i64,
    /// Recipients whose address is now suppressed.
    pub suppressed: i64,
    /// The server's last reply for failed or retrying messages, with how many had it.
    pub reasons: Vec<(String, i64)>,
}

const RECORD_SELECT: &str = "SELECT a.id, a.announce_key, a.resource_id, \
     COALESCE(r.title, a.resource_id) AS title, a.announced_at, a.route, a.recipients, \
     a.message FROM announcements a LEFT JOIN resources r ON r.id = a.resource_id";

impl Store {
    /// One page of resources (withdrawn ones too) and how many match in all.
    pub(crate) async fn admin_resources(
        &self,
        query: &AdminResourceQuery,
    ) -> Result<(Vec<Resource>, i64), StoreError> {
        let filter = " FROM resources WHERE ($1 IS NULL OR LOWER(title) LIKE $1 ESCAPE '\\' \
                      OR LOWER(summary) LIKE $1 ESCAPE '\\') \
                      AND ($2 IS NULL OR category_slug = $2) AND ($3 IS NULL OR source = $3)";
        let order = match query.sort {
            AdminSort::FirstSeen => " ORDER BY first_seen DESC, id DESC",
            AdminSort::DocumentDate => " ORDER BY published DESC, first_seen DESC, id DESC",
        };
        let pattern = query
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(like_pattern);
        let per_page = query.per_page.max(1);
        let offset = per_page.saturating_mul(query.page.saturating_sub(1));
        let sql = format!(
            "SELECT {} {filter}{order} LIMIT $4 OFFSET $5",
            resource_columns!()
        );
        let action = || StoreError::db("list resources for the admin page");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(pattern.clone())
            .bind(query.category.clone())
            .bind(query.source.clone())
            .bind(i64::try_from(per_page).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(action())?;
        let found = rows
            .iter()
            .map(rows::resource)
            .collect::<Result<Vec<_>, _>>()
            .map_err(action())?;
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) {filter}")))
            .bind(pattern)
            .bind(query.category.clone())
            .bind(query.source.clone())
            .fetch_one(&self.pool)
            .await
            .map_err(action())?;
        Ok((found, total))
    }

    /// Every source name that has resources, sorted.
    pub(crate) async fn admin_source_names(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT DISTINCT source FROM resources ORDER BY source")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("list source names"))
    }

    /// Announcement `id`, if recorded.
    pub(crate) async fn announcement_record(
        &self,
        id: i64,
    ) -> Result<Option<AnnouncementRecord>, StoreError> {
        let sql = format!("{RECORD_SELECT} WHERE a.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("read announcement {id}")))?;
        row.as_ref()
            .map(record)
            .transpose()
            .map_err(StoreError::db(format!("read announcement {id}")))
    }

    /// The newest `limit` announcements, newest first.
    pub(crate) async fn recent_announcements(
        &self,
        limit: usize,
    ) -> Result<Vec<AnnouncementRecord>, StoreError> {
        let sql = format!("{RECORD_SELECT} ORDER BY a.id DESC LIMIT $1");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await;
        rows.and_then(|rows| rows.iter().map(record).collect())
            .map_err(StoreError::db("list announcements"))
    }

    /// What became of the messages of the announcement keyed `key`.
    pub(crate) async fn announcement_delivery(&self, key: &str) -> Result<Delivery, StoreError> {
        let action = || StoreError::db(format!("count the messages of announcement {key}"));
        let pattern = format!("announcement/{}/%", like_escape(key));
        let rows = sqlx::query(
            "SELECT o.status, o.last_error, COUNT(*) AS n, \
             COUNT(CASE WHEN s.status = 'suppressed' THEN 1 END) AS suppressed \
             FROM outbox o LEFT JOIN subscribers s ON s.id = o.subscriber_id \
             WHERE o.idem_key LIKE $1 ESCAPE '\\' GROUP BY o.status, o.last_error \
             ORDER BY n DESC",
        )
        .bind(pattern)
        .fetch_all(&self.pool)
        .await
        .map_err(action())?;
        let mut delivery = Delivery::default();
        for row in &rows {
            let decode = || -> Result<(String, Option<String>, i64, i64), sqlx::Error> {
                Ok((
                    row.try_get("status")?,
                    row.try_get("last_error")?,
                    row.try_get("n")?,
                    row.try_get("suppressed")?,
                ))
            };
            let (status, error, n, suppressed) = decode().map_err(action())?;
            delivery.suppressed += suppressed;
            match status.as_str() {
                "sent" => delivery.sent += n,
                "failed" => delivery.failed += n,
                "unconfirmed" => delivery.unconfirmed += n,
                _ => delivery.waiting += n,
            }
            if status != "sent"
                && let Some(error) = error.filter(|e| !e.is_empty())
            {
                delivery.reasons.push((error, n));
            }
        }
        Ok(delivery)
    }

    /// Re-queues the failed messages of the announcement keyed `key` to be
    /// sent at `now`, as `tidings outbox retry` does; returns how many.
    pub(crate) async fn retry_announcement(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1, attempts = 0, \
             claimed_until = NULL, handed_over_at = NULL \
             WHERE status = 'failed' AND idem_key LIKE $2 ESCAPE '\\'",
        )
        .bind(format_time(now))
        .bind(format!("announcement/{}/%", like_escape(key)))
        .execute(&self.pool)
        .await
        .map(|done| done.rows_affected())
        .map_err(StoreError::db(format!("retry announcement {key}")))?;
        if done > 0 {
            self.notify_outbox().await;
        }
        Ok(done)
    }
}

/// `%words%` in lower case, with LIKE's wildcards taken literally.
fn like_pattern(words: &str) -> String {
    format!("%{}%", like_escape(&words.to_lowercase()))
}

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn record(row: &AnyRow) -> Result<AnnouncementRecord, sqlx::Error> {
    Ok(AnnouncementRecord {
        id: row.try_get("id")?,
        key: row.try_get("announce_key")?,
        resource_id: row.try_get("resource_id")?,
        title: row.try_get("title")?,
        at: parse_time(&row.try_get::<String, _>("announced_at")?)?,
        route: row.try_get("route")?,
        recipients: row.try_get("recipients")?,
        message: row.try_get("message")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_match_literally() {
        assert_eq!(like_pattern("50% Off_x"), "%50\\% off\\_x%");
    }
}
