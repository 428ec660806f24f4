//! The outbox: every email, fully rendered, under a unique idempotency key.
//! Queuing a digest claims the subscriber's window and inserts the message in
//! one transaction; delivery claims due rows (SQLite's write lock vs
//! PostgreSQL's `FOR UPDATE SKIP LOCKED`, one of the dialect branches the
//! store module lists), then
//! records the hand-over just before each message's final dot (only if nobody
//! recorded it before: the one write that decides who may finish a message)
//! and each outcome. Rows stuck in `sending` past `claimed_until` (a process
//! that died mid-send) are claimable again if they were not handed over, and
//! become `unconfirmed` if they were: the server may have them.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::batch::{self, Placeholders};
use super::{Backend, Store, StoreError, format_time, parse_time};

/// An email to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Unique: a second insert with the same key is a no-op.
    pub idem_key: String,
    /// `digest`, `announcement`, `confirmation` or `alert` (also `X-Tidings-Kind`).
    pub kind: &'static str,
    /// The envelope recipient.
    pub recipient: String,
    /// The subscriber it is for, if any.
    pub subscriber_id: Option<i64>,
    /// The subject, for `outbox list`.
    pub subject: String,
    /// The RFC 5322 message.
    pub message: Vec<u8>,
}

/// A digest to queue, with the window it closes.
#[derive(Debug, Clone)]
pub struct QueuedDigest {
    /// The message.
    pub message: NewMessage,
    /// The subscriber whose window it closes.
    pub subscriber_id: i64,
    /// Their `window_end` as read before rendering; the claim fails if it moved.
    pub old_window_end: Option<DateTime<Utc>>,
}

/// An outbox row, without its bytes, for `outbox list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Row id.
    pub id: i64,
    /// Idempotency key.
    pub idem_key: String,
    /// What kind of email.
    pub kind: String,
    /// Envelope recipient.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// `queued`, `sending`, `sent`, `failed` or `unconfirmed`.
    pub status: String,
    /// Sends tried so far.
    pub attempts: i64,
    /// When it may next be tried.
    pub next_attempt_at: DateTime<Utc>,
    /// The last error (a server reply, a timeout…).
    pub last_error: Option<String>,
    /// When the server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

/// A row claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Row id.
    pub id: i64,
    /// Envelope recipient.
    pub recipient: String,
    /// The bytes to send.
    pub message: Vec<u8>,
    /// Attempts including this one.
    pub attempts: i64,
    /// Idempotency key (names `.eml` files).
    pub idem_key: String,
    /// What kind of email (`alert`s do not count toward the mail alert).
    pub kind: String,
    /// When the claim runs out and another worker may take the row.
    pub claimed_until: DateTime<Utc>,
}

/// What is left in the outbox, for deciding whether to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxBacklog {
    /// Queued rows: new ones and those waiting for a later retry.
    pub queued: i64,
    /// Queued rows that were tried before and wait for a retry.
    pub retrying: i64,
    /// Rows another process is sending, and when the last claim runs out.
    pub sending: i64,
    /// The latest `claimed_until` among them.
    pub sending_until: Option<DateTime<Utc>>,
    /// Failed rows.
    pub failed: i64,
    /// Rows handed over with no answer: maybe delivered, not sent again.
    pub unconfirmed: i64,
}

const CLAIM_WHERE: &str = "(status = 'queued' AND next_attempt_at <= $1) \
                           OR (status = 'sending' AND claimed_until < $1 \
                               AND handed_over_at IS NULL)";

/// Why a row is `unconfirmed` when its sender died after handing it over.
const ORPHANED: &str = "the process sending it stopped after handing it to the server, which \
                        may have it; not sent again (`tidings outbox retry ID` sends it anyway)";

