// `tidings db copy`: a populated SQLite database into an empty one (PostgreSQL in CI), state intact;
// a target that holds rows in any table is refused and keeps them.

use tidings::clock::{Clock, SystemClock};
use tidings::store::NewMessage;

use crate::support::app::TestApp;
use crate::support::db::on_every_backend;
use crate::support::fixture_site::{Expected, FixtureSite};

#[tokio::test]
async fn a_copied_database_serves_the_same_feeds_and_resumes_where_it_was() {
    on_every_backend(|target| async move {
        let site = FixtureSite::start("v1");
        let source = TestApp::new("sqlite://tidings.db", &site.source_toml());
        source.run_ok(&["ingest"]);
        site.switch("v2");
        source.run_ok(&["ingest"]);
        source.run_ok(&["ingest"]);

        let printed = source.run_ok(&["db", "copy", "--to", &target.url]);
        for table in [
            "resources",
            "revisions",
            "change_events",
            "source_runs",
            "page_cache",
        ] {
            let line = printed.lines().find(|l| l.starts_with(table)).unwrap();
            assert!(line.ends_with(" ok") && !line.contains(" 0 ->"), "{line}");
        }

        let moved = TestApp::new(&target.url, &site.source_toml());
        let list = |app: &TestApp| app.json(&["resources", "list", "--json"]);
        assert_eq!(list(&source), list(&moved), "same resources, ids and times");
        source.run_ok(&["feeds", "write", "out"]);
        moved.run_ok(&["feeds", "write", "out"]);
        // Neither app serves, so both sign with the same base URL.
        for file in ["all.rss", "all.atom", "leaflets.atom", "feeds.opml"] {
            let a = std::fs::read_to_string(source.path(&format!("out/{file}"))).unwrap();
            let b = std::fs::read_to_string(moved.path(&format!("out/{file}"))).unwrap();
            assert!(a == b, "{file} differs after the copy");
        }

        let before = site.log_lines().len();
        let resumed = moved.json(&["ingest", "--json"]);
        assert_eq!(resumed["sources"][0]["new"], 0, "{resumed}");
        assert_eq!(resumed["sources"][0]["withdrawn"], 0, "{resumed}");
        let conditional = site.log_lines()[before..]
            .iter()
            .filter(|l| l.contains("\" 304 "))
            .count();
        assert_eq!(
            conditional,
            Expected::of("v2").pages,
            "the page cache came along: every page answered 304"
        );

        let again = source.run(&["db", "copy", "--to", &target.url]);
        assert_eq!(
            again.status.code(),
            Some(1),
            "a target holding resources is refused"
        );
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("already holds rows in resources"),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
    })
    .await;
}

/// A target with no resources but subscribers and an outbox (say, a database
/// someone imported people into first) is refused; everything it held stays.
#[tokio::test]
async fn a_target_holding_rows_in_any_table_is_refused_and_keeps_them() {
    on_every_backend(|target| async move {
        let source = TestApp::new("sqlite://tidings.db", "");
        source.run_ok(&["ingest"]);
        let other = TestApp::new(&target.url, "");
        std::fs::write(other.path("people.csv"), "kept@example.org,all,weekly\n").unwrap();
        other.run_ok(&["subscribers", "import", "people.csv", "--confirmed"]);
        let message = NewMessage {
            idem_key: "test/kept".to_owned(),
            kind: "alert",
            recipient: "admin@example.org".to_owned(),
            subscriber_id: None,
            subject: "Kept".to_owned(),
            message: b"Subject: Kept\r\n\r\nKept.\r\n".to_vec(),
        };
        assert!(
            target
                .store
                .enqueue(&message, SystemClock.now())
                .await
                .unwrap()
        );
        let subscribers = other.json(&["subscribers", "list", "--json"]);
        let outbox = other.json(&["outbox", "list", "--json"]);
        assert_eq!(subscribers.as_array().unwrap().len(), 1, "{subscribers}");
        assert_eq!(outbox.as_array().unwrap().len(), 1, "{outbox}");

        let refused = source.run(&["db", "copy", "--to", &target.url]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("already holds rows in subscribers (1), outbox (1)"),
            "the error names the tables: {stderr}"
        );
        assert!(stderr.contains("nothing was copied"), "{stderr}");

        assert_eq!(other.json(&["subscribers", "list", "--json"]), subscribers);
        assert_eq!(other.json(&["outbox", "list", "--json"]), outbox);
        let resources = other.json(&["resources", "list", "--json"]);
        assert!(resources.as_array().unwrap().is_empty(), "{resources}");
    })
    .await;
}
