//! Writing one run of a source: a `ChangeSet` becomes resources, revisions and
//! change events in ONE transaction, guarded by the source's `run_seq`, so two
//! concurrent runs of a source never both write. Failed runs only bump counters.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::resources::ChangeKind;
use super::rows::Content;
use super::{Store, StoreError, format_time};
use crate::identity::{guid, resource_id};
use crate::model::ResourceId;
use crate::reconcile::{ChangeSet, Changed, Counts, FieldChange, Observed, Reappeared};

/// What a successful apply recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedRun {
    /// The `source_runs` row written.
    pub run_id: i64,
    /// The per-kind counts of the change set.
    pub counts: Counts,
    /// The feed version after the run (moved only if something changed).
    pub feed_version: i64,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl Store {
    /// Writes a reconciled run of `source` in one transaction.
    ///
    /// `run_seq` is the value `stored_for_reconcile` returned. If another run of
    /// the source committed since, nothing is written and the result is
    /// `StoreError::Conflict`: reload, reconcile again and retry.
    pub async fn apply(
        &self,
        source: &str,
        set: &ChangeSet,
        observed_count: usize,
        run_seq: i64,
        at: DateTime<Utc>,
    ) -> Result<AppliedRun, StoreError> {
        let action = || format!("apply the run of source {source}");
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        // The claim is the first statement, and a write: SQLite takes its write
        // lock here (waiting out the busy timeout) and PostgreSQL locks the row,
        // so a concurrent run of this source sees the moved run_seq and stops.
        let claimed = claim_run(&mut tx, source, run_seq, observed_count, at)
            .await
            .map_err(StoreError::db(action()))?;
        if !claimed {
            tx.rollback().await.map_err(StoreError::db(action()))?;
            return Err(StoreError::Conflict {
                source_name: source.to_owned(),
            });
        }
        let applied = write_changes(&mut tx, source, set, observed_count, at)
            .await
            .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(applied)
    }

    /// Records a failed run of `source`: a `source_runs` row and the failure
    /// counter. Resources, events and the feed version are left alone.
    pub async fn record_failed_run(
        &self,
        source: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let action = || format!("record the failed run of source {source}");
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        insert_run(&mut tx, source, at, None, error)
            .await
            .map_err(StoreError::db(action()))?;
        sqlx::query(
            "INSERT INTO source_state (source, run_seq, consecutive_failures) VALUES ($1, 0, 1) \
             ON CONFLICT (source) DO UPDATE \
             SET consecutive_failures = source_state.consecutive_failures + 1",
        )
        .bind(source)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))
    }
}