impl Store {
    /// Queues digests, each in step with its subscriber's window, in one
    /// transaction. A digest whose subscriber's window moved since it was read
    /// (another process queued it) or who is no longer confirmed is skipped.
    /// Set-based: per chunk, one `UPDATE … FROM (VALUES …)` claims the windows
    /// still where they were read and one multi-row `INSERT` queues the
    /// messages of those claimed. Returns how many were queued.
    pub async fn queue_digests(
        &self,
        digests: &[QueuedDigest],
        window_end: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let action = "queue digests";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        let mut queued = 0;
        for chunk in digests.chunks(batch::ROWS) {
            queued += self
                .queue_chunk(&mut tx, chunk, window_end, at)
                .await
                .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        if queued > 0 {
            self.notify_outbox().await;
        }
        Ok(queued)
    }

    async fn queue_chunk(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        chunk: &[QueuedDigest],
        window_end: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<usize, sqlx::Error> {
        let claimed = self.claim_windows(tx, chunk, window_end).await?;
        let mine: Vec<&QueuedDigest> = chunk
            .iter()
            .filter(|d| claimed.contains(&d.subscriber_id))
            .collect();
        if mine.is_empty() {
            return Ok(0);
        }
        let inserted = self.insert_digests(tx, &mine, at).await?;
        for digest in mine
            .iter()
            .filter(|d| !inserted.contains(&d.message.idem_key))
        {
            // The key was queued before: this window was never sent, so it stays open.
            sqlx::query("UPDATE subscribers SET window_end = $1 WHERE id = $2")
                .bind(digest.old_window_end.map(format_time))
                .bind(digest.subscriber_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(inserted.len())
    }

    /// Moves the windows of the chunk's confirmed subscribers whose window is
    /// still where it was read to `window_end`; returns their ids.
    async fn claim_windows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        chunk: &[QueuedDigest],
        window_end: DateTime<Utc>,
    ) -> Result<HashSet<i64>, sqlx::Error> {
        let mut p = Placeholders::new(self.backend);
        let end = p.next();
        let values = p.rows("(CAST({} AS BIGINT), {})", chunk.len());
        // VALUES columns are column1, column2 in both dialects.
        let sql = format!(
            "UPDATE subscribers SET window_end = {end} FROM (VALUES {values}) AS v \
             WHERE subscribers.id = v.column1 AND subscribers.status = 'confirmed' \
             AND COALESCE(subscribers.window_end, '') = COALESCE(v.column2, '') \
             RETURNING subscribers.id"
        );
        let mut query = sqlx::query_scalar(AssertSqlSafe(sql)).bind(format_time(window_end));
        for digest in chunk {
            query = query
                .bind(digest.subscriber_id)
                .bind(digest.old_window_end.map(format_time));
        }
        Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
    }

    /// Inserts the messages; returns the keys of those added (not queued before).
    async fn insert_digests(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        digests: &[&QueuedDigest],
        at: DateTime<Utc>,
    ) -> Result<HashSet<String>, sqlx::Error> {
        let mut p = Placeholders::new(self.backend);
        let rows = p.rows("({}, {}, {}, {}, {}, {}, 'queued', {}, {})", digests.len());
        let sql = format!(
            "INSERT INTO outbox (idem_key, kind, recipient, subscriber_id, subject, message, \
             status, next_attempt_at, created_at) VALUES {rows} \
             ON CONFLICT (idem_key) DO NOTHING RETURNING idem_key"
        );
        let mut query = sqlx::query_scalar(AssertSqlSafe(sql));
        for digest in digests {
            let m = &digest.message;
            query = query
                .bind(m.idem_key.clone())
                .bind(m.kind)
                .bind(m.recipient.clone())
                .bind(m.subscriber_id)
                .bind(m.subject.clone())
                .bind(m.message.clone())
                .bind(format_time(at))
                .bind(format_time(at));
        }
        Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
    }

    /// Queues one message; false when its key was queued before.
    pub async fn enqueue(
        &self,
        message: &NewMessage,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let action = format!("queue message {}", message.idem_key);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db(action.clone()))?;
        let added = insert_message(&mut tx, message, at)
            .await
            .map_err(StoreError::db(action.clone()))?;
        tx.commit().await.map_err(StoreError::db(action))?;
        if added {
            self.notify_outbox().await;
        }
        Ok(added)
    }

    /// Claims up to `limit` due rows until `lease_until`, counting an attempt on each.
    pub async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        // SQLite: the UPDATE takes the database's write lock, so the inner SELECT
        // and the update are one atomic step. PostgreSQL: SKIP LOCKED lets
        // concurrent workers claim disjoint rows instead of queueing on locks.
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, claimed_until = $2 \
             WHERE id IN (SELECT id FROM outbox WHERE {CLAIM_WHERE} \
             ORDER BY next_attempt_at, id LIMIT $3{lock}) \
             RETURNING id, recipient, message, attempts, idem_key, kind, claimed_until, \
             next_attempt_at"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format_time(now))
            .bind(format_time(lease_until))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("claim outbox messages"))?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let due: String = row.try_get("next_attempt_at")?;
                let claimed = Claimed {
                    id: row.try_get("id")?,
                    recipient: row.try_get("recipient")?,
                    message: row.try_get("message")?,
                    attempts: row.try_get("attempts")?,
                    idem_key: row.try_get("idem_key")?,
                    kind: row.try_get("kind")?,
                    claimed_until: parse_time(&row.try_get::<String, _>("claimed_until")?)?,
                };
                Ok((due, claimed))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::db("claim outbox messages"))?;
        // RETURNING follows neither backend's subquery order; the worker
        // relies on due order (an alert's raise before its recovery), and
        // stored times are fixed-width text, so they sort as text.
        claimed.sort_by(|(a, x), (b, y)| (a, x.id).cmp(&(b, y.id)));
        Ok(claimed.into_iter().map(|(_, row)| row).collect())
    }

    /// Records that message `id`, claimed by the caller, is about to be handed
    /// to the server (its final dot). True only for the first caller: a second
    /// sender that claimed the row after a lease ran out learns here that the
    /// message is not its to finish. Written before every message, so the
    /// commit does not wait for the disk (see `write_without_flush`).
    pub async fn mark_handed_over(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET handed_over_at = $2 \
             WHERE id = $1 AND status = 'sending' AND handed_over_at IS NULL",
        )
        .bind(id)
        .bind(format_time(at));
        self.write_without_flush(query)
            .await
            .map(|rows| rows == 1)
            .map_err(StoreError::db(format!(
                "record the hand-over of outbox message {id}"
            )))
    }

    /// Records that the server accepted message `id`.
    pub async fn mark_sent(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = $2, claimed_until = NULL, \
             last_error = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(format_time(at));
        self.write_without_flush(query)
            .await
            .map(drop)
            .map_err(StoreError::db(format!(
                "record the outcome of outbox message {id}"
            )))
    }

    /// Runs `query` in a commit that does not wait for the disk: SQLite runs
    /// with `synchronous = NORMAL` (see `store::sqlite_pragmas`); on
    /// PostgreSQL the `outcomes` pool's sessions run with `synchronous_commit
    /// = off`. A commit that returned survives our process dying; only a crash
    /// of the database server itself within ~3 × `wal_writer_delay` (600 ms by
    /// default) can undo it. Losing a hand-over record then means a message
    /// may go out twice; losing a `sent` record leaves the row `unconfirmed`.
    /// Returns the rows changed.
    async fn write_without_flush(
        &self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<u64, sqlx::Error> {
        Ok(query.execute(&self.outcomes).await?.rows_affected())
    }

    /// Rows whose sender died after handing them over become `unconfirmed`:
    /// the server may have them, so they are not claimed again. Returns how many.
    pub async fn orphaned_to_unconfirmed(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'unconfirmed', claimed_until = NULL, last_error = $2 \
             WHERE status = 'sending' AND claimed_until < $1 AND handed_over_at IS NOT NULL",
        )
        .bind(format_time(now))
        .bind(ORPHANED)
        .execute(&self.pool)
        .await
        .map(|done| done.rows_affected())
        .map_err(StoreError::db("settle messages orphaned mid-send"))
    }

    /// Message `id` was handed over but no answer came: `unconfirmed`, with why.
    pub async fn mark_unconfirmed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET status = 'unconfirmed', claimed_until = NULL, last_error = $2 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(error.to_owned());
        self.record(query, id).await
    }

    /// Gives message `id` up because the server refused its recipient or the
    /// message itself, and counts the refusal against its subscriber (if
    /// any), who is suppressed at `suppress_after` refusals. In one
    /// transaction. Returns the subscriber's address when this suppressed them.
    pub async fn mark_refused(
        &self,
        id: i64,
        error: &str,
        suppress_after: u32,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let action = format!("record the refusal of outbox message {id}");
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db(action.clone()))?;
        let subscriber: Option<i64> = sqlx::query_scalar(
            "UPDATE outbox SET status = 'failed', claimed_until = NULL, last_error = $2 \
             WHERE id = $1 RETURNING subscriber_id",
        )
        .bind(id)
        .bind(error.to_owned())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db(action.clone()))?
        .flatten();
        let mut suppressed = None;
        if let Some(subscriber) = subscriber {
            suppressed = super::subscribers::count_refusal(&mut tx, subscriber, suppress_after, at)
                .await
                .map_err(StoreError::db(action.clone()))?;
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(suppressed)
    }

    /// Puts message `id` back in the queue until `next`, with the error that stopped it.
    pub async fn mark_retry(
        &self,
        id: i64,
        next: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        // The server answered that it did not take the message, or never got
        // its dot: no hand-over stands.
        let query = sqlx::query(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $2, claimed_until = NULL, \
             handed_over_at = NULL, last_error = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(format_time(next))
        .bind(error.to_owned());
        self.record(query, id).await
    }

    /// Gives message `id` up, with the server's reply.
    pub async fn mark_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET status = 'failed', claimed_until = NULL, last_error = $2 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(error.to_owned());
        self.record(query, id).await
    }

    /// Returns a claimed row unsent (its lease was too short to start a send),
    /// not counting the attempt. Nothing of it reached the server.
    pub async fn release(&self, id: i64) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET status = 'queued', claimed_until = NULL, \
             attempts = attempts - 1 WHERE id = $1",
        )
        .bind(id);
        self.record(query, id).await
    }

    async fn record(
        &self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        id: i64,
    ) -> Result<(), StoreError> {
        query
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::db(format!(
                "record the outcome of outbox message {id}"
            )))
    }

    /// Outbox rows, newest first; only failed and unconfirmed ones when `failed_only`.
    pub async fn list_outbox(&self, failed_only: bool) -> Result<Vec<OutboxMessage>, StoreError> {
        let sql = "SELECT id, idem_key, kind, recipient, subject, status, attempts, \
                   next_attempt_at, last_error, sent_at FROM outbox \
                   WHERE ($1 = 0 OR status IN ('failed', 'unconfirmed')) ORDER BY id DESC";
        let rows = sqlx::query(sql)
            .bind(i64::from(failed_only))
            .fetch_all(&self.pool)
            .await;
        rows.and_then(|rows| rows.iter().map(outbox_message).collect())
            .map_err(StoreError::db("list the outbox"))
    }

    /// Re-queues message `id` (failed, queued or unconfirmed) or, with `None`,
    /// every failed one, to be sent at `now`. Unconfirmed messages move only
    /// by id (they may have been delivered); sent ones never. Returns how many rows moved.
    pub async fn requeue(&self, id: Option<i64>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "UPDATE outbox SET status = 'queued', next_attempt_at = $1, attempts = 0, \
                   claimed_until = NULL, handed_over_at = NULL \
                   WHERE status IN ('failed', 'queued', 'unconfirmed') \
                   AND (($2 IS NULL AND status = 'failed') OR id = $2)";
        sqlx::query(sql)
            .bind(format_time(now))
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(StoreError::db("re-queue outbox messages"))
    }

    /// What is left: queued for later, being sent elsewhere, failed.
    pub async fn outbox_backlog(&self) -> Result<OutboxBacklog, StoreError> {
        let sql = "SELECT status, COUNT(*) AS n, MAX(claimed_until) AS until, \
                   COUNT(CASE WHEN attempts > 0 THEN 1 END) AS tried FROM outbox \
                   WHERE status <> 'sent' GROUP BY status";
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("count the outbox"))?;
        let mut backlog = OutboxBacklog::default();
        for row in &rows {
            let decode = || -> Result<(String, i64, Option<String>, i64), sqlx::Error> {
                Ok((
                    row.try_get("status")?,
                    row.try_get("n")?,
                    row.try_get("until")?,
                    row.try_get("tried")?,
                ))
            };
            let (status, n, until, tried) = decode().map_err(StoreError::db("count the outbox"))?;
            match status.as_str() {
                "queued" => {
                    backlog.queued = n;
                    backlog.retrying = tried;
                }
                "failed" => backlog.failed = n,
                "unconfirmed" => backlog.unconfirmed = n,
                _ => {
                    backlog.sending = n;
                    backlog.sending_until = until.as_deref().and_then(|t| parse_time(t).ok());
                }
            }
        }
        Ok(backlog)
    }
}

/// Inserts unless the key exists; true when a row was added.
pub(super) async fn insert_message(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    m: &NewMessage,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO outbox (idem_key, kind, recipient, subscriber_id, subject, message, status, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7) \
         ON CONFLICT (idem_key) DO NOTHING",
    )
    .bind(&m.idem_key)
    .bind(m.kind)
    .bind(&m.recipient)
    .bind(m.subscriber_id)
    .bind(&m.subject)
    .bind(m.message.clone())
    .bind(format_time(at))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn outbox_message(row: &AnyRow) -> Result<OutboxMessage, sqlx::Error> {
    let sent_at: Option<String> = row.try_get("sent_at")?;
    Ok(OutboxMessage {
        id: row.try_get("id")?,
        idem_key: row.try_get("idem_key")?,
        kind: row.try_get("kind")?,
        recipient: row.try_get("recipient")?,
        subject: row.try_get("subject")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: parse_time(&row.try_get::<String, _>("next_attempt_at")?)?,
        last_error: row.try_get("last_error")?,
        sent_at: sent_at.as_deref().map(parse_time).transpose()?,
    })
}
