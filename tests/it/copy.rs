// `tidings db copy`: a populated SQLite database into an empty one (PostgreSQL in CI), state intact.

use crate::support::app::TestApp;
use crate::support::db::on_every_backend;
use crate::support::fixture_site::FixtureSite;

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
        // The two apps differ only in their port, which is in base_url.
        let (from, to) = (
            format!("127.0.0.1:{}/", source.port),
            format!("127.0.0.1:{}/", moved.port),
        );
        for file in ["all.rss", "all.atom", "leaflets.atom", "feeds.opml"] {
            let a = std::fs::read_to_string(source.path(&format!("out/{file}"))).unwrap();
            let b = std::fs::read_to_string(moved.path(&format!("out/{file}"))).unwrap();
            assert!(a.replace(&from, &to) == b, "{file} differs after the copy");
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
            conditional, 6,
            "the page cache came along: every page answered 304"
        );

        let again = source.run(&["db", "copy", "--to", &target.url]);
        assert_eq!(
            again.status.code(),
            Some(1),
            "a target holding resources is refused"
        );
        assert!(String::from_utf8_lossy(&again.stderr).contains("already holds resources"));
    })
    .await;
}
