// The `tidings` binary end to end on the seed source: ingest, resources, feeds write, check, exit codes.

use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::consumers;
use crate::support::db::on_every_backend;

/// The reference page's nine entries as a person reads them: title, category
/// the built-in rules should give, and the date its title holds.
const EXPECTED: [(&str, &str, Option<&str>); 9] = [
    (
        "OCEAN - Offering Compassionate & Emotional Support for Those Living Through Birth Trauma and Loss",
        "Leaflets",
        None,
    ),
    (
        "Tower Hamlets Together: Health and Social Care Workforce Strategy 2021-2024",
        "Strategies and plans",
        None,
    ),
    (
        "Tower Hamlets Together - Shared Outcomes Framework",
        "Strategies and plans",
        None,
    ),
    (
        "Let’s keep young people and children safe and healthy",
        "Leaflets",
        None,
    ),
    (
        "Health and Wellbeing Board - 17 November 2020",
        "Board papers",
        Some("2020-11-17"),
    ),
    (
        "Hestia & ELFT launch the Together Café Service in Tower Hamlets – May 2020",
        "News",
        Some("2020-05"),
    ),
    (
        "Covid-19 THT Partnership success stories and case studies",
        "Case studies",
        None,
    ),
    (
        "What Would You Do? - HealthWatch Tower Hamlets Part 2",
        "Reports",
        None,
    ),
    (
        "Tower Hamlets Urgent Treatment Centre - Opening 14 August 2019",
        "News",
        Some("2019-08-14"),
    ),
];

fn counts(report: &Value) -> (u64, u64, u64, u64, u64) {
    let s = &report["sources"][0];
    let n = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {s}"))
    };
    (
        n("new"),
        n("changed"),
        n("withdrawn"),
        n("reappeared"),
        n("unchanged"),
    )
}

#[tokio::test]
async fn ingest_stores_the_nine_seed_entries_once() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        let first = app.json(&["ingest", "--json"]);
        assert_eq!(first["sources"][0]["name"], "seeds");
        assert_eq!(first["sources"][0]["error"], Value::Null);
        assert_eq!(counts(&first), (9, 0, 0, 0, 0));
        let second = app.json(&["ingest", "--json"]);
        assert_eq!(
            counts(&second),
            (0, 0, 0, 0, 9),
            "the same seeds twice change nothing"
        );
    })
    .await;
}

#[tokio::test]
async fn resources_list_shows_exact_titles_categories_and_dates() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        app.run_ok(&["ingest"]);
        let list = app.json(&["resources", "list", "--json"]);
        let rows = list.as_array().expect("a JSON array");
        assert_eq!(rows.len(), 9);
        for (title, category, date) in EXPECTED {
            let row = rows
                .iter()
                .find(|r| r["title"] == title)
                .unwrap_or_else(|| panic!("{title:?} not listed"));
            assert_eq!(row["category"], category, "{title}");
            assert_eq!(row["date"].as_str(), date, "{title}");
            assert_eq!(row["link"], Value::Null, "seed entries have no link");
            assert!(row["first_seen"].as_str().is_some_and(|t| t.ends_with('Z')));
        }
        let utc = rows.iter().find(|r| r["title"] == EXPECTED[8].0).unwrap();
        let summary = utc["summary"].as_str().unwrap();
        assert!(summary.starts_with("When it comes to accessing medical care"));
        assert!(
            summary.contains("\n\nThis may now be an appointment"),
            "two paragraphs: {summary}"
        );
        let board = rows.iter().find(|r| r["title"] == EXPECTED[4].0).unwrap();
        assert!(
            board["summary"]
                .as_str()
                .unwrap()
                .contains("\n• Citizen voice and service user engagement")
        );

        let news = app.json(&["resources", "list", "--category", "news", "--json"]);
        assert_eq!(news.as_array().unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn resources_show_prints_the_resource_and_its_revisions() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        app.run_ok(&["ingest"]);
        let list = app.json(&["resources", "list", "--json"]);
        let id = list[0]["id"].as_str().unwrap().to_owned();
        let detail = app.json(&["resources", "show", &id, "--json"]);
        assert_eq!(detail["id"], id.as_str());
        assert_eq!(detail["revisions"].as_array().unwrap().len(), 1);
        assert_eq!(detail["revisions"][0]["seq"], 1);
        let text = app.run_ok(&["resources", "show", &id]);
        assert!(text.contains(list[0]["title"].as_str().unwrap()));
        assert!(text.contains("revisions:"));
        let missing = app.run(&["resources", "show", "0000000000000000"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("no resource with id"));
    })
    .await;
}

#[tokio::test]
async fn feeds_write_produces_feeds_that_feedparser_reads() {
    let app = TestApp::new("sqlite://tidings.db", "");
    app.run_ok(&["ingest"]);
    app.run_ok(&["feeds", "write", "out"]);
    let all = consumers::feedparser(&app.path("out/all.rss"));
    assert!(!all.bozo, "{}", all.bozo_exception);
    assert_eq!(all.entries.len(), 9);
    let atom = consumers::feedparser(&app.path("out/all.atom"));
    assert!(!atom.bozo, "{}", atom.bozo_exception);
    assert_eq!(atom.entries.len(), 9);
    let news = consumers::feedparser(&app.path("out/news.rss"));
    assert_eq!(news.entries.len(), 2);
    for (title, ..) in EXPECTED {
        assert!(
            all.entries.iter().any(|e| e.title == title),
            "{title} in all.rss"
        );
    }
    let resource_links = all
        .entries
        .iter()
        .filter(|e| e.link.contains("/resources/"))
        .count();
    assert_eq!(
        resource_links, 9,
        "seed items link to their page on this site"
    );
    assert!(app.path("out/feeds.opml").exists());
    assert!(
        app.path("out/other.atom").exists(),
        "every category gets a feed, even an empty one"
    );
}

