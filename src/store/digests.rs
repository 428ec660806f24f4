//! Digest bookkeeping: the claim on each (schedule, period) taken before
//! anything is queued, the baseline a fresh database records instead of
//! catching up, and the new and changed resources of a time window.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::rows::{self, resource_columns};
use super::{Store, StoreError, format_time, parse_time};
use crate::model::{ChangeKind, Resource, ResourceId};

/// A resource that is new or changed in a window, with when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEvent {
    /// Its latest new, reappeared or changed event.
    pub latest_at: DateTime<Utc>,
    /// Its latest new or reappeared event, if it had one in the window.
    pub new_at: Option<DateTime<Utc>>,
    /// The resource as it is now.
    pub resource: Resource,
}

impl WindowEvent {
    /// For a subscriber whose window starts at `start`: `None` if nothing
    /// happened after `start`, else whether it is new or changed to them.
    pub(crate) fn kind_after(&self, start: DateTime<Utc>) -> Option<ChangeKind> {
        if self.latest_at <= start {
            return None;
        }
        Some(match self.new_at {
            Some(at) if at > start => ChangeKind::New,
            _ => ChangeKind::Changed,
        })
    }
}

/// The outcome of claiming a digest period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunClaim {
    /// This process runs the period.
    Claimed,
    /// Another process has it (or finished it).
    Taken,
}