/// Moves the source's `run_seq` on from `run_seq` and records a good run; false
/// when another run moved it first.
async fn claim_run(
    tx: &mut Tx,
    source: &str,
    run_seq: i64,
    entries: usize,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query("INSERT INTO source_state (source) VALUES ($1) ON CONFLICT (source) DO NOTHING")
        .bind(source)
        .execute(&mut **tx)
        .await?;
    let done = sqlx::query(
        "UPDATE source_state SET run_seq = run_seq + 1, last_good_entries = $3, \
         last_good_at = $4, consecutive_failures = 0 WHERE source = $1 AND run_seq = $2",
    )
    .bind(source)
    .bind(run_seq)
    .bind(count(entries))
    .bind(format_time(at))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every write of a claimed run, one function per kind of change.
async fn write_changes(
    tx: &mut Tx,
    source: &str,
    set: &ChangeSet,
    observed_count: usize,
    at: DateTime<Utc>,
) -> Result<AppliedRun, sqlx::Error> {
    let conn: &mut AnyConnection = tx;
    insert_new(conn, source, &set.new, at).await?;
    update_changed(conn, source, &set.changed, at).await?;
    restore_reappeared(conn, source, &set.reappeared, at).await?;
    count_missing(conn, &set.missing).await?;
    withdraw(conn, source, &set.withdrawn, at).await?;
    reset_returned(conn, &set.returned).await?;
    let counts = set.counts();
    let run_id = insert_run(conn, source, at, Some((counts, observed_count)), "").await?;
    let feed_version = if set.has_events() {
        bump_feed_version(conn).await?
    } else {
        sqlx::query_scalar("SELECT feed_version FROM store_meta WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?
    };
    Ok(AppliedRun {
        run_id,
        counts,
        feed_version,
    })
}

async fn insert_new(
    conn: &mut AnyConnection,
    source: &str,
    new: &[Observed],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = format_time(at);
    for obs in new {
        let id = resource_id(&obs.identity);
        let c = Content::of(obs);
        sqlx::query(
            "INSERT INTO resources (id, source, identity, guid, title, link, summary, entry_date, \
             category, category_slug, download, fingerprint, published, first_seen, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, COALESCE($13, $14), $14, $14)",
        )
        .bind(id.0.as_str())
        .bind(source)
        .bind(obs.identity.as_str())
        .bind(guid(&obs.identity))
        .bind(&c.title)
        .bind(c.link.clone())
        .bind(&c.summary)
        .bind(c.entry_date.clone())
        .bind(&c.category)
        .bind(&c.category_slug)
        .bind(c.download.clone())
        .bind(&c.fingerprint)
        .bind(c.dated.clone())
        .bind(&now)
        .execute(&mut *conn)
        .await?;
        insert_revision(conn, &id, 1, &c, &now).await?;
        insert_event(conn, &id, source, ChangeKind::New, &[], &now).await?;
    }
    Ok(())
}

async fn update_changed(
    conn: &mut AnyConnection,
    source: &str,
    changed: &[Changed],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = format_time(at);
    for Changed {
        id,
        observed,
        fields,
    } in changed
    {
        update_content(conn, id, observed, &now).await?;
        insert_event(conn, id, source, ChangeKind::Changed, fields, &now).await?;
    }
    Ok(())
}

async fn restore_reappeared(
    conn: &mut AnyConnection,
    source: &str,
    back: &[Reappeared],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = format_time(at);
    for Reappeared {
        id,
        observed,
        fields,
    } in back
    {
        if fields.is_empty() {
            sqlx::query("UPDATE resources SET withdrawn_at = NULL, missing_runs = 0 WHERE id = $1")
                .bind(id.0.as_str())
                .execute(&mut *conn)
                .await?;
        } else {
            update_content(conn, id, observed, &now).await?;
        }
        insert_event(conn, id, source, ChangeKind::Reappeared, fields, &now).await?;
    }
    Ok(())
}

/// Stores new content as the next revision; the resource is live again afterwards.
async fn update_content(
    conn: &mut AnyConnection,
    id: &ResourceId,
    obs: &Observed,
    now: &str,
) -> Result<(), sqlx::Error> {
    let c = Content::of(obs);
    let seq: i64 = sqlx::query_scalar(
        "UPDATE resources SET title = $2, link = $3, summary = $4, entry_date = $5, category = $6, \
         category_slug = $7, download = $8, fingerprint = $9, published = COALESCE($10, first_seen), \
         updated = $11, withdrawn_at = NULL, missing_runs = 0, revision = revision + 1 \
         WHERE id = $1 RETURNING revision",
    )
    .bind(id.0.as_str())
    .bind(&c.title)
    .bind(c.link.clone())
    .bind(&c.summary)
    .bind(c.entry_date.clone())
    .bind(&c.category)
    .bind(&c.category_slug)
    .bind(c.download.clone())
    .bind(&c.fingerprint)
    .bind(c.dated.clone())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    insert_revision(conn, id, seq, &c, now).await
}

async fn count_missing(
    conn: &mut AnyConnection,
    missing: &[ResourceId],
) -> Result<(), sqlx::Error> {
    for id in missing {
        sqlx::query("UPDATE resources SET missing_runs = missing_runs + 1 WHERE id = $1")
            .bind(id.0.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn withdraw(
    conn: &mut AnyConnection,
    source: &str,
    gone: &[ResourceId],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = format_time(at);
    for id in gone {
        sqlx::query(
            "UPDATE resources SET withdrawn_at = $2, missing_runs = missing_runs + 1 WHERE id = $1",
        )
        .bind(id.0.as_str())
        .bind(&now)
        .execute(&mut *conn)
        .await?;
        insert_event(conn, id, source, ChangeKind::Withdrawn, &[], &now).await?;
    }
    Ok(())
}

async fn reset_returned(
    conn: &mut AnyConnection,
    returned: &[ResourceId],
) -> Result<(), sqlx::Error> {
    for id in returned {
        sqlx::query("UPDATE resources SET missing_runs = 0 WHERE id = $1")
            .bind(id.0.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_revision(
    conn: &mut AnyConnection,
    id: &ResourceId,
    seq: i64,
    c: &Content,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO revisions (resource_id, seq, title, link, summary, entry_date, category, \
         category_slug, download, fingerprint, seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id.0.as_str())
    .bind(seq)
    .bind(&c.title)
    .bind(c.link.clone())
    .bind(&c.summary)
    .bind(c.entry_date.clone())
    .bind(&c.category)
    .bind(&c.category_slug)
    .bind(c.download.clone())
    .bind(&c.fingerprint)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(drop)
}

async fn insert_event(
    conn: &mut AnyConnection,
    id: &ResourceId,
    source: &str,
    kind: ChangeKind,
    fields: &[FieldChange],
    now: &str,
) -> Result<(), sqlx::Error> {
    let fields = serde_json::to_string(fields)
        .expect("field changes are plain strings, which always serialise");
    sqlx::query("INSERT INTO change_events (resource_id, source, kind, fields, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id.0.as_str())
        .bind(source)
        .bind(kind.as_str())
        .bind(fields)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// Writes a `source_runs` row: a good run with its counts, or a failed one with `error`.
async fn insert_run(
    conn: &mut AnyConnection,
    source: &str,
    at: DateTime<Utc>,
    good: Option<(Counts, usize)>,
    error: &str,
) -> Result<i64, sqlx::Error> {
    let (counts, entries) = good.unwrap_or_default();
    sqlx::query_scalar(
        "INSERT INTO source_runs (source, started_at, finished_at, ok, entries, new, changed, \
         withdrawn, reappeared, unchanged, error) \
         VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(source)
    .bind(format_time(at))
    .bind(i64::from(good.is_some()))
    .bind(count(entries))
    .bind(count(counts.new))
    .bind(count(counts.changed))
    .bind(count(counts.withdrawn))
    .bind(count(counts.reappeared))
    .bind(count(counts.unchanged))
    .bind(good.is_none().then(|| error.to_owned()))
    .fetch_one(&mut *conn)
    .await
}

async fn bump_feed_version(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE store_meta SET feed_version = feed_version + 1 WHERE id = 1 RETURNING feed_version",
    )
    .fetch_one(&mut *conn)
    .await
}

/// A count as stored (counts never come near `i64::MAX`).
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
