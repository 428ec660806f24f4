//! Runs as `tidings runs` sees them: every `source_runs` row with its outcome,
//! and the snapshot of each held run until it is accepted or rejected.
//! Holding writes a run row and its snapshot and nothing else; accepting
//! goes through `apply` (`RunRecord::held`); rejecting drops the snapshot.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, format_time, parse_time};
use crate::model::Entry;
use crate::reconcile::Counts;

/// One run of a source, as `tidings runs list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    /// The run's id (`tidings runs accept ID`).
    pub id: i64,
    /// The source's name.
    pub source: String,
    /// When it finished (for an accepted run, when it was applied).
    pub finished_at: DateTime<Utc>,
    /// `ok`, `partial`, `failed`, `held`, `accepted` or `rejected`.
    pub outcome: String,
    /// Entries the run saw.
    pub entries: i64,
    /// New resources (for a held run: what it would add).
    pub new: i64,
    /// Changed resources (for a held run: what it would change).
    pub changed: i64,
    /// Withdrawn resources.
    pub withdrawn: i64,
    /// Why it failed or was held.
    pub error: Option<String>,
    /// The field summary of a run that was held (`date: emptied on 45 of 45`).
    pub summary: Vec<String>,
}

/// A held run's snapshot, as `runs accept` applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRun {
    /// The run's id.
    pub run_id: i64,
    /// The source's name.
    pub source: String,
    /// The entries, in page order.
    pub entries: Vec<Entry>,
    /// True when the run was partial: applying it counts nothing as missing.
    pub partial: bool,
    /// The field summary recorded when it was held.
    pub summary: Vec<String>,
}

/// What holding a run records.
#[derive(Debug, Clone, Copy)]
pub struct NewHeldRun<'a> {
    /// The source's name.
    pub source: &'a str,
    /// The snapshot's entries.
    pub entries: &'a [Entry],
    /// Whether the snapshot was partial.
    pub partial: bool,
    /// What applying it would have counted.
    pub counts: Counts,
    /// Why it is held, in one line.
    pub reason: &'a str,
    /// The field summary lines.
    pub summary: &'a [String],
}

