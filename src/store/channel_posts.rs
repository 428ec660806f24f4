//! `channel_posts`: the outbox of chat channels and webhooks (#17). One row
//! per (channel, event) under a unique idempotency key, its body rendered when
//! queued; claimed with a lease like mail (SQLite's write lock vs PostgreSQL's
//! `FOR UPDATE SKIP LOCKED`). `requested_at` is written (only while unset)
//! just before the request leaves: a row whose sender died after that point
//! becomes `unconfirmed` instead of being posted again.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::{Backend, Store, StoreError, format_time, parse_time};

/// A post to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPost {
    /// Unique: a second insert with the same key is a no-op.
    pub idem_key: String,
    /// The channel's name.
    pub channel: String,
    /// `new`, `changed`, `withdrawn`, `announcement` or `test`.
    pub event: &'static str,
    /// The resource it is about (none for a test post).
    pub resource_id: Option<String>,
    /// The resource's title, for `outbox list`.
    pub title: String,
    /// The request body, as sent.
    pub body: String,
}

/// A row claimed for posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedPost {
    /// Row id.
    pub id: i64,
    /// Idempotency key (`Idempotency-Key` and `webhook-id`).
    pub idem_key: String,
    /// The channel's name.
    pub channel: String,
    /// The request body.
    pub body: String,
    /// Attempts including this one.
    pub attempts: i64,
}

/// A row as `outbox list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRow {
    /// Row id.
    pub id: i64,
    /// Idempotency key.
    pub idem_key: String,
    /// The channel's name.
    pub channel: String,
    /// The event.
    pub event: String,
    /// The resource's title.
    pub title: String,
    /// `queued`, `sending`, `sent`, `failed` or `unconfirmed`.
    pub status: String,
    /// Requests tried so far.
    pub attempts: i64,
    /// When it may next be tried.
    pub next_attempt_at: DateTime<Utc>,
    /// The last error (a status and the body's reason, a timeout…).
    pub last_error: Option<String>,
    /// When the receiver accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

const CLAIM_WHERE: &str = "(status = 'queued' AND next_attempt_at <= $1) \
                           OR (status = 'sending' AND claimed_until < $1 AND requested_at IS NULL)";

/// Why a row is `unconfirmed` when its sender died after the request left.
const ORPHANED: &str = "the process posting it stopped after sending the request, which the \
                        receiver may have; not posted again";

impl Store {
    /// Queues posts in one transaction; returns how many were new (the
    /// others' keys were queued before).
    pub async fn queue_posts(
        &self,
        posts: &[NewPost],
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let action = "queue channel posts";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        let mut added = 0;
        for post in posts {
            let result = sqlx::query(
                "INSERT INTO channel_posts (idem_key, channel, event, resource_id, title, body, \
                 status, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7) \
                 ON CONFLICT (idem_key) DO NOTHING",
            )
            .bind(post.idem_key.clone())
            .bind(post.channel.clone())
            .bind(post.event)
            .bind(post.resource_id.clone())
            .bind(post.title.clone())
            .bind(post.body.clone())
            .bind(format_time(at))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
            added += usize::try_from(result.rows_affected()).unwrap_or(0);
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(added)
    }

    /// Claims up to `limit` due posts until `lease_until`, counting an attempt
    /// on each; first turns orphans that were requested into `unconfirmed`.
    pub async fn claim_posts(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedPost>, StoreError> {
        let action = "claim channel posts";
        sqlx::query(
            "UPDATE channel_posts SET status = 'unconfirmed', last_error = $2, claimed_until = NULL \
             WHERE status = 'sending' AND claimed_until < $1 AND requested_at IS NOT NULL",
        )
        .bind(format_time(now))
        .bind(ORPHANED)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(action))?;
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE channel_posts SET status = 'sending', attempts = attempts + 1, \
             claimed_until = $2 \
             WHERE id IN (SELECT id FROM channel_posts WHERE {CLAIM_WHERE} \
             ORDER BY next_attempt_at, id LIMIT $3{lock}) \
             RETURNING id, idem_key, channel, body, attempts"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(format_time(now))
            .bind(format_time(lease_until))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(action))?;
        let mut claimed: Vec<ClaimedPost> = rows
            .iter()
            .map(|row| {
                Ok(ClaimedPost {
                    id: row.try_get("id")?,
                    idem_key: row.try_get("idem_key")?,
                    channel: row.try_get("channel")?,
                    body: row.try_get("body")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db(action))?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Records that the request of post `id` is about to leave; true only for
    /// the first caller (a claimant whose lease ran out learns it lost the row).
    pub async fn mark_requested(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE channel_posts SET requested_at = $2 \
             WHERE id = $1 AND status = 'sending' AND requested_at IS NULL",
        )
        .bind(id)
        .bind(format_time(at))
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(StoreError::db(format!(
            "record the request of channel post {id}"
        )))
    }

    /// Records the outcome of post `id`: `sent`, `failed` or `unconfirmed`
    /// with `error`, or (`retry_at` set) back in the queue.
    pub async fn finish_post(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (status, next) = match retry_at {
            Some(next) => ("queued", next),
            None => (status, at),
        };
        let sent_at = (status == "sent").then(|| format_time(at));
        sqlx::query(
            "UPDATE channel_posts SET status = $2, last_error = $3, next_attempt_at = $4, \
             sent_at = $5, claimed_until = NULL, requested_at = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(format_time(next))
        .bind(sent_at)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::db(format!(
            "record the outcome of channel post {id}"
        )))
    }

    /// When the earliest queued post is due, if any is queued.
    pub async fn next_post_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM channel_posts WHERE status = 'queued'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db("read when the next channel post is due"))?;
        next.as_deref()
            .map(parse_time)
            .transpose()
            .map_err(StoreError::db("read when the next channel post is due"))
    }

    /// Every post, newest first.
    pub async fn list_posts(&self) -> Result<Vec<PostRow>, StoreError> {
        let action = "list channel posts";
        let rows = sqlx::query(
            "SELECT id, idem_key, channel, event, title, status, attempts, next_attempt_at, last_error, sent_at \
             FROM channel_posts ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db(action))?;
        rows.iter()
            .map(|row| {
                let sent_at: Option<String> = row.try_get("sent_at")?;
                Ok(PostRow {
                    id: row.try_get("id")?,
                    idem_key: row.try_get("idem_key")?,
                    channel: row.try_get("channel")?,
                    event: row.try_get("event")?,
                    title: row.try_get("title")?,
                    status: row.try_get("status")?,
                    attempts: row.try_get("attempts")?,
                    next_attempt_at: parse_time(&row.try_get::<String, _>("next_attempt_at")?)?,
                    last_error: row.try_get("last_error")?,
                    sent_at: sent_at.as_deref().map(parse_time).transpose()?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db(action))
    }
}
