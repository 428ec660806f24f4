//! Alert state: whether a condition (a failing source) is raised, changed by
//! conditional writes so that, however many processes notice it, exactly one
//! learns it is the one to raise or clear it.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, format_time};

impl Store {
    /// Failed runs of `source` since its last successful one.
    pub async fn consecutive_failures(&self, source: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT consecutive_failures FROM source_state WHERE source = $1")
            .bind(source)
            .fetch_optional(&self.pool)
            .await
            .map(Option::unwrap_or_default)
            .map_err(StoreError::db(format!("read the failures of {source}")))
    }

    /// Raise `name`; true only for the caller that raised it now (it was clear or unknown).
    pub async fn raise_alert(&self, name: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO alerts (name, raised_at, cleared_at) VALUES ($1, $2, NULL) \
             ON CONFLICT (name) DO UPDATE SET raised_at = excluded.raised_at, cleared_at = NULL \
             WHERE alerts.cleared_at IS NOT NULL",
        )
        .bind(name)
        .bind(format_time(at))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(format!("raise alert {name}")))?;
        Ok(result.rows_affected() == 1)
    }

    /// Clear `name`; true only for the caller that cleared a raised alert now.
    pub async fn clear_alert(&self, name: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE alerts SET cleared_at = $2 WHERE name = $1 AND cleared_at IS NULL")
                .bind(name)
                .bind(format_time(at))
                .execute(&self.pool)
                .await
                .map_err(StoreError::db(format!("clear alert {name}")))?;
        Ok(result.rows_affected() == 1)
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
