//! `TestDb`: a fresh database per test: SQLite in a temporary file, and
//! PostgreSQL when `TIDINGS_TEST_PG` names an admin URL. Dropped when the test
//! passes, kept (and named on stderr) when it fails.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AssertSqlSafe, Connection};
use tidings::store::{Backend, Store};

/// What a test body gets: the URL of its database and a store opened on it.
#[derive(Debug, Clone)]
pub struct Db {
    /// Connection URL of this test's database.
    pub url: String,
    /// A store opened on it, not yet migrated.
    pub store: Store,
}

impl Db {
    /// The store, migrated.
    pub async fn migrated(&self) -> Store {
        self.store.migrate().await.expect("migrations apply");
        self.store.clone()
    }

    /// A second store on the same database, as another process would open it.
    pub async fn open_another(&self) -> Store {
        Store::open(&self.url).await.expect("second store opens")
    }
}

/// One test database and what it takes to remove it.
pub struct TestDb {
    db: Db,
    place: Place,
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A new, empty database on `backend`.
    pub async fn create(backend: Backend) -> Self {
        let (url, place) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("tidings.db").display());
                (url, Place::Sqlite(dir))
            }
            Backend::Postgres => create_pg(&pg_admin_url().expect("TIDINGS_TEST_PG is set")).await,
        };
        let store = Store::open(&url).await.expect("test database opens");
        Self {
            db: Db { url, store },
            place,
        }
    }

    /// Removes the database after a passing test.
    async fn destroy(self) {
        self.db.store.close().await;
        if let Place::Postgres { admin_url, name } = &self.place {
            let mut admin = sqlx::AnyConnection::connect(admin_url)
                .await
                .expect("admin connects");
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .expect("test database drops");
        }
    }

    /// Keeps the database of a failing test and says where it is.
    fn keep(self) {
        match self.place {
            Place::Sqlite(dir) => eprintln!(
                "kept test database {}",
                dir.keep().join("tidings.db").display()
            ),
            Place::Postgres { name, .. } => eprintln!("kept test database {name}"),
        }
    }
}

/// The PostgreSQL admin URL, if PostgreSQL tests are on. In CI they must be.
fn pg_admin_url() -> Option<String> {
    let url = std::env::var("TIDINGS_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() && std::env::var_os("CI").is_some() {
        panic!("PostgreSQL tests must run in CI: set TIDINGS_TEST_PG to an admin URL");
    }
    url
}

/// Creates `tidings_t_<random>` and returns its URL.
async fn create_pg(admin_url: &str) -> (String, Place) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    sqlx::any::install_default_drivers();
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let name = format!("tidings_t_{:016x}", hasher.finish());
    let mut admin = sqlx::AnyConnection::connect(admin_url)
        .await
        .expect("TIDINGS_TEST_PG connects");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("test database is created");
    let mut url = url::Url::parse(admin_url).expect("TIDINGS_TEST_PG is a URL");
    url.set_path(&name);
    let place = Place::Postgres {
        admin_url: admin_url.to_owned(),
        name,
    };
    (url.to_string(), place)
}

/// Runs `test` once per available backend, each on a fresh database.
pub async fn on_every_backend<F, Fut>(test: F)
where
    F: Fn(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backends = vec![Backend::Sqlite];
    if pg_admin_url().is_some() {
        backends.push(Backend::Postgres);
    }
    for backend in backends {
        let db = TestDb::create(backend).await;
        match tokio::spawn(test(db.db.clone())).await {
            Ok(()) => db.destroy().await,
            Err(e) => {
                eprintln!("test failed on {backend}");
                db.keep();
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}
