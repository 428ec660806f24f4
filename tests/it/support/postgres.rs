//! Tests that only make sense on PostgreSQL (several replicas on one
//! database, a SQLite installation moved onto it). They use the databases of
//! `db::on_every_backend`, so they run, are dropped and are kept exactly as
//! the other PostgreSQL tests are. Each is marked
//! `#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]`, so a plain `cargo test`
//! reports it as ignored rather than passed; `scripts/test.sh` sets
//! `TIDINGS_TEST_PG` and passes `--include-ignored`. Run without
//! `TIDINGS_TEST_PG`, such a test fails and says why.

use std::future::Future;

use tidings::store::Backend;

use super::db::{Db, on_every_backend};

/// Runs `test` once, on a fresh PostgreSQL database.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: Fn(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let configured = std::env::var("TIDINGS_TEST_PG").is_ok_and(|url| !url.is_empty());
    assert!(
        configured,
        "this test needs PostgreSQL: set TIDINGS_TEST_PG to an admin URL (scripts/test.sh does)"
    );
    on_every_backend(|db| {
        let run = (db.store.backend() == Backend::Postgres).then(|| test(db));
        async move {
            if let Some(run) = run {
                run.await;
            }
        }
    })
    .await;
}
