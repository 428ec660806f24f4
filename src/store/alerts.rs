//! Alert state: whether a condition (a failing source) is raised, changed by
//! conditional writes so that, however many processes notice it, exactly one
//! learns it is the one to raise or clear it.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, format_time};

impl Store {
    /// Failed runs of `source` since its last successful one.
    pub(crate) async fn consecutive_failures(&self, source: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT consecutive_failures FROM source_state WHERE source = $1")
            .bind(source)
            .fetch_optional(&self.pool)
            .await
            .map(Option::unwrap_or_default)
            .map_err(StoreError::db(format!("read the failures of {source}")))
    }

    /// Raise `name`; for the caller that raised it now, the number of this
    /// change of the alert (raises and clears counted together, from 1).
    pub(crate) async fn raise_alert_numbered(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO alerts (name, raised_at, cleared_at, transitions) VALUES ($1, $2, NULL, 1) \
             ON CONFLICT (name) DO UPDATE SET raised_at = excluded.raised_at, cleared_at = NULL, \
             transitions = alerts.transitions + 1 WHERE alerts.cleared_at IS NOT NULL \
             RETURNING transitions",
        )
        .bind(name)
        .bind(format_time(at))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db(format!("raise alert {name}")))
    }

    /// Clear `name`; true only for the caller that cleared a raised alert now.
    pub(crate) async fn clear_alert(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.clear_alert_numbered(name, at).await?.is_some())
    }

    /// Clear `name`; for the caller that cleared a raised alert now, the
    /// number of this change of the alert.
    pub(crate) async fn clear_alert_numbered(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "UPDATE alerts SET cleared_at = $2, transitions = transitions + 1 \
             WHERE name = $1 AND cleared_at IS NULL RETURNING transitions",
        )
        .bind(name)
        .bind(format_time(at))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db(format!("clear alert {name}")))
    }

    /// Makes the unsent emails of alert `name` due at `at`, ahead of a newer
    /// one about to be queued, so that the admins read the changes in order
    /// and the last email they get is the alert's state now.
    pub(crate) async fn hurry_alert_mail(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = $2 WHERE kind = 'alert' \
             AND status = 'queued' AND idem_key LIKE $1 AND next_attempt_at > $2",
        )
        .bind(format!("alert/{name}/%"))
        .bind(format_time(at))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::db(format!(
            "bring forward the emails of alert {name}"
        )))
    }

    /// Every alert ever raised, and whether it is raised now.
    pub async fn alerts(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT name, cleared_at FROM alerts ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db("read the alerts"))?;
        Ok(rows
            .into_iter()
            .map(|(name, cleared)| (name, cleared.is_none()))
            .collect())
    }
}