#[tokio::test]
async fn a_file_that_is_not_utf8_is_reported_and_the_rest_is_ingested() {
    let app = TestApp::new("sqlite://tidings.db", "");
    std::fs::write(
        app.path("seeds/broken.txt"),
        b"Resource Library\n\nCaf\xe9 menu\n\n\nEntry\n\nText\n",
    )
    .unwrap();
    let output = app.run(&["ingest", "--json"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed file fails the run's exit code"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let error = report["sources"][0]["error"]
        .as_str()
        .expect("the error is reported");
    assert!(error.contains("broken.txt:3: not UTF-8"), "{error}");
    assert_eq!(
        report["sources"][0]["new"], 9,
        "the good file is still ingested"
    );
}

#[tokio::test]
async fn a_source_that_fails_later_withdraws_nothing() {
    let app = TestApp::new("sqlite://tidings.db", "");
    app.run_ok(&["ingest"]);
    let seed = app.path("seeds/resource-library-page-4.txt");
    std::fs::write(&seed, b"\xff\xfe not text").unwrap();
    for _ in 0..3 {
        let output = app.run(&["ingest", "--json"]);
        assert_eq!(output.status.code(), Some(1));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(counts(&report), (0, 0, 0, 0, 0));
    }
    let list = app.json(&["resources", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 9, "nothing was withdrawn");
}

#[tokio::test]
async fn bad_usage_exits_2_and_a_bad_config_exits_1_in_one_line() {
    let app = TestApp::new("sqlite://tidings.db", "");
    assert_eq!(
        app.run(&["ingest", "--source", "nope"]).status.code(),
        Some(2)
    );
    assert_eq!(app.run(&["frobnicate"]).status.code(), Some(2));
    std::fs::write(
        app.path("tidings.toml"),
        "[site]\ntimezone = \"Nowhere/Land\"\n[server]\nlisten = \"x\"\n",
    )
    .unwrap();
    let output = app.run(&["ingest"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("site.timezone") && stderr.contains("server.listen"),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_shows_each_source_with_its_first_entries() {
    let app = TestApp::new("sqlite://tidings.db", "");
    let out = app.run_ok(&["check"]);
    assert!(
        out.contains("source seeds (seed seeds/): 9 entries"),
        "{out}"
    );
    assert!(out.contains("OCEAN - Offering Compassionate"), "{out}");
    assert!(
        out.contains("link      (empty)"),
        "seed entries have no link: {out}"
    );
    assert!(!app.path("tidings.db").exists(), "check stores nothing");
}

#[tokio::test]
async fn dry_run_counts_but_stores_nothing() {
    let app = TestApp::new("sqlite://tidings.db", "");
    let report = app.json(&["ingest", "--dry-run", "--json"]);
    assert_eq!(counts(&report), (9, 0, 0, 0, 0));
    let list = app.json(&["resources", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn two_ingest_processes_at_once_record_each_event_once() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        app.run_ok(&["db", "migrate"]);
        let spawn = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
                .args(["ingest", "--json"])
                .current_dir(app.path(""))
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let reports: Vec<Value> = [a, b]
            .into_iter()
            .map(|child| {
                let output = child.wait_with_output().unwrap();
                assert!(output.status.success());
                serde_json::from_slice(&output.stdout).unwrap()
            })
            .collect();
        let new: u64 = reports.iter().map(|r| counts(r).0).sum();
        assert_eq!(new, 9, "nine new between both runs: {reports:?}");
        let store = db.migrated().await;
        let resources = store
            .list_resources(&tidings::store::ResourceFilter::default())
            .await
            .unwrap();
        assert_eq!(resources.len(), 9);
        for resource in &resources {
            let events = store.events_for(&resource.id).await.unwrap();
            assert_eq!(events.len(), 1, "{}: {events:?}", resource.title);
            assert_eq!(store.revisions(&resource.id).await.unwrap().len(), 1);
        }
    })
    .await;
}

/// `TIDINGS_NOW` starts a command's clock at the instant it names, says so
/// on stderr, and a value that is not an instant is a usage error.
#[tokio::test]
async fn tidings_now_starts_the_clock_at_its_instant_and_warns() {
    let db = tempfile::tempdir().unwrap();
    let app = TestApp::new(
        &format!("sqlite://{}", db.path().join("t.db").display()),
        "",
    );
    let out = app.run_env(&["ingest"], &[("TIDINGS_NOW", "2031-05-06T07:08:00Z")]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TIDINGS_NOW is set"), "{stderr}");
    let runs = app.json(&["runs", "list", "--json"]);
    let finished = runs[0]["finished_at"].as_str().unwrap();
    assert!(finished.starts_with("2031-05-06T07:08:"), "{runs}");

    let bad = app.run_env(&["ingest"], &[("TIDINGS_NOW", "next tuesday")]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("TIDINGS_NOW=\"next tuesday\" is not an RFC 3339 instant"),
        "{stderr}"
    );
}
