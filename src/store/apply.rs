//! Writing one run of a source: a `ChangeSet` becomes resources, revisions and
//! change events in ONE transaction, guarded by the source's `run_seq`, so two
//! concurrent runs of a source never both write. Failed runs only bump counters.
//! Rows are written a chunk per statement (`batch`), in the order of the set.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AssertSqlSafe};

use super::batch::{self, Placeholders};
use super::rows::Content;
use super::upgrade::identity_digest;
use super::{Backend, Store, StoreError, format_time};
use crate::clock::Clock;
use crate::identity::{guid, resource_id};
use crate::model::{ChangeKind, ResourceId};
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

/// How an applied run is recorded in `source_runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRecord {
    /// `ok`, `partial` or `accepted`.
    pub outcome: &'static str,
    /// The held run being accepted: its row is completed instead of a new one added.
    pub held: Option<i64>,
}

impl RunRecord {
    /// A complete run, applied as it came.
    pub const OK: Self = Self {
        outcome: "ok",
        held: None,
    };
}

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
        clock: &dyn Clock,
    ) -> Result<AppliedRun, StoreError> {
        self.apply_run(source, set, observed_count, run_seq, clock, RunRecord::OK)
            .await
    }

    /// `apply`, recording the run as `record` says (a partial run, an accepted held one).
    pub(crate) async fn apply_run(
        &self,
        source: &str,
        set: &ChangeSet,
        observed_count: usize,
        run_seq: i64,
        clock: &dyn Clock,
        record: RunRecord,
    ) -> Result<AppliedRun, StoreError> {
        let action = || format!("apply the run of source {source}");
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        // Every run's events are stamped while it holds the store_meta row, and
        // a digest period reads its window only after taking that row too
        // (`wait_for_ingests`): so no event is stamped inside a window that was
        // already read, and no window is read while stamped events are pending.
        hold_store_meta(&mut tx)
            .await
            .map_err(StoreError::db(action()))?;
        let at = clock.now();
        // A write: PostgreSQL locks the source's row, so a concurrent run of
        // this source (which waited above) sees the moved run_seq and stops.
        let claimed = claim_run(&mut tx, source, run_seq, observed_count, at)
            .await
            .map_err(StoreError::db(action()))?;
        if !claimed {
            tx.rollback().await.map_err(StoreError::db(action()))?;
            return Err(StoreError::Conflict {
                source_name: source.to_owned(),
            });
        }
        let good = (set.counts(), observed_count);
        let run_id = match record.held {
            Some(held) => complete_held(&mut tx, held, record.outcome, good, at).await,
            None => insert_run(&mut tx, source, at, Some(good), "", record.outcome).await,
        }
        .map_err(StoreError::db(action()))?;
        let Some(run_id) = run_id else {
            tx.rollback().await.map_err(StoreError::db(action()))?;
            return Err(StoreError::Refused(format!(
                "run {} is no longer held; nothing was written",
                record.held.unwrap_or_default()
            )));
        };
        let applied = write_changes(&mut tx, self.backend, source, set, run_id, at)
            .await
            .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(applied)
    }

    /// Waits until no run is being applied: takes and releases the
    /// store_meta row that `apply` holds while it stamps and writes events.
    /// Events committed after this returns are stamped after it.
    pub async fn wait_for_ingests(&self) -> Result<(), StoreError> {
        let action = "wait for ingest runs in progress";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        hold_store_meta(&mut tx)
            .await
            .map_err(StoreError::db(action))?;
        tx.commit().await.map_err(StoreError::db(action))
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
        insert_run(&mut tx, source, at, None, error, "failed")
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
    backend: Backend,
    source: &str,
    set: &ChangeSet,
    run_id: i64,
    at: DateTime<Utc>,
) -> Result<AppliedRun, sqlx::Error> {
    let conn: &mut AnyConnection = tx;
    insert_new(conn, backend, source, &set.new, at).await?;
    update_changed(conn, backend, source, &set.changed, at).await?;
    update_revised(conn, backend, &set.revised, at).await?;
    restore_reappeared(conn, backend, source, &set.reappeared, at).await?;
    count_missing(conn, backend, &set.missing).await?;
    withdraw(conn, backend, source, &set.withdrawn, at).await?;
    reset_returned(conn, backend, &set.returned).await?;
    let counts = set.counts();
    let feed_version = if set.has_content_changes() {
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

/// One new resource: id, source, identity, identity_digest, guid, title,
/// link, summary, entry_date, category, category_slug, download, fingerprint,
/// then published (the entry's date, else now), first_seen and updated (now).
const RESOURCE_ROW: &str =
    "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, COALESCE({}, {}), {}, {})";
/// One revision, in the column order of `insert_revisions`.
const REVISION_ROW: &str = "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})";
/// One change event, in the column order of `insert_events`.
const EVENT_ROW: &str = "({}, {}, {}, {}, {})";

async fn insert_new(
    conn: &mut AnyConnection,
    backend: Backend,
    source: &str,
    new: &[Observed],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = format_time(at);
    for chunk in new.chunks(batch::ROWS) {
        let rows: Vec<(ResourceId, Content)> = chunk
            .iter()
            .map(|obs| (resource_id(&obs.identity), Content::of(obs)))
            .collect();
        let sql = format!(
            "INSERT INTO resources (id, source, identity, identity_digest, guid, title, link, \
             summary, entry_date, category, category_slug, download, fingerprint, published, \
             first_seen, updated) \
             VALUES {}",
            Placeholders::new(backend).rows(RESOURCE_ROW, rows.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (obs, (id, c)) in chunk.iter().zip(&rows) {
            query = query
                .bind(id.0.as_str())
                .bind(source)
                .bind(obs.identity.as_str())
                .bind(identity_digest(&obs.identity))
                .bind(guid(&obs.identity))
                .bind(c.title.as_str())
                .bind(c.link.as_deref())
                .bind(c.summary.as_str())
                .bind(c.entry_date.as_deref())
                .bind(c.category.as_str())
                .bind(c.category_slug.as_str())
                .bind(c.download.as_deref())
                .bind(c.fingerprint.as_str())
                .bind(c.dated.as_deref())
                .bind(now.as_str())
                .bind(now.as_str())
                .bind(now.as_str());
        }
        query.execute(&mut *conn).await?;
        let revisions: Vec<Version<'_>> = rows.iter().map(|(id, c)| (id, 1, c)).collect();
        insert_revisions(conn, backend, &revisions, &now).await?;
        let events: Vec<Event<'_>> = rows
            .iter()
            .map(|(id, _)| (id, ChangeKind::New, &[][..]))
            .collect();
        insert_events(conn, backend, source, &events, &now).await?;
    }
    Ok(())
}

async fn update_changed(
    conn: &mut AnyConnection,
    backend: Backend,
    source: &str,
    changed: &[Changed],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = format_time(at);
    for chunk in changed.chunks(batch::ROWS) {
        let contents: Vec<Content> = chunk.iter().map(|c| Content::of(&c.observed)).collect();
        let mut revisions = Vec::with_capacity(chunk.len());
        for (Changed { id, .. }, c) in chunk.iter().zip(&contents) {
            revisions.push((id, update_content(conn, id, c, Some(&now)).await?, c));
        }
        insert_revisions(conn, backend, &revisions, &now).await?;
        let events: Vec<Event<'_>> = chunk
            .iter()
            .map(|c| (&c.id, ChangeKind::Changed, &c.fields[..]))
            .collect();
        insert_events(conn, backend, source, &events, &now).await?;
    }
    Ok(())
}

/// Revisions without change events: new content and a revision row, but
/// `updated` stays, so neither feeds nor digests call the resource updated.
async fn update_revised(
    conn: &mut AnyConnection,
    backend: Backend,
    revised: &[Changed],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = format_time(at);
    for chunk in revised.chunks(batch::ROWS) {
        let contents: Vec<Content> = chunk.iter().map(|c| Content::of(&c.observed)).collect();
        let mut revisions = Vec::with_capacity(chunk.len());
        for (Changed { id, .. }, c) in chunk.iter().zip(&contents) {
            revisions.push((id, update_content(conn, id, c, None).await?, c));
        }
        insert_revisions(conn, backend, &revisions, &now).await?;
    }
    Ok(())
}

async fn restore_reappeared(
    conn: &mut AnyConnection,
    backend: Backend,
    source: &str,
    back: &[Reappeared],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = format_time(at);
    let (same, edited): (Vec<&Reappeared>, Vec<&Reappeared>) =
        back.iter().partition(|r| r.fields.is_empty());
    let same_ids: Vec<&ResourceId> = same.iter().map(|r| &r.id).collect();
    update_ids(
        conn,
        backend,
        "UPDATE resources SET withdrawn_at = NULL, missing_runs = 0 WHERE id IN",
        None,
        &same_ids,
    )
    .await?;
    let contents: Vec<Content> = edited.iter().map(|r| Content::of(&r.observed)).collect();
    let mut revisions = Vec::with_capacity(edited.len());
    for (r, c) in edited.iter().zip(&contents) {
        revisions.push((&r.id, update_content(conn, &r.id, c, Some(&now)).await?, c));
    }
    for chunk in revisions.chunks(batch::ROWS) {
        insert_revisions(conn, backend, chunk, &now).await?;
    }
    let events: Vec<Event<'_>> = back
        .iter()
        .map(|r| (&r.id, ChangeKind::Reappeared, &r.fields[..]))
        .collect();
    for chunk in events.chunks(batch::ROWS) {
        insert_events(conn, backend, source, chunk, &now).await?;
    }
    Ok(())
}

/// Stores new content on the resource and returns its new revision number
/// (the caller writes the revision row); the resource is live again afterwards.
/// `updated` is moved to it when given, else left as it was.
async fn update_content(
    conn: &mut AnyConnection,
    id: &ResourceId,
    c: &Content,
    updated: Option<&str>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE resources SET title = $2, link = $3, summary = $4, entry_date = $5, category = $6, \
         category_slug = $7, download = $8, fingerprint = $9, published = COALESCE($10, first_seen), \
         updated = COALESCE($11, updated), withdrawn_at = NULL, missing_runs = 0, revision = revision + 1 \
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
    .bind(updated)
    .fetch_one(&mut *conn)
    .await
}

async fn count_missing(
    conn: &mut AnyConnection,
    backend: Backend,
    missing: &[ResourceId],
) -> Result<(), sqlx::Error> {
    let ids: Vec<&ResourceId> = missing.iter().collect();
    let sql = "UPDATE resources SET missing_runs = missing_runs + 1 WHERE id IN";
    update_ids(conn, backend, sql, None, &ids).await
}

async fn withdraw(
    conn: &mut AnyConnection,
    backend: Backend,
    source: &str,
    gone: &[ResourceId],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = format_time(at);
    let ids: Vec<&ResourceId> = gone.iter().collect();
    let sql = "UPDATE resources SET withdrawn_at = {}, missing_runs = missing_runs + 1 WHERE id IN";
    update_ids(conn, backend, sql, Some(&now), &ids).await?;
    let events: Vec<Event<'_>> = gone
        .iter()
        .map(|id| (id, ChangeKind::Withdrawn, &[][..]))
        .collect();
    for chunk in events.chunks(batch::ROWS) {
        insert_events(conn, backend, source, chunk, &now).await?;
    }
    Ok(())
}

async fn reset_returned(
    conn: &mut AnyConnection,
    backend: Backend,
    returned: &[ResourceId],
) -> Result<(), sqlx::Error> {
    let ids: Vec<&ResourceId> = returned.iter().collect();
    let sql = "UPDATE resources SET missing_runs = 0 WHERE id IN";
    update_ids(conn, backend, sql, None, &ids).await
}

/// Runs `update … WHERE id IN` over `ids`, a chunk at a time; `value`, when
/// given, is bound to the one `{}` in `update`, and the ids follow it.
async fn update_ids(
    conn: &mut AnyConnection,
    backend: Backend,
    update: &str,
    value: Option<&str>,
    ids: &[&ResourceId],
) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(batch::ROWS) {
        let mut p = Placeholders::new(backend);
        let sql = format!("{} ({})", p.fill(update), p.list(chunk.len()));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(value) = value {
            query = query.bind(value);
        }
        for id in chunk {
            query = query.bind(id.0.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A revision to write: the resource, its revision number, its content.
type Version<'a> = (&'a ResourceId, i64, &'a Content);

/// Writes revision rows, at most `batch::ROWS` (the callers chunk).
async fn insert_revisions(
    conn: &mut AnyConnection,
    backend: Backend,
    revisions: &[Version<'_>],
    now: &str,
) -> Result<(), sqlx::Error> {
    if revisions.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO revisions (resource_id, seq, title, link, summary, entry_date, category, \
         category_slug, download, fingerprint, seen_at) VALUES {}",
        Placeholders::new(backend).rows(REVISION_ROW, revisions.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (id, seq, c) in revisions {
        query = query
            .bind(id.0.as_str())
            .bind(*seq)
            .bind(c.title.as_str())
            .bind(c.link.as_deref())
            .bind(c.summary.as_str())
            .bind(c.entry_date.as_deref())
            .bind(c.category.as_str())
            .bind(c.category_slug.as_str())
            .bind(c.download.as_deref())
            .bind(c.fingerprint.as_str())
            .bind(now);
    }
    query.execute(&mut *conn).await.map(drop)
}

/// A change event to write: the resource, what happened, which fields.
type Event<'a> = (&'a ResourceId, ChangeKind, &'a [FieldChange]);

/// Writes change events in the order given (their ids follow it), at most
/// `batch::ROWS` (the callers chunk).
async fn insert_events(
    conn: &mut AnyConnection,
    backend: Backend,
    source: &str,
    events: &[Event<'_>],
    now: &str,
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO change_events (resource_id, source, kind, fields, at) VALUES {}",
        Placeholders::new(backend).rows(EVENT_ROW, events.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (id, kind, fields) in events {
        let fields = serde_json::to_string(fields)
            .expect("field changes are plain strings, which always serialise");
        query = query
            .bind(id.0.as_str())
            .bind(source)
            .bind(kind.as_str())
            .bind(fields)
            .bind(now);
    }
    query.execute(&mut *conn).await.map(drop)
}

/// Writes a `source_runs` row: a good run with its counts, or a failed one with `error`.
async fn insert_run(
    conn: &mut AnyConnection,
    source: &str,
    at: DateTime<Utc>,
    good: Option<(Counts, usize)>,
    error: &str,
    outcome: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let (counts, entries) = good.unwrap_or_default();
    sqlx::query_scalar(
        "INSERT INTO source_runs (source, started_at, finished_at, ok, entries, new, changed, \
         withdrawn, reappeared, unchanged, error, outcome) \
         VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
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
    .bind(outcome)
    .fetch_one(&mut *conn)
    .await
    .map(Some)
}

/// Completes the row of held run `held` as applied now; `None` when it is not
/// held any more (accepted or rejected meanwhile). Its snapshot is dropped;
/// its field summary stays for `runs list`.
async fn complete_held(
    conn: &mut AnyConnection,
    held: i64,
    outcome: &str,
    (counts, entries): (Counts, usize),
    at: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE source_runs SET ok = 1, outcome = $2, finished_at = $3, entries = $4, new = $5, \
         changed = $6, withdrawn = $7, reappeared = $8, unchanged = $9 \
         WHERE id = $1 AND outcome = 'held'",
    )
    .bind(held)
    .bind(outcome)
    .bind(format_time(at))
    .bind(count(entries))
    .bind(count(counts.new))
    .bind(count(counts.changed))
    .bind(count(counts.withdrawn))
    .bind(count(counts.reappeared))
    .bind(count(counts.unchanged))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    sqlx::query("UPDATE held_runs SET entries = '[]' WHERE run_id = $1")
        .bind(held)
        .execute(&mut *conn)
        .await?;
    Ok(Some(held))
}

/// Takes the store_meta row for the rest of the transaction: a write that
/// changes nothing, so SQLite takes its write lock and PostgreSQL the row lock.
async fn hold_store_meta(tx: &mut Tx) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE store_meta SET feed_version = feed_version WHERE id = 1")
        .execute(&mut **tx)
        .await
        .map(drop)
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
