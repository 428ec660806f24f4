//! The SQLite file holds the data: after `serve` stops on SIGTERM the `.db`
//! file alone has everything (the write-ahead log is folded in), and `tidings
//! db backup` taken while `serve` ingests and sends restores to the same
//! resources and subscribers.

use serde_json::Value;

use crate::support::app::TestApp;

fn sqlite_app(extra: &str) -> (tempfile::TempDir, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tidings.db").display());
    (dir, TestApp::new(&url, extra))
}

/// The app's resources and subscribers as the command line lists them, the
/// per-subscriber digest windows left out (sending moves them).
fn contents(app: &TestApp) -> (Value, Vec<(String, String, String)>) {
    let resources = app.json(&["resources", "list", "--json"]);
    let subscribers = app.json(&["subscribers", "list", "--json"]);
    let mut people: Vec<(String, String, String)> = subscribers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].to_string();
            (field("email"), field("status"), field("categories"))
        })
        .collect();
    people.sort();
    (resources, people)
}

/// Another installation whose database is the file `db`.
fn app_on(db: &std::path::Path) -> TestApp {
    TestApp::new(&format!("sqlite://{}", db.display()), "")
}

#[tokio::test]
async fn after_sigterm_the_database_file_alone_holds_everything() {
    let (dir, app) = sqlite_app("");
    app.run_ok(&[
        "subscribers",
        "add",
        "a@example.org",
        "--categories",
        "all",
        "--confirmed",
    ]);
    let mut served = app.serve().await;
    // serve ingests at start; wait until its resources are there.
    crate::support::app::wait_until(std::time::Duration::from_secs(30), || async {
        let list = crate::support::http()
            .get(app.url("/api/resources"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let list: Value = serde_json::from_str(&list).unwrap();
        list.as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    let live = contents(&app);
    served.terminate();
    let wal = dir.path().join("tidings.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the write-ahead log is folded in and emptied"
    );
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("tidings.db"),
        copy.path().join("tidings.db"),
    )
    .unwrap();
    let restored = app_on(&copy.path().join("tidings.db"));
    assert_eq!(contents(&restored), live);
    assert!(live.0.as_array().unwrap().len() >= 9, "{}", live.0);
}

#[tokio::test]
async fn a_backup_taken_while_serve_ingests_and_sends_restores_the_same_data() {
    // A source run every second, and 2,000 digests going out, during the backup.
    let (dir, app) = sqlite_app(
        "[[sources]]\nname = \"seeds\"\nkind = \"seed\"\npath = \"seeds/\"\nschedule = \"* * * * * *\"\n\
         [mail]\ntransport = \"file\"\ndir = \"outbox\"\n",
    );
    let csv: String = (0..2000)
        .map(|i| format!("reader{i:04}@example.org,all,weekly\n"))
        .collect();
    std::fs::write(
        app.path("people.csv"),
        format!("email,categories,frequency\n{csv}"),
    )
    .unwrap();
    app.run_ok(&["subscribers", "import", "people.csv", "--confirmed"]);
    app.run_ok(&["ingest"]);
    let _served = app.serve().await;
    let mut sending = app.spawn(&["digest", "send", "--now"]);
    let outbox = app.path("outbox");
    crate::support::app::wait_until(std::time::Duration::from_secs(60), || async {
        crate::support::smtp::count_files(&outbox) > 0
    })
    .await;
    let target = dir.path().join("backup.db");
    let backup = app.run_ok(&["db", "backup", target.to_str().unwrap()]);
    assert!(backup.contains("backed up the database to"), "{backup}");
    assert!(
        crate::support::smtp::count_files(&outbox) < 2000,
        "the backup was taken while digests were going out"
    );
    assert!(sending.wait().unwrap().success());
    let again = app.run(&["db", "backup", target.to_str().unwrap()]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing file is never overwritten"
    );
    let restored = app_on(&target);
    let (resources, people) = contents(&restored);
    let live = contents(&app);
    assert_eq!(resources, live.0, "the same resources");
    assert_eq!(people, live.1, "the same subscribers");
    assert_eq!(people.len(), 2000);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]
async fn a_backup_of_postgresql_says_to_use_pg_dump() {
    crate::support::postgres::on_postgres(|db| async move {
        let app = TestApp::new(&db.url, "");
        let target = app.path("never-written.db");
        let refused = app.run(&["db", "backup", target.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("pg_dump"), "{stderr}");
        assert!(!target.exists());
    })
    .await;
}
