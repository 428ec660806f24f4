//! The audit log (`admin_audit`): one row per admin action — who, when,
//! what, in plain words — written by the admin pages and the account
//! commands, read newest first a page at a time by `/admin/log` and
//! `tidings admin-log`. Wording the sentences is the callers'.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, format_time, parse_time};

/// An action to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry<'a> {
    /// Who: the account's name, "admin" for the bootstrap account, or
    /// "command line".
    pub actor: &'a str,
    /// The named account, if it was one.
    pub admin_id: Option<i64>,
    /// A short code: `sign_in`, `sign_in_refused`, `announce`, `retry`, …
    pub action: &'a str,
    /// What happened, as a sentence a person reads.
    pub summary: &'a str,
}

/// A recorded action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increasing with every entry.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (see `NewAuditEntry::actor`).
    pub actor: String,
    /// The named account, if it was one.
    pub admin_id: Option<i64>,
    /// The action's code.
    pub action: String,
    /// What happened, in plain words.
    pub summary: String,
}

fn entry(row: &AnyRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: parse_time(&row.try_get::<String, _>("at")?)?,
        actor: row.try_get("actor")?,
        admin_id: row.try_get("admin_id")?,
        action: row.try_get("action")?,
        summary: row.try_get("summary")?,
    })
}

impl Store {
    /// Records `entry` as done at `at`.
    pub async fn record_audit(
        &self,
        entry: &NewAuditEntry<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_audit (at, actor, admin_id, action, summary) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(format_time(at))
        .bind(entry.actor)
        .bind(entry.admin_id)
        .bind(entry.action)
        .bind(entry.summary)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::db("record an admin action"))
    }

    /// At most `limit` entries, newest first, skipping the newest `offset`.
    pub async fn audit_entries(
        &self,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT id, at, actor, admin_id, action, summary FROM admin_audit \
             ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(as_i64(limit))
        .bind(as_i64(offset))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read the audit log"))?;
        rows.iter()
            .map(entry)
            .collect::<Result<_, _>>()
            .map_err(StoreError::db("read the audit log"))
    }

    /// How many entries the log holds.
    pub async fn audit_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM admin_audit")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("count the audit log"))
    }
}
