//! The store: resources, revisions, change events and run bookkeeping in SQLite
//! or PostgreSQL, through sqlx's `Any` driver with one set of `$1`-style SQL.
//! This file opens and migrates the database and defines the errors; reads live
//! in `resources`, the ingest transaction in `apply`, mail's tables in
//! `subscribers`, `digests` and `outbox`.
//!
//! Queries are written once. The dialects part only where one of them forces it:
//! - migrations (`migrations/{sqlite,postgres}`): auto-increment, `STRICT`
//!   tables and column types are spelled differently;
//! - opening (here): SQLite gets WAL, `synchronous = NORMAL` and
//!   `secure_delete` (erased rows are zeroed in the file) on each
//!   connection so readers run beside the one writer; PostgreSQL gets a small
//!   second pool committing with `synchronous_commit = off` for outbox
//!   records (SQLite's WAL already commits without an fsync); an in-memory
//!   SQLite database keeps its one connection, since each new one would be
//!   another, empty database;
//! - the read-only probe at start (here): a SQLite file that cannot be
//!   written vs PostgreSQL's `transaction_read_only`;
//! - closing (here): SQLite folds its write-ahead log into the file, so the
//!   `.db` file alone is whole;
//! - claiming outbox rows (`outbox`): PostgreSQL's `FOR UPDATE SKIP LOCKED`
//!   lets replicas claim disjoint rows; SQLite's write lock already makes the
//!   claim one step;
//! - generated multi-row statements (`batch`): anonymous `?` placeholders on
//!   SQLite, whose lookup of a numbered `$n` scans every name in the
//!   statement (seconds for thousands of rows), `$n` on PostgreSQL;
//! - waking replicas (`notify`): `LISTEN`/`NOTIFY` exists only on PostgreSQL,
//!   and SQLite has one process to wake;
//! - `backup`: `VACUUM INTO` copies a SQLite file; PostgreSQL has `pg_dump`;
//! - `copy`: listing tables and column types reads each catalog
//!   (`sqlite_master` vs `information_schema`), and a PostgreSQL target's
//!   identity sequences are moved past the copied ids.

mod admin;
mod admins;
mod alerts;
mod announcements;
mod apply;
mod audit;
mod backup;
mod batch;
mod channel_posts;
mod copy;
mod digests;
mod leases;
mod listing;
mod notify;
mod outbox;
mod pages;
mod privacy;
mod refile;
mod resources;
mod rows;
mod runs;
mod sessions;
mod subscribers;
mod upgrade;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection as _};

pub use admin::{AdminResourceQuery, AdminSort, AnnouncementRecord, Delivery};
pub use admins::{AdminAccount, SessionRecord};
pub use announcements::{Announcement, LastRun, NewAnnouncement};
pub use apply::{AppliedRun, RunRecord};
pub use audit::{AuditEntry, NewAuditEntry};
pub use channel_posts::{ClaimedPost, NewPost, PostRow};
pub use copy::CopiedTable;
pub use digests::{RunClaim, WindowEvent};
pub use listing::{CategoryCount, PageQuery};
pub use outbox::{Claimed, NewMessage, OutboxBacklog, OutboxMessage, QueuedDigest};
pub use privacy::{ErasedRows, HeldMessage, HeldSubscriber, PrunedCount};
pub use refile::Refiled;
pub use resources::{ReconcileState, ResourceFilter};
pub use runs::{HeldRun, NewHeldRun, RunRow};
pub use subscribers::NewSubscriber;
pub use upgrade::identity_digest;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file, for one box.
    Sqlite,
    /// PostgreSQL, for replicas.
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if it is one Tidings supports.
    pub(crate) fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgresql",
        })
    }
}

