//! Tests that only make sense on PostgreSQL (several replicas on one
//! database, a SQLite installation moved onto it). They use the databases of
//! `db::on_every_backend`, so they run, are dropped and are kept exactly as
//! the other PostgreSQL tests are; without `TIDINGS_TEST_PG` they are skipped
//! (in CI that is a failure, as for every PostgreSQL test).

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
    if !configured && std::env::var_os("CI").is_none() {
        eprintln!("skipped: this test needs PostgreSQL; set TIDINGS_TEST_PG to an admin URL");
        return;
    }
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
