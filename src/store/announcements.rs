//! Announcements: the record of each time a resource was announced, written in
//! the same transaction as its outbox rows, and the reads the admin page needs
//! (announcement state per resource, subscriber counts, each source's last run).
//! Deciding who gets an announcement and rendering it is `mail::announce`'s.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::outbox::insert_message;
use super::{NewMessage, Store, StoreError, format_time, parse_time};
use crate::model::{ResourceId, Route};

/// An announcement to record.
#[derive(Debug, Clone)]
pub struct NewAnnouncement {
    /// Random; part of each of its outbox keys.
    pub key: String,
    /// What is announced.
    pub resource_id: ResourceId,
    /// Who asked.
    pub route: Route,
    /// The optional note from the comms team.
    pub message: Option<String>,
    /// True when announcing again on purpose.
    pub forced: bool,
}

/// An announcement as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Row id.
    pub id: i64,
    /// The resource.
    pub resource_id: String,
    /// When it was queued.
    pub at: DateTime<Utc>,
    /// `cli`, `api`, `admin` or `auto`.
    pub route: String,
    /// How many messages were queued.
    pub recipients: i64,
    /// Whether it repeated an earlier one on purpose.
    pub forced: bool,
}

/// The last run of a source, for the admin page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    /// The source's name.
    pub source: String,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// True for a successful run.
    pub ok: bool,
    /// Entries seen.
    pub entries: i64,
    /// New resources.
    pub new: i64,
    /// Changed resources.
    pub changed: i64,
    /// Why it failed.
    pub error: Option<String>,
}

impl Store {
    /// Records `new` and queues `messages` in one transaction. `Ok(None)` when
    /// the resource was announced before and `new` is not forced (nothing queued).
    /// Returns the announcement's id and how many messages were queued.
    pub(crate) async fn record_announcement(
        &self,
        new: &NewAnnouncement,
        messages: &[NewMessage],
        at: DateTime<Utc>,
    ) -> Result<Option<(i64, usize)>, StoreError> {
        let action = || format!("record the announcement of resource {}", new.resource_id);
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO announcements (announce_key, resource_id, announced_at, route, message, \
             forced) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&new.key)
        .bind(&new.resource_id.0)
        .bind(format_time(at))
        .bind(new.route.as_str())
        .bind(new.message.as_deref())
        .bind(i64::from(new.forced))
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db(action()))?;
        let Some(id) = id else {
            tx.rollback().await.map_err(StoreError::db(action()))?;
            return Ok(None);
        };
        let mut queued = 0;
        for message in messages {
            if insert_message(&mut tx, message, at)
                .await
                .map_err(StoreError::db(action()))?
            {
                queued += 1;
            }
        }
        sqlx::query("UPDATE announcements SET recipients = $1 WHERE id = $2")
            .bind(i64::try_from(queued).unwrap_or(i64::MAX))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))?;
        if queued > 0 {
            self.notify_outbox().await;
        }
        Ok(Some((id, queued)))
    }

    /// Every announcement of `resource`, oldest first.
    pub(crate) async fn announcements_of(
        &self,
        resource: &ResourceId,
    ) -> Result<Vec<Announcement>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, resource_id, announced_at, route, recipients, forced FROM announcements \
             WHERE resource_id = $1 ORDER BY id",
        )
        .bind(&resource.0)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db(format!("list announcements of {resource}")))?;
        rows.iter()
            .map(announcement)
            .collect::<Result<_, _>>()
            .map_err(StoreError::db("read announcements"))
    }

    /// The latest announcement of every announced resource.
    pub(crate) async fn latest_announcements(
        &self,
    ) -> Result<BTreeMap<String, Announcement>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, resource_id, announced_at, route, recipients, forced FROM announcements \
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("list announcements"))?;
        let mut latest = BTreeMap::new();
        for row in &rows {
            let a = announcement(row).map_err(StoreError::db("read announcements"))?;
            latest.insert(a.resource_id.clone(), a);
        }
        Ok(latest)
    }

    /// The latest run of every source that has run, by name.
    pub(crate) async fn last_runs(&self) -> Result<Vec<LastRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, finished_at, ok, entries, new, changed, error FROM source_runs \
             WHERE id IN (SELECT MAX(id) FROM source_runs GROUP BY source) ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("list the last source runs"))?;
        rows.iter()
            .map(|row| {
                Ok(LastRun {
                    source: row.try_get("source")?,
                    finished_at: parse_time(&row.try_get::<String, _>("finished_at")?)?,
                    ok: row.try_get::<i64, _>("ok")? != 0,
                    entries: row.try_get("entries")?,
                    new: row.try_get("new")?,
                    changed: row.try_get("changed")?,
                    error: row.try_get("error")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db("read the last source runs"))
    }
}

fn announcement(row: &sqlx::any::AnyRow) -> Result<Announcement, sqlx::Error> {
    Ok(Announcement {
        id: row.try_get("id")?,
        resource_id: row.try_get("resource_id")?,
        at: parse_time(&row.try_get::<String, _>("announced_at")?)?,
        route: row.try_get("route")?,
        recipients: row.try_get("recipients")?,
        forced: row.try_get::<i64, _>("forced")? != 0,
    })
}