/// Why a store operation failed. Display text never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named row does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. "resource 0123abcd…".
        what: String,
    },
    /// The row to add exists already.
    #[error("{what} exists already")]
    Exists {
        /// What, e.g. "subscriber a…@example.org".
        what: String,
    },
    /// Another run of the same source committed since this one loaded its state;
    /// nothing was written. Reload, reconcile again and retry.
    #[error("another run of source {source_name} wrote first; nothing was written")]
    Conflict {
        /// The source whose runs collided.
        source_name: String,
    },
    /// The database could not be opened (bad URL, missing folder, refused connection).
    #[error("could not open database {url}: {reason}")]
    Open {
        /// The URL with any password masked.
        url: String,
        /// Why, with any password masked.
        reason: String,
    },
    /// The operation would lose or mix up data, so nothing was done.
    #[error("{0}")]
    Refused(String),
    /// A query failed.
    #[error("could not {action}: {source}")]
    Db {
        /// What was being done, e.g. "list resources".
        action: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Migrations could not be applied.
    #[error("could not migrate the {backend} database: {source}")]
    Migrate {
        /// Which dialect's migrations.
        backend: Backend,
        /// The migrator's error.
        source: MigrateError,
    },
}

impl StoreError {
    /// Wraps a driver error with what was being done, for `map_err`.
    pub(crate) fn db(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let action = action.into();
        move |source| Self::Db { action, source }
    }

    /// True when the database could not be reached (no connection within
    /// the pool's acquire timeout, a connection cut, the server shutting
    /// down), as opposed to a query that failed: trying again later may work.
    pub(crate) fn is_unavailable(&self) -> bool {
        let Self::Db { source, .. } = self else {
            return false;
        };
        match source {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // SQLSTATE class 08 (connection exception) and 57P (operator
            // intervention: shutdown, cannot connect now).
            sqlx::Error::Database(e) => e
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
            _ => false,
        }
    }

    fn open(url: &str, reason: impl fmt::Display) -> Self {
        let reason = reason.to_string();
        match url::Url::parse(url) {
            Ok(parsed) => {
                let mut masked = parsed.clone();
                let _ = masked.set_password(parsed.password().map(|_| "***"));
                let reason = match parsed.password() {
                    Some(pw) if !pw.is_empty() => reason.replace(pw, "***"),
                    _ => reason,
                };
                Self::Open {
                    url: masked.to_string(),
                    reason,
                }
            }
            // Not a URL at all: show only its scheme, which holds no secret.
            Err(_) => Self::Open {
                url: format!("{}:…", url.split(':').next().unwrap_or_default()),
                reason,
            },
        }
    }
}

/// The database of resources, revisions, change events and runs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where the outbox's per-message records go (the hand-over mark and the
    /// `sent` record): on PostgreSQL a small pool whose sessions commit
    /// without waiting for the disk (`synchronous_commit = off`), so each is
    /// one statement, one round trip; on SQLite the same pool.
    outcomes: AnyPool,
    backend: Backend,
}

/// Connections in the PostgreSQL pool for outbox records.
const OUTCOME_CONNECTIONS: u32 = 8;
/// Connections in the pool request handlers use.
const REQUEST_CONNECTIONS: u32 = 10;
/// How long opening a store waits for the database's first answer.
const OPEN_WAIT: Duration = Duration::from_secs(5);

