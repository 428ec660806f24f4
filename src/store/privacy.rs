//! Data protection in the database (#18): everything held about one address
//! (its subscriber row with the consent evidence, and every outbox row to
//! it), erasing it in one transaction, the suppression list of keyed hashes,
//! and deleting finished outbox rows past the retention period while keeping
//! their counts. Deciding what to do, and files, are `privacy`'s.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, format_time};

/// A subscriber row as `subscribers export` shows it: every column but the
/// token nonce (a secret, not information about the person).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSubscriber {
    /// Row id.
    pub id: i64,
    /// The address.
    pub email: String,
    /// `pending`, `confirmed`, `unsubscribed` or `suppressed`.
    pub status: String,
    /// `all` or slugs joined by commas.
    pub categories: String,
    /// `weekly` or `daily`.
    pub frequency: String,
    /// Stored times, RFC 3339, by column name: `created_at`, `confirmed_at`,
    /// `unsubscribed_at`, `suppressed_at`, `confirmation_sent_at`, `window_end`.
    pub times: Vec<(&'static str, Option<String>)>,
    /// Permanent refusals of their mail since they last confirmed.
    pub refusals: i64,
    /// `web`, `cli` or `import`; none for rows older than this record.
    pub consent_route: Option<String>,
    /// `link`, `cli` or `import`, when confirmed.
    pub confirm_route: Option<String>,
    /// The operator's reason, or the file an import came from.
    pub consent_reason: Option<String>,
    /// Opt-in time recorded by the system they were imported from.
    pub source_optin_at: Option<String>,
    /// Confirmation time recorded by the system they were imported from.
    pub source_confirmed_at: Option<String>,
}

/// One outbox row to the address, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldMessage {
    /// Row id.
    pub id: i64,
    /// `digest`, `announcement`, `confirmation` or `alert`.
    pub kind: String,
    /// Subject line.
    pub subject: String,
    /// `queued`, `sending`, `sent`, `failed` or `unconfirmed`.
    pub status: String,
    /// Sends tried.
    pub attempts: i64,
    /// When it was queued.
    pub created_at: String,
    /// When the server accepted it.
    pub sent_at: Option<String>,
    /// The last error (a server reply, a timeout…).
    pub last_error: Option<String>,
}

/// What an erasure removed from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErasedRows {
    /// Subscriber rows (0 or 1).
    pub subscribers: u64,
    /// Outbox rows: the messages, bodies included.
    pub outbox: u64,
    /// True when a keyed hash of the address went onto the suppression list.
    pub suppression_listed: bool,
}

/// Outbox rows deleted by retention, per kind and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedCount {
    /// Message kind.
    pub kind: String,
    /// Final status.
    pub status: String,
    /// Rows deleted.
    pub count: i64,
}

const HELD_COLUMNS: &str = "id, email, status, categories, frequency, created_at, confirmed_at, \
    unsubscribed_at, suppressed_at, confirmation_sent_at, window_end, refusals, consent_route, \
    confirm_route, consent_reason, source_optin_at, source_confirmed_at";

const TIME_COLUMNS: [&str; 6] = [
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "suppressed_at",
    "confirmation_sent_at",
    "window_end",
];

/// Outbox rows that name the person: sent to the address, or to their subscriber id.
const TO_PERSON: &str = "recipient = $1 OR ($2 IS NOT NULL AND subscriber_id = $2)";

impl Store {
    /// The subscriber row of `email`, if there is one.
    pub async fn held_subscriber(&self, email: &str) -> Result<Option<HeldSubscriber>, StoreError> {
        let sql = format!("SELECT {HELD_COLUMNS} FROM subscribers WHERE email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email)
            .fetch_optional(&self.pool)
            .await;
        row.and_then(|r| r.as_ref().map(held_subscriber).transpose())
            .map_err(StoreError::db("read a subscriber for export"))
    }

    /// Every outbox row to `email` (or to subscriber `id`), oldest first.
    pub async fn held_messages(
        &self,
        email: &str,
        id: Option<i64>,
    ) -> Result<Vec<HeldMessage>, StoreError> {
        let sql = format!(
            "SELECT id, kind, subject, status, attempts, created_at, sent_at, last_error \
             FROM outbox WHERE {TO_PERSON} ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read messages for export"))?;
        rows.iter()
            .map(held_message)
            .collect::<Result<_, _>>()
            .map_err(StoreError::db("read messages for export"))
    }