impl Store {
    /// Stores a held run: a `source_runs` row (outcome `held`) and its snapshot.
    /// Resources, events, the source's state and its page cache are left alone.
    pub(crate) async fn hold_run(
        &self,
        run: &NewHeldRun<'_>,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let action = || format!("hold the run of source {}", run.source);
        let entries = serde_json::to_string(run.entries)
            .map_err(|e| StoreError::Refused(format!("could not keep the held snapshot: {e}")))?;
        let summary = serde_json::to_string(run.summary)
            .expect("summary lines are plain strings, which always serialise");
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        let c = run.counts;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO source_runs (source, started_at, finished_at, ok, entries, new, changed, \
             withdrawn, reappeared, unchanged, error, outcome) \
             VALUES ($1, $2, $2, 0, $3, $4, $5, $6, $7, $8, $9, 'held') RETURNING id",
        )
        .bind(run.source)
        .bind(format_time(at))
        .bind(count(run.entries.len()))
        .bind(count(c.new))
        .bind(count(c.changed))
        .bind(count(c.withdrawn))
        .bind(count(c.reappeared))
        .bind(count(c.unchanged))
        .bind(run.reason)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db(action()))?;
        sqlx::query(
            "INSERT INTO held_runs (run_id, source, entries, partial, summary) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id)
        .bind(run.source)
        .bind(entries)
        .bind(i64::from(run.partial))
        .bind(summary)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(run_id)
    }

    /// The latest `limit` runs of every source, newest first.
    pub(crate) async fn list_runs(&self, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.source, r.finished_at, r.ok, r.outcome, r.entries, r.new, r.changed, \
             r.withdrawn, r.error, h.summary FROM source_runs r \
             LEFT JOIN held_runs h ON h.run_id = r.id ORDER BY r.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("list runs"))?;
        rows.iter()
            .map(run_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::db("read runs"))
    }

    /// The held run `run_id`, or why it cannot be accepted or rejected.
    pub async fn held_run(&self, run_id: i64) -> Result<HeldRun, StoreError> {
        let row = sqlx::query(
            "SELECT r.outcome, h.source, h.entries, h.partial, h.summary FROM source_runs r \
             LEFT JOIN held_runs h ON h.run_id = r.id WHERE r.id = $1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db(format!("read run {run_id}")))?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("run {run_id}"),
        })?;
        let outcome: Option<String> = row.try_get("outcome").unwrap_or_default();
        let outcome = outcome.unwrap_or_default();
        if outcome != "held" {
            return Err(StoreError::Refused(format!(
                "run {run_id} is not held (its outcome is {outcome})"
            )));
        }
        held_row(run_id, &row).map_err(StoreError::db(format!("read held run {run_id}")))
    }

    /// The newest run of `source` applied after `run_id`, if any.
    pub(crate) async fn applied_after(
        &self,
        source: &str,
        run_id: i64,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT MAX(id) FROM source_runs WHERE source = $1 AND id > $2 AND ok = 1",
        )
        .bind(source)
        .bind(run_id)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db(format!("read the runs of source {source}")))
    }

    /// Runs of `source` still held.
    pub(crate) async fn held_count(&self, source: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM source_runs WHERE source = $1 AND outcome = 'held'",
        )
        .bind(source)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db(format!(
            "count the held runs of source {source}"
        )))
    }

    /// Discards held run `run_id`: its outcome becomes `rejected` and its snapshot
    /// is dropped (the field summary stays).
    pub(crate) async fn reject_run(
        &self,
        run_id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let action = || format!("reject run {run_id}");
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        let done = sqlx::query(
            "UPDATE source_runs SET outcome = 'rejected', finished_at = $2 \
             WHERE id = $1 AND outcome = 'held'",
        )
        .bind(run_id)
        .bind(format_time(at))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action()))?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(StoreError::db(action()))?;
            return Err(StoreError::Refused(format!("run {run_id} is not held")));
        }
        sqlx::query("UPDATE held_runs SET entries = '[]' WHERE run_id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))
    }
}

fn run_row(row: &AnyRow) -> Result<RunRow, sqlx::Error> {
    let ok = row.try_get::<i64, _>("ok")? != 0;
    let outcome: Option<String> = row.try_get("outcome")?;
    Ok(RunRow {
        id: row.try_get("id")?,
        source: row.try_get("source")?,
        finished_at: parse_time(&row.try_get::<String, _>("finished_at")?)?,
        outcome: outcome.unwrap_or_else(|| if ok { "ok" } else { "failed" }.to_owned()),
        entries: row.try_get("entries")?,
        new: row.try_get("new")?,
        changed: row.try_get("changed")?,
        withdrawn: row.try_get("withdrawn")?,
        error: row.try_get("error")?,
        summary: match row.try_get::<Option<String>, _>("summary")? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| sqlx::Error::Decode(format!("bad held-run summary: {e}").into()))?,
            None => Vec::new(),
        },
    })
}

fn held_row(run_id: i64, row: &AnyRow) -> Result<HeldRun, sqlx::Error> {
    let bad = |what: &str, e: serde_json::Error| {
        sqlx::Error::Decode(format!("bad {what} of held run {run_id}: {e}").into())
    };
    let entries: String = row.try_get("entries")?;
    let summary: String = row.try_get("summary")?;
    Ok(HeldRun {
        run_id,
        source: row.try_get("source")?,
        entries: serde_json::from_str(&entries).map_err(|e| bad("entries", e))?,
        partial: row.try_get::<i64, _>("partial")? != 0,
        summary: serde_json::from_str(&summary).map_err(|e| bad("summary", e))?,
    })
}

/// A count as stored.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