impl Store {
    /// Connects to `sqlite://PATH` (the file is created if missing, its folder is
    /// not) or `postgres://…`. Does not migrate: call `migrate`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| {
            StoreError::open(url, "unsupported scheme: use sqlite://PATH or postgres://…")
        })?;
        let (connect_url, options) = match backend {
            Backend::Sqlite => {
                let (connect_url, options) = sqlite_options(url)?;
                let options = options.after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)));
                (connect_url, options)
            }
            Backend::Postgres => (url.to_owned(), AnyPoolOptions::new()),
        };
        if !sqlite_in_memory(url) {
            probe(backend, url, &connect_url).await?;
        }
        let pool = options
            .connect(&connect_url)
            .await
            .map_err(|e| StoreError::open(url, e))?;
        let outcomes = match backend {
            Backend::Sqlite => pool.clone(),
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(OUTCOME_CONNECTIONS)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("SET synchronous_commit = off")
                            .execute(conn)
                            .await
                            .map(drop)
                    })
                })
                .connect_lazy(&connect_url)
                .map_err(|e| StoreError::open(url, e))?,
        };
        Ok(Self {
            pool,
            outcomes,
            backend,
        })
    }

    /// This store with a pool of its own for request handlers, whose
    /// `acquire` gives up after `wait`: during a database outage a request
    /// fails fast (the handlers answer 503) while background work keeps its
    /// patience. An in-memory SQLite database keeps its one connection.
    pub(crate) fn for_requests(&self, url: &str, wait: Duration) -> Result<Self, StoreError> {
        if self.backend == Backend::Sqlite && sqlite_in_memory(url) {
            return Ok(self.clone());
        }
        let (connect_url, options) = match self.backend {
            Backend::Sqlite => {
                let (connect_url, options) = sqlite_options(url)?;
                let options = options.after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)));
                (connect_url, options)
            }
            Backend::Postgres => (url.to_owned(), AnyPoolOptions::new()),
        };
        let pool = options
            .max_connections(REQUEST_CONNECTIONS)
            .acquire_timeout(wait)
            .connect_lazy(&connect_url)
            .map_err(|e| StoreError::open(url, e))?;
        Ok(Self {
            pool,
            outcomes: self.outcomes.clone(),
            backend: self.backend,
        })
    }

    /// Applies every embedded migration not yet applied, then the one-off
    /// upgrade steps SQL cannot do (`upgrade`); a no-op when up to date.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.backend
            .migrator()
            .run(&self.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: self.backend,
                source,
            })?;
        self.upgrade().await
    }

    /// True when every embedded migration has been applied successfully.
    pub async fn is_migrated(&self) -> Result<bool, StoreError> {
        self.ping().await?;
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await
            {
                Ok(versions) => versions,
                // The database answered (ping) but has no migrations table yet.
                Err(sqlx::Error::Database(_)) => return Ok(false),
                Err(e) => return Err(StoreError::db("list applied migrations")(e)),
            };
        Ok(self
            .backend
            .migrator()
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .all(|m| applied.contains(&m.version)))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::db("reach the database"))
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for modules with tables of their own.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection; later calls fail. On SQLite the write-ahead
    /// log is first folded into the database file (see `backup`), so after a
    /// clean stop the `.db` file alone holds everything.
    pub async fn close(&self) {
        if self.pool.is_closed() {
            return;
        }
        if self.backend == Backend::Sqlite {
            self.checkpoint().await;
        }
        self.pool.close().await;
        self.outcomes.close().await;
    }
}

/// One connection, within `OPEN_WAIT`, to say at once and clearly why a
/// database cannot be used: unreachable, refused, or read-only (a SQLite
/// file that cannot be written, a PostgreSQL standby or read-only database).
async fn probe(backend: Backend, url: &str, connect_url: &str) -> Result<(), StoreError> {
    let attempt = async {
        let mut conn = AnyConnection::connect(connect_url).await?;
        let writable = match backend {
            Backend::Sqlite => sqlite_writable(&mut conn).await?,
            Backend::Postgres => {
                let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
                    .fetch_one(&mut conn)
                    .await?;
                read_only != "on"
            }
        };
        let _ = conn.close().await;
        Ok::<bool, sqlx::Error>(writable)
    };
    let wait = OPEN_WAIT.as_secs();
    match tokio::time::timeout(OPEN_WAIT, attempt).await {
        Err(_) => Err(StoreError::open(
            url,
            format!("no answer within {wait} s: is the server running, and reachable from here?"),
        )),
        Ok(Err(e)) if is_read_only_error(&e) => Err(StoreError::open(url, read_only(backend))),
        Ok(Err(e)) => Err(StoreError::open(url, e)),
        Ok(Ok(false)) => Err(StoreError::open(url, read_only(backend))),
        Ok(Ok(true)) => Ok(()),
    }
}

fn read_only(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "the database is read-only: the file (or its folder, for the -wal and -shm files) cannot be written, or the URL says mode=ro"
        }
        Backend::Postgres => {
            "the database is read-only (transaction_read_only is on: a standby, or default_transaction_read_only is set)"
        }
    }
}