    /// True when `hash` is on the suppression list.
    pub async fn suppression_listed(&self, hash: &str) -> Result<bool, StoreError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT reason FROM suppression_list WHERE address_hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db("read the suppression list"))?;
        Ok(found.is_some())
    }

    /// True when the suppression list has no entry (so no key is needed to check it).
    pub async fn suppression_list_is_empty(&self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM suppression_list")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("count the suppression list"))?;
        Ok(n == 0)
    }

    /// Deletes the subscriber `email` and every outbox row to them, in one
    /// transaction; when they were suppressed, lists `hash` (a keyed hash of
    /// the address) so they are not added again unseen.
    pub async fn erase_person(
        &self,
        email: &str,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<ErasedRows, StoreError> {
        let action = "erase a subscriber";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        // A write first: on SQLite a transaction that read before writing
        // fails (SQLITE_BUSY_SNAPSHOT) when another process wrote meanwhile.
        let found: Option<(i64, String)> =
            sqlx::query_as("DELETE FROM subscribers WHERE email = $1 RETURNING id, status")
                .bind(email)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        let id = found.as_ref().map(|(id, _)| *id);
        let subscribers = u64::from(found.is_some());
        let outbox = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM outbox WHERE {TO_PERSON}"
        )))
        .bind(email)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?
        .rows_affected();
        let suppressed = found.is_some_and(|(_, status)| status == "suppressed");
        if suppressed {
            sqlx::query(
                "INSERT INTO suppression_list (address_hash, reason, listed_at) \
                 VALUES ($1, 'suppressed', $2) ON CONFLICT (address_hash) DO NOTHING",
            )
            .bind(hash)
            .bind(format_time(at))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(ErasedRows {
            subscribers,
            outbox,
            suppression_listed: suppressed,
        })
    }

    /// Deletes finished outbox rows (sent, failed, unconfirmed) last touched
    /// before `before`, adding their number per kind and status to
    /// `outbox_pruned`; queued and in-flight rows stay. One transaction.
    pub async fn prune_outbox(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<PrunedCount>, StoreError> {
        let action = "prune the outbox";
        let old = "status IN ('sent', 'failed', 'unconfirmed') \
                   AND COALESCE(sent_at, created_at) < $1";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        // The delete comes first (see `erase_person`), returning what it removed.
        let removed: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "DELETE FROM outbox WHERE {old} RETURNING kind, status"
        )))
        .bind(format_time(before))
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for key in removed {
            *counts.entry(key).or_default() += 1;
        }
        for ((kind, status), count) in &counts {
            sqlx::query(
                "INSERT INTO outbox_pruned (kind, status, count) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, status) DO UPDATE SET count = outbox_pruned.count + excluded.count",
            )
            .bind(kind)
            .bind(status)
            .bind(count)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(counts
            .into_iter()
            .map(|((kind, status), count)| PrunedCount {
                kind,
                status,
                count,
            })
            .collect())
    }
}

fn held_subscriber(row: &AnyRow) -> Result<HeldSubscriber, sqlx::Error> {
    let times = TIME_COLUMNS
        .iter()
        .map(|&column| Ok((column, row.try_get::<Option<String>, _>(column)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(HeldSubscriber {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        status: row.try_get("status")?,
        categories: row.try_get("categories")?,
        frequency: row.try_get("frequency")?,
        times,
        refusals: row.try_get("refusals")?,
        consent_route: row.try_get("consent_route")?,
        confirm_route: row.try_get("confirm_route")?,
        consent_reason: row.try_get("consent_reason")?,
        source_optin_at: row.try_get("source_optin_at")?,
        source_confirmed_at: row.try_get("source_confirmed_at")?,
    })
}

fn held_message(row: &AnyRow) -> Result<HeldMessage, sqlx::Error> {
    Ok(HeldMessage {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        subject: row.try_get("subject")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
        last_error: row.try_get("last_error")?,
    })
}
