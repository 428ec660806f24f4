//! Admin sessions: one row per signed-in browser, keyed by the SHA-256 of
//! the cookie's token, ended by signing out or by its expiry. Every replica
//! sees the same sessions.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, format_time};

impl Store {
    /// Record a session `id` (the token's hash) for `credential` until
    /// `expires`, and forget sessions that have expired.
    pub async fn start_admin_session(
        &self,
        id: &str,
        credential: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
            .bind(format_time(now))
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("forget expired admin sessions"))?;
        sqlx::query(
            "INSERT INTO admin_sessions (id, credential, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(credential)
        .bind(format_time(now))
        .bind(format_time(expires))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::db("start an admin session"))
    }

    /// End session `id`; a no-op when it is already gone.
    pub(crate) async fn end_admin_session(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::db("end an admin session"))
    }
}