fn is_read_only_error(e: &sqlx::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("readonly") || text.contains("read-only")
}

/// Sets the pragmas and writes the header's `user_version` back unchanged:
/// true when the file can be written (`BEGIN IMMEDIATE` alone succeeds on a
/// read-only file).
async fn sqlite_writable(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    sqlite_pragmas(conn).await?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    let rewrite = format!("PRAGMA user_version = {version}");
    sqlx::query(sqlx::AssertSqlSafe(rewrite))
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Run on every SQLite connection. WAL: several processes may share the file,
/// and readers run beside the one writer (sqlx's 5 s busy timeout makes writers
/// wait their turn). `synchronous = NORMAL`, safe in WAL mode: a commit returns
/// without an fsync (the WAL is synced at checkpoints), so marking an outbox
/// row sent no longer waits on the disk. A commit that returned survives a
/// crash or SIGKILL of the process (it is in the OS's page cache) and the file
/// is never corrupted, but a power loss or OS crash can undo the last commits:
/// a message marked sent then goes out again (same `Message-ID`), an
/// unsubscribe made just before is lost, an ingest run is redone.
/// `secure_delete`: a deleted row's bytes are overwritten with zeros, so an
/// erased address (`subscribers erase`) leaves no trace in the file (#18).
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut *conn)
        .await?;
    sqlx::query("PRAGMA secure_delete = ON")
        .execute(&mut *conn)
        .await?;
    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// True for `sqlite::memory:` and other in-memory SQLite URLs.
fn sqlite_in_memory(url: &str) -> bool {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path == ":memory:" || path.is_empty() || query.contains("mode=memory")
}

/// The URL and pool options for a SQLite database: created if missing (`mode=rwc`),
/// but only inside a folder that exists, so a typo in the path is reported.
fn sqlite_options(url: &str) -> Result<(String, AnyPoolOptions), StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if sqlite_in_memory(url) {
        // One connection that never idles out: each in-memory connection would
        // otherwise be a database of its own.
        let options = AnyPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        return Ok((url.to_owned(), options));
    }
    let folder = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    if let Some(folder) = folder.filter(|f| !f.is_dir()) {
        let reason = format!("folder {} does not exist", folder.display());
        return Err(StoreError::open(url, reason));
    }
    let connect_url = match query {
        "" => format!("{url}?mode=rwc"),
        q if q.contains("mode=") => url.to_owned(),
        _ => format!("{url}&mode=rwc"),
    };
    Ok((connect_url, AnyPoolOptions::new()))
}

/// A time as stored: fixed-width RFC 3339 UTC with microseconds, so text order is time order.
pub(crate) fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Reads a stored time back.
pub(crate) fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, sqlx::Error> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|e| sqlx::Error::Decode(format!("bad stored time {text:?}: {e}").into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::from_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::from_url("mysql://u@h/db"), None);
    }

    #[test]
    fn open_errors_mask_the_password() {
        let err = StoreError::open("postgres://bob:s3cret@db/x", "auth failed for s3cret");
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("postgres://bob:***@db/x"), "{text}");
    }

    #[test]
    fn stored_times_sort_as_text_and_round_trip() {
        use chrono::TimeZone;
        let a = chrono::Utc.with_ymd_and_hms(2024, 3, 9, 8, 0, 0).unwrap();
        let b = a + chrono::Duration::microseconds(1);
        assert_eq!(format_time(a), "2024-03-09T08:00:00.000000Z");
        assert!(format_time(a) < format_time(b));
        assert_eq!(parse_time(&format_time(b)).unwrap(), b);
    }

    #[test]
    fn sqlite_path_in_a_missing_folder_is_refused() {
        let err = sqlite_options("sqlite:///no/such/folder/x.db").unwrap_err();
        assert!(
            err.to_string()
                .contains("folder /no/such/folder does not exist"),
            "{err}"
        );
        let (url, _) = sqlite_options("sqlite://tidings.db").unwrap();
        assert_eq!(url, "sqlite://tidings.db?mode=rwc");
    }
}