impl Store {
    /// Claims period `period` of `schedule` until `lease_until`: a new row, or
    /// one whose claimer died before finishing (its lease ran out).
    pub(crate) async fn claim_digest_run(
        &self,
        schedule: &str,
        period: DateTime<Utc>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<RunClaim, StoreError> {
        let action = || format!("claim the {schedule} digest of {}", format_time(period));
        let inserted = sqlx::query(
            "INSERT INTO digest_runs (schedule, period, claimed_at, claimed_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (schedule, period) DO NOTHING",
        )
        .bind(schedule)
        .bind(format_time(period))
        .bind(format_time(now))
        .bind(format_time(lease_until))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(action()))?;
        if inserted.rows_affected() == 1 {
            return Ok(RunClaim::Claimed);
        }
        let taken_over = sqlx::query(
            "UPDATE digest_runs SET claimed_at = $3, claimed_until = $4 WHERE schedule = $1 \
             AND period = $2 AND finished_at IS NULL AND claimed_until < $3",
        )
        .bind(schedule)
        .bind(format_time(period))
        .bind(format_time(now))
        .bind(format_time(lease_until))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(action()))?;
        Ok(if taken_over.rows_affected() == 1 {
            RunClaim::Claimed
        } else {
            RunClaim::Taken
        })
    }

    /// Marks a claimed period done, adding how many digests this claimer
    /// queued. A period whose claim lapsed mid-queue (a slow batch) can be
    /// finished by two claimers, each queueing only subscribers the other
    /// had not: their counts add up, and the first finish time stays.
    pub(crate) async fn finish_digest_run(
        &self,
        schedule: &str,
        period: DateTime<Utc>,
        queued: usize,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE digest_runs SET finished_at = COALESCE(finished_at, $3), queued = queued + $4 \
             WHERE schedule = $1 AND period = $2",
        )
        .bind(schedule)
        .bind(format_time(period))
        .bind(format_time(at))
        .bind(i64::try_from(queued).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::db(format!("finish the {schedule} digest run")))
    }

    /// Records `period` as a finished run that sent nothing: the starting point
    /// on a fresh database, so only later periods count as missed.
    pub(crate) async fn record_digest_baseline(
        &self,
        schedule: &str,
        period: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO digest_runs (schedule, period, claimed_at, claimed_until, finished_at, \
             baseline) VALUES ($1, $2, $3, $3, $3, 1) ON CONFLICT (schedule, period) DO NOTHING",
        )
        .bind(schedule)
        .bind(format_time(period))
        .bind(format_time(at))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::db(format!(
            "record the {schedule} digest baseline"
        )))
    }

    /// The latest finished period of `schedule` (a baseline counts), if any.
    /// A period claimed but never finished does not count: it is still owed.
    pub(crate) async fn last_digest_period(
        &self,
        schedule: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT MAX(period) FROM digest_runs WHERE schedule = $1 AND finished_at IS NOT NULL",
        )
        .bind(schedule)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db(format!("read the last {schedule} digest")))?;
        latest
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(StoreError::db(format!("read the last {schedule} digest")))
    }

    /// Periods of `schedule` claimed but never finished (their claimer died or
    /// failed part-way, or is still at it), oldest first, with each claim's end.
    pub(crate) async fn unfinished_digest_periods(
        &self,
        schedule: &str,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        let action = || format!("read the unfinished {schedule} digests");
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT period, claimed_until FROM digest_runs WHERE schedule = $1 \
             AND finished_at IS NULL ORDER BY period",
        )
        .bind(schedule)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db(action()))?;
        rows.iter()
            .map(|(period, until)| Ok((parse_time(period)?, parse_time(until)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::db(action()))
    }

    /// Extends this process's claim on an unfinished period to `until`, as
    /// it makes progress, so nobody takes over a period still being queued.
    pub(crate) async fn renew_digest_claim(
        &self,
        schedule: &str,
        period: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE digest_runs SET claimed_until = $3 WHERE schedule = $1 AND period = $2 \
             AND finished_at IS NULL",
        )
        .bind(schedule)
        .bind(format_time(period))
        .bind(format_time(until))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::db(format!(
            "renew the claim on the {schedule} digest"
        )))
    }

    /// Ends the claim on an unfinished period at once (its claimer failed),
    /// so a retry by any process takes it over without waiting.
    pub(crate) async fn release_digest_claim(
        &self,
        schedule: &str,
        period: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // A claim is free once `claimed_until` is before the claimer's now.
        let until = at - chrono::Duration::seconds(1);
        self.renew_digest_claim(schedule, period, until).await
    }

    /// Resources (not withdrawn) with a new, reappeared or changed event in
    /// (`after`, `until`], one per resource, by their latest event.
    pub async fn window_events(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<WindowEvent>, StoreError> {
        let action = "load the changes of a digest window";
        let events = sqlx::query(
            "SELECT resource_id, kind, at FROM change_events WHERE at > $1 AND at <= $2 \
             AND kind IN ('new', 'changed', 'reappeared') ORDER BY at, id",
        )
        .bind(format_time(after))
        .bind(format_time(until))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db(action))?;
        let sql = concat!(
            "SELECT ",
            resource_columns!(),
            " FROM resources WHERE withdrawn_at IS NULL AND id IN (SELECT resource_id FROM \
             change_events WHERE at > $1 AND at <= $2)"
        );
        let resources = sqlx::query(sql)
            .bind(format_time(after))
            .bind(format_time(until))
            .fetch_all(&self.pool)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(rows::resource)
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(StoreError::db(action))?;
        let mut by_id: std::collections::HashMap<ResourceId, WindowEvent> = resources
            .into_iter()
            .map(|resource| {
                let event = WindowEvent {
                    latest_at: after,
                    new_at: None,
                    resource,
                };
                (event.resource.id.clone(), event)
            })
            .collect();
        for row in &events {
            let decoded = (|| -> Result<(String, String, String), sqlx::Error> {
                Ok((
                    row.try_get("resource_id")?,
                    row.try_get("kind")?,
                    row.try_get("at")?,
                ))
            })();
            let (id, kind, at) = decoded.map_err(StoreError::db(action))?;
            let at = parse_time(&at).map_err(StoreError::db(action))?;
            // Events come oldest first, so the last write of each field is the latest.
            if let Some(event) = by_id.get_mut(&ResourceId(id)) {
                event.latest_at = at;
                if ChangeKind::parse(&kind) != Some(ChangeKind::Changed) {
                    event.new_at = Some(at);
                }
            }
        }
        let mut latest: Vec<WindowEvent> = by_id.into_values().collect();
        latest.sort_by(|a, b| (a.latest_at, &a.resource.id).cmp(&(b.latest_at, &b.resource.id)));
        Ok(latest)
    }
}
