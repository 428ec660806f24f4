//! Keeping a SQLite database whole in one file: the checkpoint on close that
//! folds the write-ahead log (`-wal`) into the `.db` file, and `db backup`,
//! a consistent copy taken with `VACUUM INTO` while other processes write.
//! PostgreSQL has its own tools (`pg_dump`).

use std::path::Path;

use tracing::{debug, warn};

use super::{Backend, Store, StoreError};

impl Store {
    /// Folds the write-ahead log into the database file and empties it.
    /// Best effort: another process reading or writing can keep part of the
    /// log alive; it is folded in by the last one to close.
    pub(super) async fn checkpoint(&self) {
        let result: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await;
        match result {
            Ok((0, _, _)) => debug!("write-ahead log folded into the database file"),
            Ok((_, log, done)) => debug!(
                log_frames = log,
                checkpointed = done,
                "write-ahead log partly folded in: another process is using the database"
            ),
            Err(e) => {
                warn!(error = %e, "could not fold the write-ahead log into the database file")
            }
        }
    }

    /// Writes a consistent copy of the whole SQLite database to `target`, a
    /// new file, while other processes keep reading and writing.
    pub async fn backup(&self, target: &Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Refused(
                "tidings db backup copies a SQLite database; for PostgreSQL use pg_dump \
                 (for example: pg_dump --format=custom --file=tidings.dump \"$DATABASE_URL\")"
                    .to_owned(),
            ));
        }
        if target.exists() {
            return Err(StoreError::Refused(format!(
                "{} exists already: choose a new file for the backup",
                target.display()
            )));
        }
        let text = target.to_str().ok_or_else(|| {
            StoreError::Refused(format!("{} is not a UTF-8 path", target.display()))
        })?;
        // VACUUM INTO takes a string literal, not a parameter.
        let sql = format!("VACUUM INTO '{}'", text.replace('\'', "''"));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::db(format!(
                "back up the database to {}",
                target.display()
            )))
    }
}
