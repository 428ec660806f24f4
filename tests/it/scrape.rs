// Scraping the fixture library over HTTP: exact entries, 304s, a broken site, and change detection v1 -> v2.

use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::consumers;
use crate::support::db::on_every_backend;
use crate::support::fixture_site::FixtureSite;

/// A config whose only source is the site (naming sources replaces the built-in seed source).
fn app_for(site: &FixtureSite, db_url: &str) -> TestApp {
    TestApp::new(db_url, &site.source_toml())
}

fn report(app: &TestApp) -> (Option<i32>, Value) {
    let output = app.run(&["ingest", "--json"]);
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), json)
}

fn counts(report: &Value) -> [u64; 5] {
    let s = &report["sources"][0];
    ["new", "changed", "withdrawn", "reappeared", "unchanged"].map(|k| s[k].as_u64().unwrap())
}

fn expected(version: &str) -> Vec<Value> {
    let path = format!("tests/fixtures/tht-site/{version}/expected.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["entries"].as_array().unwrap().clone()
}

fn by_link<'a>(rows: &'a [Value], link: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["link"] == link)
        .unwrap_or_else(|| panic!("{link} not stored"))
}

#[tokio::test]
async fn v1_yields_exactly_the_expected_entries_with_every_field() {
    on_every_backend(|db| async move {
        let site = FixtureSite::start("v1");
        let app = app_for(&site, &db.url);
        let (code, first) = report(&app);
        assert_eq!(code, Some(0), "{first}");
        assert_eq!(counts(&first), [45, 0, 0, 0, 0]);
        let stored = app.json(&["resources", "list", "--json"]);
        let rows = stored.as_array().unwrap();
        assert_eq!(rows.len(), 45);
        let origin = format!("http://127.0.0.1:{}", site.port);
        for want in expected("v1") {
            let link = format!("{origin}{}", want["link"].as_str().unwrap());
            let got = by_link(rows, &link);
            assert_eq!(got["title"], want["title"], "{link}");
            assert_eq!(got["category"], want["category"], "{link}");
            assert_eq!(got["date"], want["date"], "{link}");
            let download = format!("{origin}{}", want["download"].as_str().unwrap());
            assert_eq!(got["download"], download.as_str(), "{link}");
            let starts = want["summary_starts"].as_str().unwrap();
            assert!(
                got["summary"].as_str().unwrap().starts_with(starts),
                "{link}: {}",
                got["summary"]
            );
        }
    })
    .await;
}

#[tokio::test]
async fn the_second_run_asks_conditionally_and_reuses_304s() {
    let site = FixtureSite::start("v1");
    let app = app_for(&site, "sqlite://tidings.db");
    assert_eq!(counts(&report(&app).1), [45, 0, 0, 0, 0]);
    let after_first = site.log_lines().len();
    assert_eq!(
        after_first,
        6,
        "robots.txt and five pages: {:?}",
        site.log_lines()
    );
    assert_eq!(counts(&report(&app).1), [0, 0, 0, 0, 45]);
    let second: Vec<String> = site.log_lines().split_off(after_first);
    let pages: Vec<&String> = second
        .iter()
        .filter(|l| l.contains("resource-library"))
        .collect();
    assert_eq!(pages.len(), 5, "{second:?}");
    for line in pages {
        assert!(
            line.contains("\" 304 ") && !line.contains("inm=None"),
            "conditional: {line}"
        );
    }
}

#[tokio::test]
async fn a_broken_site_fails_the_run_and_changes_nothing() {
    on_every_backend(|db| async move {
        let site = FixtureSite::start("v1");
        let app = app_for(&site, &db.url);
        assert_eq!(report(&app).0, Some(0));
        app.run_ok(&["feeds", "write", "before"]);
        site.switch("v3-broken");
        for _ in 0..3 {
            let (code, failed) = report(&app);
            assert_eq!(code, Some(1));
            assert_eq!(counts(&failed), [0, 0, 0, 0, 0]);
            assert!(
                failed["sources"][0]["error"]
                    .as_str()
                    .unwrap()
                    .contains("no entries"),
                "{failed}"
            );
        }
        assert_eq!(
            app.json(&["resources", "list", "--json"])
                .as_array()
                .unwrap()
                .len(),
            45
        );
        app.run_ok(&["feeds", "write", "after"]);
        let feed = consumers::feedparser(&app.path("after/all.rss"));
        assert_eq!(feed.entries.len(), 45, "the last good feed is still served");
        let before = std::fs::read(app.path("before/all.atom")).unwrap();
        assert_eq!(before, std::fs::read(app.path("after/all.atom")).unwrap());
    })
    .await;
}

#[tokio::test]
async fn v1_then_v2_reports_exactly_what_changed() {
    on_every_backend(|db| async move {
        let site = FixtureSite::start("v1");
        let app = app_for(&site, &db.url);
        assert_eq!(report(&app).0, Some(0));
        site.switch("v2");
        let (_, first_v2) = report(&app);
        // 46 entries: 2 new, 2 changed, 42 unchanged; the removed one is only missing so far.
        assert_eq!(counts(&first_v2), [2, 2, 0, 0, 42]);
        let (_, second_v2) = report(&app);
        assert_eq!(
            counts(&second_v2),
            [0, 0, 1, 0, 46],
            "withdrawn after the second successful run"
        );
        let (_, third_v2) = report(&app);
        assert_eq!(counts(&third_v2), [0, 0, 0, 0, 46]);

        let rows = app.json(&["resources", "list", "--json"]);
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 46, "45 - 1 withdrawn + 2 new");
        let origin = format!("http://127.0.0.1:{}/resource-library/", site.port);
        assert!(
            rows.iter()
                .all(|r| r["link"] != format!("{origin}primary-care-networks-explained").as_str())
        );
        for (slug, revisions) in [
            ("carers-strategy-2023-2026", 2),
            ("video-living-well-with-diabetes", 2),
            ("annual-report-2022-23", 1),
            ("pharmacy-first-leaflet", 1),
        ] {
            let id = by_link(rows, &format!("{origin}{slug}"))["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let detail = app.json(&["resources", "show", &id, "--json"]);
            assert_eq!(
                detail["revisions"].as_array().unwrap().len(),
                revisions,
                "{slug}"
            );
        }
        let video = by_link(rows, &format!("{origin}video-living-well-with-diabetes"));
        assert_eq!(
            video["title"],
            "Video: living well with type 2 diabetes (with Bengali subtitles)"
        );

        site.switch("v3-broken");
        assert_eq!(counts(&report(&app).1), [0, 0, 0, 0, 0]);
        assert_eq!(
            app.json(&["resources", "list", "--json"])
                .as_array()
                .unwrap()
                .len(),
            46
        );
    })
    .await;
}
