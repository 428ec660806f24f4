//! Leases decide which replica does scheduled work: one row per role, held
//! by one process until it expires. Taking or renewing is one conditional
//! upsert, so the database, not timing, decides between replicas.

use chrono::{DateTime, Duration, Utc};

use super::{Store, StoreError, format_time};

impl Store {
    /// Take `name` for `holder` until `now + ttl` if it is free, expired, or
    /// already `holder`'s (a renewal). True when `holder` holds it now.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(format_time(now + ttl))
        .bind(format_time(now))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(format!("take the {name} lease")))?;
        Ok(result.rows_affected() == 1)
    }

    /// Give `name` up if `holder` has it, so another process need not wait for expiry.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::db(format!("release the {name} lease")))
    }
}
